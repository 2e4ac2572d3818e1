"""The dispatch gate names every failed check; a dose passes only when all hold."""

from dataclasses import replace
from datetime import timedelta

import pytest
from sqlalchemy import Engine

from lims.db import read_session, utcnow, write_session
from lims.dispatch.gate import (
    DispatchRefused,
    DispatchRequest,
    check_dispatch,
    dispatch_verify,
    gate_failures,
)
from lims.materials.service import get_material
from lims.parties.service import get_patient
from lims.signatures.models import Meaning
from lims.signatures.service import sign
from tests.builders import PASSWORD, Lab
from tests.conftest import World


def _labeled_dose(lab: Lab) -> tuple[str, str]:
    lot = lab.lot()
    dose = lab.allocate(lot, lab.world.patient_coi).outputs[0].material_id
    lab.move(dose, "LABELED")
    return lot, dose


def _sign_dose(lab: Lab, dose: str, user_id: int, meaning: Meaning) -> None:
    lab.ensure_password(user_id)
    with write_session(lab.engine) as s:
        sign(
            s,
            user=lab.user(s, user_id),
            password=PASSWORD,
            meaning=meaning,
            record_type="material",
            record_id=dose,
        )


def _request(lab: Lab, dose: str) -> DispatchRequest:
    with read_session(lab.engine) as s:
        patient = get_patient(s, coi_id=lab.world.patient_coi)
    return DispatchRequest(
        recipient_coi=patient.coi_id,
        identifier_1=patient.identifier_1,
        identifier_2=patient.identifier_2,
        planned_use_at=utcnow() + timedelta(days=3),
        transit="18 h",
        scanned_label=dose,
        shipper="ColdChain Couriers (qualified 2026-03)",
        temperature_logger="TL-0042",
    )


def _failures(lab: Lab, dose: str, request: DispatchRequest) -> list[str]:
    with read_session(lab.engine) as s:
        return check_dispatch(s, dose=get_material(s, dose), request=request)


def test_a_dose_with_everything_in_order_passes(engine: Engine, world: World) -> None:
    lab = Lab.start(engine, world)
    _lot, dose = _labeled_dose(lab)
    _sign_dose(lab, dose, world.tech_id, Meaning.PERFORMED)
    _sign_dose(lab, dose, world.tech2_id, Meaning.VERIFIED)
    request = _request(lab, dose)
    assert _failures(lab, dose, request) == []
    with write_session(engine) as s:
        dispatch_verify(
            s, dose=get_material(s, dose), request=request, actor=lab.user(s, world.tech_id)
        )
    assert lab.get(dose).state == "DISPATCH_VERIFIED"


def test_each_failed_check_is_named(engine: Engine, world: World) -> None:
    lab = Lab.start(engine, world)
    lot, dose = _labeled_dose(lab)
    good = _request(lab, dose)
    # No signatures yet: both named.
    failures = _failures(lab, dose, good)
    assert failures == [
        "signatures: no packer signature (meaning 'performed')",
        "signatures: no second verifier (meaning 'verified') other than the packer",
    ]
    _sign_dose(lab, dose, world.tech_id, Meaning.PERFORMED)
    # The packer cannot also be the second verifier.
    _sign_dose(lab, dose, world.tech_id, Meaning.VERIFIED)
    assert _failures(lab, dose, good) == [
        "signatures: no second verifier (meaning 'verified') other than the packer"
    ]
    _sign_dose(lab, dose, world.tech2_id, Meaning.VERIFIED)
    assert _failures(lab, dose, good) == []

    with read_session(engine) as s:
        other = get_patient(s, coi_id=world.other_patient_coi)
    cases = {
        "identity: the order is for": replace(
            good,
            recipient_coi=other.coi_id,
            identifier_1=other.identifier_1,
            identifier_2=other.identifier_2,
        ),
        "identity: the order's two identifiers do not match": replace(good, identifier_2="GHC-1"),
        "identity: ": replace(good, recipient_coi="COI-XXXX"),
        "expiry: with 18 h in transit it arrives after the planned use": replace(
            good, planned_use_at=utcnow() + timedelta(hours=5)
        ),
        "expiry: the dose expires": replace(good, planned_use_at=utcnow() + timedelta(days=3000)),
        "expiry: transit: expected a duration, got 18 kg": replace(good, transit="18 kg"),
        "label: scanned": replace(good, scanned_label=lot),
        "label: ": replace(good, scanned_label=dose[:-1] + ("A" if dose[-1] != "A" else "B")),
        "shipping: no qualified shipper": replace(good, shipper=" "),
        "shipping: no temperature logger": replace(good, temperature_logger=""),
    }
    for expected, request in cases.items():
        failures = _failures(lab, dose, request)
        assert len(failures) == 1 and failures[0].startswith(expected), (expected, failures)
    everything_wrong = replace(
        good, shipper="", temperature_logger="", scanned_label=lot, identifier_2="x"
    )
    assert len(_failures(lab, dose, everything_wrong)) == 4
    with pytest.raises(DispatchRefused) as err, write_session(engine) as s:
        dispatch_verify(
            s,
            dose=get_material(s, dose),
            request=everything_wrong,
            actor=lab.user(s, world.tech_id),
        )
    assert len(err.value.failures) == 4
    assert lab.get(dose).state == "LABELED"


def test_lot_on_hold_or_dose_changed_after_signing(engine: Engine, world: World) -> None:
    lab = Lab.start(engine, world)
    lot, dose = _labeled_dose(lab)
    _sign_dose(lab, dose, world.tech_id, Meaning.PERFORMED)
    _sign_dose(lab, dose, world.tech2_id, Meaning.VERIFIED)
    request = _request(lab, dose)
    lab.move(lot, "ON_HOLD", reason="recall investigation RC-7")
    (failure,) = _failures(lab, dose, request)
    assert failure.startswith("lot: source") and "is ON_HOLD, not RELEASED" in failure
    lab.move(lot, "RELEASED", actor_id=world.qa_id)
    assert _failures(lab, dose, request) == []
    from sqlalchemy import text

    with engine.begin() as conn:  # the dose record is altered after both signed it
        conn.execute(
            text("UPDATE material SET recipient_id = NULL WHERE material_id = :m"), {"m": dose}
        )
    failures = _failures(lab, dose, request)
    assert "identity: the dose has no recipient" in failures
    assert any(f.startswith("signatures: no packer") for f in failures)


def test_unlabeled_dose_and_non_dose(engine: Engine, world: World) -> None:
    lab = Lab.start(engine, world)
    lot = lab.lot()
    dose = lab.allocate(lot, world.patient_coi).outputs[0].material_id
    failures = _failures(lab, dose, _request(lab, dose))
    assert failures[0] == "state: the dose is ALLOCATED; it must be LABELED"
    assert _failures(lab, lot, _request(lab, lot))[0].startswith("identity: ")


def test_the_refusal_carries_codes_and_fields_not_just_text(engine: Engine, world: World) -> None:
    lab = Lab.start(engine, world)
    lot, dose = _labeled_dose(lab)
    wrong = replace(_request(lab, dose), shipper="", scanned_label=lot)
    with pytest.raises(DispatchRefused) as err, write_session(engine) as s:
        dispatch_verify(
            s, dose=get_material(s, dose), request=wrong, actor=lab.user(s, world.tech_id)
        )
    codes = [(r.code, r.field) for r in err.value.reasons]
    assert codes == [
        ("label_other_material", "scanned_label"),
        ("no_shipper", "shipper"),
        ("no_packer", None),
        ("no_verifier", None),
    ]
    assert err.value.failures == [str(r) for r in err.value.reasons]
    with read_session(engine) as s:
        reasons = gate_failures(s, dose=get_material(s, dose), request=wrong)
    assert [r.check for r in reasons] == ["label", "shipping", "signatures", "signatures"]
