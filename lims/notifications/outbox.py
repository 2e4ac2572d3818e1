"""Write a notification and its deliveries in the caller's transaction.

Called from the one place each kind of change happens (lims.notifications.events), so the
notification commits or rolls back with the change: a crash loses neither, and a change that
rolled back is never reported.
"""

from __future__ import annotations

import secrets
from typing import Any

from sqlmodel import Session, col, select

from lims.custody.ledger import format_time, jsonable
from lims.db import utcnow
from lims.notifications.models import (
    Channel,
    ClinicContact,
    Notification,
    NotificationDelivery,
    WebhookEndpoint,
)


def subscribed(events: list[Any], event_type: str) -> bool:
    """Whether a subscription list (empty: everything) includes ``event_type``."""
    return not events or event_type in events


def new_message_id() -> str:
    return "msg_" + secrets.token_hex(16)


def notify(
    session: Session,
    *,
    clinic_id: int | None,
    event_type: str,
    subject: str,
    data: dict[str, Any],
    custody_seq: int | None = None,
    channels: tuple[str, ...] = (Channel.WEBHOOK, Channel.EMAIL),
) -> Notification:
    """Record one notification and a delivery for each subscribed endpoint and contact."""
    now = utcnow()
    payload = {"type": event_type, "timestamp": format_time(now), "data": jsonable(data)}
    note = Notification(
        message_id=new_message_id(),
        clinic_id=clinic_id,
        event_type=event_type,
        subject=subject,
        payload=payload,
        custody_seq=custody_seq,
        created_at=now,
    )
    session.add(note)
    session.flush()
    assert note.id is not None
    if clinic_id is None:  # the lab's own record (a lab material in quarantine): nobody to tell
        return note
    if Channel.WEBHOOK in channels:
        endpoints = session.exec(
            select(WebhookEndpoint)
            .where(col(WebhookEndpoint.clinic_id) == clinic_id, col(WebhookEndpoint.enabled))
            .order_by(col(WebhookEndpoint.id))
        ).all()
        for endpoint in endpoints:
            if subscribed(endpoint.events, event_type):
                session.add(
                    NotificationDelivery(
                        notification_id=note.id,
                        channel=Channel.WEBHOOK,
                        endpoint_id=endpoint.id,
                        address=endpoint.url,
                        next_attempt_at=now,
                        created_at=now,
                    )
                )
    if Channel.EMAIL in channels:
        contacts = session.exec(
            select(ClinicContact)
            .where(col(ClinicContact.clinic_id) == clinic_id, col(ClinicContact.active))
            .order_by(col(ClinicContact.id))
        ).all()
        for contact in contacts:
            if subscribed(contact.events, event_type):
                session.add(
                    NotificationDelivery(
                        notification_id=note.id,
                        channel=Channel.EMAIL,
                        contact_id=contact.id,
                        address=contact.email,
                        next_attempt_at=now,
                        created_at=now,
                    )
                )
    session.flush()
    return note
