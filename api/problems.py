"""Errors as application/problem+json (RFC 9457), and a request body size limit."""

from __future__ import annotations

import logging
import secrets
from typing import Any
from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse, Response
from sqlalchemy.exc import DataError, IntegrityError, OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.headers import page_csp, security_headers
from api.metrics import refused
from api.web.errors import error_page, wants_html
from api.web.session import NeedsSignIn
from lims.errors import LimsError
from lims.settings import get_settings

log = logging.getLogger("lims.api")
PROBLEM = "application/problem+json"
TITLES = {
    400: "Bad request",
    401: "Not signed in",
    403: "Not allowed",
    404: "Not found",
    405: "Method not allowed",
    409: "Refused by a rule",
    413: "Request too large",
    415: "Unsupported media type",
    422: "Invalid input",
    423: "Account locked",
    429: "Too many attempts",
    500: "Internal error",
    503: "Busy, try again",
}


def problem(
    status: int,
    detail: str,
    *,
    code: str | None = None,
    instance: str | None = None,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> JSONResponse:
    body: dict[str, Any] = {
        "type": f"/problems/{code or status}",
        "title": TITLES.get(status, "Error"),
        "status": status,
        "detail": detail,
    }
    if instance:
        body["instance"] = instance
    body.update({k: v for k, v in extra.items() if v is not None})
    refused(body["type"], status)
    return JSONResponse(body, status_code=status, media_type=PROBLEM, headers=headers)


def _is_page(request: Request) -> bool:
    """A browser page (HTML), not the JSON API."""
    path = request.url.path
    return not (path.startswith("/api/") or path in ("/health", "/openapi.json"))


def _field(loc: tuple[Any, ...]) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header")]
    return ".".join(parts) or "body"


def install(app: FastAPI) -> None:
    @app.exception_handler(NeedsSignIn)
    async def sign_in_first(request: Request, exc: NeedsSignIn) -> Response:
        return RedirectResponse(f"/login?next={quote(exc.next_path)}", status_code=303)

    @app.exception_handler(LimsError)
    async def lims_error(request: Request, exc: LimsError) -> Response:
        if _is_page(request):
            return error_page(request, exc.http_status, exc.message)
        headers = {"WWW-Authenticate": "Bearer"} if exc.http_status == 401 else None
        if "retry_after" in exc.details:
            headers = {"Retry-After": str(exc.details["retry_after"])}
        details = {k: v for k, v in exc.details.items() if isinstance(v, list | str | int)}
        return problem(
            exc.http_status,
            exc.message,
            code=exc.code,
            instance=request.url.path,
            field=exc.field,
            headers=headers,
            **details,
        )

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> Response:
        if wants_html(request):
            return error_page(request, 422, "An address or form value could not be read.")
        errors = [
            {"field": _field(tuple(e.get("loc", ()))), "message": e.get("msg", "")}
            for e in exc.errors()
        ]
        if any(e.get("type") == "json_invalid" for e in exc.errors()):
            return problem(
                400, "the body is not valid JSON", code="malformed_json", instance=request.url.path
            )
        first = errors[0] if errors else {"field": "body", "message": "invalid"}
        return problem(
            422,
            f"{first['field']}: {first['message']}",
            code="invalid_input",
            instance=request.url.path,
            field=first["field"],
            errors=errors,
        )

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        headers = getattr(exc, "headers", None)
        if exc.status_code == 405:
            # Starlette names only the first route that matched the path; RFC 9110 15.5.6
            # wants every method the resource has. OPTIONS is answered, not refused.
            allow = ", ".join(allowed_methods(request))
            if request.method == "OPTIONS":
                return Response(status_code=204, headers={"Allow": allow})
            headers = {**(headers or {}), "Allow": allow}
        if wants_html(request):
            detail = (
                f"There is no page at {request.url.path}. Check the address, or use the menu."
                if exc.status_code == 404
                else str(exc.detail)
            )
            return error_page(request, exc.status_code, detail)
        return problem(
            exc.status_code,
            str(exc.detail),
            instance=request.url.path,
            headers=headers,
        )

    @app.exception_handler(IntegrityError)
    async def duplicate(request: Request, exc: IntegrityError) -> Response:
        # A backstop: services check for duplicates first, but two writers can still race
        # to the same unique key. The transaction was rolled back.
        if not _is_unique_violation(exc):
            return await crash(request, exc)
        log.warning("unique constraint on %s", request.url.path)
        return problem(
            409,
            "a record with the same identifying values already exists; nothing was changed",
            code="duplicate",
            instance=request.url.path,
        )

    @app.exception_handler(DataError)
    async def unstorable(request: Request, exc: DataError) -> JSONResponse:
        # E.g. a NUL character, which PostgreSQL text cannot hold; the transaction was
        # rolled back, so nothing was written.
        return problem(
            422,
            "a value in the request cannot be stored (for example a NUL "
            "character or a number out of range); nothing was changed",
            code="unstorable_value",
            instance=request.url.path,
        )

    @app.exception_handler(OperationalError)
    async def busy(request: Request, exc: OperationalError) -> JSONResponse:
        # The driver's SQLSTATE (PostgreSQL) tells a deadlock from a dropped connection.
        log.warning(
            "database unavailable on %s: %s %s",
            request.url.path,
            type(exc).__name__,
            getattr(exc.orig, "sqlstate", None) or str(exc.orig).splitlines()[0][:200],
        )
        return problem(
            503,
            "the database is busy or unreachable; nothing was changed, "
            "retry with the same Idempotency-Key",
            code="unavailable",
            instance=request.url.path,
            headers={"Retry-After": "1"},
        )

    @app.exception_handler(Exception)
    async def crash(request: Request, exc: Exception) -> Response:
        log.exception("unhandled error on %s", request.url.path)
        # Starlette answers this from outside every middleware: the security headers are
        # added here, or a 500 would be the one answer without them.
        nonce = secrets.token_urlsafe(16)
        headers = security_headers(
            request.url.path, csp=page_csp(nonce), production=get_settings().production
        )
        if wants_html(request):
            request.state.csp_nonce = nonce
            shown = error_page(
                request, 500, "The request was not applied. Try again, or tell the lab."
            )
            shown.headers.update(headers)
            return shown
        return problem(
            500,
            "an internal error occurred; the request was not applied",
            instance=request.url.path,
            headers=headers,
        )


_METHODS = ("DELETE", "GET", "HEAD", "PATCH", "POST", "PUT")


def allowed_methods(request: Request) -> list[str]:
    """Every method some route serves at the request's path, and OPTIONS."""
    # Asked of the routes themselves, method by method: included routers do not expose
    # their routes' paths.
    allowed = {"OPTIONS"}
    for method in _METHODS:
        scope = {**request.scope, "method": method}
        if any(route.matches(scope)[0] is Match.FULL for route in request.app.router.routes):
            allowed.add(method)
    return sorted(allowed)


def _is_unique_violation(exc: IntegrityError) -> bool:
    state = getattr(exc.orig, "sqlstate", None)  # psycopg (PostgreSQL)
    if state is not None:
        return bool(state == "23505")
    return "UNIQUE constraint failed" in str(exc.orig)  # sqlite3


class BodyLimit:
    """Refuse request bodies over ``limit`` bytes, declared or streamed."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            await self._too_large(scope, receive, send)
            return
        seen = 0
        overflow = False
        replaced = False

        async def counted() -> Message:
            nonlocal seen, overflow
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    overflow = True
                    raise _TooLarge
            return message

        async def guarded(message: Message) -> None:
            # The app may catch the overflow while parsing the body and answer 400; the
            # client must still learn that the body was too large.
            nonlocal replaced
            if overflow:
                if not replaced:
                    replaced = True
                    await self._too_large(scope, receive, send)
                return
            await send(message)

        try:
            await self.app(scope, counted, guarded)
        except _TooLarge:
            if not replaced:
                await self._too_large(scope, receive, send)

    async def _too_large(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = problem(
            413, f"the request body is larger than {self.limit} bytes", code="too_large"
        )
        await response(scope, receive, send)


class _TooLarge(Exception):
    pass
