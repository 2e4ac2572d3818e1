"""A demo donation, end to end through the services: intake to released lot to doses.

Used by ``lims demo`` and by ``make run`` (to fill an empty database). Steps are dated over
the past six days, as a lab would have entered them, because the SOPs check real elapsed
time (48 h of hypoxic conditioning cannot pass in a second).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine, func
from sqlmodel import Session, select

from lims.db import utcnow, write_session
from lims.dispatch.gate import DispatchRequest, dispatch_verify
from lims.errors import LimsError
from lims.lifecycle import transition
from lims.materials.kinds import MaterialKind, Use
from lims.materials.models import Material, StorageLocation
from lims.materials.service import (
    add_storage_location,
    get_material,
    hand_over,
    register_material,
)
from lims.parties.models import Clinic, DonorType, Patient, Role, User
from lims.parties.service import (
    add_instrument,
    add_reagent_lot,
    create_clinic,
    create_user,
    register_patient,
)
from lims.qc.service import enter_result, release
from lims.settings import refuse_demo_data
from lims.signatures.models import Meaning
from lims.signatures.passwords import set_password
from lims.signatures.service import sign
from lims.sops.service import sync_catalog
from lims.steps.service import InputBooking, LossBooking, OutputRequest, record_step
from lims.units import QuantityKind, parse_quantity

# The demo's staff sign with this; a real installation sets each person's own password.
DEMO_PASSWORD = "demo-release-password"
# Lot QC results inside the AAPE lot specification (lims/qc/specs.py), as the demo, the
# flows demo and the benchmarks enter them.
PASSING_AAPE_QC: dict[str, str] = {
    "sterility": "no growth",
    "endotoxin": "0.8 EU/mL",
    "mycoplasma": "not detected",
    "residual_moisture": "1.2 %",
    "protein": "412 ug/mL",
    "vegf": "705 pg/mL",
    "appearance": "conforms",
}


@dataclass
class DemoResult:
    donation: str
    lot: str
    doses: list[str]
    refusal: str
    patient: str
    other_patient: str
    steps: int = 0
    log: list[str] = field(default_factory=list)


def database_is_empty(engine: Engine) -> bool:
    with Session(engine) as session:
        return session.exec(select(func.count()).select_from(Material)).one() == 0


def run_demo(engine: Engine) -> DemoResult:
    """Build one donation from lipoaspirate to three allocated doses; return its ids."""
    refuse_demo_data()
    t0 = utcnow() - timedelta(days=6, hours=12)

    def at(hours: float) -> datetime:
        return t0 + timedelta(hours=hours)

    log: list[str] = []
    with write_session(engine) as s:
        sync_catalog(s)
        run = s.exec(select(func.count()).select_from(Patient)).one() // 2 + 1
        clinic = _get_or_create_clinic(s, "GINZA", "Ginza Hair Clinic")
        other = _get_or_create_clinic(s, "OSAKA", "Osaka Scalp Centre")
        tech = _get_or_create_user(s, "tanaka", "Yui Tanaka", Role.TECHNICIAN)
        tech2 = _get_or_create_user(s, "mori", "Aoi Mori", Role.TECHNICIAN)
        for person in (tech, tech2):
            set_password(s, user=person, password=DEMO_PASSWORD, actor=None)
        qa = _get_or_create_user(s, "sato", "Kenji Sato", Role.QA)
        patient = register_patient(
            s, clinic=clinic, identifier_1="1980-04-12", identifier_2=f"GHC-{run:06d}"
        )
        other_patient = register_patient(
            s,
            clinic=other,
            identifier_1="1975-11-02",
            identifier_2=f"OSC-{run:06d}",
            donor_type=DonorType.AUTOLOGOUS_PATIENT,
        )
        due = utcnow() + timedelta(days=180)
        instruments = {
            kind: add_instrument(
                s,
                asset_tag=f"{kind[:10].upper()}-{run}",
                instrument_type=kind,
                name=kind.replace("_", " "),
                calibration_due=due,
            ).id
            for kind in [
                "centrifuge",
                "shaking_incubator",
                "cell_counter",
                "biosafety_cabinet",
                "co2_incubator",
                "trigas_incubator",
                "freeze_dryer",
                "karl_fischer_titrator",
            ]
        }
        reagents = {
            kind: add_reagent_lot(
                s,
                reagent_type=kind,
                lot_number=f"{kind[:3].upper()}-{run}",
                supplier="demo supplier",
                expires_at=due,
            ).id
            for kind in ["collagenase", "culture_medium", "sterile_filter"]
        }
        freezer = add_storage_location(
            s,
            site="Lab 1",
            freezer="ULT-80-A",
            rack="R1",
            box=f"B{run}",
            position="A1",
            actor=tech,
            temperature=parse_quantity("-80 degC", QuantityKind.TEMPERATURE),
        )
        lipo = register_material(
            s,
            kind=MaterialKind.LIPOASPIRATE,
            patient=patient,
            use=Use.AUTOLOGOUS,
            quantity=parse_quantity("120 mL", QuantityKind.VOLUME),
            actor=tech,
            state="RECEIVED",
            collected_at=at(0),
            container="250 mL sterile canister",
        )
        log.append(f"received lipoaspirate {lipo.material_id} (120 mL)")
        result = _pipeline(
            tech2,
            s,
            tech,
            qa,
            patient,
            other_patient,
            lipo,
            instruments,
            reagents,
            freezer,
            at,
            log,
        )
    return result


def _dispatch_and_receive(
    s: Session, tech: User, tech2: User, patient: Patient, dose_id: str, log: list[str]
) -> None:
    """Label, two signatures, the dispatch gate, the courier, and the clinic's receipt."""
    dose = get_material(s, dose_id)
    transition(s, material=dose, to_state="LABELED", actor=tech)
    sign(
        s,
        user=tech,
        password=DEMO_PASSWORD,
        meaning=Meaning.PERFORMED,
        record_type="material",
        record_id=dose_id,
        comment="packed with TL-0042",
    )
    sign(
        s,
        user=tech2,
        password=DEMO_PASSWORD,
        meaning=Meaning.VERIFIED,
        record_type="material",
        record_id=dose_id,
        comment="label and identity checked",
    )
    request = DispatchRequest(
        recipient_coi=patient.coi_id,
        identifier_1=patient.identifier_1,
        identifier_2=patient.identifier_2,
        planned_use_at=utcnow() + timedelta(days=2),
        transit="20 h",
        scanned_label=dose_id,
        shipper="ColdChain Couriers",
        temperature_logger="TL-0042",
    )
    dispatch_verify(s, dose=dose, request=request, actor=tech)
    transition(s, material=dose, to_state="IN_TRANSIT", actor=tech)
    hand_over(s, material=dose, to_custodian="courier:ColdChain Couriers AWB 7781", actor=tech)
    clinic = s.get(Clinic, patient.clinic_id)
    assert clinic is not None
    hand_over(
        s,
        material=dose,
        to_custodian=f"clinic:{clinic.code}",
        actor=tech,
        reason="received 4.1 degC on arrival, logger TL-0042 within range",
    )
    transition(s, material=dose, to_state="RECEIVED_AT_CLINIC", actor=tech)
    log.append(
        f"dose {dose_id}: labelled, packed and verified by two people, dispatch gate "
        f"passed, couriered, received at clinic {clinic.code}"
    )


def _get_or_create_clinic(s: Session, code: str, name: str) -> Clinic:
    found = s.exec(select(Clinic).where(Clinic.code == code)).first()
    return found or create_clinic(s, code=code, name=name)


def _get_or_create_user(s: Session, username: str, name: str, role: Role) -> User:
    found = s.exec(select(User).where(User.username == username)).first()
    return found or create_user(s, username=username, printed_name=name, role=role)


def _pipeline(
    tech2: User,
    s: Session,
    tech: User,
    qa: User,
    patient: Patient,
    other_patient: Patient,
    lipo: Material,
    inst: dict[str, Any],
    reag: dict[str, Any],
    freezer: StorageLocation,
    at: Any,
    log: list[str],
) -> DemoResult:
    steps = 0

    def step(code: str, hours: float, **kw: Any) -> list[Material]:
        nonlocal steps
        result = record_step(s, sop_code=code, actor=tech, performed_at=at(hours), **kw)
        steps += 1
        made = ", ".join(m.material_id for m in result.outputs)
        log.append(
            f"{code}: {result.step.outcome}"
            + (f" -> {made}" if made else "")
            + (f" (warnings: {'; '.join(result.warnings)})" if result.warnings else "")
        )
        return result.outputs

    mid = lipo.material_id
    step(
        "LIPO-INTAKE",
        4,
        inputs=[InputBooking(mid)],
        parameters={
            "transport_temperature": "6 degC",
            "temperature_excursion": False,
            "received_volume": "120 mL",
            "donor_site": "abdomen",
            "identity_verified": True,
            "container_intact": True,
        },
    )
    (svf,) = step(
        "SVF-SEP",
        6,
        inputs=[InputBooking(mid, "100 mL")],
        outputs=[OutputRequest("1.9e7 cells")],
        instrument_ids=[inst["centrifuge"], inst["shaking_incubator"], inst["cell_counter"]],
        reagent_lot_ids=[reag["collagenase"]],
        parameters={
            "collagenase_type": "I",
            "collagenase_concentration": "0.1 %",
            "digestion_temperature": "37 degC",
            "digestion_time": "45 min",
            "centrifugation_rcf": "1200 x g",
            "centrifugation_time": "10 min",
            "lysis": "NH4Cl",
            "filter_mesh": "100 µm",
            "viability": "86 %",
        },
    )
    step(
        "NANOFAT-PREP",
        7,
        inputs=[InputBooking(mid, "20 mL")],
        outputs=[OutputRequest("18 mL")],
        losses=[LossBooking(mid, "2 mL", "oil and fibrous residue on the filter")],
        parameters={"emulsification_passes": 30, "filter_mesh": "500 um", "needle_gauge": 27},
    )
    cultures = step(
        "ADSC-SEED",
        8,
        inputs=[InputBooking(svf.material_id, "7e5 cells")],
        outputs=[OutputRequest("3.5e5 cells"), OutputRequest("3.5e5 cells")],
        instrument_ids=[inst["biosafety_cabinet"], inst["co2_incubator"]],
        reagent_lot_ids=[reag["culture_medium"]],
        parameters={"culture_area": "350 cm^2", "medium": "DMEM/F12 + hPL"},
    )
    first = cultures[0]
    step(
        "CULTURE-COUNT",
        52,
        inputs=[InputBooking(first.material_id)],
        instrument_ids=[inst["cell_counter"]],
        parameters={"cell_count": "2.8e6 cells", "viability": "93 %", "confluence": "85 %"},
    )
    p1 = step(
        "ADSC-PASSAGE",
        53,
        inputs=[InputBooking(first.material_id, "2.8e6 cells")],
        outputs=[OutputRequest("1.05e6 cells"), OutputRequest("1.05e6 cells")],
        losses=[LossBooking(first.material_id, "7e5 cells", "count sample and excess")],
        instrument_ids=[inst["biosafety_cabinet"], inst["cell_counter"]],
        reagent_lot_ids=[reag["culture_medium"]],
        parameters={
            "harvested_cells": "2.8e6 cells",
            "confluence": "85 %",
            "viability": "92 %",
            "culture_area": "700 cm^2",
        },
    )
    cm_batches = []
    for n, culture in enumerate(p1):
        cid = culture.material_id
        step(
            "CULTURE-COUNT",
            76 + n,
            inputs=[InputBooking(cid)],
            instrument_ids=[inst["cell_counter"]],
            parameters={"cell_count": "4.2e6 cells", "viability": "91 %", "confluence": "88 %"},
        )
        step(
            "HYPOXIA-START",
            77 + n,
            inputs=[InputBooking(cid)],
            instrument_ids=[inst["trigas_incubator"]],
            reagent_lot_ids=[reag["culture_medium"]],
            parameters={"o2_setpoint": "2 %", "medium": "serum-free"},
        )
        (cm,) = step(
            "CM-HARVEST",
            125 + n,
            inputs=[InputBooking(cid)],
            outputs=[OutputRequest(f"{60 - 5 * n} mL")],
            instrument_ids=[inst["trigas_incubator"]],
            parameters={"o2_mean": "2.1 %", "o2_log_ref": f"TRIGAS-LOG-{cid}"},
        )
        step(
            "CM-CLARIFY",
            127 + n,
            inputs=[InputBooking(cm.material_id)],
            losses=[LossBooking(cm.material_id, "1.25 mL", "filter hold-up volume")],
            instrument_ids=[inst["centrifuge"]],
            reagent_lot_ids=[reag["sterile_filter"]],
            parameters={
                "clarification_rcf": "13000 x g",
                "clarification_time": "10 min",
                "clarification_temperature": "4 degC",
                "filter_pore": "0.22 um",
                "hold": "fresh",
            },
        )
        cm_batches.append(cm)
    # 58.75 mL + 53.75 mL = 112.5 mL of CM fill 28 vials of 4 mL (112 mL); 0.5 mL is lost.
    (lot,) = step(
        "AAPE-FILL",
        130,
        inputs=[
            InputBooking(cm.material_id, q)
            for cm, q in zip(cm_batches, ["58.75 mL", "53.75 mL"], strict=True)
        ],
        outputs=[OutputRequest("28 vials")],
        losses=[LossBooking(cm_batches[1].material_id, "0.5 mL", "line dead volume")],
        instrument_ids=[inst["biosafety_cabinet"]],
        parameters={"fill_volume": "4 mL", "cryoprotectant": "trehalose"},
    )
    step(
        "AAPE-LYO",
        150,
        inputs=[InputBooking(lot.material_id)],
        instrument_ids=[inst["freeze_dryer"], inst["karl_fischer_titrator"]],
        parameters={
            "freezing_shelf_temperature": "-45 degC",
            "primary_drying_shelf_temperature": "-25 degC",
            "primary_drying_pressure": "100 mTorr",
            "secondary_drying_temperature": "40 degC",
            "secondary_drying_time": "4 h",
            "residual_moisture": "1.2 %",
            "cycle_trace_ref": "FD-CYCLE-0001",
        },
    )
    from lims.materials.service import move_material

    move_material(s, material=lot, location=freezer, actor=tech)
    transition(s, material=lot, to_state="QC_TESTING", actor=tech)
    for test, value in PASSING_AAPE_QC.items():
        enter_result(s, material=lot, test_code=test, value=value, actor=tech)
    set_password(s, user=qa, password=DEMO_PASSWORD, actor=None)
    release(
        s,
        material=lot,
        actor=qa,
        password=DEMO_PASSWORD,
        comment="all AAPE-LOT-SPEC v1 results pass",
    )
    log.append(
        f"lot {lot.material_id}: {len(PASSING_AAPE_QC)} QC results pass; released by QA "
        f"{qa.printed_name} (signature, meaning 'released')"
    )
    doses = []
    for session_number in (1, 2, 3):
        (dose,) = step(
            "DOSE-ALLOCATE",
            155,
            inputs=[InputBooking(lot.material_id, "1 vial")],
            outputs=[OutputRequest("1 vial")],
            parameters={
                "recipient_coi": patient.coi_id,
                "recipient_identifier_1": patient.identifier_1,
                "recipient_identifier_2": patient.identifier_2,
                "session_number": session_number,
                "reconstitution_volume": "4 mL",
            },
        )
        doses.append(dose.material_id)
    _dispatch_and_receive(s, tech, tech2, patient, doses[0], log)
    try:
        with s.begin_nested():
            record_step(
                s,
                sop_code="DOSE-ALLOCATE",
                actor=tech,
                inputs=[InputBooking(lot.material_id, "1 vial")],
                outputs=[OutputRequest("1 vial")],
                parameters={
                    "recipient_coi": other_patient.coi_id,
                    "recipient_identifier_1": other_patient.identifier_1,
                    "recipient_identifier_2": other_patient.identifier_2,
                    "session_number": 1,
                },
            )
        refusal = "NOT REFUSED (this is a defect)"
    except LimsError as exc:
        refusal = str(exc)
    return DemoResult(
        donation=lipo.material_id,
        lot=lot.material_id,
        doses=doses,
        refusal=refusal,
        patient=patient.coi_id,
        other_patient=other_patient.coi_id,
        steps=steps,
        log=log,
    )
