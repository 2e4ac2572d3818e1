"""415 for an /api/v1 write whose body is not JSON.

FastAPI reads a JSON body whatever Content-Type says, or fails it as "not a valid
dictionary" (422), which misleads a client that sent XML or a form by mistake. A write with
a body must say application/json (or a +json type); the token endpoint takes the OAuth2
form it is specified with. A body-less POST (an action with no fields) is let through.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send

from api.problems import problem

FORM_PATHS = frozenset({"/api/v1/auth/token"})
WRITES = frozenset({"POST", "PUT", "PATCH"})


def _json(content_type: str) -> bool:
    media = content_type.split(";", 1)[0].strip().lower()
    return media == "application/json" or (
        media.startswith("application/") and media.endswith("+json")
    )


class JsonBodies:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if (
            scope["type"] != "http"
            or scope.get("method") not in WRITES
            or not path.startswith("/api/v1/")
        ):
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        content_type = headers.get(b"content-type", b"").decode("latin-1")
        length = headers.get(b"content-length", b"")
        empty = length in (b"0",) or (not length and b"transfer-encoding" not in headers)
        if (
            empty
            or _json(content_type)
            or (path in FORM_PATHS and content_type.startswith("application/x-www-form-urlencoded"))
        ):
            await self.app(scope, receive, send)
            return
        wanted = "application/x-www-form-urlencoded" if path in FORM_PATHS else "application/json"
        response = problem(
            415,
            f"the body must be {wanted}, not {content_type or 'untyped'}; nothing was changed",
            code="unsupported_media_type",
            instance=path,
        )
        await response(scope, receive, send)
