"""Record a process step against the SOP version in force.

One call checks everything first (lims.steps.check: the actor, the SOP, every parameter,
each input's state and identity, instrument calibration and reagent expiry, the
quantities taken and whether they add up), plans each input's next states
(lims.steps.plan), and refuses with every problem named, having written nothing. Only then
does it write (lims.steps.write): what each input lost, the outputs with their lineage,
each material's next state. The caller owns the transaction (``write_session``).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlmodel import Session, col, select

from lims.errors import StepRefused
from lims.idempotency.service import check_key, request_digest, same_request
from lims.materials.models import Material
from lims.parties.models import User
from lims.steps.check import MAX_LATE_ENTRY, RECORDING_ROLES, check_step
from lims.steps.context import InputBooking, LossBooking, OutputRequest, StepResult
from lims.steps.models import Step, StepInput
from lims.steps.plan import plan_states
from lims.steps.rules import STAGE_RULES, RuleBook
from lims.steps.write import write_step

__all__ = [
    "MAX_LATE_ENTRY",
    "RECORDING_ROLES",
    "InputBooking",
    "LossBooking",
    "OutputRequest",
    "StepResult",
    "record_step",
    "steps_for",
]


def record_step(
    session: Session,
    *,
    sop_code: str,
    actor: User,
    inputs: Sequence[InputBooking],
    outputs: Sequence[OutputRequest] = (),
    losses: Sequence[LossBooking] = (),
    parameters: dict[str, Any] | None = None,
    instrument_ids: Sequence[int] = (),
    reagent_lot_ids: Sequence[int] = (),
    performed_at: datetime | None = None,
    notes: str | None = None,
    idempotency_key: str | None = None,
    rules: RuleBook = STAGE_RULES,
) -> StepResult:
    """Validate and record one step; refuse with every problem named, writing nothing."""
    raw = dict(parameters or {})
    digest = request_digest(
        "step",
        dict(
            sop=sop_code,
            inputs=[(i.material_id, i.quantity) for i in inputs],
            outputs=[(o.quantity, o.kind, o.container) for o in outputs],
            losses=[(x.material_id, x.quantity, x.reason) for x in losses],
            params=raw,
            instruments=list(instrument_ids),
            reagents=list(reagent_lot_ids),
            notes=notes,
        ),
    )
    if idempotency_key:
        check_key(idempotency_key)
        replay = _replay(session, idempotency_key, digest)
        if replay is not None:
            return replay
    checked = check_step(
        session,
        sop_code=sop_code,
        actor=actor,
        inputs=inputs,
        outputs=outputs,
        losses=losses,
        parameters=raw,
        instrument_ids=instrument_ids,
        reagent_lot_ids=reagent_lot_ids,
        performed_at=performed_at,
        rules=rules,
    )
    plans = plan_states(checked)
    if checked.problems:
        raise StepRefused(f"{checked.where} refused", problems=checked.problems)
    return write_step(
        session,
        checked=checked,
        plans=plans,
        notes=notes,
        idempotency_key=idempotency_key,
        request_sha256=digest if idempotency_key else None,
    )


def _replay(session: Session, key: str, digest: str) -> StepResult | None:
    step = session.exec(select(Step).where(col(Step.idempotency_key) == key)).first()
    if step is None:
        return None
    same_request(key=key, operation="step", stored=step.request_sha256, digest=digest)
    inputs = session.exec(
        select(Material)
        .join(StepInput, col(StepInput.material_id) == col(Material.id))
        .where(col(StepInput.step_id) == step.id)
        .order_by(col(StepInput.id))
    ).all()
    outputs = session.exec(
        select(Material)
        .where(col(Material.created_in_step_id) == step.id)
        .order_by(col(Material.id))
    ).all()
    return StepResult(step=step, inputs=list(inputs), outputs=list(outputs), replayed=True)


def steps_for(session: Session, *, material: Material) -> list[Step]:
    """Steps that used ``material`` as an input, oldest first."""
    return list(
        session.exec(
            select(Step)
            .join(StepInput, col(StepInput.step_id) == col(Step.id))
            .where(col(StepInput.material_id) == material.id)
            .order_by(col(Step.performed_at))
        ).all()
    )
