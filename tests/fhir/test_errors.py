"""Every refusal under /fhir is an OperationOutcome with the status /api/v1 would give:
sign-in, role, unknown ids and types, invalid and malformed bodies, the order rules,
Idempotency-Key reuse, unsupported searches and interactions."""

from __future__ import annotations

import json
from typing import Any

import pytest
from fhir.resources.R4B.operationoutcome import OperationOutcome

from lims.fhir import systems
from tests.conftest import World
from tests.fhir.helpers import FHIR_JSON, Api, body_of, get, service_request


def outcome(r: Any, status: int, code: str) -> dict[str, Any]:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith(FHIR_JSON)
    body = r.json()
    OperationOutcome.model_validate(body)
    assert body["issue"][0]["code"] == code, body
    assert body["issue"][0]["diagnostics"]
    return dict(body)


def _post(api: Api, body: Any, who: str = "clinic", **headers: str) -> Any:
    content = body if isinstance(body, str | bytes) else json.dumps(body)
    return api.client.post(
        "/fhir/ServiceRequest",
        content=content,
        headers=api.as_(who) | {"Content-Type": FHIR_JSON} | headers,
    )


def _order(world: World, **changes: Any) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(body_of(service_request(world.patient_coi)))
    data.update(changes)
    return {k: v for k, v in data.items() if v is not None}


def test_sign_in_and_roles(api: Api, world: World) -> None:
    r = api.client.get("/fhir/Patient")
    outcome(r, 401, "login")
    assert r.headers["www-authenticate"] == "Bearer"
    outcome(
        api.client.get("/fhir/Patient", headers={"Authorization": "Bearer x.y.z"}), 401, "login"
    )
    outcome(api.client.get("/fhir/Task", headers={"X-API-Key": "lims_nope"}), 401, "login")
    for who in ("auditor", "technician"):
        refused = outcome(_post(api, _order(world), who=who), 403, "forbidden")
        assert "clinic" in refused["issue"][0]["diagnostics"]


def test_unknown_types_paths_and_interactions(api: Api) -> None:
    outcome(get(api, "Observation"), 404, "not-found")
    outcome(get(api, "Observation/1"), 404, "not-found")
    outcome(get(api, "Patient/a/b/c"), 404, "not-found")
    outcome(
        api.client.put("/fhir/Patient/x", headers=api.as_("clinic"), json={}), 405, "not-supported"
    )
    outcome(api.client.delete("/fhir/ServiceRequest/ORD-000001"), 405, "not-supported")
    outcome(
        api.client.post("/fhir/Patient", headers=api.as_("clinic"), json={}), 405, "not-supported"
    )


def test_unsupported_searches_are_refused_not_ignored(api: Api) -> None:
    outcome(get(api, "Patient", name="Tanaka"), 400, "invalid")
    outcome(get(api, "ServiceRequest", **{"identifier:exact": "ORD-1"}), 400, "invalid")
    outcome(get(api, "ServiceRequest", status="on-hold"), 400, "invalid")
    outcome(get(api, "Task", _count="0"), 400, "invalid")
    outcome(get(api, "Task", _count="many"), 400, "invalid")
    outcome(get(api, "Task", _offset="-1"), 400, "invalid")
    outcome(get(api, "Task", patient="Group/1"), 400, "invalid")
    outcome(get(api, "Task", _format="xml"), 400, "invalid")
    dup = api.client.get("/fhir/Task?status=requested&status=completed", headers=api.as_("clinic"))
    outcome(dup, 400, "invalid")


def test_malformed_and_wrong_bodies(api: Api, world: World) -> None:
    outcome(_post(api, "{not json"), 400, "invalid")
    outcome(_post(api, b"\xff\xfe"), 400, "invalid")
    wrong = outcome(_post(api, {"resourceType": "Patient", "id": "x"}), 422, "invalid")
    assert "ServiceRequest" in wrong["issue"][0]["diagnostics"]
    outcome(_post(api, ["a list"]), 422, "invalid")
    outcome(_post(api, _order(world), **{"Content-Type": "text/plain"}), 415, "not-supported")
    # Not valid FHIR: every problem is listed, with its path.
    bad = outcome(
        _post(api, _order(world, quantityQuantity={"value": "many"}, intent=7)), 422, "invalid"
    )
    listed = " ".join(i["diagnostics"] for i in bad["issue"][1:])
    assert "quantityQuantity" in listed and "intent" in listed


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"subject": None}, "ServiceRequest.subject"),
        ({"subject": {"reference": "Group/1"}}, "ServiceRequest.subject"),
        ({"code": {"coding": [{"system": "urn:other", "code": "aape"}]}}, "ServiceRequest.code"),
        ({"code": {"coding": [{"system": systems.PRODUCT, "code": "botox"}]}}, "product"),
        ({"quantityQuantity": {"value": 4, "unit": "kg"}}, "dose"),
        ({"quantityQuantity": {"value": 400, "unit": "mL"}}, "dose"),
        ({"quantityQuantity": {"value": 4}}, "ServiceRequest.quantityQuantity"),
        ({"intent": "proposal"}, "ServiceRequest.intent"),
        ({"status": "draft"}, "ServiceRequest.status"),
        ({"occurrenceDateTime": "2020-01-01T00:00:00+00:00"}, "planned_use_at"),
        ({"extension": []}, systems.SESSION_NUMBER),
        ({"supportingInfo": None}, "ServiceRequest.supportingInfo"),
        ({"requester": None}, "ServiceRequest.requester"),
    ],
)
def test_order_rules_refuse_with_the_field(
    api: Api, world: World, changes: dict[str, Any], field: str
) -> None:
    refused = outcome(_post(api, _order(world, **changes)), 422, "invalid")
    assert refused["issue"][0]["expression"] == [field]
    assert get(api, "ServiceRequest").json().get("entry") is None  # nothing half-written


def test_unknown_and_other_clinics_patient(api: Api, world: World) -> None:
    other = _order(world, subject={"reference": f"Patient/{world.other_patient_coi}"})
    outcome(_post(api, other), 404, "not-found")
    outcome(_post(api, _order(world, subject={"reference": "Patient/COI-2222"})), 422, "invalid")
    by_identifier = _order(
        world, subject={"identifier": {"system": systems.COI, "value": world.patient_coi}}
    )
    assert _post(api, by_identifier).status_code == 201


def test_idempotency_key_replays_and_refuses_reuse(api: Api, world: World) -> None:
    body = _order(world)
    first = _post(api, body, **{"Idempotency-Key": "fhir-1"})
    assert first.status_code == 201, first.text
    assert first.headers["content-type"].startswith(FHIR_JSON)
    number = first.json()["id"]
    assert first.headers["location"].endswith(f"/fhir/ServiceRequest/{number}")
    again = _post(api, body, **{"Idempotency-Key": "fhir-1"})
    assert again.status_code == 201
    assert again.headers["idempotent-replayed"] == "true"
    assert again.json() == first.json()
    changed = _order(world, note=[{"text": "different"}])
    outcome(_post(api, changed, **{"Idempotency-Key": "fhir-1"}), 409, "business-rule")
    outcome(_post(api, body, **{"Idempotency-Key": " " * 300}), 422, "invalid")
    # The same key on /api/v1 is the same user's key: a different operation, refused.
    v1 = api.client.post(
        "/api/v1/clinic/orders",
        headers=api.as_("clinic") | {"Idempotency-Key": "fhir-1"},
        json={"coi_id": world.patient_coi, "product": "aape", "dose": "4 mL"},
    )
    assert v1.status_code in (409, 422)
    bundle = get(api, "ServiceRequest").json()
    assert [e["resource"]["id"] for e in bundle["entry"]] == [number]


def test_markup_in_free_text_comes_back_as_data(api: Api, world: World) -> None:
    note = "<script>alert(1)</script> & co"
    created = _post(api, _order(world, note=[{"text": note}]))
    assert created.status_code == 201, created.text
    read = get(api, f"ServiceRequest/{created.json()['id']}")
    assert read.json()["note"] == [{"text": note}]
    assert read.headers["content-type"].startswith(FHIR_JSON)
    assert read.headers["x-content-type-options"] == "nosniff"


def test_a_clinic_api_key_reads_and_orders_until_revoked(api: Api, world: World) -> None:
    made = api.client.post(
        "/api/v1/clinic/api-keys", headers=api.as_("clinic"), json={"name": "EHR"}
    ).json()
    key = {"X-API-Key": made["key"]}
    created = api.client.post(
        "/fhir/ServiceRequest",
        content=json.dumps(_order(world)),
        headers=key | {"Content-Type": FHIR_JSON},
    )
    assert created.status_code == 201, created.text
    found = api.client.get("/fhir/ServiceRequest", headers=key).json()
    assert [e["resource"]["id"] for e in found["entry"]] == [created.json()["id"]]
    other = api.client.get(f"/fhir/Patient/{world.other_patient_coi}", headers=key)
    outcome(other, 404, "not-found")
    gone = api.client.delete(f"/api/v1/clinic/api-keys/{made['prefix']}", headers=api.as_("clinic"))
    assert gone.status_code == 204
    outcome(api.client.get("/fhir/ServiceRequest", headers=key), 401, "login")
