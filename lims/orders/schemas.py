"""An order as the API, the web portal and the flows give it: checked here, once (product,
dose in a unit that product is ordered in, sessions, time zone, text limits)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import (
    Field,
    GetCoreSchemaHandler,
    GetJsonSchemaHandler,
    StringConstraints,
    ValidationInfo,
    field_validator,
)
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import PydanticCustomError, core_schema

from lims.doses.spec import check_dose
from lims.errors import InvalidInput
from lims.orders.models import Product
from lims.quantity_fields import Temperature, quantity_json_schema
from lims.schemas import Strict, UtcTime, validated
from lims.units import Quantity, QuantityKind, WrongKind, parse_quantity, quantity_kind

DOSE_KINDS = {
    Product.AAPE: (QuantityKind.VIALS, QuantityKind.VOLUME, QuantityKind.MASS),
    Product.DP_CELLS: (QuantityKind.CELLS,),
}
# How a dose of each kind is described to the person ordering.
DOSE_WORDS = {
    QuantityKind.VIALS: "vials",
    QuantityKind.VOLUME: "reconstituted mL",
    QuantityKind.MASS: "µg of protein",
    QuantityKind.CELLS: "cells",
}
MAX_SESSIONS = 12  # DOSE-ALLOCATE v1 session_number 1-12 (4-6 sessions [2]; 6 [3])


def parse_dose(*, product: Product, raw: object) -> Quantity:
    """A dose of ``product``: in a unit it is ordered in, within the product's dose range
    for one session (lims.doses.spec)."""
    kinds = DOSE_KINDS[product]
    try:
        kind = quantity_kind(raw, among=kinds, field="dose")
    except WrongKind as exc:
        units = ", ".join(DOSE_WORDS[k] for k in kinds)
        raise InvalidInput(
            f"a {product.value} dose is given in {units}; got {exc.got}", field="dose"
        ) from None
    dose = parse_quantity(raw, kind, field="dose")
    if dose.canonical <= 0:
        raise InvalidInput("a dose must be more than zero", field="dose")
    return check_dose(product, dose)


class _DoseOf:
    """Pydantic marker: the dose field, parsed against the model's ``product``."""

    def __get_pydantic_core_schema__(
        self, source: Any, handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        def validate(raw: Any, info: ValidationInfo) -> Quantity:
            product = info.data.get("product")
            if not isinstance(product, Product):
                # The product was refused already; that is the error to report.
                raise PydanticCustomError("dose", "the dose depends on a valid product")
            try:
                return parse_dose(product=product, raw=raw)
            except InvalidInput as exc:
                raise PydanticCustomError("dose", exc.message) from None

        return core_schema.with_info_plain_validator_function(
            validate,
            serialization=core_schema.plain_serializer_function_ser_schema(lambda q: q.as_json()),
        )

    def __get_pydantic_json_schema__(
        self, schema: core_schema.CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        return quantity_json_schema(
            None,
            describe="vials, reconstituted mL, or µg of protein (AAPE); cells (DP): "
            "a number with a unit",
            examples=["1 vial", "4 mL", "500 ug"],
        )


Dose = Annotated[Quantity, _DoseOf()]
ShipTo = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=300)]
Prescriber = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
ConsentRef = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64)]


class OrderDetails(Strict):
    """What a clinic orders for one treatment session of its patient."""

    product: Product = Product.AAPE
    dose: Dose
    sessions_total: int = Field(ge=1, le=MAX_SESSIONS)
    session_number: int = Field(ge=1, le=MAX_SESSIONS)
    planned_use_at: UtcTime
    ship_to: ShipTo
    prescriber: Prescriber
    consent_ref: ConsentRef
    notes: str | None = Field(default=None, max_length=2000)
    # Needed only for a session outside the course's interval (lims.orders.course).
    interval_reason: str | None = Field(default=None, max_length=2000)

    @field_validator("product", mode="before")
    @classmethod
    def _known_product(cls, value: Any) -> Any:
        if not isinstance(value, str) or value not in {p.value for p in Product}:
            raise PydanticCustomError(
                "product", f"product is one of {', '.join(p.value for p in Product)}"
            )
        return value

    @field_validator("session_number")
    @classmethod
    def _within_the_course(cls, value: int, info: ValidationInfo) -> int:
        total = info.data.get("sessions_total")
        if total is not None and value > total:
            raise PydanticCustomError(
                "sessions",
                f"session {value} is past the course's last session {total} "
                f"(a course has at most {MAX_SESSIONS} sessions)",
            )
        return value


def order_details(
    *,
    product: Product | str = Product.AAPE,
    dose: object,
    session_number: int,
    sessions_total: int,
    planned_use_at: datetime,
    ship_to: str,
    prescriber: str,
    consent_ref: str,
    notes: str | None = None,
    interval_reason: str | None = None,
) -> OrderDetails:
    """An order's details from plain values, checked; the first problem as InvalidInput."""
    return validated(
        OrderDetails,
        product=product,
        dose=dose,
        session_number=session_number,
        sessions_total=sessions_total,
        planned_use_at=planned_use_at,
        ship_to=ship_to,
        prescriber=prescriber,
        consent_ref=consent_ref,
        notes=notes,
        interval_reason=interval_reason,
    )


class ReceiptDetails(Strict):
    """The clinic's receipt: when the dose arrived, its temperature, who took it."""

    received_at: UtcTime
    temperature: Temperature
    received_by: Annotated[
        str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)
    ]
    # The shipment's temperature logger file (CSV 'time,temperature'), checked at receipt.
    logger_csv: str | None = Field(default=None, max_length=1_000_000)
