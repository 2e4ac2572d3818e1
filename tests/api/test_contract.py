"""The OpenAPI contract an integrator generates a client from: hand-chosen operation ids,
errors typed as problem+json, the API key as a security scheme (issue 19, first part)."""

from __future__ import annotations

import importlib
import pkgutil
import re
from typing import Any

from jsonschema import Draft202012Validator

import flows
import lims
from api.app import create_app
from api.openapi import OPERATION_IDS
from tests.api.conftest import Api

VERB_NOUN = re.compile(r"^[a-z]+(?:[A-Z][a-z0-9]*)+$")


def _spec() -> dict[str, Any]:
    return create_app().openapi()


def test_every_operation_has_a_unique_verb_noun_id() -> None:
    spec = _spec()
    ids = [op["operationId"] for ops in spec["paths"].values() for op in ops.values()]
    assert len(ids) == len(set(ids)), sorted(i for i in ids if ids.count(i) > 1)
    assert not [i for i in ids if not VERB_NOUN.match(i) or "V1" in i], ids
    # Every hand-chosen id names a route that exists (a renamed path cannot leave it stale).
    routes = {(m.upper(), path) for path, ops in spec["paths"].items() for m in ops}
    assert set(OPERATION_IDS) <= routes, set(OPERATION_IDS) - routes
    assert spec["paths"]["/api/v1/clinic/orders"]["post"]["operationId"] == "createOrder"
    assert not [k for k in spec["components"]["schemas"] if "api_v1" in k]


def test_every_error_response_is_typed_problem_json() -> None:
    spec = _spec()
    untyped = []
    for path, ops in spec["paths"].items():
        for method, op in ops.items():
            for status, response in op["responses"].items():
                if (path, status) == ("/ready", "503"):
                    # The readiness document, as with 200: a monitor reads one shape.
                    schema = response["content"]["application/json"]["schema"]
                    assert schema == {"$ref": "#/components/schemas/ReadinessOut"}
                    continue
                if status[0] in "45":
                    content = response.get("content", {})
                    schema = content.get("application/problem+json", {}).get("schema")
                    if "application/json" in content or not schema:
                        untyped.append(f"{method.upper()} {path} {status}")
    assert not untyped, untyped


def test_the_api_key_is_a_security_scheme() -> None:
    spec = _spec()
    assert spec["components"]["securitySchemes"]["ApiKey"] == {
        "type": "apiKey",
        "in": "header",
        "name": "X-API-Key",
        "description": spec["components"]["securitySchemes"]["ApiKey"]["description"],
    }
    order = spec["paths"]["/api/v1/clinic/orders"]["post"]
    assert {"ApiKey": []} in order["security"]
    assert "x-api-key" not in [p["name"].lower() for p in order.get("parameters", [])]


def test_a_refusal_parses_as_the_declared_problem(api: Api) -> None:
    spec = api.client.get("/openapi.json").json()
    declared = spec["paths"]["/api/v1/clinic/patients/{coi_id}"]["get"]["responses"]["404"]
    ref = declared["content"]["application/problem+json"]["schema"]["$ref"]
    assert ref == "#/components/schemas/Problem"
    schema = {**spec["components"]["schemas"]["Problem"], "$defs": spec["components"]["schemas"]}
    answer = api.client.get("/api/v1/clinic/patients/NOPE", headers=api.as_("clinic"))
    assert answer.status_code in (404, 422)
    assert answer.headers["content-type"].startswith("application/problem+json")
    errors = list(Draft202012Validator(schema).iter_errors(answer.json()))
    assert errors == []
    assert answer.json()["status"] == answer.status_code


def test_files_are_declared_with_a_schema() -> None:
    spec = _spec()
    files = {
        "/api/v1/audit/exports/custody.jsonl": ("application/x-ndjson", {"type": "string"}),
        "/api/v1/audit/exports/custody.csv": ("text/csv", {"type": "string"}),
        "/api/v1/audit/materials/{material_id}/coa.pdf": (
            "application/pdf",
            {"type": "string", "format": "binary"},
        ),
        "/api/v1/lab/materials/{material_id}/label.pdf": (
            "application/pdf",
            {"type": "string", "format": "binary"},
        ),
    }
    for path, (media_type, schema) in files.items():
        method = "post" if path.endswith("/label.pdf") else "get"  # printing is an act
        content = spec["paths"][path][method]["responses"]["200"]["content"]
        assert content[media_type]["schema"] == schema, path
        assert "application/json" not in content, path


def _subclasses(cls: type[Any]) -> set[type[Any]]:
    found: set[type[Any]] = set(cls.__subclasses__())
    return found | {s for c in found for s in _subclasses(c)}


def test_every_problem_type_resolves_to_a_page(api: Api) -> None:
    from pathlib import Path

    from api import problems
    from lims.errors import LimsError

    # Every error class counts, whichever modules the tests before this one imported.
    for package in (flows, lims):
        for module in pkgutil.walk_packages(package.__path__, f"{package.__name__}."):
            importlib.import_module(module.name)
    codes = {c.code for c in _subclasses(LimsError)} - {"lims_error"}
    source = Path(problems.__file__).read_text()
    codes |= set(re.findall(r'code="([a-z_]+)"', source))
    codes |= {str(s) for s in problems.TITLES}
    for code in sorted(codes):
        page = api.client.get(f"/problems/{code}")
        assert page.status_code == 200, code
        assert page.headers["content-type"].startswith("text/html"), code
        assert f"<code>{code}</code>" in page.text
    # The type a real refusal carries is one of them.
    answer = api.client.get("/api/v1/clinic/patients/NOPE", headers=api.as_("clinic"))
    assert api.client.get(answer.json()["type"]).status_code == 200
    assert api.client.get("/problems/no_such_thing").status_code == 404


# Unsafe operations that do not take an Idempotency-Key, and why: a stored first answer
# would keep a secret (a token, an API key, a webhook secret) at rest for a month, or the
# operation is harmless to repeat (a ping, a redelivery: the receiver de-duplicates on
# webhook-id).
NOT_KEYED = {
    ("post", "/api/v1/auth/token"): "answers with tokens",
    ("post", "/api/v1/auth/refresh"): "answers with tokens",
    ("post", "/api/v1/auth/logout"): "repeating it changes nothing",
    ("post", "/api/v1/clinic/api-keys"): "answers with the key itself, shown once",
    ("delete", "/api/v1/clinic/api-keys/{prefix}"): "repeating it changes nothing",
    ("post", "/api/v1/clinic/webhooks"): "answers with the endpoint's secret, shown once",
    ("post", "/api/v1/clinic/webhooks/{endpoint_id}/rotation"): "answers with the new secret",
    ("post", "/api/v1/clinic/webhooks/{endpoint_id}/ping"): "a test; receivers de-duplicate",
    ("post", "/api/v1/clinic/deliveries/{delivery_id}/redelivery"): "same webhook-id again",
    ("post", "/api/v1/lab/flows/{name}"): "starts a flow run; its writes carry their own keys",
    ("post", "/api/v1/lab/materials/{material_id}/label.pdf"): "each answer is a printed "
    "label: a retry prints again and is recorded as the reprint it is",
}


def test_every_retryable_write_takes_an_idempotency_key() -> None:
    doc = create_app().openapi()
    unkeyed = set()
    for path, operations in doc["paths"].items():
        for method, op in operations.items():
            if method not in {"post", "put", "patch", "delete"} or not path.startswith("/api/"):
                continue
            names = {p.get("name", "").lower() for p in op.get("parameters", [])}
            if "idempotency-key" not in names:
                unkeyed.add((method, path))
            else:
                (header,) = [p for p in op["parameters"] if p["name"] == "Idempotency-Key"]
                assert "Idempotent-Replayed" in header["description"], (method, path)
    assert unkeyed == set(NOT_KEYED), sorted(unkeyed ^ set(NOT_KEYED))


def test_states_statuses_and_kinds_are_one_named_enum_each(api: Api) -> None:
    from lims.materials.workflow import MACHINES
    from lims.orders.models import OrderStatus

    schemas = _spec()["components"]["schemas"]
    assert schemas["OrderStatus"]["enum"] == [s.value for s in OrderStatus]
    every_state = {s for m in MACHINES.values() for s in m.states}
    assert set(schemas["MaterialState"]["enum"]) == every_state
    assert schemas["MaterialOut"]["properties"]["state"] == {
        "$ref": "#/components/schemas/MaterialState"
    }
    assert schemas["OrderOut"]["properties"]["status"] == {
        "$ref": "#/components/schemas/OrderStatus"
    }
    assert schemas["TransitionIn"]["properties"]["to_state"]["$ref"].endswith("/MaterialState")
    # A filter takes the enum (case folded as before) and refuses anything else by name.
    headers = api.as_("clinic")
    assert api.client.get("/api/v1/clinic/orders?status=placed", headers=headers).status_code == 200
    refused = api.client.get("/api/v1/clinic/orders?status=SHIPPED", headers=headers)
    assert refused.status_code == 422
    assert refused.headers["content-type"].startswith("application/problem+json")
    assert "is not one of: PLACED, ALLOCATED" in refused.text
    lab = api.client.get("/api/v1/lab/materials?state=nonsense", headers=api.as_("technician"))
    assert lab.status_code == 422 and "RELEASED" in lab.text


# Free-form by nature: a step's SOP-specific parameters (checked against the SOP version),
# a flow's request (checked against the flow's own model, listed by GET /lab/flows), and
# JsonValue: any JSON, for a custody event's record snapshots (old/new) and flow results.
FREE_FORM = {
    "/components/schemas/JsonValue",
    "/components/schemas/StepIn/properties/parameters",
    "/components/schemas/StepOut/properties/parameters",
    "/paths/~1api~1v1~1lab~1flows~1{name}/post/requestBody/content/application~1json/schema",
}


def test_nothing_in_the_document_is_untyped() -> None:
    spec = _spec()
    loose: list[str] = []

    def walk(node: Any, path: str) -> None:
        if isinstance(node, dict):
            bare = node.get("type") == "object" and "properties" not in node
            if bare and node.get("additionalProperties") in (None, True, {}):
                loose.append(path)
            if node == {} and "/schema" in path:
                loose.append(path)
            for key, value in node.items():
                if key not in ("examples", "example", "default"):  # values, not schemas
                    walk(value, f"{path}/{key.replace('/', '~1')}")
        elif isinstance(node, list):
            for i, value in enumerate(node):
                walk(value, f"{path}/{i}")

    walk(spec, "")
    assert sorted(set(loose) - FREE_FORM) == []
    quantity = spec["components"]["schemas"]["QuantityIn"]
    assert quantity["required"] == ["value", "unit"]
    transit = spec["components"]["schemas"]["DispatchIn"]["properties"]["transit"]
    assert {"$ref": "#/components/schemas/QuantityIn"} in transit["anyOf"]


def test_each_operation_declares_the_statuses_it_can_answer() -> None:
    paths = _spec()["paths"]
    listing = paths["/api/v1/clinic/orders"]["get"]["responses"]
    assert not {"400", "404", "409", "413", "415"} & set(listing)
    creating = paths["/api/v1/clinic/orders"]["post"]["responses"]
    assert {"400", "404", "409", "413", "415", "422", "500", "503"} <= set(creating)
    assert "Retry-After" in creating["503"]["headers"]
    assert "WWW-Authenticate" in creating["401"]["headers"]
    assert "Retry-After" in paths["/api/v1/auth/token"]["post"]["responses"]["429"]["headers"]
    for status in ("415", "500", "503"):
        body = creating[status]["content"]["application/problem+json"]["schema"]
        assert body == {"$ref": "#/components/schemas/Problem"}


def test_a_write_whose_body_is_not_json_is_415_and_nothing_is_made(api: Api) -> None:
    headers = api.as_("clinic")
    before = api.client.get("/api/v1/clinic/patients", headers=headers).json()["items"]
    refused = api.client.post(
        "/api/v1/clinic/patients",
        content=b"<patient><identifier_1>1985</identifier_1></patient>",
        headers=headers | {"Content-Type": "application/xml"},
    )
    assert refused.status_code == 415, refused.text
    assert refused.headers["content-type"].startswith("application/problem+json")
    assert "the body must be application/json, not application/xml" in refused.json()["detail"]
    after = api.client.get("/api/v1/clinic/patients", headers=headers).json()["items"]
    assert after == before
    # JSON with a charset, and the token endpoint's OAuth2 form, are read as before.
    made = api.client.post(
        "/api/v1/clinic/patients",
        content=b'{"identifier_1": "1985-02-03", "identifier_2": "GHC-415"}',
        headers=headers | {"Content-Type": "application/json; charset=utf-8"},
    )
    assert made.status_code == 201, made.text
    form = api.client.post(
        "/api/v1/auth/token", data={"username": "ginza-desk", "password": "wrong"}
    )
    assert form.status_code == 401


def test_every_operation_says_what_it_does() -> None:
    missing = [
        operation["operationId"]
        for operations in _spec()["paths"].values()
        for operation in operations.values()
        if len((operation.get("description") or "").strip()) < 20
    ]
    assert missing == []
