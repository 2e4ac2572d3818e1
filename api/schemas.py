"""Request and response models for the API (quantities are always unit-checked)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, Generic, Literal, TypeVar

from fastapi import Depends, Query
from pydantic import AwareDatetime, BaseModel, Field
from sqlmodel import Session

from api.enums import MaterialKindName, MaterialStateName, OrderStatusName, ProductName
from lims.documents.labels import label_text
from lims.identity.codes import format_material_id
from lims.materials.models import Material, StorageLocation
from lims.materials.schemas import Collected
from lims.materials.service import remaining
from lims.orders.course import course_warning
from lims.orders.models import DoseOrder
from lims.orders.schemas import OrderDetails, ReceiptDetails
from lims.paging import MAX_CURSOR, Listing
from lims.parties.models import Patient
from lims.parties.schemas import PatientIn
from lims.schemas import DbId, Strict, UtcTime
from lims.units import Quantity

__all__ = ["DbId", "PatientIn", "Strict", "UtcTime"]  # re-exported: the routers' shared input types


T = TypeVar("T")
MAX_PAGE = 200


class Page(BaseModel, Generic[T]):
    """One page of a list, oldest first (by id: a stable order)."""

    items: list[T]
    limit: int
    offset: int
    next_offset: int | None = Field(
        description="offset of the next page, null at the end (or when paging by cursor)"
    )
    next_cursor: str | None = Field(
        description="pass as ?cursor= for the next page (opaque; costs the same on any "
        "page, and rows added meanwhile do not shift it); null at the end"
    )


# A list's page size and start (by offset), for every list operation.
Limit = Annotated[int, Query(ge=1, le=MAX_PAGE)]
Offset = Annotated[int, Query(ge=0, le=10_000_000)]
# An earlier page's next_cursor; with it, offset is not used.
Cursor = Annotated[
    str | None,
    Query(
        max_length=MAX_CURSOR,
        description="the next_cursor of the page before; pages by key, offset is ignored",
    ),
]


# Rows on a list's page when the client does not say.
PAGE_DEFAULT = 50


@dataclass(frozen=True)
class PageQuery:
    """The query parameters every list operation takes: which page, by offset or cursor."""

    limit: Limit = PAGE_DEFAULT
    offset: Offset = 0
    cursor: Cursor = None

    def window(self) -> dict[str, Any]:
        """As the keyword arguments of a lims list query."""
        return {"limit": self.limit, "offset": self.offset, "cursor": self.cursor}


Paging = Annotated[PageQuery, Depends()]


def page(listing: Listing[Any], out: Callable[[Any], Any]) -> dict[str, Any]:
    """One page of a list query, each item shown by ``out``."""
    return {
        "items": [out(item) for item in listing],
        "limit": listing.limit,
        "offset": listing.offset,
        "next_offset": listing.next_offset,
        "next_cursor": listing.next_cursor,
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


def file_response(media_type: str, description: str) -> dict[int | str, dict[str, Any]]:
    """A 200 whose body is a file: declared so generated clients keep it as bytes or text."""
    text = media_type.startswith("text/") or media_type == "application/x-ndjson"
    schema = {"type": "string"} if text else {"type": "string", "format": "binary"}
    return {200: {"description": description, "content": {media_type: {"schema": schema}}}}


class QuantityOut(BaseModel):
    value: str
    unit: str


def q_out(q: Quantity) -> QuantityOut:
    return QuantityOut(**q.as_json())


class MaterialOut(BaseModel):
    material_id: str
    printed_id: str
    kind: MaterialKindName
    state: MaterialStateName
    quantity: QuantityOut = Field(description="as entered when the material was made")
    remaining: QuantityOut
    patient_coi: str | None = Field(
        description="whose material it is: for a dose of an allogeneic product, the donor"
    )
    recipient_coi: str | None = Field(
        default=None, description="a dose: the patient it is for (the dispatch gate's 'for')"
    )
    donor_coi: str | None = Field(
        default=None, description="a dose of an allogeneic product: whose cells made it"
    )
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
    recipient = donor = None
    if m.kind == "dose":
        owner = session.get(Patient, m.recipient_id) if m.recipient_id else patient
        recipient = owner.coi_id if owner else None
        if m.use == "allogeneic" and patient is not None:
            donor = patient.coi_id
    return MaterialOut(
        material_id=m.material_id,
        printed_id=format_material_id(m.material_id),
        kind=m.kind,
        state=m.state,
        quantity=QuantityOut(value=format(m.entered_value.normalize(), "f"), unit=m.entered_unit),
        remaining=q_out(left),
        patient_coi=patient.coi_id if patient else None,
        recipient_coi=recipient,
        donor_coi=donor,
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
    product: str = Field(description="the product's name as printed, e.g. 'AAPE dose'")
    patient_coi: str | None
    expires_at: datetime | None
    storage: str
    statement: str | None
    lines: list[str] = Field(description="the printed label's text, line by line")


class OrderOut(BaseModel):
    number: str
    status: OrderStatusName
    patient_coi: str = Field(description="the patient the order is for (= recipient_coi)")
    recipient_coi: str = Field(description="the patient who receives the dose")
    donor_coi: str | None = Field(
        default=None, description="an allogeneic dose: the donor whose material it is from"
    )
    product: ProductName
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
    interval_reason: str | None = Field(
        default=None, description="the prescriber's reason for a session out of interval"
    )
    interval_warning: str | None = Field(
        default=None,
        description="a session out of its course's interval (lims.orders.course): what is "
        "out of the published schedule, and the prescriber's reason",
    )


class TimelineEventOut(BaseModel):
    """One line of an order's timeline (lims.orders.timeline), as the portal shows it."""

    seq: int = Field(description="the custody event's sequence number")
    at: AwareDatetime = Field(description="when, in the clinic's time zone with its offset")
    event: str = Field(description="the ledger's action code")
    status: str = Field(description="the order's status or the dose's state after the event")
    name: str = Field(description="what happened, in words")
    actor: str
    actor_role: str
    reason: str | None


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
    dose_out = material_out(session, dose) if dose else None
    return OrderOut(
        number=o.number,
        status=o.status,
        patient_coi=patient.coi_id,
        recipient_coi=patient.coi_id,
        donor_coi=dose_out.donor_coi if dose_out else None,
        product=o.product,
        dose=QuantityOut(value=format(o.dose_value.normalize(), "f"), unit=o.dose_unit),
        session=f"{o.session_number}/{o.sessions_total}",
        planned_use_at=o.planned_use_at,
        ship_to=o.ship_to,
        prescriber=o.prescriber,
        consent_ref=o.consent_ref,
        placed_at=o.placed_at,
        dose_material=dose_out,
        label=label,
        received_at=o.received_at,
        received_by=o.received_by,
        cancel_reason=o.cancel_reason,
        interval_reason=o.interval_reason,
        interval_warning=course_warning(session, order=o),
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
