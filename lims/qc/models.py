"""QC results (never overwritten: a correction is a new row), deviations, donor
eligibility determinations."""

from datetime import datetime
from decimal import Decimal

from sqlalchemy import String, Text
from sqlmodel import Field, SQLModel

import lims.models_base  # noqa: F401
from lims.db import ExactDecimal, UTCDateTime, utcnow


class QcResult(SQLModel, table=True):
    __tablename__ = "qc_result"

    id: int | None = Field(default=None, primary_key=True)
    material_id: int = Field(foreign_key="material.id", index=True)
    spec_code: str = Field(sa_type=String(32))
    spec_version: int
    test_code: str = Field(sa_type=String(32))
    method: str = Field(sa_type=String(200))
    value_text: str = Field(sa_type=String(100))  # as entered: "no growth", "0.4"
    unit: str | None = Field(default=None, sa_type=String(32))
    canonical: Decimal | None = Field(default=None, sa_type=ExactDecimal)
    passed: bool | None = None  # None: reported, no limit
    tested_at: datetime = Field(sa_type=UTCDateTime)
    entered_by_id: int = Field(foreign_key="lims_user.id")
    entered_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    corrects_id: int | None = Field(default=None, foreign_key="qc_result.id", unique=True)
    reason: str | None = Field(default=None, sa_type=Text)


class Deviation(SQLModel, table=True):
    __tablename__ = "deviation"

    id: int | None = Field(default=None, primary_key=True)
    number: str = Field(sa_type=String(16), unique=True)
    material_id: int = Field(foreign_key="material.id", index=True)
    description: str = Field(sa_type=Text)
    qc_result_id: int | None = Field(default=None, foreign_key="qc_result.id")
    opened_by_id: int = Field(foreign_key="lims_user.id")
    opened_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    closed_by_id: int | None = Field(default=None, foreign_key="lims_user.id")
    closed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    resolution: str | None = Field(default=None, sa_type=Text)


class DonorEligibility(SQLModel, table=True):
    """A responsible person's determination that a donor's tissue may be used for others."""

    __tablename__ = "donor_eligibility"

    id: int | None = Field(default=None, primary_key=True)
    patient_id: int = Field(foreign_key="patient.id", index=True)
    eligible: bool
    basis: str = Field(sa_type=Text)
    determined_by_id: int = Field(foreign_key="lims_user.id")
    determined_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
