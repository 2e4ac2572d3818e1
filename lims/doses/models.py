"""QA's disposition of a cancelled dose, and a dose's record at the clinic."""

from datetime import datetime
from decimal import Decimal

from sqlalchemy import String, Text
from sqlmodel import Field, SQLModel

import lims.models_base  # noqa: F401
from lims.db import ExactDecimal, UTCDateTime, utcnow


class DoseDisposition(SQLModel, table=True):
    """What QA decided for a cancelled dose: back to its lot, or destroyed (signed)."""

    __tablename__ = "dose_disposition"

    id: int | None = Field(default=None, primary_key=True)
    dose_id: int = Field(foreign_key="material.id", unique=True)
    # The lot the vials went back to (None: destroyed).
    lot_id: int | None = Field(default=None, foreign_key="material.id", index=True)
    decision: str = Field(sa_type=String(16))
    # Canonical vials (or cells) moved back to the lot; what the conservation check adds.
    amount_canonical: Decimal = Field(sa_type=ExactDecimal)
    reason: str = Field(sa_type=Text)
    signature_id: int = Field(foreign_key="signature.id")
    decided_by_id: int = Field(foreign_key="lims_user.id")
    decided_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class DoseAtClinic(SQLModel, table=True):
    """A dose after receipt: cold chain, quarantine, reconstitution, administration."""

    __tablename__ = "dose_at_clinic"

    id: int | None = Field(default=None, primary_key=True)
    dose_id: int = Field(foreign_key="material.id", unique=True)
    logger_readings: int = 0
    logger_min: Decimal | None = Field(default=None, sa_type=ExactDecimal)
    logger_max: Decimal | None = Field(default=None, sa_type=ExactDecimal)
    excursion: str | None = Field(default=None, sa_type=Text)
    deviation_id: int | None = Field(default=None, foreign_key="deviation.id")
    reconstituted_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    diluent_lot: str | None = Field(default=None, sa_type=String(64))
    reconstitution_volume: Decimal | None = Field(default=None, sa_type=ExactDecimal)
    in_use_until: datetime | None = Field(default=None, sa_type=UTCDateTime)
    administered_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    administered_by: str | None = Field(default=None, sa_type=String(200))
    volume_given: Decimal | None = Field(default=None, sa_type=ExactDecimal)
    remainder_discarded: Decimal | None = Field(default=None, sa_type=ExactDecimal)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class DoseLoggerFile(SQLModel, table=True):
    """The shipment's temperature-logger file as the clinic uploaded it at receipt: kept
    byte for byte (its SHA-256 is in the receipt's custody event), so QA and an auditor
    read the readings themselves, not only their count and range."""

    __tablename__ = "dose_logger_file"

    id: int | None = Field(default=None, primary_key=True)
    dose_id: int = Field(foreign_key="material.id", unique=True)
    sha256: str = Field(sa_type=String(64))
    content: str = Field(sa_type=Text)
    readings: int
    uploaded_by_id: int = Field(foreign_key="lims_user.id")
    uploaded_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
