"""Records the API's real requests and answers during the API tests, as the examples the
OpenAPI document shows (api/examples.py). ``make examples`` runs tests/api on SQLite with
LIMS_RECORD_EXAMPLES set to api/openapi_examples.json; nothing is recorded otherwise.

Per operation (method and route template) the first request body and, per status, the
first answer are kept, with secrets replaced by labelled placeholders: an example must
show the shape of a real exchange, never a usable token, key or password."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.jsonlog import route_template

TARGET = os.environ.get("LIMS_RECORD_EXAMPLES", "").strip()
# Long text answers (CSV, JSON Lines) are cut to their first lines.
TEXT_LINES = 4
ROWS = 2
PLACEHOLDERS = {
    "access_token": "<an access token from createToken>",
    "refresh_token": "<a refresh token from createToken>",
    "password": "<the signer's own password>",
    "secret": "whsec_<shown once: the endpoint's signing secret>",
    "key": "lims_<prefix>_<shown once: the key itself>",
}
JWT = re.compile(r"eyJ[\w-]+\.[\w-]+\.[\w-]+")

RECORDED = ("/api/v1/", "/health", "/ready")

recorded: dict[str, dict[str, Any]] = {}


def scrub(value: Any, key: str = "", *, rows: int | None = None) -> Any:
    """``value`` with every secret replaced by its placeholder, and each list cut to its
    first ``rows`` items when given (a list's example shows its shape, not the lab)."""
    if isinstance(value, dict):
        return {k: scrub(v, k, rows=rows) for k, v in value.items()}
    if isinstance(value, list):
        return [scrub(v, key, rows=rows) for v in value[:rows]]
    if isinstance(value, str):
        if key in PLACEHOLDERS and value:
            return PLACEHOLDERS[key]
        return JWT.sub("<a token>", value)
    return value


def _decoded(body: bytes, content_type: str) -> Any:
    if not body:
        return None
    lines = "ndjson" in content_type or "jsonl" in content_type
    if "json" in content_type and not lines:
        try:
            return json.loads(body)
        except ValueError:
            return None
    if content_type.startswith("application/x-www-form-urlencoded"):
        return dict(parse_qsl(body.decode(errors="replace")))
    if content_type.startswith("text/") or lines:
        return "\n".join(body.decode(errors="replace").splitlines()[:TEXT_LINES]) + "\n"
    return None  # PDFs: the document declares the type, an example would be noise


class Recorder:
    """ASGI wrapper: the request and answer of every /api/v1 call, by operation."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    def __getattr__(self, name: str) -> Any:
        # Tests read the app's state, routes and openapi() through the wrapper.
        return getattr(self.app, name)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(RECORDED):
            await self.app(scope, receive, send)
            return
        sent = bytearray()
        answered = bytearray()
        answer: dict[str, Any] = {}

        async def receiving() -> Message:
            message = await receive()
            sent.extend(message.get("body", b""))
            return message

        async def sending(message: Message) -> None:
            if message["type"] == "http.response.start":
                answer["status"] = message["status"]
                headers = {k.decode().lower(): v.decode() for k, v in message["headers"]}
                answer["type"] = headers.get("content-type", "")
            elif message["type"] == "http.response.body":
                answered.extend(message.get("body", b""))
            await send(message)

        await self.app(scope, receiving, sending)
        route = route_template(scope)
        if route == "unmatched" or "status" not in answer:
            return
        request_type = dict(scope["headers"]).get(b"content-type", b"").decode()
        entry = recorded.setdefault(f"{scope['method']} {route}", {"responses": {}})
        body = _decoded(bytes(sent), request_type)
        if body is not None and "request" not in entry and answer["status"] < 300:
            entry["request"] = scrub(body)
        status = str(answer["status"])
        if status not in entry["responses"]:
            shown = _decoded(bytes(answered), answer["type"])
            if shown is not None:
                entry["responses"][status] = scrub(shown, rows=ROWS)


def install() -> None:
    """Under LIMS_RECORD_EXAMPLES, every app the tests create is recorded. Called when
    tests/conftest.py is imported, before test modules and the conftests below it (and
    tests/live_server.py) import create_app."""
    if not TARGET:
        return
    import api.app

    made = api.app.create_app

    def recorded_app(*args: Any, **kwargs: Any) -> Any:
        return Recorder(made(*args, **kwargs))

    api.app.create_app = recorded_app


def write() -> None:
    """Write what was recorded (sorted, so a re-recording diffs cleanly)."""
    if not (TARGET and recorded):
        return
    from sqlalchemy import create_engine

    from api.app import create_app  # the recorded one: its document is the same

    # Only the document's operations: not a 405 to a method it lacks, nor a route a test
    # added to its own app.
    spec = create_app(create_engine("sqlite://")).openapi()
    documented = {f"{m.upper()} {p}" for p, ops in spec["paths"].items() for m in ops}
    ordered = {k: recorded[k] for k in sorted(recorded) if k in documented}
    if ordered:
        Path(TARGET).write_text(json.dumps(ordered, indent=1, ensure_ascii=False) + "\n")
