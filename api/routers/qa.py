"""For QA: release (four-eyes, password, meaning 'released') and donor eligibility."""

from fastapi import APIRouter

from api.schemas import MaterialOut, material_out
from api.security import EngineDep, QaUser
from lims.db import write_session
from lims.materials.service import get_material
from lims.orders.service import patient_for
from lims.parties.models import User
from lims.qc.schemas import EligibilityIn, ReleaseIn
from lims.qc.service import record_donor_eligibility, release

router = APIRouter(prefix="/qa", tags=["qa"])


@router.post("/releases", response_model=MaterialOut)
def release_material(engine: EngineDep, user: QaUser, body: ReleaseIn) -> MaterialOut:
    """Sign the batch record with meaning 'released' and release the lot or SVF; refused
    unless every required result passes, deviations are closed and the signer did not
    process it."""
    with write_session(engine) as session:
        actor = session.get(User, user.id)
        assert actor is not None
        material = get_material(session, body.material_id, lock=True)
        release(
            session, material=material, actor=actor, password=body.password, comment=body.comment
        )
        return material_out(session, material)


@router.post("/donor-eligibility", status_code=201)
def donor_eligibility(engine: EngineDep, user: QaUser, body: EligibilityIn) -> dict[str, object]:
    """Record the donor-eligibility determination an allogeneic release needs."""
    with write_session(engine) as session:
        donor = patient_for(session, actor=user, coi_id=body.coi_id)
        row = record_donor_eligibility(
            session, donor=donor, eligible=body.eligible, basis=body.basis, actor=user
        )
        return {
            "coi_id": donor.coi_id,
            "eligible": row.eligible,
            "determined_at": row.determined_at.isoformat(),
        }
