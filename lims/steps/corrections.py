"""Correct a recorded step's parameter without overwriting it.

The correction is a new row and a custody event that references the event that recorded
the step, with a reason. The current view applies corrections in order; the history keeps
every value. A correction that would change the step's acceptance outcome is refused: that
is a deviation to investigate, not a typo to fix.
"""

from __future__ import annotations

from typing import Any

from sqlmodel import Session, col, select

from lims.custody import ledger
from lims.custody.models import CustodyEvent
from lims.errors import InvalidInput, RuleViolation
from lims.parties.models import LAB_STAFF, Role, User
from lims.sops.models import SopVersion
from lims.sops.service import definition_of
from lims.sops.validation import check_parameters
from lims.steps.models import Step, StepCorrection

CORRECTING_ROLES = LAB_STAFF


def corrections_of(session: Session, *, step: Step) -> list[StepCorrection]:
    return list(
        session.exec(
            select(StepCorrection)
            .where(col(StepCorrection.step_id) == step.id)
            .order_by(col(StepCorrection.id))
        ).all()
    )


def current_parameters(session: Session, *, step: Step) -> dict[str, Any]:
    """The step's parameters with every correction applied, latest last."""
    values = dict(step.parameters)
    for correction in corrections_of(session, step=step):
        values[correction.parameter] = correction.new
    return values


def _as_entered(value: Any) -> Any:
    if isinstance(value, dict) and "value" in value and "unit" in value:
        return {"value": value["value"], "unit": value["unit"]}
    return value


def correct_step_parameter(
    session: Session, *, step: Step, parameter: str, value: Any, reason: str, actor: User
) -> StepCorrection:
    """Record a corrected value for one entered parameter of ``step``."""
    reason = ledger.require_reason(reason, "correcting a recorded step")
    if Role(actor.role) not in CORRECTING_ROLES:
        raise RuleViolation(f"a {actor.role} account cannot correct lab records")
    sop_row = session.get(SopVersion, step.sop_version_id)
    assert sop_row is not None
    sop = definition_of(sop_row)
    try:
        spec = sop.parameter(parameter)
    except KeyError:
        raise InvalidInput(
            f"{parameter} is not a parameter of SOP {sop.code} v{sop.version}", field="parameter"
        ) from None
    if spec.derived:
        raise InvalidInput(
            f"{parameter} is computed by the LIMS; correct what it is computed from",
            field="parameter",
        )
    current = current_parameters(session, step=step)
    entered = {
        k: _as_entered(v)
        for k, v in current.items()
        if not any(p.name == k and p.derived for p in sop.parameters)
    }
    before = check_parameters(sop, entered, {})
    after = check_parameters(sop, {**entered, parameter: value}, {})
    if after.problems:
        raise InvalidInput("; ".join(after.problems), field=parameter)
    if bool(before.failed_acceptance) != bool(after.failed_acceptance):
        raise RuleViolation(
            f"correcting {parameter} would change the step's acceptance outcome; open a "
            "deviation instead"
        )
    new_value = after.record()[parameter]
    recorded = session.exec(
        select(CustodyEvent.seq).where(
            col(CustodyEvent.action) == "step.recorded", col(CustodyEvent.entity_id) == str(step.id)
        )
    ).first()
    event = ledger.append(
        session,
        actor=actor,
        action="step.corrected",
        entity="step",
        entity_id=step.id or 0,
        old={parameter: current.get(parameter)},
        new={parameter: new_value},
        reason=reason,
        corrects_seq=recorded,
    )
    assert step.id is not None and actor.id is not None
    row = StepCorrection(
        step_id=step.id,
        parameter=parameter,
        old={"value": current.get(parameter)},
        new=new_value,
        reason=reason,
        corrected_by_id=actor.id,
        custody_seq=event.seq,
    )
    session.add(row)
    session.flush()
    return row
