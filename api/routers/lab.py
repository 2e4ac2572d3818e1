"""For the lab: receive shipments, record steps against the SOP in force, QC results,
deviations, storage, allocation, dispatch, signatures."""

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from sqlmodel import Session

from api import idempotency
from api.enums import MaterialKindFilter, MaterialStateFilter, MaterialStateName
from api.idempotency import IdempotencyKey
from api.routers import lab_dispatch, lab_labels, lab_qc
from api.schemas import DbId, MaterialOut, Page, Paging, Strict, UtcTime, material_out, page
from api.security import EngineDep, LabUser
from lims.db import read_session
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
from lims.parties.models import User
from lims.signatures.models import Meaning
from lims.signatures.service import sign
from lims.sops.spec import SopDefinition
from lims.steps.models import Step
from lims.steps.queries import sops_in_force, step_input_ids
from lims.steps.schemas import StepIn
from lims.steps.service import record_step

router = APIRouter(prefix="/lab", tags=["lab"])


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


@router.get("/sops", response_model=list[SopDefinition])
def list_sops(engine: EngineDep, user: LabUser) -> list[SopDefinition]:
    """The SOP versions in force, with their typed parameters."""
    with read_session(engine) as session:
        return sops_in_force(session)


@router.get("/materials", response_model=Page[MaterialOut])
def list_materials(
    engine: EngineDep,
    user: LabUser,
    paging: Paging,
    kind: Annotated[MaterialKindFilter | None, Query(max_length=24)] = None,
    state: Annotated[MaterialStateFilter | None, Query(max_length=24)] = None,
    created_after: UtcTime | None = None,
) -> dict[str, object]:
    """Materials, oldest first, filtered by kind, state and creation time."""
    with read_session(engine) as session:
        listing = materials(
            session,
            kind=kind,
            state=state,
            created_after=created_after,
            **paging.window(),
        )
        return page(listing, lambda m: material_out(session, m))


@router.get("/materials/{material_id}", response_model=MaterialOut)
def get_one(engine: EngineDep, user: LabUser, material_id: str) -> MaterialOut:
    """One material by its id (as printed or scanned; the check character is verified)."""
    with read_session(engine) as session:
        return material_out(session, get_material(session, material_id))


class TransitionIn(Strict):
    # Documented as the enum; an unknown or unreachable state is the machine's 409, which
    # names the states reachable from here.
    to_state: MaterialStateName = Field(max_length=24)
    reason: str | None = Field(default=None, max_length=2000)


@router.post("/materials/{material_id}/transitions", response_model=MaterialOut)
def move_state(
    request: Request,
    engine: EngineDep,
    user: LabUser,
    material_id: str,
    body: TransitionIn,
    key: IdempotencyKey = None,
) -> JSONResponse:
    """Change state as the kind's state machine allows (refusals say why)."""

    def handle(session: Session, actor: User) -> object:
        material = get_material(session, material_id, lock=True)
        transition(
            session,
            material=material,
            to_state=body.to_state.upper(),
            actor=actor,
            reason=body.reason,
        )
        return material_out(session, material)

    return idempotency.respond(
        request, engine, user=user, key=key, body=body, status_code=200, handler=handle
    )


class LocationIn(StoragePositionDetails):
    """A new storage position."""


class LocationOut(BaseModel):
    id: int
    label: str


@router.post("/storage-locations", status_code=201, response_model=LocationOut)
def new_location(
    request: Request,
    engine: EngineDep,
    user: LabUser,
    body: LocationIn,
    key: IdempotencyKey = None,
) -> JSONResponse:
    """Add a storage position (site, freezer, rack, box, position)."""

    def handle(session: Session, actor: User) -> object:
        loc = add_storage_location(
            session,
            site=body.site,
            freezer=body.freezer,
            rack=body.rack,
            box=body.box,
            position=body.position,
            actor=actor,
            temperature=body.temperature,
        )
        return LocationOut(id=loc.id or 0, label=loc.label())

    return idempotency.respond(
        request, engine, user=user, key=key, body=body, status_code=201, handler=handle
    )


class MoveIn(Strict):
    location_id: DbId


@router.post("/materials/{material_id}/moves", response_model=MaterialOut)
def move(
    request: Request,
    engine: EngineDep,
    user: LabUser,
    material_id: str,
    body: MoveIn,
    key: IdempotencyKey = None,
) -> JSONResponse:
    """Put a material in a storage position (one material per position)."""

    def handle(session: Session, actor: User) -> object:
        location = get_position(session, location_id=body.location_id)
        material = get_material(session, material_id, lock=True)
        move_material(session, material=material, location=location, actor=actor)
        return material_out(session, material)

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
def new_signature(
    request: Request,
    engine: EngineDep,
    user: LabUser,
    body: SignIn,
    key: IdempotencyKey = None,
) -> JSONResponse:
    """Sign the current version of a record; the password is asked every time (a retry with
    the same Idempotency-Key returns the first signature instead of signing twice)."""
    record_id = (
        parse_material_id(body.record_id)
        if body.record_type in ("material", "batch_record")
        else body.record_id
    )

    def handle(session: Session, actor: User) -> object:
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

    return idempotency.respond(
        request, engine, user=user, key=key, body=body, status_code=201, handler=handle
    )


@router.get("/steps/{step_id}", response_model=StepOut)
def get_step(
    engine: EngineDep, user: LabUser, step_id: Annotated[int, Path(ge=1, le=2_147_483_647)]
) -> StepOut:
    """One recorded process step: its SOP version, inputs, outputs, losses and parameters."""
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
router.include_router(lab_dispatch.router)
router.include_router(lab_qc.router)
router.include_router(lab_labels.router)
