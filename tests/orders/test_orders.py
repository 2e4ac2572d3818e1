"""Dose orders end to end, clinic isolation, cancellation, concurrent allocation."""

import threading
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import Engine

from lims.db import read_session, utcnow, write_session
from lims.dispatch.gate import DispatchRefused
from lims.errors import InvalidInput, NotFound, RuleViolation, StepRefused
from lims.lifecycle import transition
from lims.materials.service import get_material
from lims.orders.models import DoseOrder
from lims.orders.queries import orders_visible_to
from lims.orders.service import (
    allocate_order,
    cancel_order,
    confirm_receipt,
    dispatch_order,
    order_for,
    patient_for,
    place_order,
    vials_needed,
)
from lims.signatures.models import Meaning
from lims.signatures.service import sign
from tests.builders import PASSWORD, Lab
from tests.conftest import World


def _order(
    lab: Lab,
    *,
    dose: object = "1 vial",
    coi: str | None = None,
    actor_id: int | None = None,
    **kw: Any,
) -> str:
    with write_session(lab.engine) as s:
        actor = lab.user(s, actor_id or lab.world.clinic_user_id)
        patient = patient_for(
            s, actor=lab.user(s, lab.world.tech_id), coi_id=coi or lab.world.patient_coi
        )
        order = place_order(
            s,
            actor=actor,
            patient=patient,
            product=kw.pop("product", "aape"),
            dose=dose,
            session_number=(n := kw.pop("session_number", 1)),
            sessions_total=kw.pop("sessions_total", 6),
            # Session n four weeks after session n-1 (AAPE: every 3-5 weeks).
            planned_use_at=kw.pop(
                "planned_use_at", utcnow() + timedelta(days=3, weeks=4 * (n - 1))
            ),
            ship_to="Ginza Hair Clinic, 4-1 Ginza, Tokyo",
            prescriber="Dr. H. Fukuoka",
            consent_ref="CONSENT-2026-0042",
            **kw,
        )
        return order.number


def _allocate(lab: Lab, number: str) -> str:
    with write_session(lab.engine) as s:
        tech = lab.user(s, lab.world.tech_id)
        return allocate_order(
            s, order=order_for(s, actor=tech, number=number), actor=tech
        ).material_id


def test_clinic_journey_order_to_receipt(engine: Engine, world: World) -> None:
    lab = Lab.start(engine, world)
    lot = lab.lot()
    number = _order(lab, dose="8 mL")  # reconstituted volume: 4 mL per vial -> 2 vials
    dose = _allocate(lab, number)
    assert lab.get(lot).remaining_canonical == Decimal("13")
    assert lab.get(dose).initial_canonical == Decimal("2")
    lab.move(dose, "LABELED")
    for user_id, meaning in (
        (world.tech_id, Meaning.PERFORMED),
        (world.tech2_id, Meaning.VERIFIED),
    ):
        lab.ensure_password(user_id)
        with write_session(engine) as s:
            sign(
                s,
                user=lab.user(s, user_id),
                password=PASSWORD,
                meaning=meaning,
                record_type="material",
                record_id=dose,
            )
    with write_session(engine) as s:
        tech = lab.user(s, world.tech_id)
        dispatch_order(
            s,
            order=order_for(s, actor=tech, number=number),
            actor=tech,
            scanned_label=dose,
            shipper="ColdChain",
            temperature_logger="TL-1",
            transit="18 h",
        )
    assert lab.get(dose).custodian == "courier:ColdChain"
    with write_session(engine) as s:
        clinic_user = lab.user(s, world.clinic_user_id)
        order = confirm_receipt(
            s,
            order=order_for(s, actor=clinic_user, number=number),
            actor=clinic_user,
            received_at=utcnow(),
            temperature="4.5 degC",
            received_by="Nurse K. Ito",
        )
        assert order.status == "RECEIVED" and order.received_temperature == Decimal("4.5")
    final = lab.get(dose)
    assert (final.state, final.custodian) == ("RECEIVED_AT_CLINIC", "clinic:GINZA")


def test_clinics_never_see_each_other(engine: Engine, world: World) -> None:
    lab = Lab.start(engine, world)
    mine = _order(lab)
    with write_session(engine) as s:
        from lims.parties.models import Clinic, Role
        from lims.parties.service import create_user

        osaka = s.get(Clinic, world.other_clinic_id)
        other = create_user(
            s, username="osaka-desk", printed_name="Osaka desk", role=Role.CLINIC, clinic=osaka
        )
        with pytest.raises(NotFound):
            order_for(s, actor=other, number=mine)
        with pytest.raises(NotFound):
            patient_for(s, actor=other, coi_id=world.patient_coi)
        assert orders_visible_to(s, actor=other) == []
        ginza = lab.user(s, world.clinic_user_id)
        assert [o.number for o in orders_visible_to(s, actor=ginza)] == [mine]
        with pytest.raises(NotFound):  # ordering for another clinic's patient
            place_order(
                s,
                actor=other,
                patient=patient_for(s, actor=ginza, coi_id=world.patient_coi),
                product="aape",
                dose="1 vial",
                session_number=1,
                sessions_total=6,
                planned_use_at=utcnow() + timedelta(days=2),
                ship_to="x",
                prescriber="y",
                consent_ref="z",
            )


@pytest.mark.parametrize(
    ("dose", "message"),
    [
        ("3 cm", "a aape dose is given in vials, reconstituted mL, µg of protein; got 3 cm"),
        ("3 kg", "3 kg is above the largest dose 10 mg for AAPE"),
        ("50 vials", "above the largest dose 10 vials for AAPE"),
        ("-1 vial", "must not be negative"),
        ("0 vials", "more than zero"),
        ("1.5 vials", "whole"),
        ("1e30 mL", "too large"),
        ("4 uL", "^dose: 4 uL is below the smallest dose 2 mL for AAPE .*; did you mean 4 mL\\?$"),
        ("0.0000001 mL", "below the smallest dose 2 mL for AAPE"),
        ("3 kg", "; did you mean 3 mg\\?$"),
        ("0.1 ug", "below the smallest dose 0.3 ug for AAPE"),
        ("1e-400 mL", "^dose: 1E-400 mL is below"),
    ],
)
def test_order_doses_are_unit_checked(
    engine: Engine, world: World, dose: str, message: str
) -> None:
    lab = Lab.start(engine, world)
    with pytest.raises(InvalidInput, match=message):
        _order(lab, dose=dose)


def test_order_field_rules(engine: Engine, world: World) -> None:
    lab = Lab.start(engine, world)
    with pytest.raises(InvalidInput, match="future"):
        _order(lab, planned_use_at=utcnow() - timedelta(hours=1))
    with pytest.raises(InvalidInput, match=r"past the course.s last session"):
        _order(lab, session_number=9)
    with pytest.raises(InvalidInput, match="product is one of"):
        _order(lab, product="elixir")
    with pytest.raises(RuleViolation, match="cannot place orders"):
        _order(lab, actor_id=world.auditor_id)


def test_protein_dose_converts_through_the_lot_result(engine: Engine, world: World) -> None:
    lab = Lab.start(engine, world)
    lot = lab.lot()  # protein 350 ug/mL x 4 mL = 1400 ug per vial
    number = _order(lab, dose="3000 ug")
    with read_session(engine) as s:
        order = s.exec(__import__("sqlmodel").select(DoseOrder)).one()
        assert order.number == number
        assert vials_needed(s, order=order, lot=get_material(s, lot)) == 3


def test_cancel_before_dispatch_only(engine: Engine, world: World) -> None:
    lab = Lab.start(engine, world)
    lab.lot()
    placed, allocated = _order(lab), _order(lab, session_number=2)
    dose = _allocate(lab, allocated)
    with write_session(engine) as s:
        clinic_user = lab.user(s, world.clinic_user_id)
        with pytest.raises(InvalidInput, match="needs a reason"):
            cancel_order(
                s,
                order=order_for(s, actor=clinic_user, number=placed),
                actor=clinic_user,
                reason="",
            )
        cancel_order(
            s,
            order=order_for(s, actor=clinic_user, number=placed),
            actor=clinic_user,
            reason="patient rescheduled",
        )
        cancel_order(
            s,
            order=order_for(s, actor=clinic_user, number=allocated),
            actor=clinic_user,
            reason="patient withdrew consent",
        )
        with pytest.raises(RuleViolation, match="is CANCELLED"):
            cancel_order(
                s,
                order=order_for(s, actor=clinic_user, number=placed),
                actor=clinic_user,
                reason="again",
            )
    assert lab.get(dose).state == "CANCELLED"


def test_dispatch_refuses_unsigned_and_allocation_refuses_twice(
    engine: Engine, world: World
) -> None:
    lab = Lab.start(engine, world)
    lab.lot()
    number = _order(lab)
    dose = _allocate(lab, number)
    with pytest.raises(RuleViolation, match="is ALLOCATED, not PLACED"):
        _allocate(lab, number)
    lab.move(dose, "LABELED")
    with pytest.raises(DispatchRefused, match="no packer signature"), write_session(engine) as s:
        tech = lab.user(s, world.tech_id)
        dispatch_order(
            s,
            order=order_for(s, actor=tech, number=number),
            actor=tech,
            scanned_label=dose,
            shipper="ColdChain",
            temperature_logger="TL-1",
            transit="18 h",
        )
    with (
        pytest.raises(RuleViolation, match="only a dispatched order can be received"),
        write_session(engine) as s,
    ):
        cu = lab.user(s, world.clinic_user_id)
        confirm_receipt(
            s,
            order=order_for(s, actor=cu, number=number),
            actor=cu,
            received_at=utcnow(),
            temperature="4 degC",
            received_by="x",
        )


def test_no_lot_for_another_patients_order(engine: Engine, world: World) -> None:
    lab = Lab.start(engine, world)
    lab.lot()  # the patient's own lot; the other patient has none
    with write_session(engine) as s:
        tech = lab.user(s, world.tech_id)
        patient = patient_for(s, actor=tech, coi_id=world.other_patient_coi)
        order = place_order(
            s,
            actor=tech,
            patient=patient,
            product="aape",
            dose="1 vial",
            session_number=1,
            sessions_total=1,
            planned_use_at=utcnow() + timedelta(days=2),
            ship_to="Osaka",
            prescriber="Dr. O",
            consent_ref="C-1",
        )
        number = order.number
    with pytest.raises(RuleViolation, match="no released, unexpired aape_lot of this patient"):
        _allocate(lab, number)


def test_concurrent_allocations_never_exceed_the_lot(engine: Engine, world: World) -> None:
    lab = Lab.start(engine, world)
    lot = lab.lot()  # 15 vials
    numbers = [
        _order(
            lab,
            dose="2 vials",
            session_number=1 + n,
            sessions_total=12,
            planned_use_at=utcnow() + timedelta(days=3),
            interval_reason="load test: every session of the course on one day",
        )
        for n in range(12)
    ]
    start = threading.Barrier(len(numbers))
    outcomes: list[str] = []
    guard = threading.Lock()

    def worker(number: str) -> None:
        start.wait(timeout=20)
        try:
            _allocate(lab, number)
            outcome = "ok"
        except (StepRefused, RuleViolation) as exc:
            outcome = "refused: " + str(exc)
        with guard:
            outcomes.append(outcome)

    threads = [threading.Thread(target=worker, args=(n,)) for n in numbers]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert outcomes.count("ok") == 7  # 7 x 2 = 14 of 15 vials
    refusals = [o for o in outcomes if o != "ok"]
    assert len(refusals) == 5
    assert all("no released, unexpired aape_lot" in r or "remain" in r for r in refusals)
    assert lab.get(lot).remaining_canonical == Decimal("1")
    with read_session(engine) as s:
        from lims.custody.ledger import verify_chain
        from lims.steps.conservation import verify_conservation

        assert verify_conservation(s).ok
        assert verify_chain(s).ok


def test_expired_lot_is_not_allocated(engine: Engine, world: World) -> None:
    lab = Lab.start(engine, world)
    lot = lab.lot()
    planned = utcnow() + timedelta(days=30)
    number = _order(lab, planned_use_at=planned)
    with write_session(engine) as s:  # a lot that expires within transit of the planned use
        material = get_material(s, lot)
        material.expires_at = planned + timedelta(hours=47)
        s.add(material)
    with pytest.raises(RuleViolation, match=r"expires at least 48 h .transit. after its planned"):
        _allocate(lab, number)
    with pytest.raises(InvalidInput, match="more than 183 days ahead"):
        _order(lab, session_number=2, planned_use_at=utcnow() + timedelta(days=3000))
    with write_session(engine) as s:  # the lot itself, named explicitly, is refused too
        tech = lab.user(s, world.tech_id)
        transition(
            s, material=get_material(s, lot), to_state="ON_HOLD", actor=tech, reason="investigation"
        )
    with pytest.raises(StepRefused, match="needs it RELEASED"), write_session(engine) as s:
        tech = lab.user(s, world.tech_id)
        allocate_order(
            s, order=order_for(s, actor=tech, number=number), actor=tech, lot=get_material(s, lot)
        )
