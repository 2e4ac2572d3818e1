"""One JSON log line per request, with its X-Request-ID, and that id everywhere it leads.

The id is the caller's X-Request-ID when it is a sane token (a load balancer's or a
client's), otherwise a new one; it is sent back in the answer, set in lims.context for the
request (the ledger's append records it in each custody event the request writes, and a
flow run started by the request is tagged with it), and put on every log record of the
``lims`` loggers while the request runs. Latency goes to the per-route histogram.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import time
import uuid
from datetime import UTC, datetime
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.metrics import REQUEST_SECONDS
from lims.context import request_id

HEADER = b"x-request-id"
# What we accept from outside: it goes into logs and the ledger, so no spaces, quotes or
# control characters, and not longer than a UUID with a prefix.
SANE_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")
log = logging.getLogger("lims.request")


class JsonFormatter(logging.Formatter):
    """A log record as one JSON object (what log shippers parse without rules)."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        rid = getattr(record, "request_id", None) or request_id.get()
        if rid:
            line["request_id"] = rid
        line.update(getattr(record, "fields", {}))
        if record.exc_info:
            line["error"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False, default=str)


def install_json_logging() -> None:
    """Send the ``lims`` loggers' records to standard error as JSON lines (once)."""
    lims_log = logging.getLogger("lims")
    if any(isinstance(h.formatter, JsonFormatter) for h in lims_log.handlers):
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    lims_log.addHandler(handler)
    lims_log.setLevel(logging.INFO)
    lims_log.propagate = False  # one line per record, not one more from the root logger


def _incoming(scope: Scope) -> str:
    for name, value in scope.get("headers", ()):
        if name == HEADER:
            text = value.decode("latin-1")
            if SANE_ID.fullmatch(text):
                return text
    return uuid.uuid4().hex


_PARAM = re.compile(r"\{(\w+)(?::\w+)?\}")


def route_template(scope: Scope) -> str:
    """The matched route's full template (/api/v1/lab/orders/{number}), never the raw path.

    The route in the scope is the innermost router's (FastAPI nests included routers, so
    its path lacks their prefixes): the prefix is what the real path has before the
    template's rendered part."""
    route = getattr(scope.get("route"), "path", None)
    if not route:
        return "unmatched"
    params = scope.get("path_params", {})
    rendered = _PARAM.sub(lambda m: str(params.get(m.group(1), m.group(0))), route)
    path = scope.get("path", "")
    return path[: len(path) - len(rendered)] + route if path.endswith(rendered) else route


class RequestLog:
    """ASGI middleware: request id in and out, the JSON line, the latency histogram."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        rid = _incoming(scope)
        token = request_id.set(rid)
        started = time.perf_counter()
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", []), (HEADER, rid.encode())]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            took = time.perf_counter() - started
            route = route_template(scope)
            REQUEST_SECONDS.labels(scope["method"], route, str(status)).observe(took)
            log.info(
                "request answered",  # the access log has the line a person reads
                extra={
                    "request_id": rid,
                    "fields": {
                        "method": scope["method"],
                        "route": route,
                        "status": status,
                        "ms": round(took * 1000, 2),
                    },
                },
            )
            request_id.reset(token)
