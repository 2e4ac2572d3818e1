"""Idempotency-Key on POSTs a client may retry: the same key and body returns the first
response; the same key with a different body is refused (422). The record is written in
the same transaction as the change it answers for."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from typing import Any

from fastapi import Request
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from lims.auth.models import IdempotencyRecord
from lims.db import read_session, write_session
from lims.errors import InvalidInput
from lims.parties.models import User


def fingerprint(method: str, path: str, body: Any) -> str:
    text = json.dumps(jsonable_encoder(body), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(f"{method} {path} {text}".encode()).hexdigest()


def _find(session: Session, user: User, key: str) -> IdempotencyRecord | None:
    return session.exec(
        select(IdempotencyRecord).where(
            col(IdempotencyRecord.user_id) == user.id, col(IdempotencyRecord.key) == key
        )
    ).first()


def _replay(record: IdempotencyRecord, digest: str) -> JSONResponse:
    if record.request_sha256 != digest:
        raise InvalidInput(
            "this Idempotency-Key was already used with a different request",
            field="Idempotency-Key",
        )
    return JSONResponse(
        record.response, status_code=record.status_code, headers={"Idempotent-Replayed": "true"}
    )


def run(
    engine: Engine,
    *,
    user: User,
    key: str | None,
    method: str,
    path: str,
    body: Any,
    status_code: int,
    handler: Callable[[Session, User], Any],
) -> JSONResponse:
    """Run ``handler(session, actor)`` in one write transaction, once per key."""
    if key is not None and not (0 < len(key) <= 128 and key.isprintable()):
        raise InvalidInput(
            "Idempotency-Key must be 1-128 printable characters", field="Idempotency-Key"
        )
    digest = fingerprint(method, path, body)
    try:
        with write_session(engine) as session:
            if key is not None:
                existing = _find(session, user, key)
                if existing is not None:
                    return _replay(existing, digest)
            actor = session.get(User, user.id)
            assert actor is not None
            result = jsonable_encoder(handler(session, actor))
            if key is not None:
                assert user.id is not None
                session.add(
                    IdempotencyRecord(
                        user_id=user.id,
                        key=key,
                        method=method,
                        path=path[:300],
                        request_sha256=digest,
                        status_code=status_code,
                        response=result,
                    )
                )
                session.flush()
    except IntegrityError:
        # Two requests with the same key raced; the other one won and was committed.
        if key is None:
            raise
        with read_session(engine) as session:
            existing = _find(session, user, key)
        if existing is None:
            raise
        return _replay(existing, digest)
    return JSONResponse(result, status_code=status_code)


def respond(
    request: Request,
    engine: Engine,
    *,
    user: User,
    key: str | None,
    body: BaseModel,
    status_code: int,
    handler: Callable[[Session, User], Any],
) -> JSONResponse:
    """``run`` for an endpoint: method, path and body fingerprint come from the request."""
    return run(
        engine,
        user=user,
        key=key,
        method=request.method,
        path=request.url.path,
        body=body.model_dump(mode="json"),
        status_code=status_code,
        handler=handler,
    )
