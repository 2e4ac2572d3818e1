"""Parties and resources: who the material belongs to, who works on it, with what."""

from datetime import datetime
from enum import StrEnum

from sqlalchemy import Index, String, UniqueConstraint
from sqlmodel import Field, SQLModel

import lims.models_base  # noqa: F401  (naming convention before any table is declared)
from lims.db import UTCDateTime, utcnow


class Role(StrEnum):
    TECHNICIAN = "technician"
    QA = "qa"
    CLINIC = "clinic"
    AUDITOR = "auditor"
    ADMIN = "admin"


# The lab's own people: who may record, sign, test and ship (a clinic or auditor may not).
LAB_STAFF = frozenset({Role.TECHNICIAN, Role.QA, Role.ADMIN})
# The account automatic processes act as; it never signs in, and no person may take its name.
SYSTEM_USERNAME = "system"


class DonorType(StrEnum):
    """Whose tissue: a patient treated with their own (autologous) or a donor's for others."""

    AUTOLOGOUS_PATIENT = "autologous_patient"
    ALLOGENEIC_DONOR = "allogeneic_donor"
    RECIPIENT = "recipient"


class Clinic(SQLModel, table=True):
    __tablename__ = "clinic"

    id: int | None = Field(default=None, primary_key=True)
    code: str = Field(sa_type=String(16), unique=True)
    name: str = Field(sa_type=String(200))
    # An IANA zone: the clinic's times (timeline, mails, portal) are shown in it with the
    # offset; stored times stay UTC.
    time_zone: str = Field(
        default="Asia/Tokyo", sa_type=String(64), sa_column_kwargs={"server_default": "Asia/Tokyo"}
    )
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class Patient(SQLModel, table=True):
    """A patient or donor, known to the lab only by a pseudonymous chain-of-identity id.

    Two identifiers (e.g. date of birth and the clinic's own patient reference) are kept
    for matching at allocation and dispatch; no name is needed in the lab (21 CFR
    1271.290: a distinct code excluding name, SSN and medical record number).
    """

    __tablename__ = "patient"
    __table_args__ = (
        UniqueConstraint("clinic_id", "identifier_1", "identifier_2"),
        # Search by the clinic's own patient reference (migration 0013).
        Index("ix_patient_identifier_2", "identifier_2"),
    )

    id: int | None = Field(default=None, primary_key=True)
    coi_id: str = Field(sa_type=String(20), unique=True)
    clinic_id: int = Field(foreign_key="clinic.id", index=True)
    donor_type: str = Field(sa_type=String(24))
    identifier_1: str = Field(sa_type=String(64))
    identifier_2: str = Field(sa_type=String(64))
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class User(SQLModel, table=True):
    __tablename__ = "lims_user"

    id: int | None = Field(default=None, primary_key=True)
    username: str = Field(sa_type=String(64), unique=True)
    printed_name: str = Field(sa_type=String(200))
    role: str = Field(sa_type=String(16))
    clinic_id: int | None = Field(default=None, foreign_key="clinic.id")
    # Set by the authentication issue (argon2); never a plain password.
    password_hash: str | None = Field(default=None, sa_type=String(255))
    # Consecutive wrong e-signature passwords (the signed-in user's own) and the lock they
    # lead to; anonymous sign-in failures are throttled per client instead (SignInThrottle).
    failed_password_attempts: int = 0
    locked_until: datetime | None = Field(default=None, sa_type=UTCDateTime)
    active: bool = True
    # Every token and browser session carries the version it was issued at; locking,
    # deactivating, a new password and signing out bump it, which ends them all at once.
    token_version: int = Field(default=0, sa_column_kwargs={"server_default": "0"})
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class Instrument(SQLModel, table=True):
    __tablename__ = "instrument"

    id: int | None = Field(default=None, primary_key=True)
    asset_tag: str = Field(sa_type=String(32), unique=True)
    instrument_type: str = Field(sa_type=String(40), index=True)
    name: str = Field(sa_type=String(200))
    calibration_due: datetime = Field(sa_type=UTCDateTime)
    active: bool = True


class ReagentLot(SQLModel, table=True):
    __tablename__ = "reagent_lot"
    __table_args__ = (
        UniqueConstraint("reagent_type", "lot_number"),
        # Search by lot number alone (migration 0013).
        Index("ix_reagent_lot_lot_number", "lot_number"),
    )

    id: int | None = Field(default=None, primary_key=True)
    reagent_type: str = Field(sa_type=String(40), index=True)
    lot_number: str = Field(sa_type=String(64))
    supplier: str = Field(sa_type=String(200))
    expires_at: datetime = Field(sa_type=UTCDateTime)
