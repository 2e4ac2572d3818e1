"""Idempotency-Key on POSTs a client may retry, with lims.idempotency's rule: the same key
and body returns the first response; the same key with a different body is refused (409).
The record is written in the same transaction as the change it answers for."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import Header, Request
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from lims.db import read_session, write_session
from lims.idempotency.service import (
    api_operation,
    check_key,
    find_response,
    record_response,
    replay_response,
    request_digest,
)
from lims.parties.models import User

# Fields never part of a request's fingerprint: a digest of a password is still a secret.
NOT_FINGERPRINTED = {"password"}

IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        description=(
            "Retry-safe key (1-128 printable characters) for this write. Scope: the signed-in"
            " user; the first answer is stored with the change, in the same transaction. A"
            " retry with the same key and the same operation and body (passwords left out)"
            " gets the first answer again with `Idempotent-Replayed: true`, and nothing is"
            " written twice; the same key with another operation or body is refused (409"
            " idempotency_conflict). Keys are kept for LIMS_IDEMPOTENCY_RETENTION_DAYS"
            " (30 by default), then forgotten."
        ),
    ),
]


def fingerprint(method: str, path: str, body: Any) -> str:
    """The request's digest (lims.idempotency.service.request_digest)."""
    return request_digest(api_operation(method, path), jsonable_encoder(body))


def _replayed(session: Session, user_id: int, key: str, digest: str) -> JSONResponse | None:
    record = find_response(session, user_id=user_id, key=key)
    if record is None:
        return None
    stored = replay_response(record, digest)
    return JSONResponse(
        stored.body, status_code=stored.status_code, headers={"Idempotent-Replayed": "true"}
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
    if key is not None:
        check_key(key, field="Idempotency-Key")
    assert user.id is not None
    digest = fingerprint(method, path, body)
    try:
        with write_session(engine) as session:
            if key is not None:
                replayed = _replayed(session, user.id, key, digest)
                if replayed is not None:
                    return replayed
            # The user current_user read a moment ago, attached without reading it again
            # (a second SELECT of the user on every write; issue 12).
            actor = session.merge(user, load=False)
            result = jsonable_encoder(handler(session, actor))
            if key is not None:
                record_response(
                    session,
                    user_id=user.id,
                    key=key,
                    method=method,
                    path=path,
                    digest=digest,
                    status_code=status_code,
                    response=result,
                )
    except IntegrityError:
        # Two requests with the same key raced; the other one won and was committed.
        if key is None:
            raise
        with read_session(engine) as session:
            replayed = _replayed(session, user.id, key, digest)
        if replayed is None:
            raise
        return replayed
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
        body=body.model_dump(mode="json", exclude=NOT_FINGERPRINTED),
        status_code=status_code,
        handler=handler,
    )
