"""The outbox and its deliveries.

A ``notification`` row is written in the same transaction as the change it reports, with one
``notification_delivery`` row per webhook endpoint and e-mail contact that subscribed to it
at that moment; the worker (lims.notifications.delivery) sends them afterwards, logging
every attempt in ``delivery_attempt``.
"""

from datetime import datetime

from sqlalchemy import JSON, Index, String, Text
from sqlmodel import Field, SQLModel

import lims.models_base  # noqa: F401
from lims.db import UTCDateTime, utcnow


class DeliveryStatus:
    PENDING = "PENDING"  # due now or after its back-off
    DELIVERED = "DELIVERED"
    DEAD = "DEAD"  # gave up after the last retry; manual redelivery puts it back
    SKIPPED = "SKIPPED"  # its endpoint was disabled before it could be sent


class Channel:
    WEBHOOK = "webhook"
    EMAIL = "email"


class Notification(SQLModel, table=True):
    __tablename__ = "notification"

    id: int | None = Field(default=None, primary_key=True)
    # The idempotent id a receiver deduplicates on (webhook-id); the same on every retry.
    message_id: str = Field(sa_type=String(40), unique=True)
    clinic_id: int | None = Field(default=None, foreign_key="clinic.id", index=True)
    event_type: str = Field(sa_type=String(48), index=True)
    subject: str = Field(sa_type=String(64))  # an order number, a material id, a recall id
    payload: dict = Field(default_factory=dict, sa_type=JSON)
    custody_seq: int | None = None
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class WebhookEndpoint(SQLModel, table=True):
    __tablename__ = "webhook_endpoint"

    id: int | None = Field(default=None, primary_key=True)
    clinic_id: int = Field(foreign_key="clinic.id", index=True)
    url: str = Field(sa_type=String(500))
    description: str | None = Field(default=None, sa_type=String(200))
    # Event types subscribed to; empty: every event.
    events: list = Field(default_factory=list, sa_type=JSON)
    secret: str = Field(sa_type=String(80))  # "whsec_" + base64, per the Standard Webhooks spec
    # After a rotation the old secret also signs until this moment, so receivers can switch.
    previous_secret: str | None = Field(default=None, sa_type=String(80))
    previous_valid_until: datetime | None = Field(default=None, sa_type=UTCDateTime)
    enabled: bool = True
    disabled_reason: str | None = Field(default=None, sa_type=Text)
    consecutive_failures: int = 0
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class ClinicContact(SQLModel, table=True):
    """Where a clinic wants e-mail, in which language, for which events."""

    __tablename__ = "clinic_contact"

    id: int | None = Field(default=None, primary_key=True)
    clinic_id: int = Field(foreign_key="clinic.id", index=True)
    email: str = Field(sa_type=String(254))
    language: str = Field(default="en", sa_type=String(8))
    events: list = Field(default_factory=list, sa_type=JSON)
    active: bool = True
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class NotificationDelivery(SQLModel, table=True):
    __tablename__ = "notification_delivery"
    __table_args__ = (Index("ix_notification_delivery_due", "status", "next_attempt_at"),)

    id: int | None = Field(default=None, primary_key=True)
    notification_id: int = Field(foreign_key="notification.id", index=True)
    channel: str = Field(sa_type=String(8))
    endpoint_id: int | None = Field(default=None, foreign_key="webhook_endpoint.id", index=True)
    contact_id: int | None = Field(default=None, foreign_key="clinic_contact.id")
    address: str = Field(sa_type=String(500))  # the URL or e-mail address it went to
    status: str = Field(default=DeliveryStatus.PENDING, sa_type=String(12))
    attempts: int = 0
    next_attempt_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    # A worker's claim: nobody else sends this delivery before then (a killed worker's claim
    # simply runs out, and the delivery is sent again: at least once).
    claimed_until: datetime | None = Field(default=None, sa_type=UTCDateTime)
    delivered_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    last_error: str | None = Field(default=None, sa_type=Text)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class DeliveryAttempt(SQLModel, table=True):
    """One try at one delivery: the delivery log."""

    __tablename__ = "delivery_attempt"

    id: int | None = Field(default=None, primary_key=True)
    delivery_id: int = Field(foreign_key="notification_delivery.id", index=True)
    attempted_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    ok: bool
    status_code: int | None = None
    error: str | None = Field(default=None, sa_type=Text)
    duration_ms: int
    manual: bool = False  # a redelivery someone asked for
