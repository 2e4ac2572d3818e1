"""Material state changes under the lab's whole policy.

The state machines' own rules (lims.materials.policy) and QC's release rule
(lims.qc.rules) are composed here, above both features, so neither imports the other.
Every state change in the lab goes through ``transition``.
"""

from __future__ import annotations

from sqlmodel import Session

from lims.custody.ledger import last_seq
from lims.materials.models import Material
from lims.materials.policy import MATERIAL_RULES, TransitionPolicy
from lims.materials.transitions import apply_transition
from lims.notifications import events
from lims.parties.models import User
from lims.qc.rules import ReleaseEvidence

LAB_POLICY = TransitionPolicy([*MATERIAL_RULES, ReleaseEvidence()])


def transition(
    session: Session,
    *,
    material: Material,
    to_state: str,
    actor: User,
    reason: str | None = None,
) -> Material:
    """Move ``material`` to ``to_state`` if its machine, the roles and the lab's rules allow."""
    old = material.state
    apply_transition(
        session, material=material, to_state=to_state, actor=actor, reason=reason, policy=LAB_POLICY
    )
    # Written here, above the materials feature, so every state change in the lab tells the
    # clinic concerned in the same transaction (lims.notifications.events).
    events.material_state_changed(
        session, material=material, old=old, seq=last_seq(session), reason=reason
    )
    return material
