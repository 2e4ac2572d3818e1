"""A step as the API gives it: the inputs taken, outputs made, losses, parameters and
resources. What each quantity measures depends on the material it is booked against, so
``record_step`` parses each one once, against that material's kind."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field, WithJsonSchema

from lims.quantity_fields import quantity_json_schema
from lims.schemas import DbId, Strict, UtcTime
from lims.steps.service import InputBooking, LossBooking, OutputRequest

# A step's amounts are checked against each material's kind by the service (the kind is
# only known from the material), so the document says "a quantity", of any kind.
AnyQuantity = Annotated[Any, WithJsonSchema(quantity_json_schema(None))]


class InputIn(Strict):
    material_id: str
    quantity: AnyQuantity | None = Field(default=None, examples=["100 mL"])


class OutputIn(Strict):
    quantity: AnyQuantity = Field(examples=["1.9e7 cells"])
    container: str | None = Field(default=None, max_length=64)


class LossIn(Strict):
    material_id: str
    quantity: AnyQuantity
    reason: str = Field(min_length=1, max_length=200)


class StepIn(Strict):
    """One process step to record against the SOP version in force."""

    sop_code: str = Field(max_length=32, examples=["SVF-SEP"])
    inputs: list[InputIn] = Field(min_length=1, max_length=50)
    outputs: list[OutputIn] = Field(default_factory=list, max_length=50)
    losses: list[LossIn] = Field(default_factory=list, max_length=50)
    parameters: dict[str, Any] = Field(default_factory=dict)
    instrument_ids: list[DbId] = Field(default_factory=list, max_length=20)
    reagent_lot_ids: list[DbId] = Field(default_factory=list, max_length=20)
    performed_at: UtcTime | None = None
    notes: str | None = Field(default=None, max_length=2000)

    def bookings(self) -> tuple[list[InputBooking], list[OutputRequest], list[LossBooking]]:
        """The inputs, outputs and losses as ``record_step`` books them."""
        return (
            [InputBooking(i.material_id, i.quantity) for i in self.inputs],
            [OutputRequest(o.quantity, container=o.container) for o in self.outputs],
            [LossBooking(x.material_id, x.quantity, x.reason) for x in self.losses],
        )
