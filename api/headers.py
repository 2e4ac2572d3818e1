"""Security headers on every answer, and no credentials in URLs.

CSP: scripts only with the page's nonce (base.html's id checker), nothing may frame a
page; styles may be inline (the layout's stylesheet and the lineage picture's attributes)
since no page shows text a visitor chose. /docs and /redoc (off in production) load
Swagger UI and ReDoc from their CDN. Cache-Control: no-store on everything but /health:
pages and API answers carry personal data and tokens.
"""

from __future__ import annotations

import json
import logging
import secrets
from urllib.parse import parse_qsl, unquote_plus

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from lims.settings import get_settings

# Names that carry a secret: a request with one of these in its query string is refused
# before any handler (or log line of ours) sees it, and uvicorn's access log masks them.
SECRET_PARAMETERS = frozenset(
    {"password", "client_secret", "refresh_token", "access_token", "token", "api_key", "csrf"}
)
DOCS_PATHS = ("/docs", "/redoc")
DOCS_CSP = (
    "default-src 'self'; script-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net; "
    "style-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net; "
    "img-src 'self' data: https://fastapi.tiangolo.com https://cdn.redoc.ly; "
    "worker-src blob:; frame-ancestors 'none'; base-uri 'none'; object-src 'none'"
)
HSTS = "max-age=31536000; includeSubDomains"


def page_csp(nonce: str) -> str:
    return (
        f"default-src 'self'; script-src 'self' 'nonce-{nonce}'; "
        "style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
        "frame-ancestors 'none'; base-uri 'none'; form-action 'self'; object-src 'none'"
    )


def secret_in_query(query_string: bytes) -> str | None:
    """The first secret-carrying parameter name in a raw query string, if any."""
    try:
        pairs = parse_qsl(query_string.decode("latin-1"), keep_blank_values=True)
    except ValueError:
        return None
    return next((name for name, _ in pairs if name.strip().lower() in SECRET_PARAMETERS), None)


def security_headers(path: str, *, csp: str, production: bool) -> dict[str, str]:
    """The headers every answer carries (lower-case names)."""
    extra = {
        "content-security-policy": csp,
        "x-content-type-options": "nosniff",
        "referrer-policy": "no-referrer",
        "x-frame-options": "DENY",
    }
    if path != "/health":
        extra["cache-control"] = "no-store"
    if production:
        extra["strict-transport-security"] = HSTS
    return extra


class SecurityHeaders:
    """Pure ASGI middleware: a CSP nonce per request (request.state.csp_nonce), the
    headers on every answer, and a 400 for credentials in the query string."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        nonce = secrets.token_urlsafe(16)
        scope.setdefault("state", {})["csp_nonce"] = nonce
        path: str = scope.get("path", "")
        csp = DOCS_CSP if path.startswith(DOCS_PATHS) else page_csp(nonce)
        production = get_settings().production

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {k.lower() for k, _ in headers}
                extra = security_headers(path, csp=csp, production=production)
                headers += [
                    (k.encode(), v.encode()) for k, v in extra.items() if k.encode() not in present
                ]
                message = {**message, "headers": headers}
            await send(message)

        name = secret_in_query(scope.get("query_string", b""))
        if name is not None:
            await self._refuse(scope, name, send_with_headers)
            return
        await self.app(scope, receive, send_with_headers)

    @staticmethod
    async def _refuse(scope: Scope, name: str, send: Send) -> None:
        body = json.dumps(
            {
                "type": "/problems/credentials_in_url",
                "title": "Bad request",
                "status": 400,
                "detail": f"'{name}' was sent in the URL, where proxies and logs keep it: "
                "send it in the request body (a form or JSON) instead, and change it if "
                "it is a password",
                "instance": scope.get("path", ""),
            }
        ).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 400,
                "headers": [
                    (b"content-type", b"application/problem+json"),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})


def mask_secrets(url: str) -> str:
    """``url`` with the value of every secret-carrying query parameter replaced by ***; a
    name is matched as the refusal reads it (percent- and plus-decoded, any case)."""
    path, sep, query = url.partition("?")
    if not sep:
        return url
    pairs = []
    for pair in query.split("&"):
        name, _, _ = pair.partition("=")
        secret = unquote_plus(name).strip().lower() in SECRET_PARAMETERS
        pairs.append(f"{name}=***" if secret else pair)
    return f"{path}?{'&'.join(pairs)}"


class MaskSecretsInUrls(logging.Filter):
    """Masks secret query parameters in uvicorn's access lines (the request is refused,
    but uvicorn still logs its request line)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(mask_secrets(a) if isinstance(a, str) else a for a in record.args)
        return True
