"""The ledger's tables. ``custody_event`` is append-only (database triggers refuse UPDATE,
DELETE and TRUNCATE); ``custody_head`` is the one row that serialises appends."""

from datetime import datetime

from sqlalchemy import JSON, LargeBinary, String, Text
from sqlmodel import Field, SQLModel

import lims.models_base  # noqa: F401
from lims.db import UTCDateTime


class CustodyEvent(SQLModel, table=True):
    __tablename__ = "custody_event"

    seq: int = Field(primary_key=True, sa_column_kwargs={"autoincrement": False})
    prev_hash: str = Field(sa_type=String(64))
    hash: str = Field(sa_type=String(64), unique=True)
    occurred_at: datetime = Field(sa_type=UTCDateTime, index=True)
    actor: str = Field(sa_type=String(64))
    actor_role: str = Field(sa_type=String(16))
    action: str = Field(sa_type=String(48), index=True)
    entity: str = Field(sa_type=String(32))
    entity_id: str = Field(sa_type=String(64), index=True)
    materials: list = Field(default_factory=list, sa_type=JSON)
    from_: str | None = Field(default=None, sa_type=String(200))
    to: str | None = Field(default=None, sa_type=String(200))
    reason: str | None = Field(default=None, sa_type=Text)
    old: dict | None = Field(default=None, sa_type=JSON)
    new: dict | None = Field(default=None, sa_type=JSON)
    corrects_seq: int | None = None


class CustodyHead(SQLModel, table=True):
    """The chain's head: locked by every append, so concurrent writers form one chain."""

    __tablename__ = "custody_head"

    id: int = Field(primary_key=True)
    seq: int
    hash: str = Field(sa_type=String(64))


class CustodyMaterial(SQLModel, table=True):
    """Index of which events name which material (the ledger itself stays append-only)."""

    __tablename__ = "custody_material"

    id: int | None = Field(default=None, primary_key=True)
    seq: int = Field(foreign_key="custody_event.seq", index=True)
    material_id: str = Field(sa_type=String(14), index=True)


class CustodyCheckpoint(SQLModel, table=True):
    """A signed tree head: the Merkle root of the first ``tree_size`` events, signed with the
    lab's Ed25519 key (docs/custody.md gives the signed bytes). Append-only, like the events."""

    __tablename__ = "custody_checkpoint"

    id: int | None = Field(default=None, primary_key=True)
    tree_size: int = Field(index=True)
    root_hash: str = Field(sa_type=String(64))
    # The chain hash of event ``tree_size``: ties the tree head to the hash chain.
    last_hash: str = Field(sa_type=String(64))
    made_at: datetime = Field(sa_type=UTCDateTime)
    key_id: str = Field(sa_type=String(16))
    signature: str = Field(sa_type=String(128))


class CustodyTimestamp(SQLModel, table=True):
    """An RFC 3161 time-stamping authority's answer over a checkpoint (lims.custody.tsa)."""

    __tablename__ = "custody_timestamp"

    id: int | None = Field(default=None, primary_key=True)
    checkpoint_id: int = Field(foreign_key="custody_checkpoint.id", unique=True)
    tsa_url: str = Field(sa_type=String(300))
    # The DER TimeStampResp as received: openssl ts -verify reads it as it is.
    response: bytes = Field(sa_type=LargeBinary)
    stamped_at: datetime = Field(sa_type=UTCDateTime)
