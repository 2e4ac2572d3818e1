"""The lab's order queue (filters, sort, pages, tenancy), the FEFO lot list and the
homes' counts, from lims queries."""

from datetime import timedelta

from sqlalchemy import Engine

from lims.db import read_session, utcnow, write_session
from lims.orders.queries import dispatch_preview, find_order, order_queue
from lims.orders.service import patient_for, place_order
from lims.orders.stock import find_lot, qualifying_lots
from lims.workspace.queries import qa_home, technician_home
from tests.builders import Lab
from tests.conftest import World


def _place(lab: Lab, coi: str, days: int, session: int = 1) -> str:
    with write_session(lab.engine) as s:
        tech = lab.user(s, lab.world.tech_id)
        return place_order(
            s,
            actor=tech,
            patient=patient_for(s, actor=tech, coi_id=coi),
            product="aape",
            dose="1 vial",
            session_number=session,
            sessions_total=2,
            planned_use_at=utcnow() + timedelta(days=days),
            ship_to="Tokyo",
            prescriber="Dr. A",
            consent_ref="C-1",
            interval_reason="queue test: sessions a week apart",
        ).number


def test_queue_filters_sorts_pages_and_keeps_to_the_clinic(engine: Engine, world: World) -> None:
    lab = Lab.start(engine, world)
    late = _place(lab, world.patient_coi, 9, session=2)
    soon = _place(lab, world.patient_coi, 2)
    theirs = _place(lab, world.other_patient_coi, 5)
    with read_session(engine) as s:
        tech = lab.user(s, world.tech_id)
        desk = lab.user(s, world.clinic_user_id)
        by_due = [r.order.number for r in order_queue(s, actor=tech)]
        assert by_due == [soon, theirs, late]
        assert [r.order.number for r in order_queue(s, actor=tech, sort="-placed")] == [
            theirs,
            soon,
            late,
        ]
        first = order_queue(s, actor=tech, limit=2)
        assert len(first) == 2 and first.next_cursor and first.previous_cursor is None
        rest = order_queue(s, actor=tech, limit=2, after=first.next_cursor)
        assert [r.order.number for r in rest] == [late] and rest.next_cursor is None
        back = order_queue(s, actor=tech, limit=2, before=rest.previous_cursor)
        assert [r.order.number for r in back] == [soon, theirs] and back.previous_cursor is None
        osaka = order_queue(s, actor=tech, clinic="osaka")
        assert [r.order.number for r in osaka] == [theirs]
        due = order_queue(s, actor=tech, due_before=utcnow() + timedelta(days=3))
        assert [r.order.number for r in due] == [soon]
        assert order_queue(s, actor=tech, status="allocated") == []
        # A clinic desk sees only its own clinic's orders, whatever it filters by.
        assert theirs not in [r.order.number for r in order_queue(s, actor=desk)]
        assert order_queue(s, actor=desk, clinic="OSAKA") == []
        assert order_queue(s, actor=tech, sort="no such column")  # unknown sort: the default


def test_fefo_lists_every_qualifying_lot_and_homes_count_work(engine: Engine, world: World) -> None:
    lab = Lab.start(engine, world)
    lots = {lab.lot(), lab.lot()}
    number = _place(lab, world.patient_coi, 3)
    with read_session(engine) as s:
        order = find_order(s, number=number)
        found = qualifying_lots(s, order=order)
        assert {m.material_id for m, _ in found} == lots
        assert all(needed == 1 for _, needed in found)
        expiries = [m.expires_at for m, _ in found if m.expires_at is not None]
        assert expiries == sorted(expiries)  # first expiry first
        assert find_lot(s, order=order).material_id == found[0][0].material_id
        assert dispatch_preview(s, order=order) == []  # nothing allocated, nothing to check
        tech = {w.key: w.count for w in technician_home(s)}
        assert tech["orders-placed"] == 1 and tech["orders-allocated"] == 0
        qa = {w.key: w.count for w in qa_home(s)}
        assert qa["held"] == 0 and qa["deviations"] == 0
