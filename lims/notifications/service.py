"""A clinic's webhook endpoints and e-mail contacts: register, rotate, ping, disable and
re-enable, redeliver. Tenancy by actor: a clinic account only ever touches its own clinic's
endpoints; another clinic's are 'not found'. Services never commit."""

from __future__ import annotations

import base64
import re
import secrets
from datetime import timedelta

from sqlmodel import Session, col, select

from lims.custody import ledger
from lims.db import utcnow
from lims.errors import InvalidInput, NotFound, RuleViolation
from lims.notifications import events
from lims.notifications.mail import LANGUAGES
from lims.notifications.models import (
    Channel,
    ClinicContact,
    DeliveryAttempt,
    DeliveryStatus,
    Notification,
    NotificationDelivery,
    WebhookEndpoint,
)
from lims.notifications.outbox import notify
from lims.notifications.targets import check_target
from lims.paging import MAX_PAGE, Listing, page_by_id
from lims.parties.models import Role, User
from lims.parties.queries import clinic_scope
from lims.settings import NotificationSettings

EMAIL = re.compile(r"^[^@\s<>]+@[^@\s<>]+\.[^@\s<>]+$")
MAX_ENDPOINTS = 10


def new_secret() -> str:
    """A Standard Webhooks secret: ``whsec_`` and 32 random bytes in base64."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


def _own_clinic(actor: User) -> int:
    if Role(actor.role) is not Role.CLINIC or actor.clinic_id is None:
        raise RuleViolation("webhook endpoints and contacts are a clinic account's own")
    return actor.clinic_id


def _event_list(names: list[str] | None) -> list[str]:
    chosen = sorted({n.strip() for n in names or [] if n.strip()})
    unknown = [n for n in chosen if n not in events.EVENT_TYPES]
    if unknown:
        raise InvalidInput(
            f"unknown event types {', '.join(unknown)}; known: {', '.join(events.EVENT_TYPES)}",
            field="events",
        )
    return chosen


def endpoint_for(session: Session, *, actor: User, endpoint_id: int) -> WebhookEndpoint:
    """An endpoint the actor may see; another clinic's is 'not found'."""
    endpoint = session.get(WebhookEndpoint, endpoint_id)
    scope = clinic_scope(actor)
    if endpoint is None or (scope is not None and endpoint.clinic_id != scope):
        raise NotFound(f"no webhook endpoint {endpoint_id}", field="endpoint")
    return endpoint


def endpoints_of(session: Session, *, actor: User) -> list[WebhookEndpoint]:
    """The actor's clinic's endpoints, oldest first."""
    clinic_id = _own_clinic(actor)
    return list(
        session.exec(
            select(WebhookEndpoint)
            .where(col(WebhookEndpoint.clinic_id) == clinic_id)
            .order_by(col(WebhookEndpoint.id))
        ).all()
    )


def register_endpoint(
    session: Session,
    *,
    actor: User,
    url: str,
    events_wanted: list[str] | None = None,
    description: str | None = None,
    settings: NotificationSettings,
) -> WebhookEndpoint:
    """Register a webhook endpoint for the actor's clinic, with a fresh signing secret."""
    clinic_id = _own_clinic(actor)
    checked = check_target(url, settings=settings)
    if len(endpoints_of(session, actor=actor)) >= MAX_ENDPOINTS:
        raise RuleViolation(f"a clinic may have at most {MAX_ENDPOINTS} webhook endpoints")
    endpoint = WebhookEndpoint(
        clinic_id=clinic_id,
        url=checked,
        description=(description or "").strip()[:200] or None,
        events=_event_list(events_wanted),
        secret=new_secret(),
    )
    session.add(endpoint)
    session.flush()
    ledger.append(
        session,
        actor=actor,
        action="webhook.registered",
        entity="webhook_endpoint",
        entity_id=str(endpoint.id),
        new={"url": endpoint.url, "events": endpoint.events, "clinic_id": clinic_id},
    )
    return endpoint


def rotate_secret(
    session: Session, *, actor: User, endpoint_id: int, settings: NotificationSettings
) -> WebhookEndpoint:
    """A new secret; the old one keeps signing beside it for the overlap, then stops."""
    endpoint = endpoint_for(session, actor=actor, endpoint_id=endpoint_id)
    _own_clinic(actor)
    endpoint.previous_secret = endpoint.secret
    endpoint.previous_valid_until = utcnow() + timedelta(
        hours=settings.webhook_secret_overlap_hours
    )
    endpoint.secret = new_secret()
    session.add(endpoint)
    ledger.append(
        session,
        actor=actor,
        action="webhook.secret_rotated",
        entity="webhook_endpoint",
        entity_id=str(endpoint.id),
        new={"previous_valid_until": endpoint.previous_valid_until},
    )
    return endpoint


def set_enabled(
    session: Session, *, actor: User, endpoint_id: int, enabled: bool
) -> WebhookEndpoint:
    """Disable an endpoint, or enable it again (its kept backlog is then delivered)."""
    endpoint = endpoint_for(session, actor=actor, endpoint_id=endpoint_id)
    _own_clinic(actor)
    old = endpoint.enabled
    endpoint.enabled = enabled
    endpoint.disabled_reason = None if enabled else f"disabled by {actor.username}"
    endpoint.consecutive_failures = 0
    session.add(endpoint)
    ledger.append(
        session,
        actor=actor,
        action="webhook.enabled" if enabled else "webhook.disabled",
        entity="webhook_endpoint",
        entity_id=str(endpoint.id),
        old={"enabled": old},
        new={"enabled": enabled},
    )
    return endpoint


def ping(session: Session, *, actor: User, endpoint_id: int) -> Notification:
    """Queue a test event for one endpoint (delivered by the worker like any other)."""
    endpoint = endpoint_for(session, actor=actor, endpoint_id=endpoint_id)
    if not endpoint.enabled:
        raise RuleViolation("the endpoint is disabled: enable it before a test ping")
    note = notify(
        session,
        clinic_id=None,  # no fan-out: the ping goes to this endpoint only
        event_type=events.PING,
        subject=str(endpoint.id),
        data={"endpoint": endpoint.id, "by": actor.username},
    )
    note.clinic_id = endpoint.clinic_id
    session.add(note)
    assert note.id is not None
    session.add(
        NotificationDelivery(
            notification_id=note.id,
            channel=Channel.WEBHOOK,
            endpoint_id=endpoint.id,
            address=endpoint.url,
        )
    )
    session.flush()
    return note


def redeliver(session: Session, *, actor: User, delivery_id: int) -> NotificationDelivery:
    """Put a delivery back in the queue, due now (manual redelivery, same webhook-id)."""
    delivery = session.get(NotificationDelivery, delivery_id, with_for_update=True)
    note = session.get(Notification, delivery.notification_id) if delivery else None
    scope = clinic_scope(actor)
    if delivery is None or note is None or (scope is not None and note.clinic_id != scope):
        raise NotFound(f"no delivery {delivery_id}", field="delivery")
    delivery.status = DeliveryStatus.PENDING
    delivery.next_attempt_at = utcnow()
    delivery.claimed_until = None
    session.add(delivery)
    ledger.append(
        session,
        actor=actor,
        action="notification.redelivery_requested",
        entity="notification_delivery",
        entity_id=str(delivery.id),
        new={"message_id": note.message_id, "address": delivery.address},
    )
    return delivery


def deliveries_of(
    session: Session,
    *,
    actor: User,
    endpoint_id: int,
    limit: int = 50,
    offset: int = 0,
    cursor: str | None = None,
) -> Listing[tuple[NotificationDelivery, Notification, list[DeliveryAttempt]]]:
    """A page of an endpoint's deliveries, newest first, each with its attempts (the log)."""
    endpoint = endpoint_for(session, actor=actor, endpoint_id=endpoint_id)
    rows = page_by_id(
        select(NotificationDelivery, Notification)
        .join(Notification, col(Notification.id) == col(NotificationDelivery.notification_id))
        .where(col(NotificationDelivery.endpoint_id) == endpoint.id),
        session,
        id_column=col(NotificationDelivery.id),
        limit=limit,
        offset=offset,
        cursor=cursor,
        newest_first=True,
        id_of=lambda row: row[0].id,
    )
    # Every attempt of the page's deliveries in one query, not one per delivery.
    attempts: dict[int, list[DeliveryAttempt]] = {d.id: [] for d, _ in rows if d.id is not None}
    for attempt in session.exec(
        select(DeliveryAttempt)
        .where(col(DeliveryAttempt.delivery_id).in_(list(attempts)))
        .order_by(col(DeliveryAttempt.id))
    ).all():
        attempts[attempt.delivery_id].append(attempt)
    return rows.shown_as((d, note, attempts.get(d.id or 0, [])) for d, note in rows)


def contacts_listed(
    session: Session,
    *,
    actor: User,
    limit: int = MAX_PAGE,
    offset: int = 0,
    cursor: str | None = None,
) -> Listing[ClinicContact]:
    """A page of the clinic's active e-mail contacts, oldest first."""
    clinic_id = _own_clinic(actor)
    query = select(ClinicContact).where(
        col(ClinicContact.clinic_id) == clinic_id, col(ClinicContact.active)
    )
    return page_by_id(
        query, session, id_column=col(ClinicContact.id), limit=limit, offset=offset, cursor=cursor
    )


def add_contact(
    session: Session,
    *,
    actor: User,
    email: str,
    language: str = "en",
    events_wanted: list[str] | None = None,
) -> ClinicContact:
    """An address the clinic wants e-mails at, in English or Japanese."""
    clinic_id = _own_clinic(actor)
    address = (email or "").strip()
    if len(address) > 254 or not EMAIL.match(address):
        raise InvalidInput(f"not an e-mail address: {address[:80]!r}", field="email")
    if language not in LANGUAGES:
        raise InvalidInput(f"language must be one of {', '.join(LANGUAGES)}", field="language")
    contact = ClinicContact(
        clinic_id=clinic_id, email=address, language=language, events=_event_list(events_wanted)
    )
    session.add(contact)
    session.flush()
    ledger.append(
        session,
        actor=actor,
        action="contact.added",
        entity="clinic_contact",
        entity_id=str(contact.id),
        new={"email": address, "language": language, "events": contact.events},
    )
    return contact
