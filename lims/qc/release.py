"""QA release: a signature with meaning 'released' on the batch record, then the move to
RELEASED under the lab's policy (lims.qc.rules says what it needs)."""

from __future__ import annotations

from sqlmodel import Session

from lims.errors import RuleViolation
from lims.lifecycle import transition
from lims.materials.models import Material
from lims.materials.workflow import RELEASED
from lims.parties.models import Role, User
from lims.signatures.models import Meaning
from lims.signatures.service import sign


def release(
    session: Session, *, material: Material, actor: User, password: str, comment: str | None = None
) -> Material:
    """QA signs the batch record with meaning 'released' and the material is released."""
    if Role(actor.role) is not Role.QA:
        raise RuleViolation("only QA releases")
    sign(
        session,
        user=actor,
        password=password,
        meaning=Meaning.RELEASED,
        record_type="batch_record",
        record_id=material.material_id,
        comment=comment,
    )
    return transition(session, material=material, to_state=RELEASED, actor=actor)
