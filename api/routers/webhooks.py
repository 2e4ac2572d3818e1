"""A clinic's webhook endpoints, e-mail contacts and delivery log (lims.notifications).
Another clinic's endpoints and deliveries are answered with 404."""

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Path, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from sqlmodel import Session

from api import idempotency
from api.idempotency import IdempotencyKey
from api.schemas import Page, Paging, page
from api.security import ClinicUser, EngineDep
from lims.db import read_session, write_session
from lims.notifications import service
from lims.notifications.models import (
    ClinicContact,
    DeliveryAttempt,
    Notification,
    NotificationDelivery,
    WebhookEndpoint,
)
from lims.parties.models import User
from lims.schemas import Strict
from lims.settings import get_notification_settings

router = APIRouter(prefix="/clinic", tags=["clinic webhooks"])
RowId = Annotated[int, Path(ge=1, le=2**31 - 1)]


class EndpointIn(Strict):
    url: str = Field(min_length=8, max_length=500)
    events: list[str] = Field(default_factory=list, max_length=20, description="empty: all")
    description: str | None = Field(default=None, max_length=200)


class EndpointOut(BaseModel):
    id: int
    url: str
    events: list[str]
    description: str | None
    enabled: bool
    disabled_reason: str | None
    consecutive_failures: int
    created_at: datetime
    secret: str | None = Field(default=None, description="shown when created or rotated only")


class EnabledIn(Strict):
    enabled: bool


class AttemptOut(BaseModel):
    attempted_at: datetime
    ok: bool
    status_code: int | None
    error: str | None
    duration_ms: int
    manual: bool


class DeliveryOut(BaseModel):
    id: int
    message_id: str
    event_type: str
    subject: str
    status: str
    attempts: list[AttemptOut]
    next_attempt_at: datetime
    delivered_at: datetime | None


class ContactIn(Strict):
    email: str = Field(min_length=3, max_length=254)
    language: Literal["en", "ja"] = "en"
    events: list[str] = Field(default_factory=list, max_length=20)


class ContactOut(BaseModel):
    id: int
    email: str
    language: str
    events: list[str]


def _out(e: WebhookEndpoint, *, secret: bool = False) -> EndpointOut:
    assert e.id is not None
    return EndpointOut(
        id=e.id,
        url=e.url,
        events=list(e.events),
        description=e.description,
        enabled=e.enabled,
        disabled_reason=e.disabled_reason,
        consecutive_failures=e.consecutive_failures,
        created_at=e.created_at,
        secret=e.secret if secret else None,
    )


def _contact(c: ClinicContact) -> ContactOut:
    assert c.id is not None
    return ContactOut(id=c.id, email=c.email, language=c.language, events=list(c.events))


@router.post("/webhooks", status_code=201, response_model=EndpointOut)
def register(engine: EngineDep, user: ClinicUser, body: EndpointIn) -> EndpointOut:
    """Register an endpoint; its signing secret is shown in this answer only."""
    with write_session(engine) as session:
        endpoint = service.register_endpoint(
            session,
            actor=user,
            url=body.url,
            events_wanted=body.events,
            description=body.description,
            settings=get_notification_settings(),
        )
        return _out(endpoint, secret=True)


@router.get(
    "/webhooks",
    response_model=list[EndpointOut],
    description="The clinic's webhook endpoints, their events and whether enabled. A clinic "
    f"has at most {service.MAX_ENDPOINTS}, so this list is whole, not paged.",
)
def list_endpoints(engine: EngineDep, user: ClinicUser) -> list[EndpointOut]:
    """The clinic's webhook endpoints (all of them: there are few)."""
    with read_session(engine) as session:
        return [_out(e) for e in service.endpoints_of(session, actor=user)]


@router.post("/webhooks/{endpoint_id}/rotation", response_model=EndpointOut)
def rotate(engine: EngineDep, user: ClinicUser, endpoint_id: RowId) -> EndpointOut:
    """A new secret; the old one keeps signing beside it for the overlap period."""
    with write_session(engine) as session:
        endpoint = service.rotate_secret(
            session, actor=user, endpoint_id=endpoint_id, settings=get_notification_settings()
        )
        return _out(endpoint, secret=True)


@router.post("/webhooks/{endpoint_id}/enabled", response_model=EndpointOut)
def enable(
    request: Request,
    engine: EngineDep,
    user: ClinicUser,
    endpoint_id: RowId,
    body: EnabledIn,
    key: IdempotencyKey = None,
) -> JSONResponse:
    """Disable, or enable again (the kept backlog is then delivered in order)."""

    def handle(session: Session, actor: User) -> object:
        return _out(
            service.set_enabled(session, actor=user, endpoint_id=endpoint_id, enabled=body.enabled)
        )

    return idempotency.respond(
        request, engine, user=user, key=key, body=body, status_code=200, handler=handle
    )


@router.post("/webhooks/{endpoint_id}/ping", status_code=202)
def ping(engine: EngineDep, user: ClinicUser, endpoint_id: RowId) -> dict[str, str]:
    """Queue a test event for this endpoint; it arrives like any other, signed."""
    with write_session(engine) as session:
        return {"message_id": service.ping(session, actor=user, endpoint_id=endpoint_id).message_id}


@router.get("/webhooks/{endpoint_id}/deliveries", response_model=Page[DeliveryOut])
def deliveries(
    engine: EngineDep,
    user: ClinicUser,
    paging: Paging,
    endpoint_id: RowId,
) -> dict[str, object]:
    """The endpoint's deliveries, newest first, each with every attempt, a page at a time."""
    with read_session(engine) as session:
        listing = service.deliveries_of(
            session, actor=user, endpoint_id=endpoint_id, **paging.window()
        )
        return page(listing, _delivery)


def _delivery(
    row: tuple[NotificationDelivery, Notification, list[DeliveryAttempt]],
) -> DeliveryOut:
    d, note, attempts = row
    assert d.id is not None
    return DeliveryOut(
        id=d.id,
        message_id=note.message_id,
        event_type=note.event_type,
        subject=note.subject,
        status=d.status,
        attempts=[AttemptOut.model_validate(a, from_attributes=True) for a in attempts],
        next_attempt_at=d.next_attempt_at,
        delivered_at=d.delivered_at,
    )


@router.post("/deliveries/{delivery_id}/redelivery", status_code=202)
def redeliver(engine: EngineDep, user: ClinicUser, delivery_id: RowId) -> dict[str, str]:
    """Send a delivery again (same webhook-id), now."""
    with write_session(engine) as session:
        return {"status": service.redeliver(session, actor=user, delivery_id=delivery_id).status}


@router.post("/contacts", status_code=201, response_model=ContactOut)
def add_contact(
    request: Request,
    engine: EngineDep,
    user: ClinicUser,
    body: ContactIn,
    key: IdempotencyKey = None,
) -> JSONResponse:
    """An address for e-mails about the clinic's orders, doses and recalls."""

    def handle(session: Session, actor: User) -> object:
        return _contact(
            service.add_contact(
                session,
                actor=user,
                email=body.email,
                language=body.language,
                events_wanted=body.events,
            )
        )

    return idempotency.respond(
        request, engine, user=user, key=key, body=body, status_code=201, handler=handle
    )


@router.get("/contacts", response_model=Page[ContactOut])
def contacts(
    engine: EngineDep,
    user: ClinicUser,
    paging: Paging,
) -> dict[str, object]:
    """The clinic's e-mail contacts and the languages they are written to in, oldest first,
    a page at a time."""
    with read_session(engine) as session:
        listing = service.contacts_listed(session, actor=user, **paging.window())
        return page(listing, _contact)
