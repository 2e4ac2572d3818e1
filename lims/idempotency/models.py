"""The record of a write done once under an idempotency key."""

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, String
from sqlmodel import Field, SQLModel

import lims.models_base  # noqa: F401
from lims.db import UTCDateTime, utcnow


class FlowIdempotency(SQLModel, table=True):
    """A write that an automated caller (a flow task) may repeat after a crash or a retry.

    The row is written in the same transaction as the write it stands for, so it exists
    exactly when the write committed; a repeat with the same key finds it and returns the
    first result instead of writing again. Steps carry their own key (``step``); this table
    covers the other writes: registering a material, transitions, QC results, orders,
    dispatch and receipt.
    """

    __tablename__ = "flow_idempotency"

    id: int | None = Field(default=None, primary_key=True)
    key: str = Field(sa_type=String(128), unique=True)
    operation: str = Field(sa_type=String(64))
    request_sha256: str = Field(sa_type=String(64))
    result: dict[str, Any] = Field(default_factory=dict, sa_type=JSON)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
