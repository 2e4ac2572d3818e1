"""The course rule as placing an order applies it (lims.orders.course called from
lims.orders.service.place): through the service, the HTTP API and the clinic portal,
with its refusals and the warning an out-of-interval order carries."""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import Engine
from sqlmodel import select

from lims.db import read_session, utcnow, write_session
from lims.errors import RuleViolation
from lims.orders.course import course_warning
from lims.orders.models import DoseOrder
from lims.orders.service import cancel_order, order_for
from tests.api.conftest import Api
from tests.builders import Lab
from tests.conftest import World
from tests.doses.helpers import order
from tests.web.test_portal import _csrf, _signed_in


def _count(engine: Engine) -> int:
    with read_session(engine) as s:
        return len(s.exec(select(DoseOrder)).all())


def test_the_service_orders_each_session_once_unless_cancelled(
    engine: Engine, world: World
) -> None:
    lab = Lab.start(engine, world)
    first = order(lab, session_number=1)
    with pytest.raises(RuleViolation, match=r"session 1 of .* course is already ordered") as e:
        order(lab, session_number=1)
    assert e.value.field == "session_number" and e.value.http_status == 409
    assert _count(engine) == 1  # nothing half-written
    # Another patient's session 1 is their own course.
    order(lab, session_number=1, coi=world.donor_coi)
    with write_session(engine) as s:
        desk = lab.user(s, world.clinic_user_id)
        cancel_order(s, order=order_for(s, actor=desk, number=first), actor=desk, reason="moved")
    again = order(lab, session_number=1)  # the cancelled order no longer holds session 1
    assert again != first


def test_the_service_refuses_out_of_interval_without_the_prescribers_reason(
    engine: Engine, world: World
) -> None:
    lab = Lab.start(engine, world)
    order(lab, session_number=1, planned_use_at=utcnow() + timedelta(days=3))
    with pytest.raises(
        RuleViolation,
        match=r"session 2 is planned 10 days after session 1; aape sessions are every 3-5 weeks",
    ) as e:
        order(lab, session_number=2, planned_use_at=utcnow() + timedelta(days=13))
    assert e.value.field == "interval_reason"
    with pytest.raises(RuleViolation, match="planned 70 days after"):  # too late as well
        order(lab, session_number=2, planned_use_at=utcnow() + timedelta(days=73))
    assert _count(engine) == 1
    # Blank is no reason.
    with pytest.raises(RuleViolation, match="give the prescriber's reason"):
        order(
            lab,
            session_number=2,
            planned_use_at=utcnow() + timedelta(days=13),
            interval_reason="   ",
        )
    number = order(
        lab,
        session_number=2,
        planned_use_at=utcnow() + timedelta(days=13),
        interval_reason="patient travels abroad; Dr. F approves",
    )
    with read_session(engine) as s:
        placed = order_for(s, actor=lab.user(s, world.tech_id), number=number)
        assert placed.interval_reason == "patient travels abroad; Dr. F approves"
        warning = course_warning(s, order=placed)
        assert warning is not None
        assert warning.startswith("session 2 is planned 10 days after session 1")
        assert warning.endswith("Prescriber's reason: patient travels abroad; Dr. F approves")
    # Session 3 is checked against session 2, the neighbour before it (4 weeks: in interval).
    third = order(lab, session_number=3, planned_use_at=utcnow() + timedelta(days=41))
    with read_session(engine) as s:
        tech = lab.user(s, world.tech_id)
        assert course_warning(s, order=order_for(s, actor=tech, number=third)) is None
    # A session between two ordered ones is checked against both.
    order(lab, session_number=4, planned_use_at=utcnow() + timedelta(days=69))
    order(lab, session_number=6, planned_use_at=utcnow() + timedelta(days=125))
    with pytest.raises(
        RuleViolation, match=r"session 5 is planned 2 days after session 4.*; session 6 is"
    ):
        order(lab, session_number=5, planned_use_at=utcnow() + timedelta(days=71))


def _body(world: World, session: int, days: int, **more: Any) -> dict[str, Any]:
    return {
        "coi_id": world.patient_coi,
        "dose": "1 vial",
        "session_number": session,
        "sessions_total": 6,
        "planned_use_at": (utcnow() + timedelta(days=days)).isoformat(),
        "ship_to": "Ginza",
        "prescriber": "Dr. F",
        "consent_ref": "C-1",
        **more,
    }


def test_the_api_refuses_with_the_rules_words_and_shows_the_warning(
    engine: Engine, world: World, api: Api
) -> None:
    c, ginza = api.client, api.as_("clinic")
    first = c.post("/api/v1/clinic/orders", json=_body(world, 1, 3), headers=ginza)
    assert first.status_code == 201, first.text
    assert first.json()["interval_warning"] is None
    twice = c.post("/api/v1/clinic/orders", json=_body(world, 1, 31), headers=ginza)
    assert twice.status_code == 409 and twice.headers["content-type"] == "application/problem+json"
    assert "is already ordered" in twice.json()["detail"]
    assert twice.json()["field"] == "session_number"
    early = c.post("/api/v1/clinic/orders", json=_body(world, 2, 10), headers=ginza)
    assert early.status_code == 409
    assert early.json()["field"] == "interval_reason"
    assert "session 2 is planned 7 days after session 1" in early.json()["detail"]
    assert "give the prescriber's reason (interval_reason)" in early.json()["detail"]
    assert _count(engine) == 1
    reason = "wedding abroad; Dr. F moves the session"
    ok = c.post(
        "/api/v1/clinic/orders", json=_body(world, 2, 10, interval_reason=reason), headers=ginza
    )
    assert ok.status_code == 201, ok.text
    got = ok.json()
    assert got["interval_reason"] == reason
    assert got["interval_warning"].startswith("session 2 is planned 7 days after session 1")
    assert reason in got["interval_warning"]
    again = c.get(f"/api/v1/clinic/orders/{got['number']}", headers=ginza).json()
    assert again["interval_warning"] == got["interval_warning"]


def test_the_portal_asks_for_the_reason_and_shows_the_warning(
    engine: Engine, world: World, api: Api
) -> None:
    client = _signed_in(api, "ginza-desk")
    zone = ZoneInfo("Asia/Tokyo")

    def send(session: int, days: int, reason: str = "") -> Any:
        form = client.get("/portal/orders/new?coi_id=" + world.patient_coi)
        assert 'id="interval_reason"' in form.text
        local = (utcnow() + timedelta(days=days)).astimezone(zone)
        return client.post(
            "/portal/orders",
            data={
                "csrf": _csrf(form.text),
                "coi_id": world.patient_coi,
                "dose": "1 vial",
                "session_number": str(session),
                "sessions_total": "6",
                "planned_use_at": local.strftime("%Y-%m-%dT%H:%M"),
                "ship_to": "Ginza",
                "prescriber": "Dr. F",
                "consent_ref": "C-1",
                "interval_reason": reason,
            },
            follow_redirects=False,
        )

    assert send(1, 3).status_code == 303
    twice = send(1, 31)
    assert twice.status_code == 422
    summary = twice.text.split('id="error-summary"')[1].split("</div>")[0]
    assert 'href="#session_number"' in summary
    assert "This session of the patient&#39;s course is already ordered (ORD-000001)" in summary
    early = send(2, 10)
    assert early.status_code == 422
    summary = early.text.split('id="error-summary"')[1].split("</div>")[0]
    assert 'href="#interval_reason"' in summary
    assert "Session 2 is planned 7 days after session 1" in summary
    assert "To order it anyway, give the prescriber&#39;s reason" in summary
    assert _count(engine) == 1
    placed = send(2, 10, "wedding abroad")
    assert placed.status_code == 303, placed.text
    shown = client.get(placed.headers["location"])
    assert 'id="interval-warning"' in shown.text
    assert "Prescriber&#39;s reason: wedding abroad" in shown.text
    # In Japanese, the refusal's instruction is translated.
    client.post("/language", data={"language": "ja", "next": "/portal"})
    japanese = send(3, 12)
    assert japanese.status_code == 422
    assert "処方医の理由" in japanese.text
