"""API keys (stored hashed, scoped to one clinic, revocable), idempotency records, and
sign-in throttling counters."""

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, String, UniqueConstraint
from sqlmodel import Field, SQLModel

import lims.models_base  # noqa: F401
from lims.db import UTCDateTime, utcnow


class ApiKey(SQLModel, table=True):
    __tablename__ = "api_key"

    id: int | None = Field(default=None, primary_key=True)
    prefix: str = Field(sa_type=String(16), unique=True)
    secret_sha256: str = Field(sa_type=String(64))
    name: str = Field(sa_type=String(100))
    clinic_id: int = Field(foreign_key="clinic.id", index=True)
    user_id: int = Field(foreign_key="lims_user.id")  # the clinic account it acts as
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    revoked_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    last_used_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class IdempotencyRecord(SQLModel, table=True):
    """The first response to a POST sent with an Idempotency-Key, for replays."""

    __tablename__ = "idempotency_record"
    __table_args__ = (UniqueConstraint("user_id", "key"),)

    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(foreign_key="lims_user.id")
    key: str = Field(sa_type=String(128))
    method: str = Field(sa_type=String(8))
    path: str = Field(sa_type=String(300))
    request_sha256: str = Field(sa_type=String(64))
    status_code: int
    response: dict[str, Any] = Field(default_factory=dict, sa_type=JSON)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class SignInThrottle(SQLModel, table=True):
    """Wrong sign-in passwords from one client (scope "client", key: its address) or for one
    account name, known or not (scope "account"), and until when the next try must wait."""

    __tablename__ = "sign_in_throttle"
    __table_args__ = (UniqueConstraint("scope", "key"),)

    id: int | None = Field(default=None, primary_key=True)
    scope: str = Field(sa_type=String(8))
    key: str = Field(sa_type=String(128))
    failures: int = 0
    last_failure_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    blocked_until: datetime | None = Field(default=None, sa_type=UTCDateTime)
