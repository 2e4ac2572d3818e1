"""Each stage flow's happy path, through Prefect's engine, on the test database."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from sqlalchemy import Engine

from flows.conditioning import cm_harvest, hypoxia_start
from flows.culture import culture_passage, culture_seeding
from flows.dispatch import clinic_receipt, dose_allocation, dose_dispatch
from flows.follicle import dp_culture, follicle_duplication
from flows.intake import lipoaspirate_intake
from flows.lot import lot_fill_and_lyophilisation
from flows.qc import lot_qc
from flows.svf import svf_separation
from lims.db import utcnow, write_session
from lims.signatures.models import Meaning
from lims.signatures.service import sign
from lims.sops.parameters import typical_parameters
from tests.builders import PASSING, PASSWORD, Lab
from tests.conftest import World
from tests.flows import requests as rq
from tests.flows.conftest import run


def test_intake_and_svf_separation_with_nanofat(engine: Engine, world: World, db_url: str) -> None:
    lab = Lab.start(engine, world)
    intake = run(
        lipoaspirate_intake, request=rq.intake(lab, world.patient_coi), database_url=db_url
    )
    assert (intake.state, intake.outcome, intake.time_since_harvest) == (
        "ACCEPTED",
        "accepted",
        "4 h",
    )
    result = run(svf_separation, request=rq.svf(lab, intake.lipoaspirate), database_url=db_url)
    assert (result.state, result.outcome) == ("QC_PASSED", "accepted")
    assert result.yield_per_ml == "190000 cell/mL"
    assert result.nanofat is not None and lab.get(result.nanofat).kind == "nanofat"
    assert result.lipoaspirate_state == "CONSUMED"


def test_svf_with_failing_viability_is_rejected_not_refused(
    engine: Engine, world: World, db_url: str
) -> None:
    lab = Lab.start(engine, world)
    lipo = lab.accepted_lipoaspirate()
    result = run(
        svf_separation,
        request=rq.svf(lab, lipo, viability="58 %", nanofat=False),
        database_url=db_url,
    )
    assert (result.state, result.outcome) == ("QC_FAILED", "rejected")
    assert "below the acceptance limit 70 %" in result.acceptance_failures[0]


def test_culture_seeding_and_passage(engine: Engine, world: World, db_url: str) -> None:
    lab = Lab.start(engine, world)
    svf = lab.svf()
    seeded = run(
        culture_seeding,
        request={
            **rq.when(lab, 8),
            "svf": svf,
            "taken": "7e5 cells",
            "flasks": ["3.5e5 cells", "3.5e5 cells"],
            "instruments": rq.inst("biosafety_cabinet", "co2_incubator"),
            "reagent_lots": rq.reag("culture_medium"),
            "parameters": typical_parameters("ADSC-SEED"),
        },
        database_url=db_url,
    )
    assert len(seeded.cultures) == 2 and seeded.seeding_density == "2000 cell/cm**2"
    first = seeded.cultures[0]
    passaged = run(
        culture_passage,
        request={
            "culture": first,
            "count": rq.count(lab, 52, "2.8e6 cells"),
            "passage": {
                **rq.when(lab, 53),
                "taken": "2.8e6 cells",
                "flasks": ["1.05e6 cells", "1.05e6 cells"],
                "loss": {"quantity": "7e5 cells", "reason": "count sample and excess"},
                "instruments": rq.inst("biosafety_cabinet", "cell_counter"),
                "reagent_lots": rq.reag("culture_medium"),
                "parameters": typical_parameters("ADSC-PASSAGE", harvested_cells="2.8e6 cells"),
            },
        },
        database_url=db_url,
    )
    assert passaged.culture_state == "PASSAGED" and passaged.population_doublings == "3"
    children = [lab.get(c) for c in passaged.children]
    assert [(c.passage, c.state) for c in children] == [(1, "SEEDED"), (1, "SEEDED")]


def test_hypoxia_start_then_cm_harvest_and_clarification(
    engine: Engine, world: World, db_url: str
) -> None:
    lab = Lab.start(engine, world)
    culture = lab.culture()
    started = run(
        hypoxia_start,
        request={
            **rq.when(lab, 51),
            "culture": culture,
            "count": rq.count(lab, 50, "2.8e6 cells"),
            "instruments": rq.inst("trigas_incubator"),
            "reagent_lots": rq.reag("culture_medium"),
            "parameters": typical_parameters("HYPOXIA-START"),
        },
        database_url=db_url,
    )
    assert started.state == "CONDITIONING"
    harvested = run(
        cm_harvest,
        request={
            **rq.when(lab, 99),
            "culture": culture,
            "volume": "60 mL",
            "instruments": rq.inst("trigas_incubator"),
            "parameters": typical_parameters("CM-HARVEST"),
            "clarification": {
                **rq.when(lab, 100),
                "loss": {"quantity": "1.25 mL", "reason": "filter hold-up volume"},
                "instruments": rq.inst("centrifuge"),
                "reagent_lots": rq.reag("sterile_filter"),
                "parameters": typical_parameters("CM-CLARIFY"),
            },
        },
        database_url=db_url,
    )
    assert (harvested.state, harvested.conditioning_duration) == ("CLARIFIED", "48 h")
    assert harvested.culture_state == "HARVESTED"
    assert lab.get(harvested.cm_batch).remaining_canonical == Decimal("58.75")


def test_lot_fill_lyophilisation_and_storage(engine: Engine, world: World, db_url: str) -> None:
    lab = Lab.start(engine, world)
    cm = lab.cm_batch("61 mL")
    result = run(lot_fill_and_lyophilisation, request=rq.lot_fill(lab, cm), database_url=db_url)
    assert (result.state, result.lyophilisation, result.vials) == (
        "LYOPHILISED",
        "accepted",
        "15 vials",
    )
    assert result.location == "Lab 1/ULT-80-A/R1/B1/A1"
    assert lab.get(cm).state == "POOLED_INTO_LOT"


def test_lot_qc_waits_for_results_and_leaves_release_to_qa(
    engine: Engine, world: World, db_url: str
) -> None:
    lab = Lab.start(engine, world)
    lot = lab.lot(released=False)
    tests = ["sterility", "endotoxin", "mycoplasma", "residual_moisture", "protein", "appearance"]
    tested_at = utcnow().isoformat()

    def entries(codes: list[str]) -> list[dict[str, str]]:
        return [
            {
                "test": code,
                "value": str(PASSING[code]),
                "tested_at": tested_at,
                "entered_by": "mori",
            }
            for code in codes
        ]

    first = run(
        lot_qc,
        request={"lot": lot, "started_by": "tanaka", "results": entries(tests[1:])},
        database_url=db_url,
    )
    assert (first.state, first.missing) == ("QC_TESTING", ["Sterility"])
    assert first.status == "waiting for results: Sterility"
    done = run(
        lot_qc,
        request={"lot": lot, "started_by": "tanaka", "results": entries(tests)},
        database_url=db_url,
    )
    assert done.status.startswith("all results in and passing: awaiting QA release")
    assert done.state == "QC_TESTING"  # the flow never releases
    assert lab.release(lot).state == "RELEASED"  # a QA person does, with a signature


def test_out_of_spec_result_puts_the_lot_on_hold(engine: Engine, world: World, db_url: str) -> None:
    lab = Lab.start(engine, world)
    lot = lab.lot(released=False)
    status = run(
        lot_qc,
        request={
            "lot": lot,
            "started_by": "tanaka",
            "results": [
                {
                    "test": "endotoxin",
                    "value": "120 EU/mL",
                    "tested_at": utcnow().isoformat(),
                    "entered_by": "mori",
                }
            ],
        },
        database_url=db_url,
    )
    assert status.state == "ON_HOLD"
    assert status.status.startswith("on hold: DV-")
    assert "above the limit 87.5 EU/mL" in status.status


def test_follicle_duplication_and_dp_culture(engine: Engine, world: World, db_url: str) -> None:
    lab = Lab.start(engine, world)
    result = run(
        follicle_duplication,
        request={
            "patient": world.patient_coi,
            "weight": "12 mg",
            "collected_at": lab.at(0).isoformat(),
            "shipment_ref": "BIOPSY-1",
            "received_by": "tanaka",
            "inspection": {
                **rq.when(lab, 3),
                "parameters": typical_parameters("BIOPSY-INTAKE", punch_diameter="2 mm"),
            },
            "microdissection": {
                **rq.when(lab, 5),
                "taken": "12 mg",
                "flasks": ["2e4 cells"],
                "instruments": rq.inst("stereo_microscope", "biosafety_cabinet"),
                "reagent_lots": rq.reag("culture_medium"),
                "parameters": typical_parameters("DP-MICRODISSECT"),
            },
        },
        database_url=db_url,
    )
    assert (result.state, result.time_since_biopsy) == ("MICRODISSECTED", "3 h")
    (dp,) = result.dp_cultures
    grown = run(
        dp_culture,
        request={
            "culture": dp,
            "count": rq.count(lab, 48, "6.4e5 cells"),
            "formulation": {
                **rq.when(lab, 50),
                "instruments": rq.inst("biosafety_cabinet"),
                "parameters": typical_parameters(
                    "DP-FORMULATE", formulation_volume="1 mL", viability="90 %"
                ),
            },
        },
        database_url=db_url,
    )
    assert (grown.state, grown.population_doublings) == ("FORMULATED", "5")


def _sign_for_dispatch(lab: Lab, world: World, dose: str) -> None:
    """The packer and a second verifier sign the labelled dose (people, not the flow)."""
    for user_id, meaning in (
        (world.tech_id, Meaning.PERFORMED),
        (world.tech2_id, Meaning.VERIFIED),
    ):
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


def order_request(world: World, session_number: int = 1) -> dict[str, object]:
    return {
        "patient": world.patient_coi,
        "placed_by": "ginza-desk",
        "dose": "8 mL",
        "session_number": session_number,
        "sessions_total": 6,
        # Sessions four weeks apart, inside AAPE's 3-5 week interval (the course rule).
        "planned_use_at": (
            utcnow() + timedelta(days=3) + timedelta(weeks=4 * (session_number - 1))
        ).isoformat(),
        "ship_to": "Ginza Hair Clinic, 4-1 Ginza, Tokyo",
        "prescriber": "Dr. H. Fukuoka",
        "consent_ref": "CONSENT-2026-0042",
    }


def test_dose_allocation_dispatch_and_receipt(engine: Engine, world: World, db_url: str) -> None:
    lab = Lab.start(engine, world)
    lot = lab.lot()
    allocated = run(
        dose_allocation,
        request={"order": order_request(world), "allocated_by": "tanaka"},
        database_url=db_url,
    )
    assert allocated.state == "LABELED"
    assert lab.get(lot).remaining_canonical == Decimal("13")  # 8 mL = 2 vials of 4 mL
    _sign_for_dispatch(lab, world, allocated.dose)
    shipped = run(
        dose_dispatch,
        request={
            "order": allocated.order,
            "scanned_label": allocated.dose,
            "shipper": "ColdChain Couriers",
            "temperature_logger": "TL-0042",
            "transit": "20 h",
            "dispatched_by": "tanaka",
        },
        database_url=db_url,
    )
    assert (shipped.state, shipped.custodian) == ("IN_TRANSIT", "courier:ColdChain Couriers")
    received = run(
        clinic_receipt,
        request={
            "order": allocated.order,
            "received_at": utcnow().isoformat(),
            "temperature": "4.1 degC",
            "received_by": "Nurse K. Ito",
            "confirmed_by": "ginza-desk",
        },
        database_url=db_url,
    )
    assert (received.state, received.custodian) == ("RECEIVED_AT_CLINIC", "clinic:GINZA")


def test_dispatch_gate_refusal_fails_the_run_with_its_reasons(
    engine: Engine, world: World, db_url: str
) -> None:
    lab = Lab.start(engine, world)
    lab.lot()
    allocated = run(
        dose_allocation,
        request={"order": order_request(world), "allocated_by": "tanaka"},
        database_url=db_url,
    )
    state = run(
        dose_dispatch,
        request={
            "order": allocated.order,
            "scanned_label": allocated.dose,
            "shipper": "ColdChain Couriers",
            "temperature_logger": "TL-0042",
            "transit": "20 h",
            "dispatched_by": "tanaka",
        },
        database_url=db_url,
        return_state=True,
    )
    assert state.is_failed()
    assert "no packer signature" in (state.message or "")
    assert lab.get(allocated.dose).state == "LABELED"
