"""An allogeneic lot that reached two clinics, through the real services: Ginza's dose was
dispatched and received, Osaka's is allocated and still in the lab."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from sqlmodel import Session

from lims.db import utcnow, write_session
from lims.materials.kinds import Use
from lims.materials.service import get_material
from lims.orders.service import allocate_order, confirm_receipt, order_for, patient_for, place_order
from lims.parties.models import Role, User
from lims.parties.queries import get_clinic
from lims.parties.service import create_user, get_patient
from lims.qc.eligibility import record_donor_eligibility
from lims.recalls.models import Recall
from lims.recalls.service import open_recall
from lims.signatures.passwords import set_password
from tests.builders import PASSWORD, Lab
from tests.doses.helpers import dispatch


@dataclass
class Reached:
    lot: str
    ginza_order: str
    ginza_dose: str
    osaka_order: str
    osaka_dose: str
    osaka_desk_id: int


def place(s: Session, lab: Lab, actor: User, coi: str) -> str:
    return place_order(
        s,
        actor=actor,
        patient=patient_for(s, actor=lab.user(s, lab.world.tech_id), coi_id=coi),
        product="aape",
        dose="1 vial",
        session_number=1,
        sessions_total=6,
        planned_use_at=utcnow() + timedelta(days=3),
        ship_to="the clinic",
        prescriber="Dr. P",
        consent_ref="C-1",
    ).number


def allogeneic_lot(lab: Lab) -> str:
    world = lab.world
    culture = lab.culture(coi=world.donor_coi, use=Use.ALLOGENEIC)
    lot = lab.filled_lot(cm=lab.cm_batch("61 mL", culture=culture))
    lab.move(lot, "QC_TESTING")
    lab.pass_qc(lot)
    with write_session(lab.engine) as s:
        record_donor_eligibility(
            s,
            donor=get_patient(s, coi_id=world.donor_coi),
            eligible=True,
            actor=lab.user(s, world.qa_id),
            basis="screening negative (HIV, HBV, HCV, syphilis); history",
        )
    lab.release(lot)
    return lot


def allocate_from(lab: Lab, number: str, lot: str) -> str:
    with write_session(lab.engine) as s:
        tech = lab.user(s, lab.world.tech_id)
        return allocate_order(
            s,
            order=order_for(s, actor=tech, number=number),
            actor=tech,
            lot=get_material(s, lot),
        ).material_id


def reached(lab: Lab) -> Reached:
    """The lot, Ginza's received dose and Osaka's allocated one."""
    lot = allogeneic_lot(lab)
    with write_session(lab.engine) as s:
        osaka = create_user(
            s,
            username="osaka-recall-desk",
            printed_name="Osaka desk",
            role=Role.CLINIC,
            clinic=get_clinic(s, code="OSAKA"),
        )
        set_password(s, user=osaka, password=PASSWORD, actor=None)
        osaka_id = osaka.id or 0
        ginza_order = place(s, lab, lab.user(s, lab.world.clinic_user_id), lab.world.patient_coi)
        osaka_order = place(s, lab, osaka, lab.world.other_patient_coi)
    ginza_dose = allocate_from(lab, ginza_order, lot)
    dispatch(lab, ginza_order, ginza_dose)
    with write_session(lab.engine) as s:
        desk = lab.user(s, lab.world.clinic_user_id)
        confirm_receipt(
            s,
            order=order_for(s, actor=desk, number=ginza_order),
            actor=desk,
            received_at=utcnow(),
            temperature="-70 degC",
            received_by="Nurse K. Ito",
        )
    osaka_dose = allocate_from(lab, osaka_order, lot)
    return Reached(lot, ginza_order, ginza_dose, osaka_order, osaka_dose, osaka_id)


def recall(lab: Lab, lot: str, reason: str = "endotoxin retest out of specification") -> str:
    lab.ensure_password(lab.world.qa_id)
    with write_session(lab.engine) as s:
        row: Recall = open_recall(
            s,
            lot_material_id=lot,
            reason=reason,
            password=PASSWORD,
            actor=lab.user(s, lab.world.qa_id),
        )
        return row.number
