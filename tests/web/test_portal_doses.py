"""The clinic's dose forms on the portal's order page over HTTP (SQLite and PostgreSQL):
receipt with the logger file uploaded, reconstitution with its in-use clock, the bedside
scans (a wrong patient refused), return and discard; each refusal in the GOV.UK error
pattern with nothing written. The browser walk is in test_dose_walks.py."""

from __future__ import annotations

import re
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import Engine

from lims.db import read_session
from lims.materials.service import get_material
from lims.orders.service import order_for
from tests.api.conftest import Api
from tests.builders import Lab
from tests.conftest import World
from tests.doses.helpers import allocate, dispatch, order
from tests.web.test_portal import _csrf, _signed_in

LOGGER_OK = "time,temperature\n2026-12-01T10:00:00+09:00,-78.5\n2026-12-01T11:00:00+09:00,-76\n"
LOGGER_WARM = LOGGER_OK + "2026-12-01T12:00:00+09:00,25.5\n"


def _shipped(lab: Lab, session_number: int = 1) -> tuple[str, str]:
    number = order(lab, dose="1 vial", session_number=session_number)
    dose = allocate(lab, number)
    dispatch(lab, number, dose)
    return number, dose


def _state(engine: Engine, dose: str) -> str:
    with read_session(engine) as s:
        return get_material(s, dose).state


def _summary(html: str) -> str:
    return html.split('id="error-summary"')[1].split("</div>")[0]


def _post(client: TestClient, number: str, action: str, data: dict[str, str], **kw: Any) -> Any:
    page = client.get(f"/portal/orders/{number}")
    return client.post(
        f"/portal/orders/{number}/{action}",
        data={"csrf": _csrf(page.text), **data},
        follow_redirects=False,
        **kw,
    )


def _logger(text: str | bytes, name: str = "logger.csv") -> dict[str, Any]:
    return {"files": {"logger": (name, text if isinstance(text, bytes) else text.encode())}}


def test_receipt_reconstitution_and_the_bedside_on_the_portal(
    engine: Engine, world: World, api: Api
) -> None:
    lab = Lab.start(engine, world)
    lab.lot()
    number, dose = _shipped(lab)
    client = _signed_in(api, "ginza-desk")
    shown = client.get(f"/portal/orders/{number}").text
    assert 'enctype="multipart/form-data"' in shown and 'type="file"' in shown
    # Receipt: every problem at once, by its field; nothing written.
    refused = _post(
        client, number, "receipt", {"temperature": "", "received_by": ""}, **_logger(b"\xff\xfe")
    )
    assert refused.status_code == 422
    summary = _summary(refused.text)
    for field in ("temperature", "received_by", "logger"):
        assert f'href="#{field}"' in summary, field
    assert "The logger file must be a CSV text file (UTF-8)" in summary
    bad_line = _post(
        client,
        number,
        "receipt",
        {"temperature": "-75 degC", "received_by": "Nurse K. Ito"},
        **_logger("time,temperature\nyesterday,4\n"),
    )
    assert bad_line.status_code == 422
    assert "Logger line 2" in _summary(bad_line.text) and 'href="#logger"' in bad_line.text
    assert 'value="Nurse K. Ito"' in bad_line.text  # kept
    assert _state(engine, dose) == "IN_TRANSIT"
    done = _post(
        client,
        number,
        "receipt",
        {"temperature": "-75 degC", "received_by": "Nurse K. Ito"},
        **_logger(LOGGER_OK),
    )
    assert done.status_code == 303, done.text
    page = client.get(f"/portal/orders/{number}").text
    assert 'data-state="RECEIVED_AT_CLINIC"' in page
    assert "2 readings, -78.5 to -76 degC" in page
    # Reconstitution: the diluent lot is required; then the in-use clock is shown.
    refused = _post(client, number, "reconstitution", {"diluent_lot": "", "volume": "4 kg"})
    assert refused.status_code == 422
    summary = _summary(refused.text)
    assert 'href="#diluent_lot"' in summary and "Enter the diluent&#39;s lot number" in summary
    assert _state(engine, dose) == "RECEIVED_AT_CLINIC"
    wrong_unit = _post(client, number, "reconstitution", {"diluent_lot": "WFI-7", "volume": "4 kg"})
    assert wrong_unit.status_code == 422 and 'href="#volume"' in _summary(wrong_unit.text)
    done = _post(client, number, "reconstitution", {"diluent_lot": "WFI-7", "volume": "4 mL"})
    assert done.status_code == 303, done.text
    page = client.get(f"/portal/orders/{number}").text
    assert 'id="in-use-left"' in page and re.search(r"\d+ h \d+ min left", page)
    assert "diluent lot WFI-7" in page
    # The bedside: the wrong patient's wristband is refused in clear words.
    scans = {"scanned_label": dose, "administered_by": "Dr. H. Fukuoka", "volume_given": "3.5 mL"}
    wrong = _post(client, number, "administration", {**scans, "scanned_patient": world.donor_coi})
    assert wrong.status_code == 422
    summary = _summary(wrong.text)
    assert 'href="#scanned_patient"' in summary
    assert "Do not administer: this is not the dose&#39;s patient" in summary
    assert f"is for {world.patient_coi}; the patient scanned is {world.donor_coi}" in summary
    assert _state(engine, dose) == "RECONSTITUTED"
    other_label = _post(
        client,
        number,
        "administration",
        {**scans, "scanned_label": "not-a-dose", "scanned_patient": world.patient_coi},
    )
    assert other_label.status_code == 422 and 'href="#scanned_label"' in other_label.text
    given = _post(client, number, "administration", {**scans, "scanned_patient": world.patient_coi})
    assert given.status_code == 303, given.text
    page = client.get(f"/portal/orders/{number}").text
    assert 'data-state="ADMINISTERED"' in page
    assert "3.5 mL given, 0.5 mL discarded" in page
    assert 'action="/portal/orders/' + number + '/administration"' not in page


def test_an_excursion_quarantines_and_an_unused_dose_is_returned_or_discarded(
    engine: Engine, world: World, api: Api
) -> None:
    lab = Lab.start(engine, world)
    lab.lot()
    warm, warm_dose = _shipped(lab, 1)
    spare, spare_dose = _shipped(lab, 2)
    client = _signed_in(api, "ginza-desk")
    done = _post(
        client,
        warm,
        "receipt",
        {"temperature": "-75 degC", "received_by": "Nurse K. Ito"},
        **_logger(LOGGER_WARM),
    )
    assert done.status_code == 303, done.text
    page = client.get(f"/portal/orders/{warm}").text
    assert 'id="quarantine"' in page and "25.5 degC" in page
    assert "/reconstitution" not in page and "/administration" not in page
    client.post("/language", data={"language": "ja", "next": f"/portal/orders/{warm}"})
    japanese = client.get(f"/portal/orders/{warm}").text
    assert "温度逸脱のため隔離中です" in japanese and "温度逸脱" in japanese
    client.post("/language", data={"language": "en", "next": "/portal"})
    # The desk cannot end a quarantined dose: QA decides.
    refused = _post(client, warm, "end", {"action": "discard", "end_reason": "warm"})
    assert refused.status_code == 422 and "waits for QA" in _summary(refused.text)
    assert _state(engine, warm_dose) == "CLINIC_QUARANTINE"
    # Return needs a reason; then the dose is RETURNED and its timeline says so.
    done = _post(
        client, spare, "receipt", {"temperature": "-75 degC", "received_by": "Nurse K. Ito"}
    )
    assert done.status_code == 303, done.text
    refused = _post(client, spare, "end", {"action": "return", "end_reason": "  "})
    assert refused.status_code == 422 and 'href="#end_reason"' in _summary(refused.text)
    assert _state(engine, spare_dose) == "RECEIVED_AT_CLINIC"
    returned = _post(client, spare, "end", {"action": "return", "end_reason": "session moved"})
    assert returned.status_code == 303
    assert _state(engine, spare_dose) == "RETURNED"
    page = client.get(f"/portal/orders/{spare}").text
    assert "session moved" in page
    # Another clinic's desk sees none of it.
    osaka = _signed_in(api, "osaka-desk")
    assert osaka.get(f"/portal/orders/{spare}").status_code == 404
    with read_session(engine) as s:
        assert order_for(s, actor=lab.user(s, world.tech_id), number=spare).status == "RECEIVED"
