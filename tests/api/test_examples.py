"""Every operation in the OpenAPI document shows a real exchange (api/examples.py): a
request where it takes a body and an answer per status it was seen to give, each valid
against the schema it illustrates, with no usable secret in any of them."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import pytest
from jsonschema import Draft202012Validator
from sqlalchemy import create_engine

from api.app import create_app
from api.examples import RECORDED, recorded
from tests.builders import PASSWORD


@pytest.fixture(scope="module")
def spec() -> dict[str, Any]:
    return create_app(create_engine("sqlite://")).openapi()


def _operations(spec: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            yield f"{method.upper()} {path}", operation


def _shown(spec: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    """(operation, where, media object) for every media object that has examples."""
    for name, operation in _operations(spec):
        body = operation.get("requestBody", {}).get("content", {})
        for media_type, media in body.items():
            yield name, f"request {media_type}", media
        for status, response in operation.get("responses", {}).items():
            for media_type, media in response.get("content", {}).items():
                yield name, f"{status} {media_type}", media


def test_every_operation_shows_a_request_and_a_successful_answer(spec: dict[str, Any]) -> None:
    missing = []
    for name, operation in _operations(spec):
        body = operation.get("requestBody", {}).get("content", {})
        if body and not all("examples" in m for m in body.values()):
            missing.append(f"{name}: request")
        answers = [
            media
            for status, response in operation["responses"].items()
            if status.startswith("2")
            for media_type, media in response.get("content", {}).items()
            if media_type != "application/pdf"
        ]
        if answers and not any("examples" in m for m in answers):
            missing.append(f"{name}: answer")
    assert missing == [], "run `make examples`:\n" + "\n".join(missing)
    problems = sum(
        1
        for name, where, media in _shown(spec)
        if "examples" in media and where.split()[1] == "application/problem+json"
    )
    assert problems >= 60  # refusals are shown too, not only the happy path


def test_every_example_is_valid_against_its_schema(spec: dict[str, Any]) -> None:
    invalid = []
    checked = 0
    for name, where, media in _shown(spec):
        if "examples" not in media or "schema" not in media:
            continue
        # The schema's $refs point into the document's components.
        schema = {**media["schema"], "components": spec["components"]}
        validator = Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER)
        for example in media["examples"].values():
            checked += 1
            errors = list(validator.iter_errors(example["value"]))
            if errors:
                invalid.append(f"{name} ({where}): {errors[0].message[:200]}")
            if where.endswith("application/x-ndjson"):
                for line in example["value"].splitlines():
                    json.loads(line)
    assert invalid == [], "\n".join(invalid[:20])
    assert checked >= 250, checked


def test_examples_name_only_operations_there_are_and_hold_no_secret(spec: dict[str, Any]) -> None:
    names = {name for name, _ in _operations(spec)}
    assert set(recorded()) <= names, sorted(set(recorded()) - names)  # none stale
    text = RECORDED.read_text()
    assert PASSWORD not in text
    assert not re.search(r"eyJ[\w-]+\.[\w-]+\.[\w-]+", text)  # no token
    assert set(re.findall(r"whsec_[^\"]*", text)) <= {
        "whsec_<shown once: the endpoint's signing secret>"
    }
    assert set(re.findall(r"lims_[a-z0-9]+_[^\"]*", text)) <= set()  # no API key
