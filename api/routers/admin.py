"""For administrators: clinics, users (with passwords), instruments, reagent lots."""

from fastapi import APIRouter
from pydantic import BaseModel

from api.schemas import UserOut
from api.security import AdminUser, EngineDep
from lims.db import write_session
from lims.parties.models import Role
from lims.parties.queries import get_clinic
from lims.parties.schemas import ClinicIn, InstrumentIn, ReagentIn, UserIn
from lims.parties.service import add_instrument, add_reagent_lot, create_clinic, create_user
from lims.signatures.passwords import set_password

router = APIRouter(prefix="/admin", tags=["admin"])


@router.post("/clinics", status_code=201)
def new_clinic(engine: EngineDep, user: AdminUser, body: ClinicIn) -> dict[str, str]:
    with write_session(engine) as session:
        clinic = create_clinic(session, code=body.code, name=body.name, actor=user)
        return {"code": clinic.code, "name": clinic.name}


@router.post("/users", status_code=201, response_model=UserOut)
def new_user(engine: EngineDep, user: AdminUser, body: UserIn) -> UserOut:
    with write_session(engine) as session:
        clinic = get_clinic(session, code=body.clinic_code) if body.clinic_code else None
        created = create_user(
            session,
            username=body.username,
            printed_name=body.printed_name,
            role=Role(body.role),
            clinic=clinic,
            actor=user,
        )
        set_password(session, user=created, password=body.password, actor=user)
        return UserOut(
            username=created.username,
            printed_name=created.printed_name,
            role=created.role,
            clinic=clinic.code if clinic else None,
        )


class CreatedOut(BaseModel):
    id: int


@router.post("/instruments", status_code=201, response_model=CreatedOut)
def new_instrument(engine: EngineDep, user: AdminUser, body: InstrumentIn) -> CreatedOut:
    with write_session(engine) as session:
        inst = add_instrument(
            session,
            asset_tag=body.asset_tag,
            instrument_type=body.instrument_type,
            name=body.name,
            calibration_due=body.calibration_due,
            actor=user,
        )
        return CreatedOut(id=inst.id or 0)


@router.post("/reagent-lots", status_code=201, response_model=CreatedOut)
def new_reagent_lot(engine: EngineDep, user: AdminUser, body: ReagentIn) -> CreatedOut:
    with write_session(engine) as session:
        lot = add_reagent_lot(
            session,
            reagent_type=body.reagent_type,
            lot_number=body.lot_number,
            supplier=body.supplier,
            expires_at=body.expires_at,
            actor=user,
        )
        return CreatedOut(id=lot.id or 0)
