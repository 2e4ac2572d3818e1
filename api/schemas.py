"""Request and response models for the API (quantities are always unit-checked)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Generic, Literal, TypeVar

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field, model_validator
from sqlmodel import Session

from lims.identity.codes import format_material_id
from lims.materials.models import Material, StorageLocation
from lims.materials.service import remaining
from lims.orders.models import DoseOrder
from lims.parties.models import Patient
from lims.units import Quantity


def _storable_time(value: datetime) -> datetime:
    try:
        value.astimezone(UTC)
    except (OverflowError, ValueError):
        raise ValueError("the time is outside years 1-9999 once in UTC") from None
    return value


# A time with its zone, that stays within the years the databases store once in UTC.
UtcTime = Annotated[AwareDatetime, AfterValidator(_storable_time)]
T = TypeVar("T")
MAX_PAGE = 200
# Row ids fit a 32-bit INTEGER on both databases; anything larger is refused as input.
DbId = Annotated[int, Field(ge=1, le=2_147_483_647)]


def _no_nul(value: Any, path: str = "") -> None:
    if isinstance(value, str) and "\x00" in value:
        raise ValueError(f"{path or 'text'} contains a NUL character")
    if isinstance(value, dict):
        for key, item in value.items():
            _no_nul(key, path)
            _no_nul(item, f"{path}.{key}" if path else str(key))
    elif isinstance(value, list):
        for item in value:
            _no_nul(item, path)


class Strict(BaseModel):
    """Input models: unknown fields and NUL characters are refused (on every database)."""

    model_config = ConfigDict(extra="forbid")

    @model_validator(mode="before")
    @classmethod
    def _refuse_nul(cls, data: Any) -> Any:
        _no_nul(data)
        return data


class Page(BaseModel, Generic[T]):
    items: list[T]
    limit: int
    offset: int
    next_offset: int | None = Field(description="offset of the next page, null at the end")


def page(items: list[Any], limit: int, offset: int) -> dict[str, Any]:
    """Items fetched with limit+1 rows: the extra one only says another page exists."""
    more = len(items) > limit
    return {
        "items": items[:limit],
        "limit": limit,
        "offset": offset,
        "next_offset": offset + limit if more else None,
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


class PatientIn(Strict):
    identifier_1: str = Field(min_length=1, max_length=64, examples=["1980-04-12"])
    identifier_2: str = Field(min_length=1, max_length=64, examples=["GHC-000123"])
    donor_type: Literal["autologous_patient", "allogeneic_donor", "recipient"] = (
        "autologous_patient"
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


class HarvestIn(Strict):
    coi_id: str = Field(examples=["COI-ABCD-EFGH-J"])
    kind: Literal["lipoaspirate", "scalp_biopsy"]
    quantity: Any = Field(
        description="volume for lipoaspirate, mass for a biopsy",
        examples=["120 mL", {"value": "12", "unit": "mg"}],
    )
    collected_at: UtcTime
    courier: str = Field(min_length=1, max_length=100, examples=["ColdChain AWB 7781"])


class OrderIn(Strict):
    coi_id: str
    product: Literal["aape", "dp_cells"] = "aape"
    dose: Any = Field(
        description="vials, reconstituted mL, or µg of protein (AAPE); cells (DP)",
        examples=["1 vial", "4 mL", "500 ug"],
    )
    session_number: int = Field(ge=1, le=12)
    sessions_total: int = Field(ge=1, le=12)
    planned_use_at: UtcTime
    ship_to: str = Field(min_length=1, max_length=300)
    prescriber: str = Field(min_length=1, max_length=200)
    consent_ref: str = Field(min_length=1, max_length=64)
    notes: str | None = Field(default=None, max_length=2000)


class LabelOut(BaseModel):
    material_id: str
    printed_id: str
    product: str
    patient_coi: str
    expires_at: datetime | None
    storage: str
    statement: str | None


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
        label = LabelOut(
            material_id=dose.material_id,
            printed_id=format_material_id(dose.material_id),
            product="AAPE lyophilised protein extract"
            if o.product == "aape"
            else "Dermal papilla cells",
            patient_coi=patient.coi_id,
            expires_at=dose.expires_at,
            storage="store at -80 degC"
            if o.product == "aape"
            else "store at 2-8 degC, use within the expiry",
            statement="FOR AUTOLOGOUS USE ONLY" if dose.use == "autologous" else None,
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


class ReceiptIn(Strict):
    received_at: UtcTime
    temperature: Any = Field(examples=["4.5 degC"])
    received_by: str = Field(min_length=1, max_length=200)


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
