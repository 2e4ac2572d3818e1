"""Materials as the API and the flows give them: starting material collected at a clinic
(its quantity in the kind's own dimension) and storage positions; checked here, once."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import (
    Field,
    GetCoreSchemaHandler,
    GetJsonSchemaHandler,
    ValidationInfo,
)
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import PydanticCustomError, core_schema

from lims.errors import InvalidInput
from lims.materials.kinds import KIND_DIMENSIONS, MaterialKind
from lims.quantity_fields import Temperature, quantity_json_schema
from lims.schemas import Strict, UtcTime
from lims.units import Quantity, parse_quantity


def quantity_of(*, kind: MaterialKind, raw: object) -> Quantity:
    """How much of a ``kind`` there is, in that kind's dimension (a lipoaspirate in mL)."""
    return parse_quantity(raw, KIND_DIMENSIONS[kind][0], field="quantity")


class _OfTheKind:
    """Pydantic marker: a quantity parsed against the model's ``kind`` field."""

    def __get_pydantic_core_schema__(
        self, source: Any, handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        def validate(raw: Any, info: ValidationInfo) -> Quantity:
            kind = info.data.get("kind")
            if kind is None:
                # The kind was refused already; that is the error to report.
                raise PydanticCustomError("quantity", "the quantity depends on a valid kind")
            try:
                return quantity_of(kind=MaterialKind(kind), raw=raw)
            except InvalidInput as exc:
                raise PydanticCustomError("quantity", exc.message) from None

        return core_schema.with_info_plain_validator_function(
            validate,
            serialization=core_schema.plain_serializer_function_ser_schema(lambda q: q.as_json()),
        )

    def __get_pydantic_json_schema__(
        self, schema: core_schema.CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        return quantity_json_schema(
            None,
            describe="a number with a unit, in the kind's dimension (a volume for "
            "lipoaspirate, a mass for a biopsy)",
            examples=["120 mL", "12 mg"],
        )


# A quantity of the model's ``kind`` (declare ``kind`` before it).
KindQuantity = Annotated[Quantity, _OfTheKind()]


class Collected(Strict):
    """Starting material as collected at the clinic: what, how much, when."""

    kind: MaterialKind
    quantity: KindQuantity
    collected_at: UtcTime


class StoragePositionDetails(Strict):
    """One storage position: site / freezer / rack / box / position, and its temperature."""

    site: str = Field(min_length=1, max_length=64)
    freezer: str = Field(min_length=1, max_length=64)
    rack: str = Field(min_length=1, max_length=32)
    box: str = Field(min_length=1, max_length=32)
    position: str = Field(min_length=1, max_length=16)
    temperature: Temperature | None = Field(default=None, examples=["-80 degC"])

    def __str__(self) -> str:
        return f"{self.site}/{self.freezer}/{self.rack}/{self.box}/{self.position}"
