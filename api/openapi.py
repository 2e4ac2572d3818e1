"""The OpenAPI contract's names and error bodies, in one place.

Operation ids are chosen by hand in one verb-noun style (camelCase: what generated clients
call their methods), so a client's names do not change when a route function is renamed.
A route added without an entry still gets a clean id from its function name, never the
framework's ``create_order_api_v1_clinic_orders_post``.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.routing import APIRoute

from api import examples
from api.enums import components, refer

# (method, path) -> operationId.
OPERATION_IDS: dict[tuple[str, str], str] = {
    ("POST", "/api/v1/auth/token"): "createToken",
    ("POST", "/api/v1/auth/refresh"): "refreshToken",
    ("POST", "/api/v1/auth/logout"): "revokeSession",
    ("GET", "/api/v1/auth/me"): "getCurrentUser",
    ("POST", "/api/v1/clinic/patients"): "createPatient",
    ("GET", "/api/v1/clinic/patients"): "listPatients",
    ("GET", "/api/v1/clinic/patients/{coi_id}"): "getPatient",
    ("POST", "/api/v1/clinic/harvests"): "recordHarvest",
    ("POST", "/api/v1/clinic/orders"): "createOrder",
    ("GET", "/api/v1/clinic/orders"): "listOrders",
    ("GET", "/api/v1/clinic/orders/{number}"): "getOrder",
    ("POST", "/api/v1/clinic/orders/{number}/cancel"): "cancelOrder",
    ("POST", "/api/v1/clinic/orders/{number}/receipt"): "recordOrderReceipt",
    ("POST", "/api/v1/clinic/api-keys"): "createApiKey",
    ("GET", "/api/v1/clinic/api-keys"): "listApiKeys",
    ("DELETE", "/api/v1/clinic/api-keys/{prefix}"): "revokeApiKey",
    ("POST", "/api/v1/lab/receipts"): "recordShipmentReceipt",
    ("POST", "/api/v1/lab/steps"): "recordStep",
    ("GET", "/api/v1/lab/steps/{step_id}"): "getStep",
    ("GET", "/api/v1/lab/sops"): "listSops",
    ("GET", "/api/v1/lab/materials"): "listMaterials",
    ("GET", "/api/v1/lab/materials/{material_id}"): "getMaterial",
    ("POST", "/api/v1/lab/materials/{material_id}/transitions"): "transitionMaterial",
    ("POST", "/api/v1/lab/storage-locations"): "createStorageLocation",
    ("POST", "/api/v1/lab/materials/{material_id}/moves"): "moveMaterial",
    ("GET", "/api/v1/lab/orders"): "listLabOrders",
    ("POST", "/api/v1/lab/orders/{number}/allocation"): "allocateOrder",
    ("POST", "/api/v1/lab/orders/{number}/dispatch"): "dispatchOrder",
    ("POST", "/api/v1/lab/signatures"): "createSignature",
    ("POST", "/api/v1/lab/qc-results"): "recordQcResult",
    ("POST", "/api/v1/lab/qc-results/{result_id}/corrections"): "correctQcResult",
    ("POST", "/api/v1/lab/deviations"): "openDeviation",
    ("POST", "/api/v1/lab/deviations/{number}/close"): "closeDeviation",
    ("POST", "/api/v1/lab/materials/{material_id}/label.pdf"): "printMaterialLabel",
    ("GET", "/api/v1/lab/flows"): "listFlows",
    ("POST", "/api/v1/lab/flows/{name}"): "startFlow",
    ("POST", "/api/v1/qa/releases"): "releaseMaterial",
    ("POST", "/api/v1/qa/donor-eligibility"): "recordDonorEligibility",
    ("GET", "/api/v1/audit/materials/{material_id}/lineage"): "getLineage",
    ("GET", "/api/v1/audit/materials/{material_id}/custody"): "getCustody",
    ("GET", "/api/v1/audit/materials/{material_id}/signatures"): "listMaterialSignatures",
    ("GET", "/api/v1/audit/verify"): "verifyCustodyChain",
    ("GET", "/api/v1/audit/exports/custody.jsonl"): "exportCustodyJsonLines",
    ("GET", "/api/v1/audit/exports/custody.csv"): "exportCustodyCsv",
    ("GET", "/api/v1/audit/materials/{material_id}/coa.pdf"): "getCertificateOfAnalysis",
    ("GET", "/api/v1/audit/materials/{material_id}/custody-report.pdf"): "getCustodyReport",
    ("GET", "/api/v1/audit/checkpoint-key"): "getCheckpointKey",
    ("GET", "/api/v1/audit/checkpoints/latest"): "getLatestCheckpoint",
    ("GET", "/api/v1/audit/proofs/inclusion/{seq}"): "getInclusionProof",
    ("GET", "/api/v1/audit/proofs/consistency"): "getConsistencyProof",
    ("POST", "/api/v1/admin/clinics"): "createClinic",
    ("POST", "/api/v1/admin/users"): "createUser",
    ("POST", "/api/v1/admin/instruments"): "createInstrument",
    ("POST", "/api/v1/admin/reagent-lots"): "createReagentLot",
    ("GET", "/api/v1/clinic/orders/{number}/events"): "listOrderEvents",
    ("GET", "/api/v1/clinic/webhooks"): "listWebhookEndpoints",
    ("POST", "/api/v1/clinic/webhooks"): "createWebhookEndpoint",
    ("POST", "/api/v1/clinic/webhooks/{endpoint_id}/rotation"): "rotateWebhookSecret",
    ("POST", "/api/v1/clinic/webhooks/{endpoint_id}/enabled"): "enableWebhookEndpoint",
    ("POST", "/api/v1/clinic/webhooks/{endpoint_id}/ping"): "pingWebhookEndpoint",
    ("GET", "/api/v1/clinic/webhooks/{endpoint_id}/deliveries"): "listWebhookDeliveries",
    ("POST", "/api/v1/clinic/deliveries/{delivery_id}/redelivery"): "redeliverNotification",
    ("GET", "/api/v1/clinic/contacts"): "listContacts",
    ("POST", "/api/v1/clinic/contacts"): "createContact",
    ("GET", "/api/v1/clinic/doses/{material_id}"): "getDose",
    ("GET", "/api/v1/clinic/doses/{material_id}/logger.csv"): "getDoseLoggerFile",
    ("GET", "/api/v1/qa/doses/{material_id}/logger.csv"): "getDoseLoggerFileForQa",
    ("POST", "/api/v1/clinic/doses/{material_id}/reconstitution"): "recordReconstitution",
    ("POST", "/api/v1/clinic/doses/{material_id}/administration"): "recordAdministration",
    ("POST", "/api/v1/clinic/doses/{material_id}/return"): "recordDoseReturn",
    ("POST", "/api/v1/clinic/doses/{material_id}/discard"): "recordDoseDiscard",
    ("POST", "/api/v1/qa/doses/{material_id}/disposition"): "decideDoseDisposition",
    ("POST", "/api/v1/qa/doses/{material_id}/quarantine-decision"): "decideQuarantinedDose",
    ("POST", "/api/v1/qa/recalls"): "openRecall",
    ("GET", "/api/v1/qa/recalls"): "listRecalls",
    ("GET", "/api/v1/qa/recalls/{number}"): "getRecall",
    ("GET", "/api/v1/qa/recalls/{number}/report.pdf"): "getRecallReportPdf",
    ("GET", "/api/v1/qa/recalls/{number}/report.csv"): "getRecallReportCsv",
    ("POST", "/api/v1/qa/recalls/{number}/close"): "closeRecall",
    ("GET", "/api/v1/clinic/recalls"): "listClinicRecalls",
    ("GET", "/api/v1/clinic/recalls/{number}"): "getClinicRecall",
    ("POST", "/api/v1/clinic/recalls/{number}/acknowledgement"): "acknowledgeRecall",
    ("GET", "/health"): "getHealth",
    ("GET", "/ready"): "getReadiness",
}
PROBLEM_JSON = "application/problem+json"


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


def operation_id(route: APIRoute) -> str:
    """The hand-chosen id of ``route``, or its function name in camelCase."""
    for method in sorted(route.methods or ()):
        chosen = OPERATION_IDS.get((method, route.path_format))
        if chosen:
            return chosen
    return _camel(route.name)


def _problems_as_problem_json(spec: dict[str, Any]) -> None:
    # FastAPI files a response model under application/json, which the server never sends
    # for an error; generated clients then parse every 4xx to None (issue 19, item 1).
    for operations in spec.get("paths", {}).values():
        for operation in operations.values():
            for status, response in operation.get("responses", {}).items():
                if str(status)[:1] not in ("4", "5"):
                    continue
                # Every error the app sends is a Problem (api/problems.py), whatever the
                # route declared.
                content = response.setdefault("content", {})
                content.pop("application/json", None)
                content[PROBLEM_JSON] = {"schema": {"$ref": "#/components/schemas/Problem"}}


RETRY_AFTER = {"description": "seconds to wait before retrying", "schema": {"type": "integer"}}
WWW_AUTHENTICATE = {
    "description": "Bearer (a token from createToken) or the X-API-Key header",
    "schema": {"type": "string"},
}


def _statuses_per_operation(spec: dict[str, Any]) -> None:
    """Each operation declares what it can answer: body errors only where there is a body,
    no 404/409 on a list, and on every one 500 and 503 (with Retry-After); a 401 says how
    to authenticate. A 405 is answered for a method the document does not list, so no
    operation declares it (its Allow header names the ones there are)."""
    for path, operations in spec.get("paths", {}).items():
        if not path.startswith("/api/v1/"):
            continue
        for method, operation in operations.items():
            responses = operation.setdefault("responses", {})
            if "requestBody" in operation:
                responses.setdefault(
                    "415", {"description": "the body is not JSON (see its Content-Type)"}
                )
            else:
                for status in ("400", "413"):
                    responses.pop(status, None)
            if method == "get" and "{" not in path and operation["operationId"].startswith("list"):
                for status in ("404", "409"):
                    responses.pop(status, None)
            if "401" in responses:
                responses["401"].setdefault("headers", {})["WWW-Authenticate"] = WWW_AUTHENTICATE
            responses["500"] = {
                "description": "an unexpected error: nothing was half-written; the answer's "
                "request id is in the lab's log"
            }
            responses["503"] = {
                "description": "the database is busy or unreachable: nothing was changed; "
                "retry after Retry-After seconds with the same Idempotency-Key",
                "headers": {"Retry-After": RETRY_AFTER},
            }
            if "429" in responses:
                responses["429"].setdefault("headers", {})["Retry-After"] = RETRY_AFTER


def _readiness_when_not_ready(spec: dict[str, Any]) -> None:
    # /ready's 503 is the readiness document naming the failed check, not a Problem: a
    # monitor reads the same body whatever the status.
    ready = spec.get("paths", {}).get("/ready", {}).get("get")
    if ready is not None:
        ready.setdefault("responses", {})["503"] = {
            "description": "not ready: the checks say which part is not fine",
            "content": {
                "application/json": {"schema": {"$ref": "#/components/schemas/ReadinessOut"}}
            },
        }


def install(app: FastAPI) -> None:
    """Serve the OpenAPI document with problem+json error bodies typed as Problem."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            spec = refer(FastAPI.openapi(app))
            _statuses_per_operation(spec)
            _problems_as_problem_json(spec)
            _readiness_when_not_ready(spec)
            examples.attach(spec)
            spec.setdefault("components", {}).setdefault("schemas", {}).update(components())
            app.openapi_schema = spec
        return app.openapi_schema or {}

    app.openapi = openapi  # type: ignore[method-assign]
