"""The course rule (lims.orders.course), checked directly: it is not yet wired into
placing an order (see the TODO in lims.orders.service.place)."""

from datetime import timedelta

import pytest
from sqlalchemy import Engine

from lims.db import utcnow, write_session
from lims.errors import RuleViolation
from lims.orders.course import check_course
from lims.orders.schemas import OrderDetails, order_details
from lims.parties.service import get_patient
from tests.builders import Lab
from tests.conftest import World
from tests.doses.helpers import order


def _details(session_number: int, days: int, reason: str | None = None) -> OrderDetails:
    return order_details(
        dose="1 vial",
        session_number=session_number,
        sessions_total=6,
        planned_use_at=utcnow() + timedelta(days=days),
        ship_to="Ginza",
        prescriber="Dr. F",
        consent_ref="C-1",
        interval_reason=reason,
    )


def test_sessions_once_each_and_in_interval(engine: Engine, world: World) -> None:
    lab = Lab.start(engine, world)
    order(lab, session_number=1, planned_use_at=utcnow() + timedelta(days=3))
    with write_session(engine) as s:
        patient = get_patient(s, coi_id=world.patient_coi)
        with pytest.raises(RuleViolation, match=r"session 1 of .* course is already ordered"):
            check_course(s, patient=patient, details=_details(1, 31))
        with pytest.raises(
            RuleViolation,
            match=r"session 2 is planned 10 days after session 1; aape sessions are every 3-5 "
            r"weeks .*give the prescriber's reason \(interval_reason\)",
        ):
            check_course(s, patient=patient, details=_details(2, 13))
        assert check_course(s, patient=patient, details=_details(2, 31)) is None
        reason = "patient travels; Dr. F approves"
        assert check_course(s, patient=patient, details=_details(2, 13, reason)) == reason
