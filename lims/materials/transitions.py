"""Apply one state transition: the kind's machine, its roles, the reason, a policy's rules.

The policy is a parameter: the lab's policy, with QC's release rules, is composed above
both features (``lims.lifecycle.transition`` is what callers use).
"""

from __future__ import annotations

from sqlmodel import Session

from lims.custody import ledger
from lims.db import utcnow
from lims.errors import IllegalTransition, InvalidInput, RuleViolation
from lims.identity.codes import format_material_id
from lims.materials.models import Material
from lims.materials.policy import TransitionContext, TransitionPolicy
from lims.materials.workflow import ON_HOLD, REASON_REQUIRED, machine_for
from lims.parties.models import Role, User


def _name(material: Material) -> str:
    return f"{material.kind} {format_material_id(material.material_id)}"


def apply_transition(
    session: Session,
    *,
    material: Material,
    to_state: str,
    actor: User,
    policy: TransitionPolicy,
    reason: str | None = None,
) -> Material:
    """Move ``material`` to ``to_state`` if the kind's machine, roles and ``policy`` allow."""
    machine = machine_for(material.kind)
    current = material.state
    allowed = machine.targets(current, material.held_from_state)
    if to_state not in allowed:
        options = ", ".join(sorted(allowed)) or "nothing (final state)"
        hint = machine.hints.get(to_state)
        quarantine = " (QUARANTINE)" if current in machine.quarantine else ""
        raise IllegalTransition(
            f"{_name(material)} is {current}{quarantine}; it cannot go to {to_state}"
            + (f": {hint}" if hint else "")
            + f". From {current} it can go to: {options}",
            field="state",
        )
    roles = machine.roles_for(to_state)
    if Role(actor.role) not in roles:
        raise RuleViolation(
            f"{actor.role} {actor.username} may not move {_name(material)} to "
            f"{to_state}; that needs {' or '.join(sorted(r.value for r in roles))}"
        )
    if to_state in REASON_REQUIRED and not (reason and reason.strip()):
        raise InvalidInput(f"moving to {to_state} needs a reason", field="reason")
    ctx = TransitionContext(session=session, actor=actor, reason=reason, now=utcnow())
    problems = policy.problems(material, to_state, ctx)
    if problems:
        raise IllegalTransition(
            f"{_name(material)} cannot go to {to_state}: " + "; ".join(problems)
        )
    ledger.append(
        session,
        actor=actor,
        action="material.state_changed",
        entity="material",
        entity_id=material.material_id,
        materials=[material.material_id],
        old={"state": current},
        new={"state": to_state},
        reason=reason,
    )
    if to_state == ON_HOLD:
        material.held_from_state = current
    elif current == ON_HOLD:
        material.held_from_state = None
    material.state = to_state
    material.updated_at = ctx.now
    if to_state in machine.terminal:
        material.location_id = None
    session.add(material)
    session.flush()
    return material
