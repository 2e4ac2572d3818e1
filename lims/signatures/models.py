"""A signature: who (printed name), when (UTC), what it means, and the SHA-256 of the exact
record version signed (21 CFR 11.50, 11.70)."""

from datetime import datetime
from enum import StrEnum

from sqlalchemy import String, Text
from sqlmodel import Field, SQLModel

import lims.models_base  # noqa: F401
from lims.db import UTCDateTime, utcnow


class Meaning(StrEnum):
    PERFORMED = "performed"
    REVIEWED = "reviewed"
    APPROVED = "approved"
    RELEASED = "released"
    VERIFIED = "verified"


class Signature(SQLModel, table=True):
    __tablename__ = "signature"

    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(foreign_key="lims_user.id", index=True)
    username: str = Field(sa_type=String(64))
    printed_name: str = Field(sa_type=String(200))
    role: str = Field(sa_type=String(16))
    meaning: str = Field(sa_type=String(16))
    record_type: str = Field(sa_type=String(32))
    record_id: str = Field(sa_type=String(64), index=True)
    record_sha256: str = Field(sa_type=String(64))
    signed_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    comment: str | None = Field(default=None, sa_type=Text)
