"""Append events to the custody ledger, verify it, export it.

Every service that writes calls :func:`append` inside the caller's transaction, so a change
and its event commit or roll back together. Appending locks the single ``custody_head`` row
(SELECT ... FOR UPDATE on PostgreSQL; SQLite's write transaction already serialises), so
two concurrent writers can never both link to the same previous event.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from enum import Enum
from typing import Any

from sqlalchemy import Row, bindparam, func
from sqlalchemy import select as sa_select
from sqlmodel import Session, col, select

from lims.context import request_id
from lims.custody.models import CustodyEvent, CustodyHead, CustodyMaterial
from lims.custody.verify import GENESIS_HASH, VerifyResult, event_hash, verify_events
from lims.db import utcnow
from lims.errors import InvalidInput, NotFound

HEAD_ID = 1
SYSTEM = "system"
_EVENTS = CustodyEvent.__table__  # type: ignore[attr-defined]
_HEADS = CustodyHead.__table__  # type: ignore[attr-defined]
_MATERIALS = CustodyMaterial.__table__  # type: ignore[attr-defined]
# SELECT ... FOR UPDATE on PostgreSQL; SQLite has no row locks (and needs none: its write
# transaction holds the database's write lock), so the dialect leaves the clause out.
_LOCK_HEAD = sa_select(_HEADS.c.seq, _HEADS.c.hash).where(_HEADS.c.id == HEAD_ID).with_for_update()
# Built once: building them was a tenth of an append's time (bench/custody.py).
_INSERT_EVENT = _EVENTS.insert()
_MOVE_HEAD = (
    _HEADS.update()
    .where(_HEADS.c.id == HEAD_ID)
    .values(seq=bindparam("head_seq"), hash=bindparam("head_hash"))
)
_INSERT_MATERIAL = _MATERIALS.insert()


def jsonable(value: Any) -> Any:
    """Make a value safe for the canonical form: decimals and times become strings."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, Enum):
        return jsonable(value.value)
    if isinstance(value, datetime):
        return format_time(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        items = [jsonable(v) for v in value]
        return sorted(items, key=str) if isinstance(value, set | frozenset) else items
    if hasattr(value, "as_json"):
        return jsonable(value.as_json())
    return str(value)


def format_time(moment: datetime) -> str:
    if moment.tzinfo is None:
        raise ValueError("ledger times must be timezone-aware")
    from datetime import UTC

    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass(slots=True)
class AppendedEvent:
    """An event as :func:`append` wrote it (the columns of ``custody_event``)."""

    seq: int
    prev_hash: str
    hash: str
    occurred_at: datetime
    actor: str
    actor_role: str
    action: str
    entity: str
    entity_id: str
    materials: list[str]
    from_: str | None
    to: str | None
    reason: str | None
    old: Any
    new: Any
    corrects_seq: int | None


def as_dict(event: CustodyEvent | AppendedEvent | Row[Any]) -> dict[str, Any]:
    """The event as it is hashed and exported (from the model, or a row of its table)."""
    return {
        "seq": event.seq,
        "prev_hash": event.prev_hash,
        "hash": event.hash,
        "occurred_at": format_time(event.occurred_at),
        "actor": event.actor,
        "actor_role": event.actor_role,
        "action": event.action,
        "entity": event.entity,
        "entity_id": event.entity_id,
        "materials": list(event.materials),
        "from": event.from_,
        "to": event.to,
        "reason": event.reason,
        "old": event.old,
        "new": event.new,
        "corrects_seq": event.corrects_seq,
    }


_HEAD_CACHE = "lims_custody_head"


def _locked_head(session: Session, scope: Any) -> tuple[int, str]:
    """The head's (seq, hash), locked until the transaction ends.

    Read under lock once per (sub)transaction: the transaction that appended last already
    holds the lock and wrote the head, so it knows it. The cache is keyed by the innermost
    transaction object, so a commit, a rollback, or a rollback to a savepoint (which
    undoes the events appended in it) makes the next append read the head again.
    """
    cached = session.info.get(_HEAD_CACHE)
    if cached is not None and cached[0] is scope and scope is not None and scope.is_active:
        return cached[1], cached[2]
    seq, hash_ = session.connection().execute(_LOCK_HEAD).one()
    return int(seq), str(hash_)


def append(
    session: Session,
    *,
    actor: Any,
    action: str,
    entity: str,
    entity_id: str | int,
    materials: Sequence[str] = (),
    old: dict[str, Any] | None = None,
    new: dict[str, Any] | None = None,
    from_: str | None = None,
    to: str | None = None,
    reason: str | None = None,
    corrects_seq: int | None = None,
    context: dict[str, str] | None = None,
) -> AppendedEvent:
    """Append one event in the caller's transaction and return it; ``context`` (default:
    the current request's id, lims.context) is recorded in the event's ``new``."""
    # Core statements, not ORM objects: the append is on every write's path and holds the
    # head's lock; the ORM unit of work made it 1.3-1.6x slower (docs/performance.md).
    session.flush()  # the caller's pending rows first, as before: callers rely on their ids
    conn = session.connection()
    scope = session.get_nested_transaction() or session.get_transaction()
    head_seq, head_hash = _locked_head(session, scope)
    if context is None and (current := request_id.get()) is not None:
        context = {"request_id": current}
    if context:  # which request wrote it: the API's JSON log line carries the same id
        new = {**(new or {}), **context}
    values: dict[str, Any] = {
        "seq": head_seq + 1,
        "prev_hash": head_hash,
        "hash": "",
        "occurred_at": utcnow(),
        "actor": getattr(actor, "username", None) or SYSTEM,
        "actor_role": str(getattr(actor, "role", None) or SYSTEM),
        "action": action,
        "entity": entity,
        "entity_id": str(entity_id),
        "materials": sorted(set(materials)),
        "from_": from_,
        "to": to,
        "reason": reason.strip() if reason and reason.strip() else None,
        "old": jsonable(old),
        "new": jsonable(new),
        "corrects_seq": corrects_seq,
    }
    # A plain record, not a CustodyEvent: building the SQLModel object was a fifth of an
    # append's time (bench/custody.py).
    event = AppendedEvent(**values)
    event.hash = values["hash"] = event_hash(as_dict(event))
    conn.execute(_INSERT_EVENT, values)
    conn.execute(_MOVE_HEAD, {"head_seq": event.seq, "head_hash": event.hash})
    session.info[_HEAD_CACHE] = (scope, event.seq, event.hash)
    if event.materials:
        conn.execute(
            _INSERT_MATERIAL, [{"seq": event.seq, "material_id": m} for m in event.materials]
        )
    return event


def last_seq(session: Session) -> int | None:
    """The seq of the event this session appended last (None if it appended none)."""
    cached = session.info.get(_HEAD_CACHE)
    return int(cached[1]) if cached is not None else None


def iter_events(
    session: Session, *, since_seq: int = 1, until_seq: int | None = None, batch: int = 5000
) -> Iterator[dict[str, Any]]:
    """All events from ``since_seq`` (up to ``until_seq`` if given) in order, in batches."""
    # Plain rows of the table, not ORM objects: building a million CustodyEvent instances
    # was a quarter of verify's time (bench/verify.py, docs/performance.md).
    table = _EVENTS
    next_seq = since_seq
    while True:
        query = sa_select(table).where(table.c.seq >= next_seq)
        if until_seq is not None:
            query = query.where(table.c.seq <= until_seq)
        rows = session.execute(query.order_by(table.c.seq).limit(batch)).all()
        if not rows:
            return
        for row in rows:
            yield as_dict(row)
        next_seq = rows[-1].seq + 1


def verify_chain(session: Session) -> VerifyResult:
    """Recompute the whole chain from the database; also check the head matches its end."""
    # The head and the last event are read first, in one statement (one snapshot even on
    # PostgreSQL's READ COMMITTED), and only events up to that head are verified: appends
    # committed while the chain is being read are not mistaken for tampering.
    last = sa_select(func.max(_EVENTS.c.seq)).scalar_subquery()
    head_seq, head_hash, last_seq = session.execute(
        sa_select(_HEADS.c.seq, _HEADS.c.hash, last).where(_HEADS.c.id == HEAD_ID)
    ).one()
    result = verify_events(iter_events(session, until_seq=head_seq))
    if not result.ok:
        return result
    if (last_seq or 0) > head_seq:
        result.problem = (
            f"events after the head (seq {head_seq}) up to seq {last_seq}: events were "
            "added past the end without moving the head"
        )
        result.broken_seq = head_seq + 1
    elif head_seq == (result.last_seq or 0) and head_hash != result.last_hash:
        result.problem = f"the head's hash differs from event {head_seq}'s: the head was altered"
        result.broken_seq = head_seq
    elif head_seq != (result.last_seq or 0):
        result.problem = (
            f"the chain ends at seq {result.last_seq or 0} but the head says {head_seq}: "
            "events were removed from the end"
        )
        result.broken_seq = head_seq
    return result


def export_jsonl(session: Session, *, since: datetime | None = None) -> Iterator[str]:
    """Lines of JSON, one event each, from the first event at or after ``since``."""
    start = 1
    if since is not None:
        first = session.exec(
            select(CustodyEvent.seq)
            .where(col(CustodyEvent.occurred_at) >= since)
            .order_by(col(CustodyEvent.seq))
            .limit(1)
        ).first()
        if first is None:
            return
        start = first
    for event in iter_events(session, since_seq=start):
        yield json.dumps(event, sort_keys=True, ensure_ascii=False)


def history(session: Session, *, material_id: str) -> list[CustodyEvent]:
    """Every event naming ``material_id``, oldest first."""
    return list(
        session.exec(
            select(CustodyEvent)
            .join(CustodyMaterial, col(CustodyMaterial.seq) == col(CustodyEvent.seq))
            .where(col(CustodyMaterial.material_id) == material_id)
            .order_by(col(CustodyEvent.seq))
        ).all()
    )


def get_event(session: Session, seq: int) -> CustodyEvent:
    event = session.get(CustodyEvent, seq)
    if event is None:
        raise NotFound(f"no custody event {seq}")
    return event


def require_reason(reason: str | None, what: str) -> str:
    if not reason or not reason.strip():
        raise InvalidInput(f"{what} needs a reason", field="reason")
    return reason.strip()


__all__ = ["GENESIS_HASH", "append", "export_jsonl", "history", "verify_chain"]
