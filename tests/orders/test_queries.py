"""Reads of orders: tenancy by actor (another clinic's orders and doses are never
returned), status filter, pages, the order's timeline (SQLite and PostgreSQL)."""

from datetime import timedelta

import pytest
from sqlalchemy import Engine
from sqlmodel import Session

from lims.db import read_session, utcnow, write_session
from lims.errors import NotFound
from lims.orders.queries import doses_visible_to, find_order, order_timeline, orders_visible_to
from lims.orders.service import allocate_order, cancel_order, order_for, patient_for, place_order
from lims.parties.models import Role, User
from lims.parties.queries import get_clinic, get_user
from lims.parties.service import create_user
from tests.builders import Lab
from tests.conftest import World


def _place(s: Session, actor: User, coi: str, session_number: int = 1) -> str:
    lab_view = User(username="lab", printed_name="lab", role=Role.TECHNICIAN)
    return place_order(
        s,
        actor=actor,
        patient=patient_for(s, actor=lab_view, coi_id=coi),
        product="aape",
        dose="1 vial",
        session_number=session_number,
        sessions_total=6,
        planned_use_at=utcnow() + timedelta(days=3, weeks=4 * (session_number - 1)),
        ship_to="a clinic",
        prescriber="Dr. P",
        consent_ref="C-1",
    ).number


def _osaka_desk(s: Session) -> User:
    return create_user(
        s,
        username="osaka-desk",
        printed_name="Osaka desk",
        role=Role.CLINIC,
        clinic=get_clinic(s, code="OSAKA"),
    )


def test_orders_by_actor_status_and_page(engine: Engine, world: World) -> None:
    lab = Lab.start(engine, world)
    with write_session(engine) as s:
        tech = lab.user(s, world.tech_id)
        ginza_desk = lab.user(s, world.clinic_user_id)
        osaka_desk = _osaka_desk(s)
        mine = [_place(s, ginza_desk, world.patient_coi, n) for n in (1, 2, 3)]
        theirs = _place(s, tech, world.other_patient_coi)
        cancel_order(
            s, order=order_for(s, actor=tech, number=mine[1]), actor=tech, reason="postponed"
        )
    with read_session(engine) as s:
        ginza_desk = lab.user(s, world.clinic_user_id)
        osaka_desk = get_user(s, username="osaka-desk")
        tech = lab.user(s, world.tech_id)
        assert [o.number for o in orders_visible_to(s, actor=ginza_desk)] == mine
        assert [o.number for o in orders_visible_to(s, actor=osaka_desk)] == [theirs]
        assert [o.number for o in orders_visible_to(s, actor=tech)] == [*mine, theirs]
        placed = orders_visible_to(s, actor=ginza_desk, status="placed")
        assert [o.number for o in placed] == [mine[0], mine[2]]
        cancelled = orders_visible_to(s, actor=osaka_desk, status="CANCELLED")
        assert list(cancelled) == []  # Ginza's cancelled order is not Osaka's
        first = orders_visible_to(s, actor=tech, limit=3)
        rest = orders_visible_to(s, actor=tech, limit=3, offset=3)
        assert ([o.number for o in first], first.next_offset) == (mine, 3)
        assert ([o.number for o in rest], rest.next_offset) == ([theirs], None)


def test_doses_by_actor(engine: Engine, world: World) -> None:
    lab = Lab.start(engine, world)
    lab.lot()
    with write_session(engine) as s:
        tech = lab.user(s, world.tech_id)
        _osaka_desk(s)
        number = _place(s, lab.user(s, world.clinic_user_id), world.patient_coi)
        _place(s, tech, world.other_patient_coi)  # never allocated: no dose
        dose = allocate_order(s, order=order_for(s, actor=tech, number=number), actor=tech)
        dose_id = dose.material_id
    with read_session(engine) as s:
        ginza = doses_visible_to(s, actor=get_user(s, username="ginza-desk"))
        osaka = doses_visible_to(s, actor=get_user(s, username="osaka-desk"))
        everyone = doses_visible_to(s, actor=get_user(s, username="tanaka"), limit=1)
    assert [m.material_id for m in ginza] == [dose_id]
    assert list(osaka) == []
    assert ([m.material_id for m in everyone], everyone.next_offset) == ([dose_id], None)


def test_find_order_and_its_timeline(engine: Engine, world: World) -> None:
    lab = Lab.start(engine, world)
    with write_session(engine) as s:
        tech = lab.user(s, world.tech_id)
        number = _place(s, lab.user(s, world.clinic_user_id), world.patient_coi)
        other = _place(s, tech, world.other_patient_coi)
        cancel_order(s, order=order_for(s, actor=tech, number=number), actor=tech, reason="ill")
    with read_session(engine) as s:
        order = find_order(s, number=f" {number.lower()} ")
        assert order.number == number
        with pytest.raises(NotFound, match="no order ORD-999999"):
            find_order(s, number="ORD-999999")
        events = order_timeline(s, order=order)
        assert [e.action for e in events] == ["order.placed", "order.status_changed"]
        assert [e.seq for e in events] == sorted(e.seq for e in events)
        assert {e.entity_id for e in events} == {number}
        assert [e.action for e in order_timeline(s, order=find_order(s, number=other))] == [
            "order.placed"
        ]
