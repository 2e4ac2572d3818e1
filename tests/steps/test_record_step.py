"""Recording steps: validation, bookings, states, lineage, and refusals that write nothing."""

from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import Engine, func, select
from sqlmodel import col

from lims.db import read_session, write_session
from lims.errors import IdempotencyConflict, InvalidInput, RuleViolation, StepRefused
from lims.materials.kinds import MaterialKind, Use
from lims.materials.models import LineageEdge, Material
from lims.materials.service import ancestors, descendants, get_material, register_material
from lims.parties.service import get_patient
from lims.sops.catalog import SOPS
from lims.sops.parameters import typical_parameters
from lims.steps.conservation import verify_conservation
from lims.steps.models import Step, StepInput, StepLoss
from lims.steps.service import InputBooking, LossBooking, OutputRequest
from lims.units import QuantityKind, parse_quantity
from tests.builders import INTAKE_OK, SVF_OK, Lab
from tests.conftest import World


def counts(engine: Engine) -> tuple[int, ...]:
    with write_session(engine) as s:
        return tuple(
            s.execute(select(func.count()).select_from(t)).scalar_one()
            for t in (Material, Step, StepInput, StepLoss, LineageEdge)
        )


def refused(lab: Lab, code: str, *fragments: str, **kw: object) -> StepRefused:
    """Assert the step is refused with every fragment in the message and nothing written."""
    before = counts(lab.engine)
    with pytest.raises(StepRefused) as err:
        lab.step(code, kw.pop("hours", 10), **kw)  # type: ignore[arg-type]
    for fragment in fragments:
        assert fragment in str(err.value), (fragment, str(err.value))
    assert counts(lab.engine) == before
    return err.value


def test_intake_accepts_and_records_derived_time(engine: Engine, world: World) -> None:
    lab = Lab.start(engine, world)
    lipo = lab.lipoaspirate()
    result = lab.step("LIPO-INTAKE", 4, inputs=[InputBooking(lipo)], parameters=INTAKE_OK)
    assert result.step.outcome == "accepted"
    assert result.step.parameters["time_since_harvest"]["value"] == "4"
    assert result.step.parameters["transport_temperature"] == {
        "value": "6",
        "unit": "degC",
        "canonical": "6 degC",
    }
    assert lab.get(lipo).state == "ACCEPTED"


def test_intake_warns_after_24_h_and_rejects_after_72_h(engine: Engine, world: World) -> None:
    lab = Lab.start(engine, world)
    late = lab.lipoaspirate()
    result = lab.step("LIPO-INTAKE", 30, inputs=[InputBooking(late)], parameters=INTAKE_OK)
    assert result.warnings == ["Time since harvest 30 h is above 24 h (SOP LIPO-INTAKE v1)"]
    assert lab.get(late).state == "ACCEPTED"
    too_late = lab.lipoaspirate()
    result = lab.step("LIPO-INTAKE", 80, inputs=[InputBooking(too_late)], parameters=INTAKE_OK)
    assert result.step.outcome == "rejected"
    assert "above the acceptance limit 72 h" in result.step.acceptance_failures[0]
    assert lab.get(too_late).state == "REJECTED"


def test_intake_rejects_on_identity_or_temperature(engine: Engine, world: World) -> None:
    lab = Lab.start(engine, world)
    for change in ({"identity_verified": False}, {"transport_temperature": "30 degC"}):
        lipo = lab.lipoaspirate()
        result = lab.step(
            "LIPO-INTAKE", 4, inputs=[InputBooking(lipo)], parameters={**INTAKE_OK, **change}
        )
        assert result.step.outcome == "rejected"
        assert lab.get(lipo).state == "REJECTED"


def test_svf_separation_books_quantities_lineage_and_states(engine: Engine, world: World) -> None:
    lab = Lab.start(engine, world)
    lipo = lab.accepted_lipoaspirate("120 mL")
    result = lab.step(
        "SVF-SEP",
        6,
        inputs=[InputBooking(lipo, "100 mL")],
        outputs=[OutputRequest("1.9e7 cells")],
        instrument_ids=lab.inst("centrifuge", "shaking_incubator", "cell_counter"),
        reagent_lot_ids=lab.reag("collagenase"),
        parameters=SVF_OK,
    )
    (svf,) = result.outputs
    assert (svf.kind, svf.state, svf.initial_canonical) == ("svf", "QC_PASSED", Decimal("19000000"))
    assert result.step.parameters["yield_per_ml"]["value"] == "190000"
    parent = lab.get(lipo)
    assert (parent.state, parent.remaining_canonical) == ("IN_PROCESS", Decimal("20"))
    with write_session(engine) as s:
        assert [r.material_id for r in ancestors(s, material=get_material(s, svf.material_id))] == [
            lipo
        ]
        assert svf.patient_id == parent.patient_id


def test_failing_viability_rejects_the_svf_not_the_record(engine: Engine, world: World) -> None:
    lab = Lab.start(engine, world)
    svf = lab.svf(viability="55 %")
    assert lab.get(svf).state == "QC_FAILED"
    with write_session(engine) as s:
        step = s.execute(select(Step).where(col(Step.sop_code) == "SVF-SEP")).scalar_one()
        assert step.outcome == "rejected"
        assert step.acceptance_failures == [
            "Viability 55 % is below the acceptance limit 70 % (SOP SVF-SEP v1)"
        ]


def test_wrong_unit_refused_and_nothing_written(engine: Engine, world: World) -> None:
    lab = Lab.start(engine, world)
    lipo = lab.accepted_lipoaspirate()
    refused(
        lab,
        "SVF-SEP",
        "digestion_time: expected a duration, got 45 mL",
        inputs=[InputBooking(lipo, "100 mL")],
        outputs=[OutputRequest("1e7 cells")],
        instrument_ids=lab.inst("centrifuge", "shaking_incubator", "cell_counter"),
        reagent_lot_ids=lab.reag("collagenase"),
        parameters={**SVF_OK, "digestion_time": "45 mL"},
    )
    refused(
        lab,
        "SVF-SEP",
        "expected a volume, got 100 kg",
        inputs=[InputBooking(lipo, "100 kg")],
        outputs=[OutputRequest("1e7 cells")],
        instrument_ids=lab.inst("centrifuge", "shaking_incubator", "cell_counter"),
        reagent_lot_ids=lab.reag("collagenase"),
        parameters=SVF_OK,
    )
    refused(
        lab,
        "SVF-SEP",
        "must not be negative",
        inputs=[InputBooking(lipo, "-5 mL")],
        outputs=[OutputRequest("1e7 cells")],
        instrument_ids=lab.inst("centrifuge", "shaking_incubator", "cell_counter"),
        reagent_lot_ids=lab.reag("collagenase"),
        parameters=SVF_OK,
    )
    assert lab.get(lipo).remaining_canonical == Decimal("120")


def test_over_withdrawal_is_refused(engine: Engine, world: World) -> None:
    lab = Lab.start(engine, world)
    lipo = lab.accepted_lipoaspirate("50 mL")
    refused(
        lab,
        "NANOFAT-PREP",
        "60 mL asked, only 50 mL remain",
        inputs=[InputBooking(lipo, "60 mL")],
        outputs=[OutputRequest("60 mL")],
        parameters={"emulsification_passes": 30, "filter_mesh": "500 um", "needle_gauge": 27},
    )


def test_volume_that_does_not_add_up_is_refused(engine: Engine, world: World) -> None:
    lab = Lab.start(engine, world)
    lipo = lab.accepted_lipoaspirate("50 mL")
    params = {"emulsification_passes": 30, "filter_mesh": "500 um", "needle_gauge": 27}
    refused(
        lab,
        "NANOFAT-PREP",
        "a volume does not add up: 20 mL taken, 18 mL produced + 0 mL lost = 18 mL; "
        "2 mL unaccounted, record it as a loss",
        inputs=[InputBooking(lipo, "20 mL")],
        outputs=[OutputRequest("18 mL")],
        parameters=params,
    )
    refused(
        lab,
        "NANOFAT-PREP",
        "3 mL more than was taken",
        inputs=[InputBooking(lipo, "20 mL")],
        outputs=[OutputRequest("18 mL")],
        losses=[LossBooking(lipo, "5 mL", "spill")],
        parameters=params,
    )
    refused(
        lab,
        "NANOFAT-PREP",
        "every loss needs a reason",
        inputs=[InputBooking(lipo, "20 mL")],
        outputs=[OutputRequest("18 mL")],
        losses=[LossBooking(lipo, "2 mL", " ")],
        parameters=params,
    )
    ok = lab.step(
        "NANOFAT-PREP",
        5,
        inputs=[InputBooking(lipo, "20 mL")],
        outputs=[OutputRequest("18 mL")],
        losses=[LossBooking(lipo, "2000 uL", "filter residue")],
        parameters=params,
    )
    assert ok.outputs[0].remaining_canonical == Decimal("18")
    assert lab.get(lipo).remaining_canonical == Decimal("30")


def test_ten_tenth_millilitre_withdrawals_leave_exactly_zero(engine: Engine, world: World) -> None:
    lab = Lab.start(engine, world)
    lipo = lab.accepted_lipoaspirate("1 mL")
    params = {"emulsification_passes": 30, "filter_mesh": "500 um", "needle_gauge": 27}
    for n in range(10):
        lab.step(
            "NANOFAT-PREP",
            5 + n / 10,
            inputs=[InputBooking(lipo, "0.1 mL")],
            outputs=[OutputRequest("100 uL")],
            parameters=params,
        )
    final = lab.get(lipo)
    assert final.remaining_canonical == 0
    assert final.state == "CONSUMED"
    refused(
        lab,
        "NANOFAT-PREP",
        "is CONSUMED",
        inputs=[InputBooking(lipo, "0.1 mL")],
        outputs=[OutputRequest("0.1 mL")],
        parameters=params,
    )
    with write_session(engine) as s:
        assert verify_conservation(s).ok


def test_quarantined_input_and_wrong_kind_are_refused(engine: Engine, world: World) -> None:
    lab = Lab.start(engine, world)
    lipo = lab.lipoaspirate()
    refused(
        lab,
        "SVF-SEP",
        "is RECEIVED; SOP SVF-SEP v1 needs it ACCEPTED or IN_PROCESS",
        inputs=[InputBooking(lipo, "100 mL")],
        outputs=[OutputRequest("1e7 cells")],
        instrument_ids=lab.inst("centrifuge", "shaking_incubator", "cell_counter"),
        reagent_lot_ids=lab.reag("collagenase"),
        parameters=SVF_OK,
    )
    refused(
        lab,
        "ADSC-SEED",
        "takes svf, not lipoaspirate",
        inputs=[InputBooking(lipo, "1 mL")],
        outputs=[OutputRequest("1e6 cells")],
        instrument_ids=lab.inst("biosafety_cabinet", "co2_incubator"),
        reagent_lot_ids=lab.reag("culture_medium"),
        parameters={"culture_area": "350 cm^2", "medium": "serum-free"},
    )


def test_unknown_material_and_bad_check_character(engine: Engine, world: World) -> None:
    from lims.errors import NotFound
    from lims.identity.codes import make_material_id

    lab = Lab.start(engine, world)
    with pytest.raises(NotFound):
        lab.step(
            "LIPO-INTAKE",
            4,
            inputs=[InputBooking(make_material_id("X0001", 26, 999))],
            parameters=INTAKE_OK,
        )
    lipo = lab.lipoaspirate()
    with pytest.raises(InvalidInput, match="wrong check character"):
        lab.step(
            "LIPO-INTAKE",
            4,
            inputs=[InputBooking(lipo[:-1] + ("A" if lipo[-1] != "A" else "B"))],
            parameters=INTAKE_OK,
        )


def test_calibration_and_reagent_expiry_are_checked(engine: Engine, world: World) -> None:
    lab = Lab.start(engine, world)
    lipo = lab.accepted_lipoaspirate()
    # Performed an hour ago: after the overdue instrument's due date and the lot's expiry.
    base = {
        "inputs": [InputBooking(lipo, "100 mL")],
        "outputs": [OutputRequest("1e7 cells")],
        "parameters": SVF_OK,
        "hours": 6 * 24 - 1,
    }
    refused(
        lab,
        "SVF-SEP",
        "was due for calibration",
        instrument_ids=[
            world.overdue_instruments["centrifuge"],
            *lab.inst("shaking_incubator", "cell_counter"),
        ],
        reagent_lot_ids=lab.reag("collagenase"),
        **base,
    )
    refused(
        lab,
        "SVF-SEP",
        "collagenase lot col-OLD expired",
        instrument_ids=lab.inst("centrifuge", "shaking_incubator", "cell_counter"),
        reagent_lot_ids=[world.expired_reagents["collagenase"]],
        **base,
    )
    refused(
        lab,
        "SVF-SEP",
        "needs a cell_counter; none recorded",
        "needs a collagenase lot",
        instrument_ids=lab.inst("centrifuge", "shaking_incubator"),
        **base,
    )


def test_every_problem_is_reported_at_once(engine: Engine, world: World) -> None:
    lab = Lab.start(engine, world)
    lipo = lab.accepted_lipoaspirate("50 mL")
    err = refused(
        lab,
        "SVF-SEP",
        inputs=[InputBooking(lipo, "60 mL")],
        outputs=[OutputRequest("1e7 cells")],
        parameters={**SVF_OK, "digestion_time": "900 min", "lysis": "bleach"},
    )
    assert len(err.problems) >= 4  # over-withdrawal, time, lysis, instruments, reagent


def test_pooling_two_patients_is_refused(engine: Engine, world: World) -> None:
    lab = Lab.start(engine, world)
    mine = lab.cm_batch("61 mL")
    other_lab = Lab(engine=engine, world=world, t0=lab.t0)
    culture = other_lab.culture(coi=world.other_patient_coi)
    theirs = other_lab.cm_batch("61 mL", culture=culture)
    refused(
        lab,
        "AAPE-FILL",
        "pooling across chains of identity is refused",
        hours=101,
        inputs=[InputBooking(mine, "60 mL"), InputBooking(theirs, "60 mL")],
        outputs=[OutputRequest("30 vials")],
        instrument_ids=lab.inst("biosafety_cabinet"),
        parameters={"fill_volume": "4 mL", "cryoprotectant": "trehalose"},
    )


def test_lot_vials_balance_against_cm_volume(engine: Engine, world: World) -> None:
    lab = Lab.start(engine, world)
    cm = lab.cm_batch("61 mL")
    params = {"fill_volume": "4 mL", "cryoprotectant": "trehalose"}
    refused(
        lab,
        "AAPE-FILL",
        "60 mL taken, 56 mL produced",
        "4 mL unaccounted",
        hours=101,
        inputs=[InputBooking(cm, "60 mL")],
        outputs=[OutputRequest("14 vials")],
        instrument_ids=lab.inst("biosafety_cabinet"),
        parameters=params,
    )
    result = lab.step(
        "AAPE-FILL",
        101,
        inputs=[InputBooking(cm, "60 mL")],
        outputs=[OutputRequest("14 vials")],
        losses=[LossBooking(cm, "4 mL", "line dead volume")],
        instrument_ids=lab.inst("biosafety_cabinet"),
        parameters=params,
    )
    lot = result.outputs[0]
    assert (lot.state, lot.initial_canonical) == ("FILLED", Decimal("14"))
    assert lab.get(cm).state == "POOLED_INTO_LOT"
    assert lot.expires_at is not None


def test_passage_tracks_doublings_and_enforces_limits(engine: Engine, world: World) -> None:
    lab = Lab.start(engine, world)
    culture = lab.culture()  # 7e5 cells seeded, P0
    lab.count(culture, 30, "2.8e6 cells")
    counted = lab.get(culture)
    assert (counted.state, counted.population_doublings) == ("EXPANDING", Decimal("2.0000"))
    assert counted.remaining_canonical == Decimal("2800000")
    result = lab.passage(
        culture, 31, "2.8e6 cells", ["1.05e6 cells", "1.05e6 cells"], loss="7e5 cells"
    )
    children = result.outputs
    assert [c.passage for c in children] == [1, 1]
    assert children[0].doublings_at_seeding == Decimal("2.0000")
    assert lab.get(culture).state == "PASSAGED"
    # Drive one line to P5, then P6 is refused (domain: use before P5, block > P5).
    line = children[0].material_id
    for n in range(4):
        line = (
            lab.passage(line, 40 + n, "1.05e6 cells", ["1.05e6 cells"], area="350 cm^2")
            .outputs[0]
            .material_id
        )
    assert lab.get(line).passage == 5
    refused(
        lab,
        "ADSC-PASSAGE",
        "passaging to P6 exceeds the limit P5",
        hours=50,
        inputs=[InputBooking(line, "1.05e6 cells")],
        outputs=[OutputRequest("1.05e6 cells")],
        instrument_ids=lab.inst("biosafety_cabinet", "cell_counter"),
        reagent_lot_ids=lab.reag("culture_medium"),
        parameters=typical_parameters(
            "ADSC-PASSAGE", harvested_cells="1.05e6 cells", culture_area="350 cm^2"
        ),
    )
    # Doublings: the other P1 line grows 2^9 fold: 2 + 9 = 11 > 10 is refused.
    other = children[1].material_id
    refused(
        lab,
        "ADSC-PASSAGE",
        "population doublings, above the limit 10",
        hours=60,
        inputs=[InputBooking(other, "5.376e8 cells")],
        outputs=[OutputRequest("5.376e8 cells")],
        instrument_ids=lab.inst("biosafety_cabinet", "cell_counter"),
        reagent_lot_ids=lab.reag("culture_medium"),
        parameters=typical_parameters(
            "ADSC-PASSAGE", harvested_cells="5.376e8 cells", culture_area="18000 cm^2"
        ),
    )


def test_cm_harvest_needs_24_to_72_hours_of_hypoxia(engine: Engine, world: World) -> None:
    lab = Lab.start(engine, world)
    culture = lab.culture()
    lab.count(culture, 50, "2.8e6 cells")
    lab.step(
        "HYPOXIA-START",
        51,
        inputs=[InputBooking(culture)],
        instrument_ids=lab.inst("trigas_incubator"),
        reagent_lot_ids=lab.reag("culture_medium"),
        parameters={"o2_setpoint": "2 %", "medium": "serum-free"},
    )
    result = lab.step(
        "CM-HARVEST",
        61,
        inputs=[InputBooking(culture)],
        outputs=[OutputRequest("60 mL")],
        instrument_ids=lab.inst("trigas_incubator"),
        parameters={"o2_mean": "2 %", "o2_log_ref": "LOG-1"},
    )
    assert result.step.parameters["conditioning_duration"]["value"] == "10"
    assert result.outputs[0].state == "REJECTED"
    assert lab.get(culture).state == "HARVESTED"


def test_hypoxia_setpoint_outside_1_to_5_percent_refused(engine: Engine, world: World) -> None:
    lab = Lab.start(engine, world)
    culture = lab.culture()
    lab.count(culture, 50, "2.8e6 cells")
    refused(
        lab,
        "HYPOXIA-START",
        "o2_setpoint: 21 % is above the maximum 5 %",
        inputs=[InputBooking(culture)],
        instrument_ids=lab.inst("trigas_incubator"),
        reagent_lot_ids=lab.reag("culture_medium"),
        parameters={"o2_setpoint": "21 %", "medium": "serum-free"},
    )


def test_failed_moisture_rejects_the_lot(engine: Engine, world: World) -> None:

    lab = Lab.start(engine, world)
    lot = lab.filled_lot(fill={"cryoprotectant": "none"}, lyo={"residual_moisture": "3.5 %"})
    assert lab.get(lot).state == "REJECTED"


def test_autologous_dose_goes_only_to_its_own_patient(engine: Engine, world: World) -> None:
    lab = Lab.start(engine, world)
    lot = lab.lot()
    dose = lab.allocate(lot, world.patient_coi).outputs[0]
    with write_session(engine) as s:
        me = get_patient(s, coi_id=world.patient_coi)
    assert (dose.state, dose.recipient_id, dose.patient_id) == ("ALLOCATED", me.id, me.id)
    assert lab.get(lot).remaining_canonical == Decimal("14")
    before = counts(engine)
    with pytest.raises(StepRefused, match="it cannot be allocated to"):
        lab.allocate(lot, world.other_patient_coi)
    with pytest.raises(StepRefused, match="identifiers given do not match"):
        lab.allocate(lot, world.patient_coi, identifiers=("1980-04-12", "GHC-999999"))
    with pytest.raises(StepRefused, match="no patient"):
        from lims.identity.check import check_character

        lab.allocate(lot, "COI-2222-2222-" + check_character("22222222"), identifiers=("a", "b"))
    assert counts(engine) == before
    with pytest.raises(StepRefused, match="only 14 vial remain"):
        lab.allocate(lot, world.patient_coi, vials="15 vials")


def test_unreleased_lot_cannot_be_allocated(engine: Engine, world: World) -> None:
    lab = Lab.start(engine, world)
    lot = lab.lot(released=False)
    with pytest.raises(StepRefused, match="is LYOPHILISED; SOP DOSE-ALLOCATE v1 needs it RELEASED"):
        lab.allocate(lot, world.patient_coi)


def test_allogeneic_lot_serves_other_recipients(engine: Engine, world: World) -> None:
    lab = Lab.start(engine, world)
    with pytest.raises(RuleViolation, match="cannot be registered as autologous"):
        lab.lipoaspirate(coi=world.donor_coi)
    lipo = lab.lipoaspirate(coi=world.donor_coi, use=Use.ALLOGENEIC)
    lab.step("LIPO-INTAKE", 4, inputs=[InputBooking(lipo)], parameters=INTAKE_OK)
    assert lab.get(lipo).use == "allogeneic"


def test_idempotency_key_replays_and_detects_changed_requests(engine: Engine, world: World) -> None:
    lab = Lab.start(engine, world)
    lipo = lab.accepted_lipoaspirate("50 mL")
    params = {"emulsification_passes": 30, "filter_mesh": "500 um", "needle_gauge": 27}
    kw: dict[str, Any] = {
        "inputs": [InputBooking(lipo, "10 mL")],
        "outputs": [OutputRequest("10 mL")],
        "parameters": params,
        "idempotency_key": "flow-run-1/nanofat",
    }
    first = lab.step("NANOFAT-PREP", 5, **kw)
    before = counts(engine)
    again = lab.step("NANOFAT-PREP", 5, **kw)
    assert again.replayed and again.step.id == first.step.id
    assert [m.material_id for m in again.outputs] == [m.material_id for m in first.outputs]
    assert counts(engine) == before
    assert lab.get(lipo).remaining_canonical == Decimal("40")
    with pytest.raises(IdempotencyConflict, match="already used for a different step request"):
        lab.step("NANOFAT-PREP", 5, **{**kw, "inputs": [InputBooking(lipo, "11 mL")]})


def test_timing_and_role_rules(engine: Engine, world: World) -> None:
    from datetime import timedelta

    from lims.db import utcnow

    lab = Lab.start(engine, world)
    lipo = lab.lipoaspirate()
    with pytest.raises(RuleViolation, match="may not record process steps"):
        lab.step(
            "LIPO-INTAKE",
            4,
            inputs=[InputBooking(lipo)],
            parameters=INTAKE_OK,
            actor_id=world.auditor_id,
        )
    future = (utcnow() + timedelta(hours=2) - lab.t0).total_seconds() / 3600
    with pytest.raises(InvalidInput, match="in the future"):
        lab.step("LIPO-INTAKE", future, inputs=[InputBooking(lipo)], parameters=INTAKE_OK)
    with pytest.raises(InvalidInput, match="more than 7 days old"):
        lab.step("LIPO-INTAKE", -48, inputs=[InputBooking(lipo)], parameters=INTAKE_OK)
    with pytest.raises(StepRefused, match="recorded before the material was collected"):
        lab.step("LIPO-INTAKE", -1, inputs=[InputBooking(lipo)], parameters=INTAKE_OK)


def test_follicle_duplication_path(engine: Engine, world: World) -> None:
    lab = Lab.start(engine, world)
    with write_session(engine) as s:
        biopsy = register_material(
            s,
            kind=MaterialKind.SCALP_BIOPSY,
            patient=get_patient(s, coi_id=world.patient_coi),
            use=Use.AUTOLOGOUS,
            quantity=parse_quantity("12 mg", QuantityKind.MASS),
            actor=lab.user(s, world.tech_id),
            state="RECEIVED",
            collected_at=lab.at(0),
        ).material_id
    lab.step(
        "BIOPSY-INTAKE",
        3,
        inputs=[InputBooking(biopsy)],
        parameters=typical_parameters("BIOPSY-INTAKE", punch_diameter="2 mm"),
    )
    refused(
        lab,
        "DP-MICRODISSECT",
        "not one of microdissection",
        hours=5,
        inputs=[InputBooking(biopsy, "12 mg")],
        outputs=[OutputRequest("2e4 cells")],
        instrument_ids=lab.inst("stereo_microscope", "biosafety_cabinet"),
        reagent_lot_ids=lab.reag("culture_medium"),
        parameters={"method": "collagenase", "papillae_isolated": 40},
    )
    dp = lab.step(
        "DP-MICRODISSECT",
        5,
        inputs=[InputBooking(biopsy, "12 mg")],
        outputs=[OutputRequest("2e4 cells")],
        instrument_ids=lab.inst("stereo_microscope", "biosafety_cabinet"),
        reagent_lot_ids=lab.reag("culture_medium"),
        parameters={"method": "microdissection", "papillae_isolated": 40},
    ).outputs[0]
    assert (dp.kind, dp.passage, lab.get(biopsy).state) == ("dp_culture", 0, "MICRODISSECTED")
    lab.count(dp.material_id, 48, "6.4e5 cells")  # 5 doublings
    assert lab.get(dp.material_id).population_doublings == Decimal("5.0000")
    lab.step(
        "DP-FORMULATE",
        50,
        inputs=[InputBooking(dp.material_id)],
        instrument_ids=lab.inst("biosafety_cabinet"),
        parameters={"formulation_volume": "1 mL", "viability": "90 %"},
    )
    lab.move(dp.material_id, "QC_TESTING")
    lab.pass_qc(dp.material_id)
    lab.release(dp.material_id)
    with pytest.raises(StepRefused, match="outside 300000-7500000 cells"):
        lab.allocate(dp.material_id, world.patient_coi, vials="1e5 cells")
    dose = lab.allocate(dp.material_id, world.patient_coi, vials="5e5 cells").outputs[0]
    assert dose.quantity_kind == "cells"


def test_lineage_through_pooling_and_conservation_of_the_whole_chain(
    engine: Engine, world: World
) -> None:
    lab = Lab.start(engine, world)
    lot = lab.lot()
    dose = lab.allocate(lot, world.patient_coi).outputs[0].material_id
    with write_session(engine) as s:
        up = ancestors(s, material=get_material(s, dose))
        kinds = [r.kind for r in up]
        assert kinds == ["aape_lot", "cm_batch", "adsc_culture", "svf", "lipoaspirate"]
        assert [r.depth for r in up] == [1, 2, 3, 4, 5]
        donation = get_material(s, up[-1].material_id)
        down = descendants(s, material=donation)
        assert dose in [r.material_id for r in down]
        assert {r.kind for r in down} == {"svf", "adsc_culture", "cm_batch", "aape_lot", "dose"}
        # Chain of identity: every generation carries the donation's patient.
        assert {r.patient_id for r in down} == {donation.patient_id}
        assert {r.patient_id for r in up} == {donation.patient_id}
        report = verify_conservation(s)
        assert report.ok, report.problems
        assert report.steps_checked == 10


def test_every_sop_with_acceptance_criteria_says_what_failing_does() -> None:
    for sop in SOPS:
        has_acceptance = any(
            p.accept_min or p.accept_max or p.accept_equals is not None for p in sop.parameters
        )
        if has_acceptance:
            outcomes = [i.state_if_rejected for i in sop.inputs] + [
                o.state_if_rejected for o in sop.outputs
            ]
            assert any(outcomes), sop.code


def test_step_corrections_keep_history_and_show_on_signatures(engine: Engine, world: World) -> None:
    from lims.custody.models import CustodyEvent
    from lims.signatures.models import Meaning
    from lims.signatures.service import sign, signatures_for
    from lims.steps.corrections import (
        correct_step_parameter,
        corrections_of,
        current_parameters,
    )
    from tests.builders import PASSWORD

    lab = Lab.start(engine, world)
    lab.svf()
    lab.ensure_password(world.qa_id)
    with write_session(engine) as s:
        step = s.execute(select(Step).where(col(Step.sop_code) == "SVF-SEP")).scalar_one()
        sign(
            s,
            user=lab.user(s, world.qa_id),
            password=PASSWORD,
            meaning=Meaning.REVIEWED,
            record_type="step",
            record_id=str(step.id),
        )
        tech = lab.user(s, world.tech_id)
        with pytest.raises(InvalidInput, match="needs a reason"):
            correct_step_parameter(
                s, step=step, parameter="digestion_time", value="50 min", reason="", actor=tech
            )
        with pytest.raises(InvalidInput, match="expected a duration"):
            correct_step_parameter(
                s, step=step, parameter="digestion_time", value="50 mL", reason="typo", actor=tech
            )
        with pytest.raises(InvalidInput, match="computed by the LIMS"):
            correct_step_parameter(
                s, step=step, parameter="yield_per_ml", value="1 cell/mL", reason="typo", actor=tech
            )
        with pytest.raises(RuleViolation, match="open a deviation instead"):
            correct_step_parameter(
                s, step=step, parameter="viability", value="50 %", reason="recount", actor=tech
            )
        step_id = step.id
    with write_session(engine) as s:
        step = s.get(Step, step_id)
        assert step is not None
        correct_step_parameter(
            s,
            step=step,
            parameter="digestion_time",
            value="50 min",
            reason="timer read 50 min; 45 was typed",
            actor=lab.user(s, world.tech_id),
        )
    with read_session(engine) as s:
        step = s.get(Step, step_id)
        assert step is not None
        assert step.parameters["digestion_time"]["value"] == "45"  # the original stays
        assert current_parameters(s, step=step)["digestion_time"]["value"] == "50"
        (correction,) = corrections_of(s, step=step)
        event = s.get(CustodyEvent, correction.custody_seq)
        assert event is not None and event.reason == "timer read 50 min; 45 was typed"
        original = s.get(CustodyEvent, event.corrects_seq)
        assert original is not None and original.action == "step.recorded"
        (check,) = signatures_for(s, record_type="step", record_id=str(step_id))
        assert not check.valid  # signed before the correction: visibly no longer bound
