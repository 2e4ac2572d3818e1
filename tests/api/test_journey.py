"""A clinic's whole journey over HTTP, idempotent replays, the gate, and audit exports."""

from datetime import timedelta
from typing import Any

from sqlalchemy import Engine

from lims.custody.verify import verify_events
from lims.db import utcnow
from tests.api.conftest import Api
from tests.builders import PASSWORD, Lab
from tests.conftest import World


def _post(
    api: Api, who: str, path: str, body: dict[str, Any], key: str | None = None, expect: int = 200
) -> dict[str, Any]:
    headers = api.as_(who) | ({"Idempotency-Key": key} if key else {})
    r = api.client.post(f"/api/v1{path}", json=body, headers=headers)
    assert r.status_code == expect, r.text
    return dict(r.json())


def _order(
    api: Api,
    world: World,
    coi: str,
    who: str = "clinic",
    key: str | None = None,
    dose: str = "4 mL",
) -> dict[str, Any]:
    return _post(
        api,
        who,
        "/clinic/orders",
        {
            "coi_id": coi,
            "product": "aape",
            "dose": dose,
            "session_number": 1,
            "sessions_total": 6,
            "planned_use_at": (utcnow() + timedelta(days=3)).isoformat(),
            "ship_to": "Ginza Hair Clinic, Tokyo",
            "prescriber": "Dr. H. Fukuoka",
            "consent_ref": "CONSENT-42",
        },
        key=key,
        expect=201,
    )


def test_order_to_receipt_over_http(api: Api, engine: Engine, world: World) -> None:
    lot = Lab.start(engine, world).lot()
    order = _order(api, world, world.patient_coi, key="order-1")
    again = api.client.post(
        "/api/v1/clinic/orders",
        headers=api.as_("clinic") | {"Idempotency-Key": "order-1"},
        json={**_order_payload(world)},
    )
    assert again.status_code == 409  # same key, different body (planned time differs)
    number = order["number"]
    allocated = _post(api, "technician", f"/lab/orders/{number}/allocation", {})
    dose = allocated["dose_material"]["material_id"]
    assert allocated["status"] == "ALLOCATED"
    # Which identity is which: an autologous dose's recipient, no donor.
    assert allocated["recipient_coi"] == world.patient_coi == allocated["patient_coi"]
    assert allocated["donor_coi"] is None
    assert allocated["dose_material"]["recipient_coi"] == world.patient_coi
    assert allocated["label"]["statement"] == "FOR AUTOLOGOUS USE ONLY"
    assert allocated["label"]["patient_coi"] == world.patient_coi
    _post(api, "technician", f"/lab/materials/{dose}/transitions", {"to_state": "LABELED"})
    refused = api.client.post(
        f"/api/v1/lab/orders/{number}/dispatch",
        headers=api.as_("technician"),
        json={
            "scanned_label": dose,
            "shipper": "ColdChain",
            "temperature_logger": "TL-1",
            "transit": "18 h",
        },
    )
    assert refused.status_code == 409
    assert refused.json()["failures"] == [
        "signatures: no packer signature (meaning 'performed')",
        "signatures: no second verifier (meaning 'verified') other than the packer",
    ]
    wrong = api.client.post(
        "/api/v1/lab/signatures",
        headers=api.as_("technician"),
        json={
            "password": "not mine",
            "meaning": "performed",
            "record_type": "material",
            "record_id": dose,
        },
    )
    assert wrong.status_code == 401
    for who, meaning in (("technician", "performed"), ("technician2", "verified")):
        _post(
            api,
            who,
            "/lab/signatures",
            {
                "password": PASSWORD,
                "meaning": meaning,
                "record_type": "material",
                "record_id": dose,
            },
            expect=201,
        )
    shipped = _post(
        api,
        "technician",
        f"/lab/orders/{number}/dispatch",
        {
            "scanned_label": dose,
            "shipper": "ColdChain",
            "temperature_logger": "TL-1",
            "transit": {"value": "18", "unit": "h"},
        },
        key="dispatch-1",
    )
    assert shipped["status"] == "DISPATCHED"
    replay = api.client.post(
        f"/api/v1/lab/orders/{number}/dispatch",
        headers=api.as_("technician") | {"Idempotency-Key": "dispatch-1"},
        json={
            "scanned_label": dose,
            "shipper": "ColdChain",
            "temperature_logger": "TL-1",
            "transit": {"value": "18", "unit": "h"},
        },
    )
    assert replay.status_code == 200 and replay.headers["idempotent-replayed"] == "true"
    assert replay.json() == shipped
    received = _post(
        api,
        "clinic",
        f"/clinic/orders/{number}/receipt",
        {
            "received_at": utcnow().isoformat(),
            "temperature": "4.2 degC",
            "received_by": "Nurse K. Ito",
        },
    )
    assert received["status"] == "RECEIVED"
    assert received["dose_material"]["state"] == "RECEIVED_AT_CLINIC"
    assert received["dose_material"]["custodian"] == "clinic:GINZA"
    lot_now = api.client.get(f"/api/v1/lab/materials/{lot}", headers=api.as_("qa")).json()
    assert lot_now["remaining"] == {"value": "14", "unit": "vial"}

    # The auditor sees the lineage, the custody trail, the signatures, and a sound chain.
    audit = api.as_("auditor")
    lineage = api.client.get(f"/api/v1/audit/materials/{dose}/lineage", headers=audit).json()
    assert [n["kind"] for n in lineage["ancestors"]][:2] == ["aape_lot", "cm_batch"]
    trail = api.client.get(
        f"/api/v1/audit/materials/{dose}/custody?limit=200", headers=audit
    ).json()["items"]
    assert trail[-1]["action"] in ("material.state_changed", "order.status_changed")
    assert any(e["to"] == "clinic:GINZA" for e in trail)
    sigs = api.client.get(f"/api/v1/audit/materials/{dose}/signatures", headers=audit).json()[
        "items"
    ]
    assert {s["meaning"] for s in sigs} == {"performed", "verified"}
    assert all(s["valid"] for s in sigs)
    label = api.client.post(
        f"/api/v1/lab/materials/{dose}/label.pdf?size=bag", headers=api.as_("technician")
    )
    assert label.status_code == 200 and label.content.startswith(b"%PDF")
    report = api.client.get(f"/api/v1/audit/materials/{dose}/custody-report.pdf", headers=audit)
    assert report.status_code == 200 and len(report.headers["x-records-sha256"]) == 64
    certificate = api.client.get(f"/api/v1/audit/materials/{lot}/coa.pdf", headers=audit)
    assert certificate.status_code == 200 and certificate.content.startswith(b"%PDF")
    assert (
        api.client.get(
            f"/api/v1/audit/materials/{lot}/custody-report.pdf", headers=audit
        ).status_code
        == 409
    )  # a lot is not a dose
    verdict = api.client.get("/api/v1/audit/verify", headers=audit).json()
    assert verdict["ok"] and verdict["events"] > 50
    export = api.client.get("/api/v1/audit/exports/custody.jsonl", headers=audit)
    import json

    events = [json.loads(line) for line in export.text.splitlines()]
    assert verify_events(events).ok and len(events) == verdict["events"]
    csv_text = api.client.get("/api/v1/audit/exports/custody.csv", headers=audit).text
    assert csv_text.splitlines()[0].startswith("seq,occurred_at,actor")
    assert len(csv_text.splitlines()) == verdict["events"] + 1


def _order_payload(world: World) -> dict[str, Any]:
    return {
        "coi_id": world.patient_coi,
        "product": "aape",
        "dose": "4 mL",
        "session_number": 1,
        "sessions_total": 6,
        "planned_use_at": (utcnow() + timedelta(days=4)).isoformat(),
        "ship_to": "Ginza Hair Clinic, Tokyo",
        "prescriber": "Dr. H. Fukuoka",
        "consent_ref": "CONSENT-42",
    }


def test_idempotent_order_creates_one_order(api: Api, world: World) -> None:
    body = _order_payload(world)
    first = api.client.post(
        "/api/v1/clinic/orders", json=body, headers=api.as_("clinic") | {"Idempotency-Key": "k-77"}
    )
    second = api.client.post(
        "/api/v1/clinic/orders", json=body, headers=api.as_("clinic") | {"Idempotency-Key": "k-77"}
    )
    assert first.status_code == second.status_code == 201
    assert first.json() == second.json()
    listed = api.client.get("/api/v1/clinic/orders", headers=api.as_("clinic")).json()
    assert len(listed["items"]) == 1
    # Keys are per user: the same key from another clinic is a different request.
    other = api.client.post(
        "/api/v1/clinic/orders",
        json={**body, "coi_id": world.other_patient_coi},
        headers=api.as_("other_clinic") | {"Idempotency-Key": "k-77"},
    )
    assert other.status_code == 201 and other.json()["number"] != first.json()["number"]


def test_dispatch_gate_refuses_another_patients_dose(
    api: Api, engine: Engine, world: World
) -> None:
    lab = Lab.start(engine, world)
    lab.lot()
    mine = _order(api, world, world.patient_coi)["number"]
    theirs_dose = None
    # The other patient (Osaka) has their own released lot and an allocated dose.
    from lims.db import write_session
    from lims.materials.service import get_material  # noqa: F401

    other_lab = Lab(engine=engine, world=world, t0=lab.t0)
    other_lot = _lot_for(other_lab, world.other_patient_coi)
    other_order = _order(api, world, world.other_patient_coi, who="other_clinic")["number"]
    theirs = _post(
        api, "technician", f"/lab/orders/{other_order}/allocation", {"lot_id": other_lot}
    )
    theirs_dose = theirs["dose_material"]["material_id"]
    dose = _post(api, "technician", f"/lab/orders/{mine}/allocation", {})["dose_material"][
        "material_id"
    ]
    _post(api, "technician", f"/lab/materials/{dose}/transitions", {"to_state": "LABELED"})
    for who, meaning in (("technician", "performed"), ("technician2", "verified")):
        _post(
            api,
            who,
            "/lab/signatures",
            {
                "password": PASSWORD,
                "meaning": meaning,
                "record_type": "material",
                "record_id": dose,
            },
            expect=201,
        )
    r = api.client.post(
        f"/api/v1/lab/orders/{mine}/dispatch",
        headers=api.as_("technician"),
        json={
            "scanned_label": theirs_dose,
            "shipper": "ColdChain",
            "temperature_logger": "TL-1",
            "transit": "18 h",
        },
    )
    assert r.status_code == 409
    (failure,) = r.json()["failures"]
    assert failure.startswith("label: scanned") and world.other_patient_coi in failure
    with write_session(engine):
        pass
    assert (
        api.client.get(f"/api/v1/clinic/orders/{mine}", headers=api.as_("clinic")).json()["status"]
        == "ALLOCATED"
    )


def _lot_for(lab: Lab, coi: str) -> str:
    """A released lot from ``coi``'s own tissue, built through the services."""
    return lab.lot(cm=lab.cm_batch("61 mL", culture=lab.culture(coi=coi)))
