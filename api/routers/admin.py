"""For administrators: clinics, users (with passwords), instruments, reagent lots."""

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlmodel import Session

from api import idempotency
from api.idempotency import IdempotencyKey
from api.schemas import UserOut
from api.security import AdminUser, EngineDep
from lims.parties.models import Role, User
from lims.parties.queries import get_clinic
from lims.parties.schemas import ClinicIn, InstrumentIn, ReagentIn, UserIn
from lims.parties.service import add_instrument, add_reagent_lot, create_clinic, create_user
from lims.signatures.passwords import set_password

router = APIRouter(prefix="/admin", tags=["admin"])


class ClinicOut(BaseModel):
    code: str
    name: str


@router.post("/clinics", status_code=201, response_model=ClinicOut)
def new_clinic(
    request: Request,
    engine: EngineDep,
    user: AdminUser,
    body: ClinicIn,
    key: IdempotencyKey = None,
) -> JSONResponse:
    """Register a clinic (code and name); its desk accounts are then made with createUser."""

    def handle(session: Session, actor: User) -> object:
        clinic = create_clinic(session, code=body.code, name=body.name, actor=user)
        return {"code": clinic.code, "name": clinic.name}

    return idempotency.respond(
        request, engine, user=user, key=key, body=body, status_code=201, handler=handle
    )


@router.post("/users", status_code=201, response_model=UserOut)
def new_user(
    request: Request,
    engine: EngineDep,
    user: AdminUser,
    body: UserIn,
    key: IdempotencyKey = None,
) -> JSONResponse:
    """Create a staff or clinic-desk account with the password the administrator sets."""

    def handle(session: Session, actor: User) -> object:
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

    return idempotency.respond(
        request, engine, user=user, key=key, body=body, status_code=201, handler=handle
    )


class CreatedOut(BaseModel):
    id: int


@router.post("/instruments", status_code=201, response_model=CreatedOut)
def new_instrument(
    request: Request,
    engine: EngineDep,
    user: AdminUser,
    body: InstrumentIn,
    key: IdempotencyKey = None,
) -> JSONResponse:
    """Register an instrument with its calibration due date (steps check it)."""

    def handle(session: Session, actor: User) -> object:
        inst = add_instrument(
            session,
            asset_tag=body.asset_tag,
            instrument_type=body.instrument_type,
            name=body.name,
            calibration_due=body.calibration_due,
            actor=user,
        )
        return CreatedOut(id=inst.id or 0)

    return idempotency.respond(
        request, engine, user=user, key=key, body=body, status_code=201, handler=handle
    )


@router.post("/reagent-lots", status_code=201, response_model=CreatedOut)
def new_reagent_lot(
    request: Request,
    engine: EngineDep,
    user: AdminUser,
    body: ReagentIn,
    key: IdempotencyKey = None,
) -> JSONResponse:
    """Register a reagent lot with its expiry (steps refuse an expired lot)."""

    def handle(session: Session, actor: User) -> object:
        lot = add_reagent_lot(
            session,
            reagent_type=body.reagent_type,
            lot_number=body.lot_number,
            supplier=body.supplier,
            expires_at=body.expires_at,
            actor=user,
        )
        return CreatedOut(id=lot.id or 0)

    return idempotency.respond(
        request, engine, user=user, key=key, body=body, status_code=201, handler=handle
    )
