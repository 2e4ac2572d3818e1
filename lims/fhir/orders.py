"""A FHIR ServiceRequest read as a dose order: which patient, and the order's details,
checked by the same OrderDetails model as /api/v1 (so the order rules are the same)."""

from __future__ import annotations

from typing import Any

from fhir.resources.R4B.servicerequest import ServiceRequest
from pydantic import ValidationError

from lims.errors import InvalidInput
from lims.fhir import systems
from lims.orders.schemas import OrderDetails, order_details


class InvalidResource(InvalidInput):
    """The body is not a valid FHIR resource of the expected type; ``problems`` lists
    every (path, message)."""

    code = "invalid_resource"

    def __init__(self, message: str, *, problems: list[tuple[str, str]]) -> None:
        first = problems[0][0] if problems else None
        super().__init__(message, field=first, problems=[f"{p}: {m}" for p, m in problems])
        self.problems = problems


def read_service_request(data: Any) -> ServiceRequest:
    """``data`` (parsed JSON) as an R4 ServiceRequest, or InvalidResource."""
    if not isinstance(data, dict) or data.get("resourceType") != "ServiceRequest":
        got = data.get("resourceType") if isinstance(data, dict) else type(data).__name__
        raise InvalidResource(
            f"expected a ServiceRequest, got {got!r}",
            problems=[("ServiceRequest.resourceType", "must be ServiceRequest")],
        )
    try:
        return ServiceRequest.model_validate(data)
    except ValidationError as exc:
        problems = [
            (".".join(["ServiceRequest", *(str(p) for p in e.get("loc", ()))]), str(e.get("msg")))
            for e in exc.errors()
        ]
        raise InvalidResource("the ServiceRequest is not valid FHIR", problems=problems) from None


def _extension(request: ServiceRequest, url: str) -> Any:
    for extension in request.extension or []:
        if extension.url == url:
            for name in ("valuePositiveInt", "valueInteger", "valueString"):
                value = getattr(extension, name, None)
                if value is not None:
                    return value
    return None


def _need(value: Any, path: str, what: str) -> Any:
    if value is None or (isinstance(value, str) and not value.strip()):
        raise InvalidInput(f"{what} is required ({path})", field=path)
    return value


def _patient(request: ServiceRequest) -> str:
    subject = _need(request.subject, "ServiceRequest.subject", "the patient")
    if subject.reference:
        kind, _, coi = subject.reference.rpartition("/")
        if kind.rsplit("/", 1)[-1] != "Patient":
            raise InvalidInput("subject must reference a Patient", field="ServiceRequest.subject")
        return systems.lims_id(coi)
    identifier = subject.identifier
    if identifier is not None and identifier.system in (None, systems.COI) and identifier.value:
        return str(identifier.value)
    raise InvalidInput(
        "subject needs a reference Patient/<chain-of-identity id> or an identifier "
        f"of system {systems.COI}",
        field="ServiceRequest.subject",
    )


def _product(request: ServiceRequest) -> str:
    code = _need(request.code, "ServiceRequest.code", "the product")
    for coding in code.coding or []:
        if coding.system == systems.PRODUCT and coding.code:
            return str(coding.code)
    raise InvalidInput(
        f"code needs a coding of system {systems.PRODUCT} (aape or dp_cells)",
        field="ServiceRequest.code",
    )


def _dose(request: ServiceRequest) -> str:
    quantity = _need(request.quantityQuantity, "ServiceRequest.quantityQuantity", "the dose")
    unit = quantity.unit or quantity.code
    if quantity.value is None or not unit:
        raise InvalidInput(
            "the dose needs a value and a unit (e.g. 4 mL)", field="ServiceRequest.quantityQuantity"
        )
    return f"{quantity.value} {unit}"


def _consent(request: ServiceRequest) -> str:
    for info in request.supportingInfo or []:
        if info.identifier is not None and info.identifier.value:
            return str(info.identifier.value)
    raise InvalidInput(
        "supportingInfo needs the consent reference as an identifier",
        field="ServiceRequest.supportingInfo",
    )


def order_request(request: ServiceRequest) -> tuple[str, OrderDetails]:
    """(chain-of-identity id, checked order details) of a ServiceRequest a clinic posts."""
    if request.intent != "order":
        raise InvalidInput("intent must be 'order'", field="ServiceRequest.intent")
    if request.status != "active":
        raise InvalidInput("a new order's status must be 'active'", field="ServiceRequest.status")
    requester = _need(request.requester, "ServiceRequest.requester", "the prescriber")
    planned = _need(request.occurrenceDateTime, "ServiceRequest.occurrenceDateTime", "the time")
    notes = "\n".join(n.text for n in request.note or [] if n.text) or None
    details = order_details(
        product=_product(request),
        dose=_dose(request),
        session_number=_need(
            _extension(request, systems.SESSION_NUMBER), systems.SESSION_NUMBER, "the session"
        ),
        sessions_total=_need(
            _extension(request, systems.SESSIONS_TOTAL), systems.SESSIONS_TOTAL, "the course"
        ),
        planned_use_at=planned,
        ship_to=_need(_extension(request, systems.SHIP_TO), systems.SHIP_TO, "ship-to"),
        prescriber=_need(requester.display, "ServiceRequest.requester.display", "the prescriber"),
        consent_ref=_consent(request),
        notes=notes,
    )
    return _patient(request), details
