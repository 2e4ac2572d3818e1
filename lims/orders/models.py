"""A dose order: one dose for one treatment session of one patient."""

from datetime import datetime
from decimal import Decimal
from enum import StrEnum

from sqlalchemy import Index, String, Text
from sqlmodel import Field, SQLModel

import lims.models_base  # noqa: F401
from lims.db import ExactDecimal, UTCDateTime, utcnow


class OrderStatus(StrEnum):
    PLACED = "PLACED"
    ALLOCATED = "ALLOCATED"
    DISPATCHED = "DISPATCHED"
    RECEIVED = "RECEIVED"
    CANCELLED = "CANCELLED"


class Product(StrEnum):
    AAPE = "aape"  # lyophilised protein extract, vials
    DP_CELLS = "dp_cells"  # dermal papilla cells


class DoseOrder(SQLModel, table=True):
    __tablename__ = "dose_order"
    # The order lists, paged by key (migrations 0013 and 0019): each sort ends in the id.
    __table_args__ = (
        Index("ix_dose_order_clinic_planned", "clinic_id", "planned_use_at"),
        Index("ix_dose_order_clinic_status_placed", "clinic_id", "status", "placed_at", "id"),
        Index("ix_dose_order_clinic_status_planned", "clinic_id", "status", "planned_use_at", "id"),
        Index("ix_dose_order_clinic_placed", "clinic_id", "placed_at", "id"),
        Index("ix_dose_order_status_planned", "status", "planned_use_at", "id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    number: str = Field(sa_type=String(16), unique=True)
    clinic_id: int = Field(foreign_key="clinic.id", index=True)
    patient_id: int = Field(foreign_key="patient.id", index=True)
    product: str = Field(sa_type=String(16))
    # The dose as the clinic wrote it (vials, reconstituted mL, or protein in ug) ...
    dose_value: Decimal = Field(sa_type=ExactDecimal)
    dose_unit: str = Field(sa_type=String(32))
    dose_kind: str = Field(sa_type=String(24))
    dose_canonical: Decimal = Field(sa_type=ExactDecimal)
    session_number: int
    sessions_total: int
    # Indexed: the lab's queue is sorted and filtered by planned use (migration 0017).
    planned_use_at: datetime = Field(sa_type=UTCDateTime, index=True)
    ship_to: str = Field(sa_type=String(300))
    prescriber: str = Field(sa_type=String(200))
    consent_ref: str = Field(sa_type=String(64))
    notes: str | None = Field(default=None, sa_type=Text)
    status: str = Field(sa_type=String(16), index=True)
    dose_material_id: int | None = Field(default=None, foreign_key="material.id", unique=True)
    placed_by_id: int = Field(foreign_key="lims_user.id")
    placed_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    cancel_reason: str | None = Field(default=None, sa_type=Text)
    # The prescriber's reason for a session outside the course's interval (lims.orders.course).
    interval_reason: str | None = Field(default=None, sa_type=Text)
    received_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    received_temperature: Decimal | None = Field(default=None, sa_type=ExactDecimal)
    received_by: str | None = Field(default=None, sa_type=String(200))
