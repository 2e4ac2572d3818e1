"""Every unsafe /api/v1 operation that takes an Idempotency-Key, retried with the same key
(SQLite and PostgreSQL): the retry gets the first answer back (status and body, marked
Idempotent-Replayed) and writes nothing: every table has the rows it had before it.

A lab's day through the API, each write sent twice; the setup a write needs (a released
lot, a dispatched dose) is made through the services. The last assertion is that the day
covered every keyed operation of the document, so a new one cannot be left out.
"""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, func, select
from sqlmodel import SQLModel

from lims.db import read_session, utcnow, write_session
from lims.materials.service import get_material
from lims.orders.service import confirm_receipt, order_for
from lims.qc.service import specification_of
from lims.settings import get_notification_settings
from lims.signatures.models import Meaning
from lims.signatures.service import sign
from tests.api.conftest import Api
from tests.api.test_contract import NOT_KEYED, _spec
from tests.builders import PASSING, PASSWORD, Lab
from tests.conftest import World
from tests.doses.helpers import allocate, dispatch, order


def _rows(engine: Engine) -> dict[str, int]:
    with read_session(engine) as s:
        return {
            name: s.execute(select(func.count()).select_from(table)).scalar_one()
            for name, table in SQLModel.metadata.tables.items()
        }


class Twice:
    """Send a write, then the same write with the same key; check the replay."""

    def __init__(self, api: Api, engine: Engine) -> None:
        self.api, self.engine = api, engine
        self.covered: set[tuple[str, str]] = set()

    def __call__(
        self, who: str, template: str, body: dict[str, Any] | None = None, **path: str
    ) -> Any:
        key = f"replay-{uuid.uuid4().hex}"
        url = "/api/v1" + template.format(**path)
        headers = self.api.as_(who) | {"Idempotency-Key": key}
        method = "DELETE" if template.startswith("DELETE ") else "POST"
        url = url.replace("DELETE ", "")
        first = self.api.client.request(method, url, json=body, headers=headers)
        assert first.status_code in (200, 201), f"{template}: {first.text}"
        before = _rows(self.engine)
        again = self.api.client.request(method, url, json=body, headers=headers)
        assert (again.status_code, again.json()) == (first.status_code, first.json()), template
        assert again.headers.get("idempotent-replayed") == "true", template
        changed = {t: (n, before[t]) for t, n in _rows(self.engine).items() if n != before[t]}
        assert changed == {}, f"{template}: the replay wrote {changed}"
        self.covered.add((method.lower(), "/api/v1" + template.replace("DELETE ", "")))
        return first.json()


@pytest.fixture
def private_webhooks(monkeypatch: pytest.MonkeyPatch) -> Any:
    # The notification settings are cached apart from the rest: an earlier test may have
    # read them without the flag.
    monkeypatch.setenv("LIMS_WEBHOOK_ALLOW_PRIVATE_TARGETS", "true")
    get_notification_settings.cache_clear()
    yield
    get_notification_settings.cache_clear()


def test_every_keyed_write_retried_with_its_key_is_answered_once(
    api: Api, engine: Engine, world: World, private_webhooks: Any
) -> None:
    twice = Twice(api, engine)
    lab = Lab.start(engine, world)
    for user_id in (world.tech_id, world.tech2_id, world.qa_id):
        lab.ensure_password(user_id)
    soon = (utcnow() + timedelta(days=200)).isoformat()
    # The administrator's registers.
    twice("admin", "/admin/clinics", {"code": "RPLY", "name": "Replay Clinic"})
    twice(
        "admin",
        "/admin/users",
        {
            "username": "rply-desk",
            "printed_name": "Replay desk",
            "role": "clinic",
            "clinic_code": "RPLY",
            "password": "a replay desk passphrase",
        },
    )
    twice(
        "admin",
        "/admin/instruments",
        {
            "asset_tag": "RPLY-1",
            "instrument_type": "centrifuge",
            "name": "C",
            "calibration_due": soon,
        },
    )
    twice(
        "admin",
        "/admin/reagent-lots",
        {
            "reagent_type": "collagenase",
            "lot_number": "RPLY-L1",
            "supplier": "S",
            "expires_at": soon,
        },
    )
    # The clinic registers a patient and sends fat; the lab receives it and makes nanofat.
    twice("clinic", "/clinic/patients", {"identifier_1": "1990-01-01", "identifier_2": "RPLY-1"})
    harvest = twice(
        "clinic",
        "/clinic/harvests",
        {
            "kind": "lipoaspirate",
            "quantity": "100 mL",
            "collected_at": (utcnow() - timedelta(hours=2)).isoformat(),
            "coi_id": world.patient_coi,
            "courier": "ColdChain Couriers",
        },
    )
    twice("technician", "/lab/receipts", {"material_id": harvest["material_id"]})
    fat = lab.accepted_lipoaspirate("30 mL")
    step = twice(
        "technician",
        "/lab/steps",
        {
            "sop_code": "NANOFAT-PREP",
            "inputs": [{"material_id": fat, "quantity": "1 mL"}],
            "outputs": [{"quantity": "1 mL"}],
            "parameters": {
                "emulsification_passes": 30,
                "filter_mesh": "500 um",
                "needle_gauge": 27,
            },
        },
    )
    read_back = api.client.get(f"/api/v1/lab/steps/{step['id']}", headers=api.as_("auditor"))
    assert read_back.status_code == 403  # the lab's record: not an auditor's API
    read_back = api.client.get(f"/api/v1/lab/steps/{step['id']}", headers=api.as_("technician"))
    assert read_back.status_code == 200 and read_back.json() == step
    deviation = twice(
        "technician", "/lab/deviations", {"material_id": fat, "description": "label smudged"}
    )
    twice("qa", "/lab/deviations/{n}/close", {"resolution": "relabelled"}, n=deviation["number"])
    # A lot through QC and release, stored in a box.
    lot = lab.filled_lot()
    twice("technician", "/lab/materials/{m}/transitions", {"to_state": "QC_TESTING"}, m=lot)
    with read_session(engine) as s:
        tests = [
            t.code for t in specification_of(s, material=get_material(s, lot)).tests if t.required
        ]
    result = twice(
        "technician2",
        "/lab/qc-results",
        {"material_id": lot, "test_code": tests[0], "value": PASSING[tests[0]]},
    )
    twice(
        "technician2",
        "/lab/qc-results/{r}/corrections",
        {"value": PASSING[tests[0]], "reason": "transcription checked"},
        r=str(result["id"]),
    )
    for code in tests[1:]:
        lab.result(lot, code, PASSING[code])
    twice("qa", "/qa/releases", {"material_id": lot, "password": PASSWORD})
    box = twice(
        "technician",
        "/lab/storage-locations",
        {
            "site": "Lab 1",
            "freezer": "ULT-R",
            "rack": "R1",
            "box": "B1",
            "position": "A1",
            "temperature": "-80 degC",
        },
    )
    twice("technician", "/lab/materials/{m}/moves", {"location_id": box["id"]}, m=lot)
    # A dose from order to the bedside.
    placed = twice(
        "clinic",
        "/clinic/orders",
        {
            "coi_id": world.patient_coi,
            "dose": "1 vial",
            "session_number": 1,
            "sessions_total": 6,
            "planned_use_at": (utcnow() + timedelta(days=3)).isoformat(),
            "ship_to": "Ginza Hair Clinic",
            "prescriber": "Dr. H. Fukuoka",
            "consent_ref": "C-RPLY",
        },
    )
    number = placed["number"]
    dose = twice("technician", "/lab/orders/{n}/allocation", {"lot_id": lot}, n=number)[
        "dose_material"
    ]["material_id"]
    lab.move(dose, "LABELED")
    twice(
        "technician",
        "/lab/signatures",
        {
            "password": PASSWORD,
            "meaning": "performed",
            "record_type": "material",
            "record_id": dose,
        },
    )
    with write_session(engine) as s:
        sign(
            s,
            user=lab.user(s, world.tech2_id),
            password=PASSWORD,
            meaning=Meaning.VERIFIED,
            record_type="material",
            record_id=dose,
        )
    twice(
        "technician",
        "/lab/orders/{n}/dispatch",
        {"scanned_label": dose, "shipper": "CC", "temperature_logger": "TL-1", "transit": "18 h"},
        n=number,
    )
    receipt = {"received_at": utcnow().isoformat(), "temperature": "4 degC", "received_by": "K"}
    twice("clinic", "/clinic/orders/{n}/receipt", receipt, n=number)
    twice(
        "clinic",
        "/clinic/doses/{m}/reconstitution",
        {"diluent_lot": "W1", "volume": "4 mL"},
        m=dose,
    )
    twice(
        "clinic",
        "/clinic/doses/{m}/administration",
        {
            "scanned_label": dose,
            "scanned_patient": world.patient_coi,
            "administered_by": "Dr. F",
            "volume_given": "4 mL",
        },
        m=dose,
    )
    # A cancelled order's dose back to its lot.
    second = order(lab, session_number=2)
    second_dose = allocate(lab, second)
    twice("clinic", "/clinic/orders/{n}/cancel", {"reason": "postponed"}, n=second)
    twice(
        "qa",
        "/qa/doses/{m}/disposition",
        {
            "decision": "return",
            "reason": "sealed",
            "password": PASSWORD,
            "seal_intact": True,
            "never_left_lab": True,
            "stored_in_range": True,
        },
        m=second_dose,
    )
    # A warm arrival released by QA and returned; another dose discarded.
    for session_number, temperature in ((3, "25 degC"), (4, "4 degC")):
        n = order(lab, session_number=session_number)
        d = allocate(lab, n)
        dispatch(lab, n, d)
        with write_session(engine) as s:
            desk = lab.user(s, world.clinic_user_id)
            confirm_receipt(
                s,
                order=order_for(s, actor=desk, number=n),
                actor=desk,
                received_at=utcnow(),
                temperature=temperature,
                received_by="K",
            )
        if session_number == 3:
            twice(
                "qa",
                "/qa/doses/{m}/quarantine-decision",
                {"release": True, "reason": "stability data", "password": PASSWORD},
                m=d,
            )
            twice("clinic", "/clinic/doses/{m}/return", {"reason": "not needed"}, m=d)
        else:
            twice("clinic", "/clinic/doses/{m}/discard", {"reason": "dropped"}, m=d)
    twice(
        "qa",
        "/qa/donor-eligibility",
        {"coi_id": world.donor_coi, "eligible": True, "basis": "screening complete"},
    )
    # The clinic's notices.
    made = api.client.post(
        "/api/v1/clinic/webhooks",
        json={"url": "http://127.0.0.1:9/hook"},
        headers=api.as_("clinic"),
    )
    assert made.status_code == 201, made.text
    endpoint = made.json()
    twice("clinic", "/clinic/webhooks/{e}/enabled", {"enabled": False}, e=str(endpoint["id"]))
    twice("clinic", "/clinic/contacts", {"email": "desk@ginza.example"})
    # A recall of the lot, acknowledged and closed.
    recall = twice(
        "qa",
        "/qa/recalls",
        {"material_id": lot, "reason": "sterility retest", "password": PASSWORD},
    )
    twice("clinic", "/clinic/recalls/{r}/acknowledgement", {"note": "seen"}, r=recall["number"])
    twice("qa", "/qa/recalls/{r}/close", {"password": PASSWORD}, r=recall["number"])

    keyed = {
        (method, path)
        for path, operations in _spec()["paths"].items()
        for method, _ in operations.items()
        if method in {"post", "put", "patch", "delete"}
        and path.startswith("/api/v1/")
        and (method, path) not in NOT_KEYED
    }
    templated = {(m, _template(p)) for m, p in twice.covered}
    assert sorted(keyed - templated) == [] and len(keyed) >= 34


def _template(path: str) -> str:
    """/api/v1/lab/orders/{n}/dispatch -> the document's /api/v1/lab/orders/{number}/dispatch."""
    for path_template in _spec()["paths"]:
        parts, mine = path_template.split("/"), path.split("/")
        if len(parts) == len(mine) and all(
            a == b or (a.startswith("{") and b.startswith("{"))
            for a, b in zip(parts, mine, strict=True)
        ):
            return path_template
    return path
