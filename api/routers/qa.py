"""For QA: release (four-eyes, password, meaning 'released') and donor eligibility."""

from datetime import datetime

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlmodel import Session

from api import idempotency
from api.idempotency import IdempotencyKey
from api.schemas import MaterialOut, material_out
from api.security import EngineDep, QaUser
from lims.materials.service import get_material
from lims.orders.service import patient_for
from lims.parties.models import User
from lims.qc.schemas import EligibilityIn, ReleaseIn
from lims.qc.service import record_donor_eligibility, release

router = APIRouter(prefix="/qa", tags=["qa"])


@router.post("/releases", response_model=MaterialOut)
def release_material(
    request: Request,
    engine: EngineDep,
    user: QaUser,
    body: ReleaseIn,
    key: IdempotencyKey = None,
) -> JSONResponse:
    """Sign the batch record with meaning 'released' and release the lot or SVF; refused
    unless every required result passes, deviations are closed and the signer did not
    process it."""

    def handle(session: Session, actor: User) -> object:
        material = get_material(session, body.material_id, lock=True)
        release(
            session, material=material, actor=actor, password=body.password, comment=body.comment
        )
        return material_out(session, material)

    return idempotency.respond(
        request, engine, user=user, key=key, body=body, status_code=200, handler=handle
    )


class EligibilityOut(BaseModel):
    coi_id: str
    eligible: bool
    determined_at: datetime


@router.post("/donor-eligibility", status_code=201, response_model=EligibilityOut)
def donor_eligibility(
    request: Request,
    engine: EngineDep,
    user: QaUser,
    body: EligibilityIn,
    key: IdempotencyKey = None,
) -> JSONResponse:
    """Record the donor-eligibility determination an allogeneic release needs."""

    def handle(session: Session, actor: User) -> object:
        donor = patient_for(session, actor=user, coi_id=body.coi_id)
        row = record_donor_eligibility(
            session, donor=donor, eligible=body.eligible, basis=body.basis, actor=user
        )
        # The model serialises the time as every answer does (RFC 3339, Z for UTC).
        return EligibilityOut(
            coi_id=donor.coi_id, eligible=row.eligible, determined_at=row.determined_at
        )

    return idempotency.respond(
        request, engine, user=user, key=key, body=body, status_code=201, handler=handle
    )
