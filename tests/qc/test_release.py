"""QC results against specifications, deviations, four-eyes release, expiry."""

from datetime import timedelta

import pytest
from sqlalchemy import Engine, text

from lims.db import read_session, utcnow, write_session
from lims.errors import IllegalTransition, InvalidInput, RuleViolation, StepRefused
from lims.materials.kinds import Use
from lims.materials.service import get_material
from lims.parties.models import User
from lims.parties.service import get_patient
from lims.qc.service import (
    close_deviation,
    correct_result,
    current_results,
    deviations_of,
    expire_due,
    record_donor_eligibility,
    result_history,
)
from lims.signatures.passwords import AuthenticationFailed
from lims.signatures.service import signatures_for
from tests.builders import PASSING, Lab
from tests.conftest import World


def _lot_in_qc(lab: Lab) -> str:
    lot = lab.lot(released=False)
    lab.move(lot, "QC_TESTING")
    return lot


def test_results_are_judged_against_the_specification(engine: Engine, world: World) -> None:
    lab = Lab.start(engine, world)
    lot = _lot_in_qc(lab)
    ok = lab.result(lot, "endotoxin", "87.5 EU/mL")
    assert ok.passed is True and ok.spec_code == "AAPE-LOT-SPEC"
    protein = lab.result(lot, "protein", "350 ug/mL")
    assert protein.passed is None  # reported, no validated limit
    with pytest.raises(InvalidInput, match="expected a percentage, got 3 EU/mL"):
        lab.result(lot, "residual_moisture", "3 EU/mL")
    with pytest.raises(InvalidInput, match="enter one of no growth, growth"):
        lab.result(lot, "sterility", "looks clean")
    with pytest.raises(InvalidInput, match="has no test 'colour'"):
        lab.result(lot, "colour", "white")
    with pytest.raises(RuleViolation, match="correct it"):
        lab.result(lot, "endotoxin", "1 EU/mL")


def test_out_of_spec_holds_the_lot_and_opens_a_deviation(engine: Engine, world: World) -> None:
    lab = Lab.start(engine, world)
    lot = _lot_in_qc(lab)
    bad = lab.result(lot, "endotoxin", "120 EU/mL")
    assert bad.passed is False
    held = lab.get(lot)
    assert (held.state, held.held_from_state) == ("ON_HOLD", "QC_TESTING")
    with read_session(engine) as s:
        (dev,) = deviations_of(s, material=get_material(s, lot))
    assert "Endotoxin 120 EU/mL is above the limit 87.5 EU/mL" in dev.description
    # Retest after investigation: a correction that references the original, with a reason.
    with pytest.raises(InvalidInput, match="needs a reason"), write_session(engine) as s:
        from lims.qc.models import QcResult

        original = s.get(QcResult, bad.id)
        assert original is not None
        correct_result(
            s, result=original, value="2 EU/mL", reason=" ", actor=lab.user(s, world.tech2_id)
        )
    with write_session(engine) as s:
        from lims.qc.models import QcResult

        original = s.get(QcResult, bad.id)
        assert original is not None
        fixed = correct_result(
            s,
            result=original,
            value="2 EU/mL",
            reason="retest of retained sample per DV investigation",
            actor=lab.user(s, world.tech2_id),
        )
        assert fixed.corrects_id == bad.id and fixed.passed
    with read_session(engine) as s:
        material = get_material(s, lot)
        current = {r.test_code: r.value_text for r in current_results(s, material=material)}
        history = [r.value_text for r in result_history(s, material=material)]
        from sqlmodel import col, select

        from lims.custody.models import CustodyEvent

        corrected = s.exec(
            select(CustodyEvent).where(col(CustodyEvent.action) == "qc.result_corrected")
        ).one()
        entered = s.get(CustodyEvent, corrected.corrects_seq)
    assert current["endotoxin"] == "2" and history == ["120", "2"]
    assert entered is not None and entered.entity_id == str(bad.id)
    assert corrected.old == {"value": "120", "unit": "EU/mL", "passed": False}
    for test in ("sterility", "mycoplasma", "residual_moisture", "protein", "appearance"):
        lab.result(lot, test, PASSING[test])
    # Still on hold with an open deviation: release refused and says why.
    lab.move(lot, "QC_TESTING", reason="hold lifted for review")
    with pytest.raises(IllegalTransition, match=f"open deviations {dev.number}"):
        lab.release(lot)
    with write_session(engine) as s:
        from lims.qc.service import get_deviation

        deviation = get_deviation(s, number=dev.number)
        with pytest.raises(RuleViolation, match="only QA"):
            close_deviation(
                s, deviation=deviation, resolution="fine", actor=lab.user(s, world.tech_id)
            )
        close_deviation(
            s,
            deviation=deviation,
            actor=lab.user(s, world.qa_id),
            resolution="LAL interference; retest on retained sample passed",
        )
    lab.release(lot)
    assert lab.get(lot).state == "RELEASED"


def test_release_refused_with_missing_or_failing_results(engine: Engine, world: World) -> None:
    lab = Lab.start(engine, world)
    lot = _lot_in_qc(lab)
    lab.result(lot, "sterility", "no growth")
    with pytest.raises(IllegalTransition) as err:
        lab.release(lot)
    assert "results missing for Endotoxin, Mycoplasma" in str(err.value)
    assert lab.get(lot).state == "QC_TESTING"
    with read_session(engine) as s:  # the refused release left no signature behind
        assert signatures_for(s, record_type="batch_record", record_id=lot) == []
    lot2 = _lot_in_qc(lab)
    for test, value in PASSING.items():
        if test in ("viability", "cell_count", "identity"):
            continue
        lab.result(lot2, test, value if test != "mycoplasma" else "detected")
    with pytest.raises(IllegalTransition, match="out of specification: Mycoplasma detected"):
        lab.move(lot2, "QC_TESTING", reason="try to skip the deviation")
        lab.release(lot2)


def test_self_release_and_wrong_password_are_refused(engine: Engine, world: World) -> None:
    lab = Lab.start(engine, world)
    lot = _lot_in_qc(lab)
    lab.pass_qc(lot)
    with pytest.raises(RuleViolation, match="only QA releases"):
        lab.release(lot, actor_id=world.tech_id)
    with pytest.raises(AuthenticationFailed):
        lab.release(lot, password="wrong password!")
    with read_session(engine) as s:
        qa = s.get(User, world.qa_id)
        assert qa is not None and qa.failed_password_attempts == 1
    assert lab.get(lot).state == "QC_TESTING"
    # QA who recorded a processing step of the lot (its lyophilisation) may not release it.
    lot3 = lab.filled_lot(lyo_actor_id=world.qa_id)
    lab.move(lot3, "QC_TESTING")
    lab.pass_qc(lot3)
    with pytest.raises(IllegalTransition, match="four-eyes"):
        lab.release(lot3)


def test_release_signature_binds_the_batch_record(engine: Engine, world: World) -> None:
    lab = Lab.start(engine, world)
    lot = lab.lot()
    lab.allocate(lot, world.patient_coi)  # using the lot does not change its batch record
    with read_session(engine) as s:
        (check,) = signatures_for(s, record_type="batch_record", record_id=lot)
    assert check.valid and check.signature.meaning == "released"
    with engine.begin() as conn:  # a result altered behind the application's back
        conn.execute(
            text("UPDATE qc_result SET value_text = '0.1' WHERE test_code = 'residual_moisture'")
        )
    with read_session(engine) as s:
        (check,) = signatures_for(s, record_type="batch_record", record_id=lot)
    assert not check.valid


def test_allogeneic_release_needs_donor_eligibility_and_traces_both_ways(
    engine: Engine, world: World
) -> None:
    lab = Lab.start(engine, world)
    with pytest.raises(RuleViolation, match="cannot be registered as autologous"):
        lab.lipoaspirate(coi=world.donor_coi)
    culture = lab.culture(coi=world.donor_coi, use=Use.ALLOGENEIC)
    lot = lab.filled_lot(cm=lab.cm_batch("61 mL", culture=culture))
    lab.move(lot, "QC_TESTING")
    lab.pass_qc(lot)
    with pytest.raises(IllegalTransition, match="donor-eligibility determination"):
        lab.release(lot)
    with write_session(engine) as s:
        record_donor_eligibility(
            s,
            donor=get_patient(s, coi_id=world.donor_coi),
            eligible=True,
            actor=lab.user(s, world.qa_id),
            basis="screening negative (HIV, HBV, HCV, syphilis); history",
        )
    lab.release(lot)
    for coi in (world.patient_coi, world.other_patient_coi):
        lab.allocate(lot, coi)
    with pytest.raises(StepRefused, match="cannot receive their own donated lot"):
        lab.allocate(lot, world.donor_coi)
    from lims.materials.trace import donors_of_recipient, recipients_of_donor

    with read_session(engine) as s:
        donor = get_patient(s, coi_id=world.donor_coi)
        recipients = {p.coi_id for p in recipients_of_donor(s, donor=donor)}
        assert recipients == {world.patient_coi, world.other_patient_coi}
        recipient = get_patient(s, coi_id=world.other_patient_coi)
        assert [p.coi_id for p in donors_of_recipient(s, recipient=recipient)] == [world.donor_coi]


def test_expiry_service_expires_released_material(engine: Engine, world: World) -> None:
    lab = Lab.start(engine, world)
    lot = lab.lot()
    with write_session(engine) as s:
        assert expire_due(s) == []
    # Time passes: the lot's expiry is now behind us (set directly; the clock is real).
    past = utcnow() - timedelta(minutes=1)
    with engine.begin() as conn:
        from lims.db import UTCDateTime

        stored = UTCDateTime().process_bind_param(past, engine.dialect)
        conn.execute(
            text("UPDATE material SET expires_at = :t WHERE material_id = :m"),
            {"t": stored, "m": lot},
        )
    with write_session(engine) as s:
        expired = expire_due(s)
        assert [m.material_id for m in expired] == [lot]
    assert lab.get(lot).state == "EXPIRED"
    with pytest.raises(StepRefused, match="needs it RELEASED"):
        lab.allocate(lot, world.patient_coi)
    with write_session(engine) as s:
        assert expire_due(s) == []  # nothing left to expire
