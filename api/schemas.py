"""Request and response models for the API (quantities are always unit-checked)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any, Generic, Literal, TypeVar

from pydantic import AwareDatetime, BaseModel, Field
from sqlmodel import Session

from lims.documents.labels import label_text
from lims.identity.codes import format_material_id
from lims.materials.models import Material, StorageLocation
from lims.materials.schemas import Collected
from lims.materials.service import remaining
from lims.orders.models import DoseOrder
from lims.orders.schemas import OrderDetails, ReceiptDetails
from lims.paging import Listing
from lims.parties.models import Patient
from lims.parties.schemas import PatientIn
from lims.schemas import DbId, Strict, UtcTime
from lims.units import Quantity

__all__ = ["DbId", "PatientIn", "Strict", "UtcTime"]  # re-exported: the routers' shared input types


T = TypeVar("T")
MAX_PAGE = 200


class Page(BaseModel, Generic[T]):
    items: list[T]
    limit: int
    offset: int
    next_offset: int | None = Field(description="offset of the next page, null at the end")


def page(listing: Listing[Any], out: Callable[[Any], Any]) -> dict[str, Any]:
    """One page of a list query, each item shown by ``out``."""
    return {
        "items": [out(item) for item in listing],
        "limit": listing.limit,
        "offset": listing.offset,
        "next_offset": listing.next_offset,
    }


class FieldError(BaseModel):
    field: str
    message: str


class Problem(BaseModel):
    """An error (RFC 9457 problem details), served as application/problem+json."""

    type: str = Field(examples=["/problems/insufficient_quantity"])
    title: str = Field(examples=["Refused by a rule"])
    status: int = Field(examples=[409])
    detail: str = Field(examples=["X0001 26 000010 4: 3 vials asked, only 2 vial remain"])
    instance: str | None = Field(
        default=None, examples=["/api/v1/lab/orders/ORD-000007/allocation"]
    )
    field: str | None = Field(default=None, description="the input field at fault")
    errors: list[FieldError] | None = Field(default=None, description="every invalid field")
    problems: list[str] | None = Field(default=None, description="every failed check of a step")
    failures: list[str] | None = Field(default=None, description="every failed dispatch check")


def _problem(description: str) -> dict[str, Any]:
    return {
        "model": Problem,
        "description": description,
        "content": {"application/problem+json": {}},
    }


ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: _problem("malformed JSON"),
    401: _problem("not signed in, token expired or invalid, wrong password"),
    403: _problem("your role may not call this"),
    404: _problem("unknown id (another clinic's ids are unknown too)"),
    409: _problem("refused by a rule: state, identity, quantity, four-eyes..."),
    413: _problem("request body over 1 MiB"),
    422: _problem("invalid input: wrong unit, negative or oversize amount, unknown field"),
}


class QuantityOut(BaseModel):
    value: str
    unit: str


def q_out(q: Quantity) -> QuantityOut:
    return QuantityOut(**q.as_json())


class MaterialOut(BaseModel):
    material_id: str
    printed_id: str
    kind: str
    state: str
    quantity: QuantityOut = Field(description="as entered when the material was made")
    remaining: QuantityOut
    patient_coi: str | None
    use: str
    expires_at: datetime | None
    container: str | None
    location: str | None
    custodian: str | None
    passage: int | None
    population_doublings: str | None
    created_at: datetime


def material_out(session: Session, m: Material) -> MaterialOut:
    patient = session.get(Patient, m.patient_id)
    location = session.get(StorageLocation, m.location_id) if m.location_id else None
    left = remaining(m)
    return MaterialOut(
        material_id=m.material_id,
        printed_id=format_material_id(m.material_id),
        kind=m.kind,
        state=m.state,
        quantity=QuantityOut(value=format(m.entered_value.normalize(), "f"), unit=m.entered_unit),
        remaining=q_out(left),
        patient_coi=patient.coi_id if patient else None,
        use=m.use,
        expires_at=m.expires_at,
        container=m.container,
        location=location.label() if location else None,
        custodian=m.custodian,
        passage=m.passage,
        population_doublings=(
            format(m.population_doublings, "f") if m.population_doublings is not None else None
        ),
        created_at=m.created_at,
    )


class PatientOut(BaseModel):
    coi_id: str
    donor_type: str
    identifier_1: str
    identifier_2: str
    created_at: datetime


def patient_out(p: Patient) -> PatientOut:
    return PatientOut(
        coi_id=p.coi_id,
        donor_type=p.donor_type,
        identifier_1=p.identifier_1,
        identifier_2=p.identifier_2,
        created_at=p.created_at,
    )


class HarvestIn(Collected):
    """A harvest at the clinic, handed to the courier that brings it to the lab."""

    coi_id: str = Field(examples=["COI-ABCD-EFGH-J"])
    kind: Literal["lipoaspirate", "scalp_biopsy"]  # type: ignore[assignment]
    courier: str = Field(min_length=1, max_length=100, examples=["ColdChain AWB 7781"])


class OrderIn(OrderDetails):
    """An order for one of the clinic's patients (its details are checked by the model)."""

    coi_id: str


class LabelOut(BaseModel):
    """The dose's label, from the text the printed label carries (lims.documents.labels)."""

    material_id: str
    printed_id: str
    product: str
    patient_coi: str | None
    expires_at: datetime | None
    storage: str
    statement: str | None
    lines: list[str] = Field(description="the printed label's text, line by line")


class OrderOut(BaseModel):
    number: str
    status: str
    patient_coi: str
    product: str
    dose: QuantityOut
    session: str
    planned_use_at: AwareDatetime
    ship_to: str
    prescriber: str
    consent_ref: str
    placed_at: datetime
    dose_material: MaterialOut | None
    label: LabelOut | None
    received_at: datetime | None
    received_by: str | None
    cancel_reason: str | None


def order_out(session: Session, o: DoseOrder) -> OrderOut:
    patient = session.get(Patient, o.patient_id)
    assert patient is not None
    dose = session.get(Material, o.dose_material_id) if o.dose_material_id else None
    label = None
    if dose is not None:
        text = label_text(session, material=dose)
        label = LabelOut(
            material_id=dose.material_id,
            printed_id=text.printed_id,
            product=text.product,
            patient_coi=text.patient_coi,
            expires_at=dose.expires_at,
            storage=text.storage,
            statement=text.statement,
            lines=text.lines,
        )
    return OrderOut(
        number=o.number,
        status=o.status,
        patient_coi=patient.coi_id,
        product=o.product,
        dose=QuantityOut(value=format(o.dose_value.normalize(), "f"), unit=o.dose_unit),
        session=f"{o.session_number}/{o.sessions_total}",
        planned_use_at=o.planned_use_at,
        ship_to=o.ship_to,
        prescriber=o.prescriber,
        consent_ref=o.consent_ref,
        placed_at=o.placed_at,
        dose_material=material_out(session, dose) if dose else None,
        label=label,
        received_at=o.received_at,
        received_by=o.received_by,
        cancel_reason=o.cancel_reason,
    )


class ReasonIn(Strict):
    reason: str = Field(min_length=1, max_length=2000)


class ReceiptIn(ReceiptDetails):
    """The clinic confirms a dose arrived."""


class ApiKeyIn(Strict):
    name: str = Field(min_length=1, max_length=100)


class ApiKeyOut(BaseModel):
    prefix: str
    name: str
    created_at: datetime
    revoked_at: datetime | None
    key: str | None = Field(default=None, description="the full key, shown only once")


class TokenOut(BaseModel):
    access_token: str
    refresh_token: str
    token_type: Literal["bearer"] = "bearer"
    expires_in: int


class RefreshIn(Strict):
    refresh_token: str


class UserOut(BaseModel):
    username: str
    printed_name: str
    role: str
    clinic: str | None
