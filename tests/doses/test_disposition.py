"""Cancellation with QA's disposition; depletion; conservation and custody after both."""

from decimal import Decimal

import pytest
from sqlalchemy import Engine

from lims.custody import ledger
from lims.db import read_session, write_session
from lims.doses.disposition import ReturnChecks, dispose
from lims.errors import RuleViolation
from lims.materials.service import get_material
from lims.orders.service import cancel_order, order_for
from lims.steps.conservation import verify_conservation
from tests.builders import PASSWORD, Lab
from tests.conftest import World
from tests.doses.helpers import allocate, dispatch, order

SAFE = ReturnChecks(seal_intact=True, never_left_lab=True, stored_in_range=True)


def _cancel(lab: Lab, number: str, reason: str = "patient rescheduled") -> None:
    with write_session(lab.engine) as s:
        desk = lab.user(s, lab.world.clinic_user_id)
        cancel_order(s, order=order_for(s, actor=desk, number=number), actor=desk, reason=reason)


def _dispose(lab: Lab, dose: str, decision: str, *, who: int | None = None, **kw: object) -> None:
    who = who or lab.world.qa_id
    lab.ensure_password(who)
    with write_session(lab.engine) as s:
        dispose(
            s,
            dose=get_material(s, dose),
            actor=lab.user(s, who),
            password=PASSWORD,
            decision=decision,
            reason=str(kw.pop("reason", "seal intact, kept at -80 degC")),
            **kw,  # type: ignore[arg-type]
        )


def _books_balance(engine: Engine) -> None:
    with read_session(engine) as s:
        report = verify_conservation(s)
        assert report.ok, report.problems
        assert ledger.verify_chain(s).ok


def test_a_depleted_lot_is_restocked_by_a_returned_vial(engine: Engine, world: World) -> None:
    lab = Lab.start(engine, world)
    lot = lab.lot()  # 15 vials
    first, second = order(lab, dose="10 vials"), order(lab, dose="5 vials", session_number=2)
    allocate(lab, first)
    dose = allocate(lab, second)
    assert (lab.get(lot).state, lab.get(lot).remaining_canonical) == ("DEPLETED", 0)
    third = order(lab, session_number=3)
    with pytest.raises(RuleViolation, match="no released, unexpired aape_lot"):
        allocate(lab, third)  # not allocatable ...
    with read_session(engine) as s:  # ... and still traced
        assert any(e.action == "material.state_changed" for e in ledger.history(s, material_id=lot))

    _cancel(lab, second)
    assert lab.get(dose).state == "CANCELLED"
    with pytest.raises(RuleViolation, match="disposition of a cancelled dose is QA's"):
        _dispose(lab, dose, "return", who=world.tech_id, checks=SAFE)
    with pytest.raises(RuleViolation, match="cannot go back to stock: the seal is not intact"):
        _dispose(lab, dose, "return", checks=ReturnChecks(False, True, True))
    _dispose(lab, dose, "return", checks=SAFE)
    back, returned = lab.get(lot), lab.get(dose)
    assert (back.state, back.remaining_canonical) == ("RELEASED", Decimal(5))
    assert (returned.state, returned.remaining_canonical) == ("DEALLOCATED", 0)
    allocate(lab, third)  # the lot serves again
    _books_balance(engine)
    with read_session(engine) as s:
        events = ledger.history(s, material_id=dose)
        returned_event = next(e for e in events if e.action == "dose.returned_to_lot")
        new = returned_event.new or {}
        assert new["returned"] == "5 vials"
        assert (new["lot_before"], new["lot_after"]) == (
            "0 vials",
            "5 vials",
        )
    with pytest.raises(RuleViolation, match="only a cancelled dose awaits disposition"):
        _dispose(lab, dose, "destroy")


def test_a_cancelled_dose_is_destroyed_with_a_reason(engine: Engine, world: World) -> None:
    lab = Lab.start(engine, world)
    lot = lab.lot()
    number = order(lab, dose="1 vial")
    dose = allocate(lab, number)
    lab.move(dose, "LABELED")
    _cancel(lab, number)
    with pytest.raises(Exception, match="needs a reason"):
        _dispose(lab, dose, "destroy", reason=" ")
    _dispose(lab, dose, "destroy", reason="carton dropped, seal broken")
    assert lab.get(dose).state == "DESTROYED"
    assert lab.get(lot).remaining_canonical == 14
    _books_balance(engine)


def test_a_dispatched_dose_cannot_be_cancelled(engine: Engine, world: World) -> None:
    lab = Lab.start(engine, world)
    lab.lot()
    number = order(lab)
    dose = allocate(lab, number)
    dispatch(lab, number, dose)
    with pytest.raises(RuleViolation, match="a dispatched dose cannot be cancelled; the clinic"):
        _cancel(lab, number)
