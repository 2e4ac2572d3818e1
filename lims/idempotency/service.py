"""Do a write once per idempotency key, in the caller's transaction.

One mechanism for every caller that may repeat a request: the API (an ``Idempotency-Key``
header, keys per user, the first response stored in ``idempotency_record``), the flows'
writes (``flow_idempotency``) and recorded steps (``step.idempotency_key``). Each stores
``request_digest(operation, request)`` beside its key, and the replay rule is the same for
all (``same_request``): the same key with the same request gets the first result back,
nothing written twice; the same key with a different request is refused with 409 (the key
was reused by mistake).

``run_once`` first inserts the key (the unique constraint is the guard), then runs the
write, then stores its result on the key's row. Two concurrent callers with one key cannot
both write: on PostgreSQL the second blocks on the key's unique index until the first
commits and then fails with an IntegrityError (the caller retries and replays); on SQLite
the write transactions are serialised and the second simply finds the row.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlmodel import Session, col, select

from lims.auth.models import IdempotencyRecord
from lims.custody.ledger import jsonable
from lims.errors import IdempotencyConflict, InvalidInput
from lims.idempotency.models import FlowIdempotency

MAX_KEY_LENGTH = 128


@dataclass(frozen=True)
class Outcome:
    result: dict[str, Any]
    replayed: bool


def request_digest(operation: str, request: Any) -> str:
    """SHA-256 of the operation and the request in canonical JSON (the ledger's rules)."""
    text = json.dumps(
        {"operation": operation, "request": jsonable(request)},
        sort_keys=True,
        separators=(",", ":"),
    )
    return hashlib.sha256(text.encode()).hexdigest()


def check_key(key: object, *, field: str = "idempotency_key") -> None:
    """Refuse a key that is empty, too long or not printable."""
    if not isinstance(key, str) or not 0 < len(key) <= MAX_KEY_LENGTH or not key.isprintable():
        raise InvalidInput(
            f"an idempotency key is 1 to {MAX_KEY_LENGTH} printable characters", field=field
        )


def same_request(
    *, key: str, operation: str, stored: str | None, digest: str, field: str = "idempotency_key"
) -> None:
    """The replay rule: a key already used may only come back with the same request."""
    if stored != digest:
        raise IdempotencyConflict(
            f"idempotency key {key!r} was already used for a different {operation} request; "
            "send the same request again to get its first result, or a new key for a new one",
            field=field,
        )


# --- the flows' writes (flow_idempotency) ---------------------------------------------


def find(session: Session, key: str) -> FlowIdempotency | None:
    return session.exec(select(FlowIdempotency).where(col(FlowIdempotency.key) == key)).first()


def replay(row: FlowIdempotency, digest: str) -> Outcome:
    same_request(key=row.key, operation=row.operation, stored=row.request_sha256, digest=digest)
    return Outcome(result=dict(row.result), replayed=True)


def run_once(
    session: Session,
    *,
    key: str,
    operation: str,
    request: Mapping[str, Any],
    write: Callable[[], Mapping[str, Any]],
) -> Outcome:
    """Run ``write()`` unless ``key`` was done before; return its (first) result."""
    check_key(key)
    digest = request_digest(operation, dict(request))
    existing = find(session, key)
    if existing is not None:
        return replay(existing, digest)
    row = FlowIdempotency(key=key, operation=operation[:64], request_sha256=digest, result={})
    session.add(row)
    session.flush()  # the unique key is taken before anything else is written
    result = jsonable(dict(write()))
    row.result = result
    session.add(row)
    session.flush()
    return Outcome(result=result, replayed=False)


# --- the API's responses (idempotency_record, keys per user) ---------------------------


@dataclass(frozen=True)
class StoredResponse:
    status_code: int
    body: Any


def api_operation(method: str, path: str) -> str:
    return f"{method} {path}"


def find_response(session: Session, *, user_id: int, key: str) -> IdempotencyRecord | None:
    """The response stored for this user's key, if any."""
    return session.exec(
        select(IdempotencyRecord).where(
            col(IdempotencyRecord.user_id) == user_id, col(IdempotencyRecord.key) == key
        )
    ).first()


def replay_response(record: IdempotencyRecord, digest: str) -> StoredResponse:
    """The first response to this key, if the request is the same one."""
    same_request(
        key=record.key,
        operation=api_operation(record.method, record.path),
        stored=record.request_sha256,
        digest=digest,
        field="Idempotency-Key",
    )
    return StoredResponse(status_code=record.status_code, body=record.response)


def record_response(
    session: Session,
    *,
    user_id: int,
    key: str,
    method: str,
    path: str,
    digest: str,
    status_code: int,
    response: Any,
) -> IdempotencyRecord:
    """Store the response to this user's key, in the transaction of the write it answers."""
    record = IdempotencyRecord(
        user_id=user_id,
        key=key,
        method=method,
        path=path[:300],
        request_sha256=digest,
        status_code=status_code,
        response=response,
    )
    session.add(record)
    session.flush()
    return record


def forget_old_keys(session: Session, *, older_than: datetime) -> int:
    """Delete the API's stored answers recorded before ``older_than``; how many went.
    A retry that late is a new request (the flows' keys are kept: they guard re-runs)."""
    old = session.exec(
        select(IdempotencyRecord).where(col(IdempotencyRecord.created_at) < older_than)
    ).all()
    for record in old:
        session.delete(record)
    return len(old)
