"""What an SOP version says, as data: typed parameters, inputs, outputs, resources.

A parameter has three kinds of limit, because a lab treats them differently:
- ``min``/``max``: what is physically plausible or validated for the method; a value
  outside is refused as a recording error ("digestion time 900 min" is a typo);
- ``accept_min``/``accept_max``/``accept_equals``: acceptance criteria; a value outside is
  recorded faithfully and the material fails (an SVF with 55 % viability is rejected,
  not unrecordable);
- ``warn_min``/``warn_max``: recorded with a warning for review (lipoaspirate 30 h old).
Every number carries its ``source`` (domain.md reference or [I] for a lab decision).

A parameter may also carry a ``typical`` value: what a technician would enter on a good
day, for the demo, benchmarks, test builders and form examples. It must pass the
parameter's own limits, acceptance criteria and warning limits, and it is not part of what the SOP
says: it is left out of the stored definition and of its SHA-256, so giving a better
example never makes a new SOP version.
"""

from __future__ import annotations

import hashlib
import json
from datetime import date, timedelta
from decimal import Decimal
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from lims.errors import InvalidInput
from lims.materials.kinds import MaterialKind
from lims.units import KINDS, QuantityKind, constant_quantity, parse_quantity


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
    typical: Any = None  # an example value; not part of the SOP (see the module docstring)

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
        if self.typical is not None:
            problem = _typical_problem(self)
            if problem:
                raise ValueError(f"{self.name}: typical value {self.typical!r} {problem}")
        return self


# The longest text a parameter takes (lims.sops.validation refuses longer).
TEXT_MAX_LENGTH = 500


def _typical_problem(spec: ParameterSpec) -> str | None:
    """Why ``spec.typical`` is not a value the SOP would accept as good, or None."""
    value: Any = spec.typical
    if spec.type is ParamType.QUANTITY:
        assert spec.quantity_kind is not None
        kind = spec.quantity_kind

        def bound(text: str) -> Any:
            return parse_quantity(text, kind)

        try:
            value = parse_quantity(value, kind)
        except InvalidInput as exc:
            return f"is not {KINDS[kind].noun}: {exc.message}"
    elif spec.type is ParamType.INTEGER:
        if isinstance(value, bool) or not isinstance(value, int):
            return "is not a whole number"

        def bound(text: str) -> Any:
            return int(text)
    elif spec.type is ParamType.BOOLEAN:
        if not isinstance(value, bool):
            return "is not yes or no"
    elif spec.type is ParamType.CHOICE:
        if value not in (spec.choices or []):
            return "is not one of the choices"
    elif not isinstance(value, str) or not value.strip() or len(value) > TEXT_MAX_LENGTH:
        return f"is not text of 1 to {TEXT_MAX_LENGTH} characters"
    if spec.type in (ParamType.QUANTITY, ParamType.INTEGER):
        for limit, outside in (
            (spec.min, lambda b: value < b),
            (spec.max, lambda b: value > b),
            (spec.accept_min, lambda b: value < b),
            (spec.accept_max, lambda b: value > b),
            (spec.warn_min, lambda b: value < b),
            (spec.warn_max, lambda b: value > b),
        ):
            if limit is not None and outside(bound(limit)):
                return f"is outside the limit {limit}"
    if spec.accept_equals is not None and value != spec.accept_equals:
        return f"fails the acceptance criterion (must be {spec.accept_equals})"
    return None


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

    def stored(self) -> dict[str, Any]:
        """The definition as stored and hashed: what the SOP says, without typical values."""
        return self.model_dump(mode="json", exclude={"parameters": {"__all__": {"typical"}}})

    def canonical_json(self) -> str:
        return json.dumps(self.stored(), sort_keys=True, separators=(",", ":"))

    def digest(self) -> str:
        """SHA-256 of the definition: an SOP version may never change once in force."""
        return hashlib.sha256(self.canonical_json().encode()).hexdigest()


def shelf_life_delta(text: str) -> timedelta:
    """Turn a shelf life such as '24 month' or '4 h' into a timedelta (months are 30.4375 d)."""
    q = constant_quantity(text, QuantityKind.DURATION)
    return timedelta(minutes=float(q.canonical))


def limit_decimal(sop: SopDefinition, name: str) -> Decimal | None:
    """The numeric value of a named limit, or None when this SOP version sets none."""
    limit = sop.limits.get(name)
    return Decimal(limit.value) if limit else None


Outcome = Literal["completed", "accepted", "rejected"]
