"""A recorded step, what it took from each input, what it lost, and the resources used.

``StepInput`` rows form a ledger per material: each records the remaining amount before and
after the step, so that the whole history of a material's quantity can be re-added by an
auditor (see ``lims.steps.conservation``).
"""

from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import JSON, String, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

import lims.models_base  # noqa: F401
from lims.db import ExactDecimal, UTCDateTime, utcnow


class Step(SQLModel, table=True):
    __tablename__ = "step"

    id: int | None = Field(default=None, primary_key=True)
    sop_version_id: int = Field(foreign_key="sop_version.id", index=True)
    sop_code: str = Field(sa_type=String(32), index=True)
    performed_by_id: int = Field(foreign_key="lims_user.id", index=True)
    performed_at: datetime = Field(sa_type=UTCDateTime)
    recorded_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    outcome: str = Field(sa_type=String(16))
    parameters: dict = Field(default_factory=dict, sa_type=JSON)
    warnings: list = Field(default_factory=list, sa_type=JSON)
    acceptance_failures: list = Field(default_factory=list, sa_type=JSON)
    notes: str | None = Field(default=None, sa_type=Text)
    # A retried request (flow re-run, client retry) finds its first result by this key.
    idempotency_key: str | None = Field(default=None, sa_type=String(128), unique=True)
    request_sha256: str | None = Field(default=None, sa_type=String(64))


class StepInput(SQLModel, table=True):
    __tablename__ = "step_input"
    __table_args__ = (UniqueConstraint("step_id", "material_id"),)

    id: int | None = Field(default=None, primary_key=True)
    step_id: int = Field(foreign_key="step.id", index=True)
    material_id: int = Field(foreign_key="material.id", index=True)
    mode: str = Field(sa_type=String(16))
    quantity_kind: str = Field(sa_type=String(24))
    entered_value: Decimal | None = Field(default=None, sa_type=ExactDecimal)
    entered_unit: str | None = Field(default=None, sa_type=String(32))
    taken_canonical: Decimal = Field(sa_type=ExactDecimal)
    # For a culture counted in this step: the count that replaced the remaining amount.
    measured_canonical: Decimal | None = Field(default=None, sa_type=ExactDecimal)
    remaining_before: Decimal = Field(sa_type=ExactDecimal)
    remaining_after: Decimal = Field(sa_type=ExactDecimal)
    state_before: str = Field(sa_type=String(24))
    state_after: str = Field(sa_type=String(24))


class StepLoss(SQLModel, table=True):
    """An amount lost in a step (hold-up volume, discarded cells, sampling), with a reason."""

    __tablename__ = "step_loss"

    id: int | None = Field(default=None, primary_key=True)
    step_id: int = Field(foreign_key="step.id", index=True)
    material_id: int = Field(foreign_key="material.id", index=True)
    quantity_kind: str = Field(sa_type=String(24))
    entered_value: Decimal = Field(sa_type=ExactDecimal)
    entered_unit: str = Field(sa_type=String(32))
    canonical: Decimal = Field(sa_type=ExactDecimal)
    reason: str = Field(sa_type=String(200))


class StepResource(SQLModel, table=True):
    """An instrument or a reagent lot used in a step (exactly one of the two is set)."""

    __tablename__ = "step_resource"

    id: int | None = Field(default=None, primary_key=True)
    step_id: int = Field(foreign_key="step.id", index=True)
    instrument_id: int | None = Field(default=None, foreign_key="instrument.id")
    reagent_lot_id: int | None = Field(default=None, foreign_key="reagent_lot.id")


class StepCorrection(SQLModel, table=True):
    """A corrected parameter value. The step row keeps what was first recorded; the current
    view applies corrections in order (see ``lims.steps.corrections``)."""

    __tablename__ = "step_correction"

    id: int | None = Field(default=None, primary_key=True)
    step_id: int = Field(foreign_key="step.id", index=True)
    parameter: str = Field(sa_type=String(64))
    old: dict[str, Any] = Field(sa_type=JSON)
    new: dict[str, Any] = Field(sa_type=JSON)
    reason: str = Field(sa_type=Text)
    corrected_by_id: int = Field(foreign_key="lims_user.id")
    corrected_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    custody_seq: int = Field(foreign_key="custody_event.seq")
