"""What a step request is and what its checks build: the bookings a caller gives, and the
context the checks, the stage rules, the plan and the write share."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlmodel import Session

from lims.errors import InvalidInput
from lims.materials.kinds import MaterialKind
from lims.materials.models import Material
from lims.parties.models import User
from lims.sops.spec import InputSpec, OutputSpec, SopDefinition
from lims.steps.models import Step
from lims.units import Quantity, parse_quantity


@dataclass(frozen=True)
class InputBooking:
    material_id: str
    quantity: Any = None


@dataclass(frozen=True)
class OutputRequest:
    quantity: Any
    kind: MaterialKind | None = None
    container: str | None = None


@dataclass(frozen=True)
class LossBooking:
    material_id: str
    quantity: Any
    reason: str


@dataclass
class StepResult:
    step: Step
    inputs: list[Material]
    outputs: list[Material]
    replayed: bool = False

    @property
    def warnings(self) -> list[str]:
        return list(self.step.warnings)


@dataclass
class CheckedInput:
    material: Material
    spec: InputSpec
    taken: Quantity | None
    # A re-count (a culture's cells now) replaces what the material held before the step.
    measured: Decimal | None = None


@dataclass
class CheckedOutput:
    request: OutputRequest
    spec: OutputSpec
    quantity: Quantity
    attrs: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class CheckedLoss:
    material: Material
    quantity: Quantity
    reason: str


@dataclass
class StepContext:
    """What a stage's rules see and may add to while a step is checked."""

    session: Session
    sop: SopDefinition
    actor: User
    performed_at: datetime
    inputs: list[CheckedInput]
    outputs: list[CheckedOutput]
    raw: dict[str, Any]
    derived: dict[str, Any] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    updates: dict[int, dict[str, Any]] = field(default_factory=dict)
    recipient_id: int | None = None

    def raw_quantity(self, name: str) -> Quantity | None:
        """A parameter as entered, parsed; None if missing or invalid (reported elsewhere)."""
        spec = self.sop.parameter(name)
        if spec.quantity_kind is None or self.raw.get(name) in (None, ""):
            return None
        try:
            return parse_quantity(self.raw[name], spec.quantity_kind)
        except InvalidInput:
            return None
