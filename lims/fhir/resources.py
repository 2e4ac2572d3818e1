"""lims records as FHIR R4 resources (JSON dicts), each validated by fhir.resources.

Patients are pseudonymous: a Patient carries the chain-of-identity id and nothing else
(no name, birth date or clinic identifier leaves the LIMS this way).
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from fhir.resources.R4B.biologicallyderivedproduct import BiologicallyDerivedProduct
from fhir.resources.R4B.patient import Patient as FhirPatient
from fhir.resources.R4B.servicerequest import ServiceRequest
from fhir.resources.R4B.specimen import Specimen
from fhir.resources.R4B.task import Task
from pydantic import BaseModel

from lims.fhir import systems
from lims.identity.codes import format_material_id
from lims.materials.models import Material
from lims.orders.models import DoseOrder, OrderStatus, Product
from lims.parties.models import Patient

# FHIR's request status for each order status (ServiceRequest.status).
REQUEST_STATUS = {
    OrderStatus.PLACED: "active",
    OrderStatus.ALLOCATED: "active",
    OrderStatus.DISPATCHED: "active",
    OrderStatus.RECEIVED: "completed",
    OrderStatus.CANCELLED: "revoked",
}
# Fulfilment as a Task: the lab has it once allocated, done once the clinic received it.
TASK_STATUS = {
    OrderStatus.PLACED: "requested",
    OrderStatus.ALLOCATED: "in-progress",
    OrderStatus.DISPATCHED: "in-progress",
    OrderStatus.RECEIVED: "completed",
    OrderStatus.CANCELLED: "cancelled",
}
# A dose is "available" while it is on its way to, or held at, the clinic for its patient.
DOSE_AVAILABLE = frozenset(
    {
        "ALLOCATED",
        "LABELED",
        "DISPATCH_VERIFIED",
        "IN_TRANSIT",
        "RECEIVED_AT_CLINIC",
        "RECONSTITUTED",
    }
)
# Specimen.status: rejected tissue is "unsatisfactory"; tissue not (or no longer) at hand
# is "unavailable"; everything else can still be worked on.
SPECIMEN_UNSATISFACTORY = frozenset({"REJECTED"})
SPECIMEN_UNAVAILABLE = frozenset({"EXPECTED", "CONSUMED", "DISCARDED", "DESTROYED"})
SPECIMEN_KINDS = {"lipoaspirate": "Lipoaspirate", "scalp_biopsy": "Scalp punch biopsy"}
PRODUCT_NAMES = {
    Product.AAPE: "AAPE (lyophilised ADSC-conditioned-medium protein extract)",
    Product.DP_CELLS: "Dermal papilla cells",
}
PRODUCT_CATEGORY = {Product.AAPE: "biologicalAgent", Product.DP_CELLS: "cells"}


def fhir_json(model: type[BaseModel], data: dict[str, Any]) -> dict[str, Any]:
    """``data`` (JSON-ready: text, numbers, lists, dicts) once checked against the FHIR
    model. The checked model is not serialised again: fhir.resources' serialiser costs
    twice the validation (bench/fhir.py), and ``data`` already is the JSON."""
    model.model_validate(data)
    return data


def _instant(at: datetime | None) -> str | None:
    return at.isoformat() if at is not None else None


def _number(value: Decimal) -> float | int:
    normal = value.normalize()
    return int(normal) if normal == normal.to_integral_value() else float(normal)


def _identifier(system: str, value: str, text: str | None = None) -> dict[str, Any]:
    found: dict[str, Any] = {"system": system, "value": value}
    if text:
        found["type"] = {"text": text}
    return found


def patient_ref(coi_id: str) -> dict[str, Any]:
    return {
        "reference": f"Patient/{systems.fhir_id(coi_id)}",
        "identifier": _identifier(systems.COI, coi_id),
    }


def _status_coding(status: str) -> dict[str, Any]:
    return {"coding": [{"system": systems.LIMS_STATUS, "code": status}], "text": status}


def patient_resource(patient: Patient) -> dict[str, Any]:
    """A pseudonymous Patient: the chain-of-identity id as its id and its only identifier."""
    return fhir_json(
        FhirPatient,
        {
            "resourceType": "Patient",
            "id": systems.fhir_id(patient.coi_id),
            "identifier": [_identifier(systems.COI, patient.coi_id, "chain-of-identity id")],
        },
    )


def service_request(order: DoseOrder, *, coi_id: str) -> dict[str, Any]:
    """A dose order as a ServiceRequest (what, how much, when, which session of the course)."""
    product = Product(order.product)
    data: dict[str, Any] = {
        "resourceType": "ServiceRequest",
        "id": order.number,
        "identifier": [_identifier(systems.ORDER, order.number, "order number")],
        "status": REQUEST_STATUS[OrderStatus(order.status)],
        "intent": "order",
        "code": {
            "coding": [{"system": systems.PRODUCT, "code": product.value}],
            "text": PRODUCT_NAMES[product],
        },
        "subject": patient_ref(coi_id),
        "quantityQuantity": {"value": _number(order.dose_value), "unit": order.dose_unit},
        "occurrenceDateTime": _instant(order.planned_use_at),
        "authoredOn": _instant(order.placed_at),
        "requester": {"display": order.prescriber},
        "supportingInfo": [{"identifier": {"value": order.consent_ref}, "display": "consent"}],
        "extension": [
            {"url": systems.SESSION_NUMBER, "valuePositiveInt": order.session_number},
            {"url": systems.SESSIONS_TOTAL, "valuePositiveInt": order.sessions_total},
            {"url": systems.SHIP_TO, "valueString": order.ship_to},
        ],
    }
    if order.notes:
        data["note"] = [{"text": order.notes}]
    return fhir_json(ServiceRequest, data)


def task(order: DoseOrder, *, coi_id: str, dose_id: str | None) -> dict[str, Any]:
    """The lab's fulfilment of an order: FHIR status, the lims status, the dose it made."""
    status = OrderStatus(order.status)
    request = {"reference": f"ServiceRequest/{order.number}"}
    data: dict[str, Any] = {
        "resourceType": "Task",
        "id": order.number,
        "identifier": [_identifier(systems.ORDER, order.number, "order number")],
        "status": TASK_STATUS[status],
        "businessStatus": _status_coding(status.value),
        "intent": "order",
        "basedOn": [request],
        "focus": request,
        "for": patient_ref(coi_id),
        "authoredOn": _instant(order.placed_at),
        "lastModified": _instant(order.updated_at),
    }
    if order.cancel_reason:
        data["statusReason"] = {"text": order.cancel_reason}
    if order.received_at is not None:
        data["executionPeriod"] = {"end": _instant(order.received_at)}
    if dose_id is not None:
        data["output"] = [
            {
                "type": {"text": "dose"},
                "valueReference": {
                    "reference": f"BiologicallyDerivedProduct/{systems.fhir_id(dose_id)}"
                },
            }
        ]
    return fhir_json(Task, data)


def biologically_derived_product(
    dose: Material,
    *,
    order: DoseOrder,
    coi_id: str,
    lot_id: str | None,
    storage_c: Decimal | None,
    recalled: bool = False,
) -> dict[str, Any]:
    """The dose: its ISBT 128-style id, the lot it came from, expiry and storage; an open
    recall makes it unavailable whatever its state."""
    product = Product(order.product)
    identifiers = [_identifier(systems.MATERIAL, dose.material_id, "ISBT 128-style dose id")]
    if lot_id is not None:
        identifiers.append(_identifier(systems.LOT, lot_id, "lot"))
    storage: dict[str, Any] = {"description": "as labelled"}
    if storage_c is not None:
        storage.update(temperature=_number(storage_c), scale="celsius")
    data: dict[str, Any] = {
        "resourceType": "BiologicallyDerivedProduct",
        "id": systems.fhir_id(dose.material_id),
        "identifier": identifiers,
        "productCategory": PRODUCT_CATEGORY[product],
        "productCode": {
            "coding": [{"system": systems.PRODUCT, "code": product.value}],
            "text": f"{PRODUCT_NAMES[product]}, {format_material_id(dose.material_id)}",
        },
        "status": "available" if dose.state in DOSE_AVAILABLE and not recalled else "unavailable",
        "request": [{"reference": f"ServiceRequest/{order.number}"}],
        "collection": {"source": patient_ref(coi_id)},
        "storage": [storage],
        "extension": [_status_extension(dose.state)],
    }
    if product is Product.AAPE and dose.quantity_kind == "vials":
        data["quantity"] = int(dose.initial_canonical)
    if dose.expires_at is not None:
        data["extension"].append(
            {"url": systems.EXPIRATION_DATE, "valueDateTime": _instant(dose.expires_at)}
        )
        storage["duration"] = {"end": _instant(dose.expires_at)}
    return fhir_json(BiologicallyDerivedProduct, data)


def _status_extension(state: str) -> dict[str, Any]:
    return {"url": systems.LIMS_STATUS, "valueCode": state}


def specimen(material: Material, *, coi_id: str) -> dict[str, Any]:
    """A lipoaspirate or scalp biopsy: kind, patient, state, when collected, how much."""
    if material.state in SPECIMEN_UNSATISFACTORY:
        status = "unsatisfactory"
    elif material.state in SPECIMEN_UNAVAILABLE:
        status = "unavailable"
    else:
        status = "available"
    collection: dict[str, Any] = {
        "quantity": {"value": _number(material.entered_value), "unit": material.entered_unit}
    }
    if material.collected_at is not None:
        collection["collectedDateTime"] = _instant(material.collected_at)
    return fhir_json(
        Specimen,
        {
            "resourceType": "Specimen",
            "id": systems.fhir_id(material.material_id),
            "identifier": [_identifier(systems.MATERIAL, material.material_id, "material id")],
            "status": status,
            "type": {
                "coding": [{"system": systems.MATERIAL_KIND, "code": material.kind}],
                "text": SPECIMEN_KINDS.get(material.kind, material.kind),
            },
            "subject": patient_ref(coi_id),
            "collection": collection,
            "extension": [_status_extension(material.state)],
        },
    )
