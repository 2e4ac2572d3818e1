"""The CapabilityStatement: what /fhir serves, read from the search parameters it parses."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fhir.resources.R4B.capabilitystatement import CapabilityStatement

from lims.fhir import systems
from lims.fhir.resources import fhir_json
from lims.fhir.search import SEARCH_PARAMS

PARAM_TYPES = {
    "_id": "token",
    "identifier": "token",
    "status": "token",
    "type": "token",
    "patient": "reference",
    "subject": "reference",
}
DOCS = {
    "Patient": "pseudonymous: the chain-of-identity id is its id and only identifier",
    "ServiceRequest": "a dose order; create places an order (Idempotency-Key honoured)",
    "Task": "the order's fulfilment status (id = the order number)",
    "BiologicallyDerivedProduct": "the allocated dose: ISBT 128-style id, lot, expiry",
    "Specimen": "lipoaspirate and scalp biopsy",
}


def capability_statement(*, base_url: str, software_version: str, at: datetime) -> dict[str, Any]:
    """What this server does, for GET /fhir/metadata."""
    resources = []
    for kind, params in SEARCH_PARAMS.items():
        interactions = [{"code": "read"}, {"code": "search-type"}]
        if kind == "ServiceRequest":
            interactions.append({"code": "create"})
        resources.append(
            {
                "type": kind,
                "documentation": DOCS[kind],
                "interaction": interactions,
                "searchParam": [
                    {"name": name, "type": PARAM_TYPES[name]} for name in sorted(params)
                ]
                + [
                    {"name": "_count", "type": "number"},
                    {"name": "_offset", "type": "number", "documentation": "paging offset"},
                ],
            }
        )
    return fhir_json(
        CapabilityStatement,
        {
            "resourceType": "CapabilityStatement",
            "status": "active",
            "date": at.isoformat(),
            "kind": "instance",
            "software": {"name": "LIMS", "version": software_version},
            "implementation": {
                "description": "LIMS FHIR facade (R4B 4.3.0 resources, R4-compatible)",
                "url": base_url,
            },
            "fhirVersion": systems.FHIR_VERSION,
            "format": ["json"],
            "rest": [
                {
                    "mode": "server",
                    "documentation": (
                        "Read and search; create for ServiceRequest. Sign in as for /api/v1: "
                        "'Authorization: Bearer <token>' or 'X-API-Key'. A clinic sees only "
                        "its own clinic's resources; lab staff and auditors see every clinic's."
                    ),
                    "security": {
                        "description": "Bearer tokens from /api/v1/auth/token, or clinic API keys"
                    },
                    "resource": resources,
                }
            ],
        },
    )
