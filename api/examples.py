"""Examples for every operation in the OpenAPI document: real requests and answers
recorded from the API tests (``make examples``, tests/examples_recorder.py), stored in
api/openapi_examples.json with secrets replaced by placeholders and lists cut to two
rows. tests/api/test_examples.py checks that each operation has them and that each one
is valid against the schema it illustrates, so an example cannot drift from the API."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

RECORDED = Path(__file__).with_name("openapi_examples.json")
SUMMARY = "recorded from the API tests (make examples)"


@cache
def recorded() -> dict[str, Any]:
    """The recorded exchanges by operation ("POST /api/v1/clinic/orders")."""
    loaded: dict[str, Any] = json.loads(RECORDED.read_text()) if RECORDED.exists() else {}
    return loaded


def _show(content: dict[str, Any], value: Any) -> None:
    for media_type, media in content.items():
        if media_type != "application/pdf":  # binary: the type says it all
            media["examples"] = {"recorded": {"summary": SUMMARY, "value": value}}


def attach(spec: dict[str, Any]) -> None:
    """Put each operation's recorded request and answers (per status) into ``spec``."""
    for path, operations in spec.get("paths", {}).items():
        for method, operation in operations.items():
            exchange = recorded().get(f"{method.upper()} {path}")
            if exchange is None:
                continue
            body = operation.get("requestBody", {}).get("content")
            if body and "request" in exchange:
                _show(body, exchange["request"])
            for status, answer in exchange["responses"].items():
                declared = operation.get("responses", {}).get(status, {}).get("content")
                if declared:
                    _show(declared, answer)
