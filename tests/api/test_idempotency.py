"""One idempotency mechanism: the API's Idempotency-Key, the flows' writes and recorded
steps share one digest and one replay rule (lims.idempotency.service)."""

from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import Engine
from sqlmodel import func, select

from lims.auth.models import IdempotencyRecord
from lims.db import read_session, utcnow, write_session
from lims.errors import IdempotencyConflict
from lims.idempotency.service import request_digest, run_once
from lims.orders.models import DoseOrder
from lims.steps.service import InputBooking, OutputRequest
from tests.api.conftest import Api
from tests.builders import PASSWORD, Lab
from tests.conftest import World


def _order_body(world: World, days: int = 3) -> dict[str, Any]:
    return {
        "coi_id": world.patient_coi,
        "product": "aape",
        "dose": "4 mL",
        "session_number": 1,
        "sessions_total": 6,
        "planned_use_at": (utcnow() + timedelta(days=days)).isoformat(),
        "ship_to": "Ginza Hair Clinic, Tokyo",
        "prescriber": "Dr. H. Fukuoka",
        "consent_ref": "CONSENT-42",
    }


def _orders(engine: Engine) -> int:
    with read_session(engine) as s:
        return int(s.exec(select(func.count()).select_from(DoseOrder)).one())


def test_api_replays_the_same_request_and_refuses_another_with_409(
    api: Api, engine: Engine, world: World
) -> None:
    Lab.start(engine, world).lot()
    headers = api.as_("clinic") | {"Idempotency-Key": "ginza-0001"}
    body = _order_body(world)
    first = api.client.post("/api/v1/clinic/orders", json=body, headers=headers)
    again = api.client.post("/api/v1/clinic/orders", json=body, headers=headers)
    assert (first.status_code, again.status_code) == (201, 201)
    assert again.json() == first.json() and again.headers["Idempotent-Replayed"] == "true"
    other = api.client.post(
        "/api/v1/clinic/orders", json=_order_body(world, days=5), headers=headers
    )
    assert other.status_code == 409, other.text
    problem = other.json()
    assert problem["type"].endswith("idempotency_conflict")
    assert problem["field"] == "Idempotency-Key"
    assert (
        "idempotency key 'ginza-0001' was already used for a different POST "
        "/api/v1/clinic/orders request" in problem["detail"]
    )
    assert _orders(engine) == 1
    with read_session(engine) as s:
        assert len(s.exec(select(IdempotencyRecord)).all()) == 1


def test_flow_writes_and_steps_follow_the_same_rule(engine: Engine, world: World) -> None:
    with write_session(engine) as s:
        run_once(s, key="k-1", operation="note", request={"a": 1}, write=lambda: {"n": 1})
    with write_session(engine) as s, pytest.raises(IdempotencyConflict) as flow_err:
        run_once(s, key="k-1", operation="note", request={"a": 2}, write=lambda: {"n": 2})
    lab = Lab.start(engine, world)
    lipo = lab.accepted_lipoaspirate("50 mL")
    kw: dict[str, Any] = {
        "inputs": [InputBooking(lipo, "10 mL")],
        "outputs": [OutputRequest("10 mL")],
        "parameters": {"emulsification_passes": 30, "filter_mesh": "500 um", "needle_gauge": 27},
        "idempotency_key": "run-7/nanofat",
    }
    lab.step("NANOFAT-PREP", 5, **kw)
    with pytest.raises(IdempotencyConflict) as step_err:
        lab.step("NANOFAT-PREP", 5, **{**kw, "inputs": [InputBooking(lipo, "12 mL")]})
    assert lab.get(lipo).remaining_canonical == Decimal("40")
    for err, operation, key in ((flow_err, "note", "k-1"), (step_err, "step", "run-7/nanofat")):
        assert err.value.http_status == 409
        assert err.value.field == "idempotency_key"
        assert f"idempotency key {key!r} was already used for a different {operation} request" in (
            err.value.message
        )


def test_one_digest_for_every_caller() -> None:
    same = request_digest("step", {"b": [1, 2], "a": Decimal("1.50")})
    assert same == request_digest("step", {"a": Decimal("1.50"), "b": (1, 2)})
    assert same != request_digest("note", {"b": [1, 2], "a": Decimal("1.50")})
    assert same != request_digest("step", {"b": [2, 1], "a": Decimal("1.50")})


def test_a_retried_signature_is_one_signature_and_the_password_is_not_fingerprinted(
    api: Api, engine: Engine, world: World
) -> None:
    from lims.signatures.models import Signature

    lipo = Lab.start(engine, world).lipoaspirate()
    body = {
        "password": PASSWORD,
        "meaning": "reviewed",
        "record_type": "material",
        "record_id": lipo,
    }
    headers = api.as_("technician") | {"Idempotency-Key": "sign-once"}
    first = api.client.post("/api/v1/lab/signatures", json=body, headers=headers)
    again = api.client.post("/api/v1/lab/signatures", json=body, headers=headers)
    assert (first.status_code, again.status_code) == (201, 201), again.text
    assert again.json() == first.json() and again.headers["Idempotent-Replayed"] == "true"
    with read_session(engine) as s:
        signatures = s.exec(select(Signature).where(Signature.record_type == "material")).all()
        assert len(signatures) == 1
        record = s.exec(select(IdempotencyRecord)).one()
    assert PASSWORD not in str(record.response)
    # The digest is of the request without its password.
    without = {k: v for k, v in body.items() if k != "password"}
    assert record.request_sha256 == request_digest(
        "POST /api/v1/lab/signatures", {**without, "comment": None}
    )
    # Without a key, a second POST is a second signature (the key is what makes a retry).
    plain = api.client.post("/api/v1/lab/signatures", json=body, headers=api.as_("technician"))
    assert plain.status_code == 201 and plain.json()["id"] != first.json()["id"]


def test_state_changes_and_moves_are_done_once_per_key(
    api: Api, engine: Engine, world: World
) -> None:
    lipo = Lab.start(engine, world).lipoaspirate()
    tech = api.as_("technician")
    path = f"/api/v1/lab/materials/{lipo}/transitions"
    hold = {"to_state": "ON_HOLD", "reason": "seal checked twice"}
    first = api.client.post(path, json=hold, headers=tech | {"Idempotency-Key": "hold-1"})
    assert first.status_code == 200, first.text
    # The same retry replays; without the key the same move is refused by the state machine.
    again = api.client.post(path, json=hold, headers=tech | {"Idempotency-Key": "hold-1"})
    assert again.status_code == 200 and again.headers["Idempotent-Replayed"] == "true"
    assert api.client.post(path, json=hold, headers=tech).status_code == 409
    place = api.client.post(
        "/api/v1/lab/storage-locations",
        json={"site": "A", "freezer": "F9", "rack": "R1", "box": "B1", "position": "A1"},
        headers=tech | {"Idempotency-Key": "loc-1"},
    )
    replayed = api.client.post(
        "/api/v1/lab/storage-locations",
        json={"site": "A", "freezer": "F9", "rack": "R1", "box": "B1", "position": "A1"},
        headers=tech | {"Idempotency-Key": "loc-1"},
    )
    assert place.status_code == 201, place.text
    assert replayed.json() == place.json() and replayed.headers["Idempotent-Replayed"] == "true"


def test_keys_past_their_retention_are_forgotten(api: Api, engine: Engine, world: World) -> None:
    from lims.idempotency.service import forget_old_keys

    Lab.start(engine, world).lot()
    # Sessions 1 and 2 of one course, four weeks apart (the course rule's interval).
    for key, session, days in (("old", 1, 3), ("new", 2, 31)):
        answer = api.client.post(
            "/api/v1/clinic/orders",
            json=_order_body(world, days=days) | {"session_number": session},
            headers=api.as_("clinic") | {"Idempotency-Key": key},
        )
        assert answer.status_code == 201, answer.text
    with write_session(engine) as s:
        old = s.exec(select(IdempotencyRecord).where(IdempotencyRecord.key == "old")).one()
        old.created_at = utcnow() - timedelta(days=31)
        s.add(old)
    with write_session(engine) as s:
        assert forget_old_keys(s, older_than=utcnow() - timedelta(days=30)) == 1
    with read_session(engine) as s:
        assert [r.key for r in s.exec(select(IdempotencyRecord)).all()] == ["new"]
