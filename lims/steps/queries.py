"""Reads for the bench: the SOP versions in force, the work queue they make, and what a
recorded step took and made."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlmodel import Session, col, func, select

from lims.db import utcnow
from lims.materials.models import Material
from lims.materials.queries import in_states
from lims.materials.service import remaining
from lims.sops.models import SopVersion
from lims.sops.service import definition_of, sop_in_force
from lims.sops.spec import SopDefinition
from lims.steps.models import Step, StepInput
from lims.units import Quantity

# How many materials one SOP input lists in the work queue (the oldest first).
QUEUE_PER_INPUT = 50


def sops_in_force(session: Session, *, at: datetime | None = None) -> list[SopDefinition]:
    """The version in force of every SOP that has one at ``at`` (default now), by code."""
    at = at or utcnow()
    codes = session.exec(
        select(SopVersion.code)
        .where(col(SopVersion.effective_from) <= at)
        .where((col(SopVersion.retired_at).is_(None)) | (col(SopVersion.retired_at) > at))
        .distinct()
        .order_by(col(SopVersion.code))
    ).all()
    return [definition_of(sop_in_force(session, code=code, at=at)) for code in codes]


@dataclass(frozen=True)
class QueueRow:
    """A material waiting for a step: which SOP takes it, and how much of it remains."""

    material: Material
    sop: SopDefinition
    left: Quantity


def work_queue(session: Session, *, per_input: int = QUEUE_PER_INPUT) -> list[QueueRow]:
    """Materials waiting for a step: whatever an SOP version in force takes in its state."""
    rows: list[QueueRow] = []
    for sop in sops_in_force(session):
        for spec in sop.inputs:
            found = in_states(
                session, states=spec.states, kinds=[k.value for k in spec.kinds], limit=per_input
            )
            rows.extend(QueueRow(material=m, sop=sop, left=remaining(m)) for m in found)
    rows.sort(key=lambda r: (r.material.id or 0, r.sop.code))
    return rows


def steps_for(session: Session, *, material: Material) -> list[SopDefinition]:
    """The SOPs in force whose first input takes ``material`` as it is (kind and state):
    the bench steps its state allows next."""
    return [
        sop
        for sop in sops_in_force(session)
        if sop.inputs
        and material.kind in {k.value for k in sop.inputs[0].kinds}
        and material.state in sop.inputs[0].states
    ]


def step_input_ids(session: Session, *, step_id: int) -> list[str]:
    """The material ids a step took as inputs, in the order they were booked."""
    return list(
        session.exec(
            select(Material.material_id)
            .join(StepInput, col(StepInput.material_id) == col(Material.id))
            .where(col(StepInput.step_id) == step_id)
            .order_by(col(StepInput.id))
        ).all()
    )


def step_counts(session: Session) -> dict[str, int]:
    """How many steps were recorded under each SOP code."""
    rows = session.exec(select(Step.sop_code, func.count()).group_by(col(Step.sop_code))).all()
    return {code: n for code, n in rows}


def steps_taking(session: Session, *, material: Material, except_sop: str | None = None) -> int:
    """How many steps took ``material`` as an input (optionally not counting one SOP's)."""
    query = (
        select(Step.id)
        .join(StepInput, col(StepInput.step_id) == col(Step.id))
        .where(col(StepInput.material_id) == material.id)
    )
    if except_sop is not None:
        query = query.where(col(Step.sop_code) != except_sop)
    return len(session.exec(query).all())
