"""A recall, what it reached (every derived lot and dose, with its order, patient and
clinic) and each clinic's notice and acknowledgement."""

from datetime import datetime

from sqlalchemy import String, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

import lims.models_base  # noqa: F401
from lims.db import UTCDateTime, utcnow


class RecallStatus:
    OPEN = "OPEN"
    CLOSED = "CLOSED"


class ItemAction:
    """What the recall did to an affected material."""

    RECALLED = "recalled"  # a lot (or a dose already out of the lab): do not use
    HELD = "held"  # a derived material whose machine has no RECALLED state: ON_HOLD
    BLOCKED = "blocked"  # a dose still in the lab: the dispatch gate refuses it
    ADMINISTERED = "administered"  # already given: the clinic follows the patient up
    NONE = "none"  # already consumed, discarded or destroyed: traced, nothing to do


class Recall(SQLModel, table=True):
    __tablename__ = "recall"

    id: int | None = Field(default=None, primary_key=True)
    number: str = Field(sa_type=String(16), unique=True)
    lot_id: int = Field(foreign_key="material.id", index=True)
    reason: str = Field(sa_type=Text)
    status: str = Field(default=RecallStatus.OPEN, sa_type=String(8), index=True)
    opened_by_id: int = Field(foreign_key="lims_user.id")
    opened_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    open_signature_id: int | None = Field(default=None, foreign_key="signature.id")
    closed_by_id: int | None = Field(default=None, foreign_key="lims_user.id")
    closed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    close_signature_id: int | None = Field(default=None, foreign_key="signature.id")
    # Set when QA closed it without every clinic's acknowledgement: why.
    override_reason: str | None = Field(default=None, sa_type=Text)


class RecallItem(SQLModel, table=True):
    __tablename__ = "recall_item"

    id: int | None = Field(default=None, primary_key=True)
    recall_id: int = Field(foreign_key="recall.id", index=True)
    material_id: int = Field(foreign_key="material.id", index=True)
    depth: int  # 0: the recalled lot; 1: made from it directly; ...
    state_before: str = Field(sa_type=String(24))
    state_after: str = Field(sa_type=String(24))
    action: str = Field(sa_type=String(16))
    order_id: int | None = Field(default=None, foreign_key="dose_order.id")
    patient_id: int | None = Field(default=None, foreign_key="patient.id")
    clinic_id: int | None = Field(default=None, foreign_key="clinic.id")


class RecallClinic(SQLModel, table=True):
    """One clinic a recall reached: the notice it was sent and its acknowledgement."""

    __tablename__ = "recall_clinic"
    __table_args__ = (UniqueConstraint("recall_id", "clinic_id"),)

    id: int | None = Field(default=None, primary_key=True)
    recall_id: int = Field(foreign_key="recall.id", index=True)
    clinic_id: int = Field(foreign_key="clinic.id", index=True)
    notification_id: int = Field(foreign_key="notification.id")
    closed_notification_id: int | None = Field(default=None, foreign_key="notification.id")
    acknowledged_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    acknowledged_by_id: int | None = Field(default=None, foreign_key="lims_user.id")
    acknowledgement_note: str | None = Field(default=None, sa_type=Text)
