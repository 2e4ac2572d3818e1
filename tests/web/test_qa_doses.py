"""QA's dose pages over HTTP (SQLite and PostgreSQL): a cancelled dose's signed disposition
and a quarantined dose's signed decision, reached from QA's home, refusals in the GOV.UK
error pattern with nothing written; conservation and the custody chain hold afterwards."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import Engine

from lims.custody import ledger
from lims.db import read_session, utcnow, write_session
from lims.materials.service import get_material
from lims.orders.service import cancel_order, confirm_receipt, order_for
from lims.steps.conservation import verify_conservation
from tests.api.conftest import Api
from tests.builders import PASSWORD, Lab
from tests.conftest import World
from tests.doses.helpers import allocate, dispatch, order
from tests.web.test_portal import _csrf, _signed_in

WARM = "time,temperature\n2026-12-01T10:00:00+09:00,-78\n2026-12-01T12:00:00+09:00,25.5\n"


def _state(engine: Engine, dose: str) -> str:
    with read_session(engine) as s:
        return get_material(s, dose).state


def _post(client: TestClient, dose: str, action: str, data: dict[str, str]) -> Any:
    shown = client.get(f"/qa/doses/{dose}")
    assert shown.status_code == 200, shown.text
    return client.post(
        f"/qa/doses/{dose}/{action}",
        data={"csrf": _csrf(shown.text), **data},
        follow_redirects=False,
    )


def test_qa_disposes_of_a_cancelled_dose_and_decides_a_quarantine(
    engine: Engine, world: World, api: Api
) -> None:
    lab = Lab.start(engine, world)
    lot = lab.lot()
    cancelled = order(lab, session_number=1)
    cancelled_dose = allocate(lab, cancelled)
    with write_session(engine) as s:
        desk = lab.user(s, world.clinic_user_id)
        cancel_order(
            s, order=order_for(s, actor=desk, number=cancelled), actor=desk, reason="moved"
        )
    warm = order(lab, session_number=2)
    warm_dose = allocate(lab, warm)
    dispatch(lab, warm, warm_dose)
    with write_session(engine) as s:
        desk = lab.user(s, world.clinic_user_id)
        confirm_receipt(
            s,
            order=order_for(s, actor=desk, number=warm),
            actor=desk,
            received_at=utcnow(),
            temperature="-75 degC",
            received_by="Nurse K. Ito",
            logger_csv=WARM,
        )
    lab.ensure_password(world.qa_id)
    qa = _signed_in(api, "sato")
    home = qa.get("/home").text
    assert f'href="/qa/doses/{cancelled_dose}"' in home
    assert f'href="/qa/doses/{warm_dose}"' in home
    # The disposition: every problem at once; nothing written.
    refused = _post(qa, cancelled_dose, "disposition", {})
    assert refused.status_code == 422
    summary = refused.text.split('id="error-summary"')[1].split("</div>")[0]
    for field in ("decision", "reason", "password"):
        assert f'href="#{field}"' in summary, field
    unchecked = _post(
        qa,
        cancelled_dose,
        "disposition",
        {"decision": "return", "reason": "unopened", "password": PASSWORD},
    )
    assert unchecked.status_code == 422
    assert "cannot go back to stock: the seal is not intact" in unchecked.text
    wrong_password = _post(
        qa,
        cancelled_dose,
        "disposition",
        {"decision": "destroy", "reason": "x", "password": "not it"},
    )
    assert wrong_password.status_code == 422 and 'href="#password"' in wrong_password.text
    assert _state(engine, cancelled_dose) == "CANCELLED"
    with read_session(engine) as s:
        before = get_material(s, lot).remaining_canonical
    returned = _post(
        qa,
        cancelled_dose,
        "disposition",
        {
            "decision": "return",
            "reason": "unopened, kept at -80 degC",
            "password": PASSWORD,
            "seal_intact": "yes",
            "never_left_lab": "yes",
            "stored_in_range": "yes",
        },
    )
    assert returned.status_code == 303, returned.text
    assert _state(engine, cancelled_dose) == "DEALLOCATED"
    with read_session(engine) as s:
        assert get_material(s, lot).remaining_canonical == before + 1
    # The quarantine after the excursion: released for use, signed.
    page = qa.get(f"/qa/doses/{warm_dose}").text
    assert 'id="quarantine-form"' in page and "25.5 degC" in page
    # The logger file as a chart (one red point: 25.5 degC) and as the file uploaded.
    chart = page.split('<svg class="logger-chart"')[1].split("</svg>")[0]
    assert 'aria-label="Temperature logger: 2 readings, 1 outside -90 degC to 8 degC"' in chart
    assert chart.count('class="out"') == 1 and "<polyline" in chart
    download = qa.get(f"/qa/doses/{warm_dose}/logger.csv")
    assert download.status_code == 200 and download.text == WARM
    assert download.headers["content-type"].startswith("text/csv")
    refused = _post(qa, warm_dose, "quarantine", {"decision": "release", "reason": ""})
    assert refused.status_code == 422 and 'href="#reason"' in refused.text
    assert _state(engine, warm_dose) == "CLINIC_QUARANTINE"
    released = _post(
        qa,
        warm_dose,
        "quarantine",
        {
            "decision": "release",
            "reason": "stability data cover 2 h at 25 degC",
            "password": PASSWORD,
        },
    )
    assert released.status_code == 303, released.text
    assert _state(engine, warm_dose) == "RECEIVED_AT_CLINIC"
    # A clinic desk cannot reach QA's pages.
    desk = _signed_in(api, "ginza-desk")
    assert desk.get(f"/qa/doses/{warm_dose}").status_code == 403
    assert desk.get(f"/qa/doses/{warm_dose}/logger.csv").status_code == 403
    # The desk sees the same chart on its order page and downloads the same bytes.
    assert 'id="logger-chart"' in desk.get(f"/portal/orders/{warm}").text
    assert desk.get(f"/portal/orders/{warm}/logger.csv").text == WARM
    none_kept = desk.get(f"/portal/orders/{cancelled}/logger.csv")
    assert none_kept.status_code == 404
    with read_session(engine) as s:
        assert verify_conservation(s).ok and ledger.verify_chain(s).ok
