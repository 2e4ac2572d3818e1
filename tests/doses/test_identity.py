"""An allogeneic dose names its recipient and its donor; the gate's words agree."""

from datetime import timedelta

from sqlalchemy import Engine

from api.schemas import material_out
from lims.db import utcnow, write_session
from lims.dispatch.gate import DispatchRequest, check_dispatch
from lims.materials.kinds import Use
from lims.materials.service import get_material
from lims.parties.service import get_patient
from lims.qc.eligibility import record_donor_eligibility
from tests.builders import Lab
from tests.conftest import World


def test_an_allogeneic_dose_names_recipient_and_donor(engine: Engine, world: World) -> None:
    lab = Lab.start(engine, world)
    culture = lab.culture(coi=world.donor_coi, use=Use.ALLOGENEIC)
    lot = lab.filled_lot(cm=lab.cm_batch("61 mL", culture=culture))
    lab.move(lot, "QC_TESTING")
    lab.pass_qc(lot)
    with write_session(engine) as s:
        record_donor_eligibility(
            s,
            donor=get_patient(s, coi_id=world.donor_coi),
            eligible=True,
            actor=lab.user(s, world.qa_id),
            basis="screening negative (HIV, HBV, HCV, syphilis); history",
        )
    lab.release(lot)
    (dose,) = lab.allocate(lot, world.patient_coi).outputs
    with write_session(engine) as s:
        out = material_out(s, get_material(s, dose.material_id))
        assert out.recipient_coi == world.patient_coi
        assert out.donor_coi == world.donor_coi == out.patient_coi
        patient = get_patient(s, coi_id=world.patient_coi)
        request = DispatchRequest(
            recipient_coi=world.donor_coi,  # the donor's id where the recipient's belongs
            identifier_1=patient.identifier_1,
            identifier_2=patient.identifier_2,
            planned_use_at=utcnow() + timedelta(days=3),
            transit="18 h",
            scanned_label=dose.material_id,
            shipper="ColdChain",
            temperature_logger="TL-1",
        )
        failures = check_dispatch(s, dose=get_material(s, dose.material_id), request=request)
    assert f"identity: the order is for {world.donor_coi}, the dose is for {world.patient_coi}" in (
        failures
    )
