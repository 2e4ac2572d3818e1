"""The clinic's end of custody and QA's dose decisions over HTTP, with their words."""

import base64
import hashlib
from typing import Any

from sqlalchemy import Engine
from sqlmodel import col, select

from lims.custody import ledger
from lims.custody.models import CustodyEvent
from lims.db import read_session, utcnow
from lims.steps.conservation import verify_conservation
from tests.api.conftest import Api
from tests.builders import PASSWORD, Lab
from tests.conftest import World
from tests.doses.helpers import allocate, dispatch, order

WARM_LOGGER = "time,temperature\n2026-12-01T10:00:00+09:00,-79\n2026-12-01T13:00:00+09:00,12.5\n"


def _post(api: Api, who: str, path: str, body: dict[str, Any], expect: int = 200) -> Any:
    r = api.client.post(f"/api/v1{path}", json=body, headers=api.as_(who))
    assert r.status_code == expect, r.text
    return r.json()


def _dispatched(engine: Engine, world: World) -> tuple[Lab, str, str]:
    """A released lot, an order for the world's patient, its dose allocated and dispatched."""
    lab = Lab.start(engine, world)
    lab.lot()
    number = order(lab)
    dose = allocate(lab, number)
    dispatch(lab, number, dose)
    return lab, number, dose


def test_receipt_quarantine_reconstitution_and_bedside_over_http(
    api: Api, engine: Engine, world: World
) -> None:
    lab, number, dose = _dispatched(engine, world)
    receipt = {
        "received_at": utcnow().isoformat(),
        "temperature": "-70 degC",
        "received_by": "Nurse K. Ito",
        "logger_csv": WARM_LOGGER,
    }
    received = _post(api, "clinic", f"/clinic/orders/{number}/receipt", receipt)
    assert received["dose_material"]["state"] == "CLINIC_QUARANTINE"
    path = f"/clinic/doses/{dose}"
    assert api.client.get(f"/api/v1{path}", headers=api.as_("other_clinic")).status_code == 404
    seen = api.client.get(f"/api/v1{path}", headers=api.as_("clinic")).json()
    assert seen["recipient_coi"] == world.patient_coi and seen["donor_coi"] is None
    assert "the logger read 12.5 degC" in seen["excursion"]
    refused = _post(
        api, "clinic", f"{path}/reconstitution", {"diluent_lot": "D1", "volume": "4 mL"}, 409
    )
    assert "not in quarantine" in refused["detail"]
    lab.ensure_password(world.qa_id)
    _post(
        api,
        "clinic",
        f"/qa/doses/{dose}/quarantine-decision",
        {"release": True, "reason": "x", "password": PASSWORD},
        403,
    )
    released = _post(
        api,
        "qa",
        f"/qa/doses/{dose}/quarantine-decision",
        {
            "release": True,
            "reason": "3 h at 12.5 degC; within stability data",
            "password": PASSWORD,
        },
    )
    assert released["dose"]["state"] == "RECEIVED_AT_CLINIC"
    made = _post(
        api, "clinic", f"{path}/reconstitution", {"diluent_lot": "NaCl-2611", "volume": "4 mL"}
    )
    assert (made["dose"]["state"], made["reconstitution_volume"]) == ("RECONSTITUTED", "4 mL")
    bedside = {
        "scanned_label": dose,
        "scanned_patient": world.other_patient_coi,
        "administered_by": "Dr. H. Fukuoka",
        "volume_given": "4 mL",
    }
    wrong = _post(api, "clinic", f"{path}/administration", bedside, 409)
    assert "wrong patient. Dose" in wrong["detail"] and world.patient_coi in wrong["detail"]
    given = _post(
        api,
        "clinic",
        f"{path}/administration",
        bedside | {"scanned_patient": world.patient_coi},
    )
    assert (given["dose"]["state"], given["volume_given"], given["remainder_discarded"]) == (
        "ADMINISTERED",
        "4 mL",
        "0 mL",
    )
    with read_session(engine) as s:
        assert verify_conservation(s).ok and ledger.verify_chain(s).ok


def test_the_logger_file_is_kept_byte_for_byte_and_downloaded(
    api: Api, engine: Engine, world: World
) -> None:
    _lab, number, dose = _dispatched(engine, world)
    receipt = {
        "received_at": utcnow().isoformat(),
        "temperature": "-70 degC",
        "received_by": "Nurse K. Ito",
    }
    # A bad line is refused with its number; nothing is received or kept.
    bad = receipt | {"logger_csv": WARM_LOGGER + "yesterday,4\n"}
    refused = _post(api, "clinic", f"/clinic/orders/{number}/receipt", bad, 422)
    assert "logger line 4" in refused["detail"] and refused["field"] == "logger_csv"
    assert (
        api.client.get(
            f"/api/v1/clinic/doses/{dose}/logger.csv", headers=api.as_("clinic")
        ).status_code
        == 404
    )
    _post(api, "clinic", f"/clinic/orders/{number}/receipt", receipt | {"logger_csv": WARM_LOGGER})
    digest = hashlib.sha256(WARM_LOGGER.encode()).digest()
    seen = api.client.get(f"/api/v1/clinic/doses/{dose}", headers=api.as_("clinic")).json()
    assert (seen["logger_readings"], seen["logger_min"], seen["logger_max"]) == (
        2,
        "-79 degC",
        "12.5 degC",
    )
    assert seen["logger_sha256"] == digest.hex()
    for who, path in (("clinic", "clinic"), ("qa", "qa")):
        got = api.client.get(f"/api/v1/{path}/doses/{dose}/logger.csv", headers=api.as_(who))
        assert got.status_code == 200 and got.text == WARM_LOGGER
        assert got.headers["repr-digest"] == f"sha-256=:{base64.b64encode(digest).decode()}:"
        assert got.headers["content-disposition"].startswith("attachment;")
    other = api.client.get(
        f"/api/v1/clinic/doses/{dose}/logger.csv", headers=api.as_("other_clinic")
    )
    assert other.status_code == 404
    assert (
        api.client.get(f"/api/v1/qa/doses/{dose}/logger.csv", headers=api.as_("clinic")).status_code
        == 403
    )
    # The receipt's custody event carries the file's hash: the file cannot be swapped later.
    with read_session(engine) as s:
        received = s.exec(
            select(CustodyEvent).where(
                col(CustodyEvent.entity_id) == number,
                col(CustodyEvent.action) == "order.status_changed",
            )
        ).all()[-1]
        assert received.new is not None and received.new["logger_sha256"] == digest.hex()
        assert ledger.verify_chain(s).ok


def test_a_receipt_without_a_logger_file_has_none_to_download(
    api: Api, engine: Engine, world: World
) -> None:
    _lab, number, dose = _dispatched(engine, world)
    receipt = {"received_at": utcnow().isoformat(), "temperature": "-70 degC", "received_by": "K"}
    _post(api, "clinic", f"/clinic/orders/{number}/receipt", receipt)
    seen = api.client.get(f"/api/v1/clinic/doses/{dose}", headers=api.as_("clinic")).json()
    assert (seen["logger_readings"], seen["logger_sha256"]) == (0, None)
    missing = api.client.get(f"/api/v1/clinic/doses/{dose}/logger.csv", headers=api.as_("clinic"))
    assert missing.status_code == 404
    assert "no temperature-logger file was uploaded" in missing.json()["detail"]


def test_cancel_and_qa_disposition_over_http(api: Api, engine: Engine, world: World) -> None:
    lab = Lab.start(engine, world)
    lab.lot()
    number = order(lab, dose="2 vials")
    dose = allocate(lab, number)
    _post(api, "clinic", f"/clinic/orders/{number}/cancel", {"reason": "rescheduled"})
    lab.ensure_password(world.qa_id)
    body = {"decision": "return", "reason": "kept at -80 degC", "password": PASSWORD}
    refused = _post(api, "qa", f"/qa/doses/{dose}/disposition", body, 409)
    assert "cannot go back to stock: the seal is not intact" in refused["detail"]
    checks = {"seal_intact": True, "never_left_lab": True, "stored_in_range": True}
    back = _post(api, "qa", f"/qa/doses/{dose}/disposition", body | checks)
    assert back["dose"]["state"] == "DEALLOCATED"
    assert back["dose"]["remaining"]["value"] == "0"
