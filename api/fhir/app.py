"""The /fhir sub-application: application/fhir+json answers, and every error (sign-in,
role, not found, refusals, malformed JSON, wrong resource type, crashes) an
OperationOutcome with the HTTP status /api/v1 would give."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError
from starlette.exceptions import HTTPException as StarletteHTTPException

from api.fhir import routes
from lims.errors import LimsError
from lims.fhir.bundles import operation_outcome
from lims.fhir.systems import CONTENT_TYPE

log = logging.getLogger("lims.api.fhir")


class FhirResponse(JSONResponse):
    media_type = CONTENT_TYPE


def outcome(
    status: int, message: str, headers: dict[str, str] | None = None, **kw: Any
) -> FhirResponse:
    return FhirResponse(operation_outcome(status, message, **kw), status, headers=headers)


def fhir_app(engine: Engine) -> FastAPI:
    """The FHIR facade on ``engine`` (the main app's), with its own error handlers."""
    app = FastAPI(
        title="LIMS FHIR",
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
        default_response_class=FhirResponse,
    )
    app.state.engine = engine

    @app.exception_handler(LimsError)
    async def lims_error(request: Request, exc: LimsError) -> FhirResponse:
        headers = {"WWW-Authenticate": "Bearer"} if exc.http_status == 401 else None
        if "retry_after" in exc.details:
            headers = {"Retry-After": str(exc.details["retry_after"])}
        problems = exc.details.get("problems")
        return outcome(
            exc.http_status,
            exc.message,
            headers=headers,
            expressions=[exc.field] if exc.field else (),
            details=[str(p) for p in problems] if isinstance(problems, list) else (),
        )

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> FhirResponse:
        errors = exc.errors()
        fields = [".".join(str(p) for p in e.get("loc", ())) for e in errors]
        return outcome(
            400,
            "; ".join(f"{f}: {e.get('msg')}" for f, e in zip(fields, errors, strict=True)),
            expressions=fields,
        )

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> FhirResponse:
        message = str(exc.detail)
        if exc.status_code == 404:
            message = f"nothing at {request.url.path}; see /fhir/metadata"
        elif exc.status_code == 405:
            message = f"{request.method} is not supported on {request.url.path}"
        return outcome(exc.status_code, message, headers=getattr(exc, "headers", None))

    @app.exception_handler(IntegrityError)
    async def conflict(request: Request, exc: IntegrityError) -> FhirResponse:
        log.warning("integrity error on %s", request.url.path)
        return outcome(409, "a concurrent request changed the same record; try again")

    @app.exception_handler(Exception)
    async def crash(request: Request, exc: Exception) -> FhirResponse:
        log.exception("unhandled error on %s", request.url.path)
        return outcome(500, "internal error; the request was not completed")

    app.include_router(routes.router)
    return app
