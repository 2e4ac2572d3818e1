"""SOP versions as stored: the definition JSON and its SHA-256, immutable once in force."""

from datetime import datetime

from sqlalchemy import JSON, String, UniqueConstraint
from sqlmodel import Field, SQLModel

import lims.models_base  # noqa: F401
from lims.db import UTCDateTime, utcnow


class SopVersion(SQLModel, table=True):
    __tablename__ = "sop_version"
    __table_args__ = (UniqueConstraint("code", "version"),)

    id: int | None = Field(default=None, primary_key=True)
    code: str = Field(sa_type=String(32))
    version: int
    title: str = Field(sa_type=String(200))
    definition: dict = Field(sa_type=JSON)
    sha256: str = Field(sa_type=String(64))
    effective_from: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    retired_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
