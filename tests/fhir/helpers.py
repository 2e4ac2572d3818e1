"""A ServiceRequest body built the way a clinic's system would (with fhir.resources), and
requests to /fhir with the /api/v1 test clients."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from fhir.resources.R4B.servicerequest import ServiceRequest

from lims.db import utcnow
from lims.fhir import systems
from lims.fhir.systems import fhir_id
from tests.api.conftest import Api

FHIR_JSON = "application/fhir+json"


def service_request(
    coi: str, *, dose: tuple[float, str] = (4, "mL"), days: int = 3, session: int = 1
) -> ServiceRequest:
    """An order for session ``session`` of 6 (4 weeks after the one before, inside AAPE's
    3-5 weeks), built and validated by fhir.resources."""
    return ServiceRequest.model_validate(
        {
            "resourceType": "ServiceRequest",
            "status": "active",
            "intent": "order",
            "subject": {"reference": f"Patient/{fhir_id(coi)}"},
            "code": {"coding": [{"system": systems.PRODUCT, "code": "aape"}]},
            "quantityQuantity": {"value": dose[0], "unit": dose[1]},
            "occurrenceDateTime": (
                utcnow() + timedelta(days=days, weeks=4 * (session - 1))
            ).isoformat(),
            "requester": {"display": "Dr. H. Fukuoka"},
            "supportingInfo": [{"identifier": {"value": "CONSENT-42"}, "display": "consent"}],
            "extension": [
                {"url": systems.SESSION_NUMBER, "valuePositiveInt": session},
                {"url": systems.SESSIONS_TOTAL, "valuePositiveInt": 6},
                {"url": systems.SHIP_TO, "valueString": "Ginza Hair Clinic, Tokyo"},
            ],
        }
    )


def body_of(resource: ServiceRequest) -> str:
    return resource.model_dump_json(exclude_none=True)


def post_order(
    api: Api, coi: str, *, who: str = "clinic", key: str | None = None, **kw: Any
) -> Any:
    headers = api.as_(who) | {"Content-Type": FHIR_JSON}
    if key:
        headers["Idempotency-Key"] = key
    return api.client.post(
        "/fhir/ServiceRequest", content=body_of(service_request(coi, **kw)), headers=headers
    )


def get(api: Api, path: str, who: str = "clinic", **params: Any) -> Any:
    return api.client.get(f"/fhir/{path}", headers=api.as_(who), params=params or None)
