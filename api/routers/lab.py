"""For the lab: receive shipments, record steps against the SOP in force, QC results,
deviations, storage, allocation, dispatch, signatures."""

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Header, Path, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from sqlmodel import Session

from api import idempotency
from api.routers import lab_labels, lab_qc
from api.schemas import (
    MAX_PAGE,
    DbId,
    MaterialOut,
    OrderOut,
    Page,
    Strict,
    UtcTime,
    material_out,
    order_out,
    page,
)
from api.security import EngineDep, LabUser
from lims.db import read_session, write_session
from lims.errors import NotFound
from lims.identity.codes import parse_material_id
from lims.lifecycle import transition
from lims.materials.queries import get_position, made_in_step, materials
from lims.materials.schemas import StoragePositionDetails
from lims.materials.service import (
    add_storage_location,
    get_material,
    hand_over,
    lab_custodian,
    move_material,
)
from lims.orders.queries import orders_visible_to
from lims.orders.service import allocate_order, dispatch_order, order_for
from lims.parties.models import User
from lims.signatures.models import Meaning
from lims.signatures.service import sign
from lims.steps.models import Step
from lims.steps.queries import sops_in_force, step_input_ids
from lims.steps.schemas import StepIn
from lims.steps.service import record_step

router = APIRouter(prefix="/lab", tags=["lab"])
IdempotencyKey = Annotated[str | None, Header(alias="Idempotency-Key")]
Limit = Annotated[int, Query(ge=1, le=MAX_PAGE)]
Offset = Annotated[int, Query(ge=0, le=10_000_000)]


class ReceiveIn(Strict):
    material_id: str
    transport_note: str | None = Field(default=None, max_length=500)


@router.post("/receipts", response_model=MaterialOut)
def receive_shipment(
    request: Request, engine: EngineDep, user: LabUser, body: ReceiveIn, key: IdempotencyKey = None
) -> JSONResponse:
    """A shipment arrives: the lab takes custody and the material enters quarantine."""

    def handle(session: Session, actor: User) -> object:
        material = get_material(session, body.material_id, lock=True)
        hand_over(
            session,
            material=material,
            to_custodian=lab_custodian(),
            actor=actor,
            reason=body.transport_note or "received at the lab",
        )
        transition(session, material=material, to_state="RECEIVED", actor=actor)
        return material_out(session, material)

    return idempotency.respond(
        request, engine, user=user, key=key, body=body, status_code=200, handler=handle
    )


class StepOut(BaseModel):
    id: int
    sop: str
    outcome: str
    performed_at: datetime
    parameters: dict[str, Any]
    warnings: list[str]
    acceptance_failures: list[str]
    inputs: list[str]
    outputs: list[MaterialOut]


@router.post("/steps", status_code=201, response_model=StepOut)
def create_step(
    request: Request, engine: EngineDep, user: LabUser, body: StepIn, key: IdempotencyKey = None
) -> JSONResponse:
    """Record a process step against the SOP version in force; every problem is named."""

    def handle(session: Session, actor: User) -> object:
        inputs, outputs, losses = body.bookings()
        result = record_step(
            session,
            sop_code=body.sop_code,
            actor=actor,
            inputs=inputs,
            outputs=outputs,
            losses=losses,
            parameters=body.parameters,
            instrument_ids=body.instrument_ids,
            reagent_lot_ids=body.reagent_lot_ids,
            performed_at=body.performed_at,
            notes=body.notes,
        )
        step = result.step
        return StepOut(
            id=step.id or 0,
            sop=step.sop_code,
            outcome=step.outcome,
            performed_at=step.performed_at,
            parameters=step.parameters,
            warnings=step.warnings,
            acceptance_failures=step.acceptance_failures,
            inputs=[m.material_id for m in result.inputs],
            outputs=[material_out(session, m) for m in result.outputs],
        )

    return idempotency.respond(
        request, engine, user=user, key=key, body=body, status_code=201, handler=handle
    )


@router.get("/sops")
def list_sops(engine: EngineDep, user: LabUser) -> list[dict[str, Any]]:
    """The SOP versions in force, with their typed parameters."""
    with read_session(engine) as session:
        return [sop.model_dump(mode="json") for sop in sops_in_force(session)]


@router.get("/materials", response_model=Page[MaterialOut])
def list_materials(
    engine: EngineDep,
    user: LabUser,
    limit: Limit = 50,
    offset: Offset = 0,
    kind: Annotated[str | None, Query(max_length=24)] = None,
    state: Annotated[str | None, Query(max_length=24)] = None,
    created_after: UtcTime | None = None,
) -> dict[str, object]:
    with read_session(engine) as session:
        listing = materials(
            session,
            kind=kind,
            state=state,
            created_after=created_after,
            limit=limit,
            offset=offset,
        )
        return page(listing, lambda m: material_out(session, m))


@router.get("/materials/{material_id}", response_model=MaterialOut)
def get_one(engine: EngineDep, user: LabUser, material_id: str) -> MaterialOut:
    with read_session(engine) as session:
        return material_out(session, get_material(session, material_id))


class TransitionIn(Strict):
    to_state: str = Field(max_length=24)
    reason: str | None = Field(default=None, max_length=2000)


@router.post("/materials/{material_id}/transitions", response_model=MaterialOut)
def move_state(
    engine: EngineDep, user: LabUser, material_id: str, body: TransitionIn
) -> MaterialOut:
    """Change state as the kind's state machine allows (refusals say why)."""
    with write_session(engine) as session:
        material = get_material(session, material_id, lock=True)
        transition(
            session,
            material=material,
            to_state=body.to_state.upper(),
            actor=user,
            reason=body.reason,
        )
        return material_out(session, material)


class LocationIn(StoragePositionDetails):
    """A new storage position."""


class LocationOut(BaseModel):
    id: int
    label: str


@router.post("/storage-locations", status_code=201, response_model=LocationOut)
def new_location(engine: EngineDep, user: LabUser, body: LocationIn) -> LocationOut:
    with write_session(engine) as session:
        loc = add_storage_location(
            session,
            site=body.site,
            freezer=body.freezer,
            rack=body.rack,
            box=body.box,
            position=body.position,
            actor=user,
            temperature=body.temperature,
        )
        return LocationOut(id=loc.id or 0, label=loc.label())


class MoveIn(Strict):
    location_id: DbId


@router.post("/materials/{material_id}/moves", response_model=MaterialOut)
def move(engine: EngineDep, user: LabUser, material_id: str, body: MoveIn) -> MaterialOut:
    """Put a material in a storage position (one material per position)."""
    with write_session(engine) as session:
        location = get_position(session, location_id=body.location_id)
        material = get_material(session, material_id, lock=True)
        move_material(session, material=material, location=location, actor=user)
        return material_out(session, material)


@router.get("/orders", response_model=Page[OrderOut])
def orders(
    engine: EngineDep,
    user: LabUser,
    limit: Limit = 50,
    offset: Offset = 0,
    status: Annotated[str | None, Query(max_length=16)] = None,
) -> dict[str, object]:
    with read_session(engine) as session:
        listing = orders_visible_to(session, actor=user, status=status, limit=limit, offset=offset)
        return page(listing, lambda o: order_out(session, o))


class AllocateIn(Strict):
    lot_id: str | None = Field(default=None, description="a specific lot; default: FEFO")


@router.post("/orders/{number}/allocation", response_model=OrderOut)
def allocate(
    request: Request,
    engine: EngineDep,
    user: LabUser,
    number: str,
    body: AllocateIn,
    key: IdempotencyKey = None,
) -> JSONResponse:
    """Allocate released stock (first expiry first out) with identity checked."""

    def handle(session: Session, actor: User) -> object:
        order = order_for(session, actor=actor, number=number)
        lot = get_material(session, body.lot_id) if body.lot_id else None
        allocate_order(session, order=order, actor=actor, lot=lot)
        return order_out(session, order_for(session, actor=actor, number=number))

    return idempotency.respond(
        request, engine, user=user, key=key, body=body, status_code=200, handler=handle
    )


class DispatchIn(Strict):
    scanned_label: str = Field(max_length=40)
    shipper: str = Field(max_length=100)
    temperature_logger: str = Field(max_length=64)
    transit: Any = Field(examples=["18 h"])


@router.post("/orders/{number}/dispatch", response_model=OrderOut)
def dispatch(
    request: Request,
    engine: EngineDep,
    user: LabUser,
    number: str,
    body: DispatchIn,
    key: IdempotencyKey = None,
) -> JSONResponse:
    """Run the dispatch gate (every failed check is named) and hand over to the courier."""

    def handle(session: Session, actor: User) -> object:
        order = order_for(session, actor=actor, number=number, lock=True)
        dispatch_order(
            session,
            order=order,
            actor=actor,
            scanned_label=body.scanned_label,
            shipper=body.shipper,
            temperature_logger=body.temperature_logger,
            transit=body.transit,
        )
        return order_out(session, order)

    return idempotency.respond(
        request, engine, user=user, key=key, body=body, status_code=200, handler=handle
    )


class SignIn(Strict):
    password: str = Field(max_length=256, description="required every time (Part 11)")
    meaning: Meaning
    record_type: str = Field(max_length=32, examples=["material", "step", "batch_record"])
    record_id: str = Field(max_length=64)
    comment: str | None = Field(default=None, max_length=2000)


class SignatureOut(BaseModel):
    id: int
    printed_name: str
    meaning: str
    record_type: str
    record_id: str
    record_sha256: str
    signed_at: datetime


@router.post("/signatures", status_code=201, response_model=SignatureOut)
def new_signature(engine: EngineDep, user: LabUser, body: SignIn) -> SignatureOut:
    """Sign the current version of a record; the password is asked every time."""
    record_id = (
        parse_material_id(body.record_id)
        if body.record_type in ("material", "batch_record")
        else body.record_id
    )
    with write_session(engine) as session:
        actor = session.get(User, user.id)
        assert actor is not None
        s = sign(
            session,
            user=actor,
            password=body.password,
            meaning=body.meaning,
            record_type=body.record_type,
            record_id=record_id,
            comment=body.comment,
        )
        return SignatureOut(
            id=s.id or 0,
            printed_name=s.printed_name,
            meaning=s.meaning,
            record_type=s.record_type,
            record_id=s.record_id,
            record_sha256=s.record_sha256,
            signed_at=s.signed_at,
        )


@router.get("/steps/{step_id}", response_model=StepOut)
def get_step(
    engine: EngineDep, user: LabUser, step_id: Annotated[int, Path(ge=1, le=2_147_483_647)]
) -> StepOut:
    with read_session(engine) as session:
        step = session.get(Step, step_id)
        if step is None:
            raise NotFound(f"no step {step_id}")
        inputs = step_input_ids(session, step_id=step_id)
        outputs = made_in_step(session, step_id=step_id)
        return StepOut(
            id=step_id,
            sop=step.sop_code,
            outcome=step.outcome,
            performed_at=step.performed_at,
            parameters=step.parameters,
            warnings=step.warnings,
            acceptance_failures=step.acceptance_failures,
            inputs=inputs,
            outputs=[material_out(session, m) for m in outputs],
        )


# QC results and deviations, and labels, under the same /lab prefix.
router.include_router(lab_qc.router)
router.include_router(lab_labels.router)
