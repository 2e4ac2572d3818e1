"""For clinics: patients, harvests, dose orders, receipt, API keys. Everything is scoped to
the caller's clinic; another clinic's ids are answered with 404."""

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse
from sqlmodel import Session

from api import idempotency
from api.enums import OrderStatusFilter
from api.idempotency import IdempotencyKey
from api.schemas import (
    ApiKeyIn,
    ApiKeyOut,
    HarvestIn,
    MaterialOut,
    OrderIn,
    OrderOut,
    Page,
    Paging,
    PatientIn,
    PatientOut,
    ReasonIn,
    ReceiptIn,
    TimelineEventOut,
    material_out,
    order_out,
    page,
    patient_out,
)
from api.security import ClinicUser, EngineDep
from lims.auth.service import api_keys_of, create_api_key, revoke_api_key
from lims.db import read_session, write_session
from lims.materials.kinds import MaterialKind, Use
from lims.materials.service import hand_over, register_material
from lims.orders.queries import orders_visible_to
from lims.orders.service import cancel_order, confirm_receipt, order_for, patient_for, place
from lims.orders.timeline import timeline_of
from lims.parties.models import Clinic, DonorType, User
from lims.parties.queries import patients_visible_to
from lims.parties.service import register_patient

router = APIRouter(prefix="/clinic", tags=["clinic"])


def _clinic(session: Session, actor: User) -> Clinic:
    clinic = session.get(Clinic, actor.clinic_id)
    assert clinic is not None  # a clinic account always has its clinic
    return clinic


@router.post("/patients", status_code=201, response_model=PatientOut)
def create_patient(
    request: Request,
    engine: EngineDep,
    user: ClinicUser,
    body: PatientIn,
    key: IdempotencyKey = None,
) -> JSONResponse:
    """Register a patient; the pseudonymous chain-of-identity id is returned."""

    def handle(session: Session, actor: User) -> object:
        clinic = _clinic(session, actor)
        return patient_out(
            register_patient(
                session,
                clinic=clinic,
                identifier_1=body.identifier_1,
                identifier_2=body.identifier_2,
                donor_type=DonorType(body.donor_type),
                actor=actor,
            )
        )

    return idempotency.respond(
        request, engine, user=user, key=key, body=body, status_code=201, handler=handle
    )


@router.get("/patients", response_model=Page[PatientOut])
def list_patients(
    engine: EngineDep,
    user: ClinicUser,
    paging: Paging,
) -> dict[str, object]:
    """The clinic's patients, oldest first, a page at a time."""
    with read_session(engine) as session:
        listing = patients_visible_to(session, actor=user, **paging.window())
        return page(listing, patient_out)


@router.get("/patients/{coi_id}", response_model=PatientOut)
def get_patient(engine: EngineDep, user: ClinicUser, coi_id: str) -> PatientOut:
    """One of the clinic's patients by chain-of-identity id (another clinic's is 404)."""
    with read_session(engine) as session:
        return patient_out(patient_for(session, actor=user, coi_id=coi_id))


@router.post("/harvests", status_code=201, response_model=MaterialOut)
def record_harvest(
    request: Request,
    engine: EngineDep,
    user: ClinicUser,
    body: HarvestIn,
    key: IdempotencyKey = None,
) -> JSONResponse:
    """Record a harvest and its hand-over to the courier that brings it to the lab."""

    def handle(session: Session, actor: User) -> object:
        patient = patient_for(session, actor=actor, coi_id=body.coi_id)
        clinic = _clinic(session, actor)
        lipo = body.kind == "lipoaspirate"
        use = Use.ALLOGENEIC if patient.donor_type == "allogeneic_donor" else Use.AUTOLOGOUS
        material = register_material(
            session,
            kind=MaterialKind(body.kind),
            patient=patient,
            use=use,
            quantity=body.quantity,
            actor=actor,
            state="EXPECTED" if lipo else "COLLECTED",
            collected_at=body.collected_at,
            custodian=f"clinic:{clinic.code}",
        )
        hand_over(
            session,
            material=material,
            to_custodian=f"courier:{body.courier}",
            actor=actor,
            reason="shipped to the lab",
        )
        return material_out(session, material)

    return idempotency.respond(
        request, engine, user=user, key=key, body=body, status_code=201, handler=handle
    )


@router.post("/orders", status_code=201, response_model=OrderOut)
def create_order(
    request: Request, engine: EngineDep, user: ClinicUser, body: OrderIn, key: IdempotencyKey = None
) -> JSONResponse:
    """Order one dose for one treatment session of the clinic's patient."""

    def handle(session: Session, actor: User) -> object:
        patient = patient_for(session, actor=actor, coi_id=body.coi_id)
        return order_out(session, place(session, actor=actor, patient=patient, details=body))

    return idempotency.respond(
        request, engine, user=user, key=key, body=body, status_code=201, handler=handle
    )


@router.get("/orders", response_model=Page[OrderOut])
def list_orders(
    engine: EngineDep,
    user: ClinicUser,
    paging: Paging,
    status: Annotated[OrderStatusFilter | None, Query(max_length=16)] = None,
) -> dict[str, object]:
    """The clinic's orders, oldest first, optionally of one status; by offset or cursor."""
    with read_session(engine) as session:
        listing = orders_visible_to(session, actor=user, status=status, **paging.window())
        return page(listing, lambda o: order_out(session, o))


@router.get("/orders/{number}", response_model=OrderOut)
def get_order(engine: EngineDep, user: ClinicUser, number: str) -> OrderOut:
    """Status, the allocated dose's id and expiry, and its label data."""
    with read_session(engine) as session:
        return order_out(session, order_for(session, actor=user, number=number))


@router.get("/orders/{number}/events", response_model=list[TimelineEventOut])
def order_events(engine: EngineDep, user: ClinicUser, number: str) -> list[TimelineEventOut]:
    """The order's timeline: what happened, when (the clinic's time zone), by whom."""
    with read_session(engine) as session:
        order = order_for(session, actor=user, number=number)
        return [
            TimelineEventOut.model_validate(e, from_attributes=True)
            for e in timeline_of(session, order=order)
        ]


@router.post("/orders/{number}/cancel", response_model=OrderOut)
def cancel(
    request: Request,
    engine: EngineDep,
    user: ClinicUser,
    number: str,
    body: ReasonIn,
    key: IdempotencyKey = None,
) -> JSONResponse:
    """Cancel an order that has not been dispatched."""

    def handle(session: Session, actor: User) -> object:
        order = order_for(session, actor=user, number=number, lock=True)
        return order_out(
            session, cancel_order(session, order=order, actor=user, reason=body.reason)
        )

    return idempotency.respond(
        request, engine, user=user, key=key, body=body, status_code=200, handler=handle
    )


@router.post("/orders/{number}/receipt", response_model=OrderOut)
def receive(
    request: Request,
    engine: EngineDep,
    user: ClinicUser,
    number: str,
    body: ReceiptIn,
    key: IdempotencyKey = None,
) -> JSONResponse:
    """Confirm the dose arrived: when, the temperature on arrival, who received it."""

    def handle(session: Session, actor: User) -> object:
        order = order_for(session, actor=actor, number=number, lock=True)
        return order_out(
            session,
            confirm_receipt(
                session,
                order=order,
                actor=actor,
                received_at=body.received_at,
                temperature=body.temperature,
                received_by=body.received_by,
                logger_csv=body.logger_csv,
            ),
        )

    return idempotency.respond(
        request, engine, user=user, key=key, body=body, status_code=200, handler=handle
    )


@router.post("/api-keys", status_code=201, response_model=ApiKeyOut)
def new_api_key(engine: EngineDep, user: ClinicUser, body: ApiKeyIn) -> ApiKeyOut:
    """A key for the clinic's own system (send it as X-API-Key); shown only this once."""
    with write_session(engine) as session:
        key, full = create_api_key(session, actor=user, name=body.name)
        return ApiKeyOut(
            prefix=key.prefix, name=key.name, created_at=key.created_at, revoked_at=None, key=full
        )


@router.get("/api-keys", response_model=Page[ApiKeyOut])
def list_api_keys(
    engine: EngineDep,
    user: ClinicUser,
    paging: Paging,
) -> dict[str, object]:
    """The clinic's API keys, revoked ones too, oldest first (prefix, name, created,
    revoked); never the secret."""
    with read_session(engine) as session:
        listing = api_keys_of(session, actor=user, **paging.window())
        return page(
            listing,
            lambda k: ApiKeyOut(
                prefix=k.prefix, name=k.name, created_at=k.created_at, revoked_at=k.revoked_at
            ),
        )


@router.delete("/api-keys/{prefix}", status_code=204)
def revoke(engine: EngineDep, user: ClinicUser, prefix: str) -> None:
    """Revoke one of the clinic's API keys by its prefix; it stops working at once."""
    with write_session(engine) as session:
        revoke_api_key(session, actor=user, prefix=prefix)
