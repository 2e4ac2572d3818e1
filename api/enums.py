"""The contract's enumerations, from the lims data they name (written once there):
a material's state (every state of every kind's machine, lims.materials.workflow), its
kind, an order's status, a dose's product.

Fields keep the Python type ``str`` and point at one named schema each (``$ref``), which
api/openapi.py adds to the document's components, so a generated client gets one
``MaterialState`` enum, not one per field. Filters check their value (422 naming the
choices); outputs are the machines' own states.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import AfterValidator, WithJsonSchema

from lims.materials.kinds import MaterialKind
from lims.materials.workflow import MACHINES
from lims.orders.models import OrderStatus, Product
from lims.quantity_fields import QUANTITY_IN


def _states() -> list[str]:
    return sorted({state for machine in MACHINES.values() for state in machine.states})


ENUMS: dict[str, tuple[list[str], str]] = {
    "MaterialState": (_states(), "a material's state (domain.md section D, every kind)"),
    "MaterialKind": ([k.value for k in MaterialKind], "what a material is"),
    "OrderStatus": ([s.value for s in OrderStatus], "a dose order's status"),
    "ProductCode": ([p.value for p in Product], "the product a dose is of"),
}


MARK = "x-lims-enum"


def _ref(name: str) -> WithJsonSchema:
    # Pydantic resolves a "$ref" against its own definitions only, so the field is marked
    # and api/openapi.py swaps the mark for the reference (refer()).
    return WithJsonSchema({"type": "string", MARK: name})


MaterialStateName = Annotated[str, _ref("MaterialState")]
MaterialKindName = Annotated[str, _ref("MaterialKind")]
OrderStatusName = Annotated[str, _ref("OrderStatus")]
ProductName = Annotated[str, _ref("ProductCode")]


def _one_of(name: str, fold: str) -> AfterValidator:
    """A filter's value, case folded as before (``placed`` is PLACED), and known: an
    unknown one is a 422 naming the choices, not an empty list."""
    values = ENUMS[name][0]

    def check(value: str) -> str:
        folded = value.strip().upper() if fold == "upper" else value.strip().lower()
        if folded not in values:
            raise ValueError(f"{value[:40]!r} is not one of: {', '.join(values)}")
        return folded

    return AfterValidator(check)


# Query filters: the same schemas, checked.
MaterialStateFilter = Annotated[str, _ref("MaterialState"), _one_of("MaterialState", "upper")]
MaterialKindFilter = Annotated[str, _ref("MaterialKind"), _one_of("MaterialKind", "lower")]
OrderStatusFilter = Annotated[str, _ref("OrderStatus"), _one_of("OrderStatus", "upper")]


def refer(node: Any) -> Any:
    """``node`` with every marked schema replaced by its ``$ref`` (an enum's, or
    QuantityIn's: lims.units marks it with x-lims-ref)."""
    if isinstance(node, dict):
        name = node.get(MARK) or node.get("x-lims-ref")
        if name:
            return {"$ref": f"#/components/schemas/{name}"}
        return {key: refer(value) for key, value in node.items()}
    if isinstance(node, list):
        return [refer(item) for item in node]
    return node


def components() -> dict[str, dict[str, Any]]:
    """The enumerations as OpenAPI component schemas."""
    return {
        "QuantityIn": QUANTITY_IN,
        **{
            name: {"title": name, "type": "string", "enum": values, "description": words}
            for name, (values, words) in ENUMS.items()
        },
    }
