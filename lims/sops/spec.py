"""What an SOP version says, as data: typed parameters, inputs, outputs, resources.

A parameter has three kinds of limit, because a lab treats them differently:
- ``min``/``max``: what is physically plausible or validated for the method; a value
  outside is refused as a recording error ("digestion time 900 min" is a typo);
- ``accept_min``/``accept_max``/``accept_equals``: acceptance criteria; a value outside is
  recorded faithfully and the material fails (an SVF with 55 % viability is rejected,
  not unrecordable);
- ``warn_min``/``warn_max``: recorded with a warning for review (lipoaspirate 30 h old).
Every number carries its ``source`` (domain.md reference or [I] for a lab decision).
"""

from __future__ import annotations

import hashlib
import json
from datetime import date, timedelta
from decimal import Decimal
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from lims.materials.kinds import MaterialKind
from lims.units import QuantityKind, parse_quantity


class ParamType(StrEnum):
    QUANTITY = "quantity"
    CHOICE = "choice"
    INTEGER = "integer"
    BOOLEAN = "boolean"
    TEXT = "text"


class InputMode(StrEnum):
    CONSUME = "consume"  # an amount is taken from the material into the step's outputs
    IN_PLACE = "in_place"  # processed where it is; what is taken must be booked as loss
    MEASURE = "measure"  # a growing culture is counted; its amount becomes the count
    INSPECT = "inspect"  # nothing taken; the step decides its next state (intake, QC)
    REFERENCE = "reference"  # a parent in lineage without being depleted (CM from a culture)


class _Spec(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ParameterSpec(_Spec):
    name: str
    label: str
    type: ParamType
    quantity_kind: QuantityKind | None = None
    required: bool = True
    derived: bool = False  # computed by the LIMS from the record, never typed in
    min: str | None = None
    max: str | None = None
    warn_min: str | None = None
    warn_max: str | None = None
    accept_min: str | None = None
    accept_max: str | None = None
    accept_equals: Any = None
    choices: list[str] | None = None
    source: str = ""

    @model_validator(mode="after")
    def _consistent(self) -> ParameterSpec:
        if self.type is ParamType.QUANTITY:
            if self.quantity_kind is None:
                raise ValueError(f"{self.name}: a quantity parameter needs quantity_kind")
            for bound in (
                self.min,
                self.max,
                self.warn_min,
                self.warn_max,
                self.accept_min,
                self.accept_max,
            ):
                if bound is not None:
                    parse_quantity(bound, self.quantity_kind, field=self.name)
        if self.type is ParamType.CHOICE and not self.choices:
            raise ValueError(f"{self.name}: a choice parameter needs choices")
        return self


class InputSpec(_Spec):
    kinds: list[MaterialKind]
    mode: InputMode
    states: list[str]
    min_count: int = 1
    max_count: int = 1
    state_after: str | None = None  # INSPECT, IN_PLACE, MEASURE, REFERENCE; or partial use
    state_after_depleted: str | None = None  # CONSUME when nothing remains
    state_if_rejected: str | None = None  # when an acceptance criterion fails


class OutputSpec(_Spec):
    kind: MaterialKind
    min_count: int = 1
    max_count: int = 1
    state: str
    state_if_rejected: str | None = None
    state_if_accepted: str | None = None
    shelf_life: str | None = None  # e.g. "24 month"; counted from the step
    inherit_expiry: bool = False  # never later than the earliest input's expiry
    container: str | None = None


class Limit(_Spec):
    value: str
    source: str


class SopDefinition(_Spec):
    code: str = Field(pattern=r"^[A-Z][A-Z0-9-]{2,31}$")
    version: int = Field(ge=1)
    title: str
    stage: str
    # Set by document control when the version is approved; steps performed before it
    # are validated against the previous version.
    effective_from: date = date(2026, 1, 1)
    inputs: list[InputSpec]
    outputs: list[OutputSpec] = []
    parameters: list[ParameterSpec] = []
    instrument_types: list[str] = []
    reagent_types: list[str] = []
    # Output unit -> parameter giving its worth in the input's dimension, so that a lot
    # of vials can be balanced against the millilitres of CM that filled it.
    conversions: dict[str, str] = {}
    # Limits enforced by the step's rules (not per-parameter), with their source.
    limits: dict[str, Limit] = {}
    notes: str = ""

    def parameter(self, name: str) -> ParameterSpec:
        for p in self.parameters:
            if p.name == name:
                return p
        raise KeyError(name)

    def canonical_json(self) -> str:
        return json.dumps(self.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))

    def digest(self) -> str:
        """SHA-256 of the definition: an SOP version may never change once in force."""
        return hashlib.sha256(self.canonical_json().encode()).hexdigest()


def shelf_life_delta(text: str) -> timedelta:
    """Turn a shelf life such as '24 month' or '4 h' into a timedelta (months are 30.4375 d)."""
    q = parse_quantity(text, QuantityKind.DURATION)
    return timedelta(minutes=float(q.canonical))


def limit_decimal(sop: SopDefinition, name: str) -> Decimal | None:
    """The numeric value of a named limit, or None when this SOP version sets none."""
    limit = sop.limits.get(name)
    return Decimal(limit.value) if limit else None


Outcome = Literal["completed", "accepted", "rejected"]
