"""Quantities as pydantic fields and as JSON Schema: ``Annotated[Quantity, QuantityOf(kind)]``
(the aliases Volume, Mass, CellCount, VialCount, Duration, Temperature), and the schema of
a quantity input ("3.5 mL" or {"value": "3.5", "unit": "mL"}) that the API's document
shows. Parsing itself is lims.units.parse_quantity; this module only wires it into models.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import GetCoreSchemaHandler, GetJsonSchemaHandler
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import PydanticCustomError, core_schema

from lims.errors import InvalidInput
from lims.units import KINDS, Quantity, QuantityKind, parse_quantity


@dataclass(frozen=True)
class QuantityOf:
    """Pydantic marker: ``Annotated[Quantity, QuantityOf(QuantityKind.VOLUME)]``."""

    kind: QuantityKind

    def __get_pydantic_core_schema__(
        self, source: Any, handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        kind = self.kind

        def validate(raw: Any) -> Quantity:
            try:
                return parse_quantity(raw, kind)
            except InvalidInput as exc:
                # Pydantic reports the field location itself; the message says the rest.
                raise PydanticCustomError("quantity", exc.message) from None

        return core_schema.no_info_plain_validator_function(
            validate,
            serialization=core_schema.plain_serializer_function_ser_schema(lambda q: q.as_json()),
        )

    def __get_pydantic_json_schema__(
        self, schema: core_schema.CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        return quantity_json_schema(self.kind)


# The {value, unit} form as one named schema: the API's document refers to it (the mark is
# swapped for a $ref by api/openapi.py), so a generated client has one QuantityIn class.
QUANTITY_IN: dict[str, Any] = {
    "title": "QuantityIn",
    "type": "object",
    "description": "a number (as a string, kept exact) and its unit",
    "properties": {
        "value": {"type": "string", "examples": ["3.5"]},
        "unit": {"type": "string", "examples": ["mL"]},
    },
    "required": ["value", "unit"],
    "additionalProperties": False,
}


def quantity_json_schema(
    kind: QuantityKind | None,
    *,
    text: bool = False,
    describe: str | None = None,
    examples: list[str] | None = None,
) -> dict[str, Any]:
    """A quantity input as JSON Schema: "3.5 mL" or {"value": "3.5", "unit": "mL"}; of
    ``kind`` when given (any kind otherwise); ``text``: a QC result may also be words."""
    if kind is None:
        example, what = "100 mL", "A quantity"
    else:
        info = KINDS[kind]
        example, what = f"3.5 {info.canonical_unit}", info.noun.capitalize()
    words = "; or words such as 'no growth' where the test reads text" if text else ""
    return {
        "description": describe
        or f"{what}: a number with a unit, e.g. '{example}' or "
        f"{{'value': '3.5', 'unit': '...'}}{words}",
        "anyOf": [
            {"type": "string", "examples": examples or [example]},
            {"type": "object", "x-lims-ref": "QuantityIn"},
        ],
    }


Volume = Annotated[Quantity, QuantityOf(QuantityKind.VOLUME)]
Mass = Annotated[Quantity, QuantityOf(QuantityKind.MASS)]
CellCount = Annotated[Quantity, QuantityOf(QuantityKind.CELLS)]
VialCount = Annotated[Quantity, QuantityOf(QuantityKind.VIALS)]
Duration = Annotated[Quantity, QuantityOf(QuantityKind.DURATION)]
Temperature = Annotated[Quantity, QuantityOf(QuantityKind.TEMPERATURE)]
