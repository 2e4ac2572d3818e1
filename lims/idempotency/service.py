"""Do a write once per idempotency key, in the caller's transaction.

``run_once`` first inserts the key (the unique constraint is the guard), then runs the
write, then stores its result on the key's row. A caller that repeats the request finds the
row and gets the first result back, nothing written twice. Two concurrent callers with one
key cannot both write: on PostgreSQL the second blocks on the key's unique index until the
first commits and then fails with an IntegrityError (the caller retries and replays); on
SQLite the write transactions are serialised and the second simply finds the row.
The same key with a different request is refused: the key was reused by mistake.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlmodel import Session, col, select

from lims.custody.ledger import jsonable
from lims.errors import InvalidInput
from lims.idempotency.models import FlowIdempotency

MAX_KEY_LENGTH = 128


@dataclass(frozen=True)
class Outcome:
    result: dict[str, Any]
    replayed: bool


def request_digest(operation: str, request: Mapping[str, Any]) -> str:
    text = json.dumps(
        {"operation": operation, "request": jsonable(dict(request))},
        sort_keys=True,
        separators=(",", ":"),
    )
    return hashlib.sha256(text.encode()).hexdigest()


def _check_key(key: str) -> None:
    if not isinstance(key, str) or not 0 < len(key) <= MAX_KEY_LENGTH or not key.isprintable():
        raise InvalidInput(
            f"an idempotency key is 1 to {MAX_KEY_LENGTH} printable characters",
            field="idempotency_key",
        )


def find(session: Session, key: str) -> FlowIdempotency | None:
    return session.exec(select(FlowIdempotency).where(col(FlowIdempotency.key) == key)).first()


def replay(row: FlowIdempotency, digest: str) -> Outcome:
    if row.request_sha256 != digest:
        raise InvalidInput(
            f"idempotency key {row.key!r} was already used for a different {row.operation} request",
            field="idempotency_key",
        )
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
    _check_key(key)
    digest = request_digest(operation, request)
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
