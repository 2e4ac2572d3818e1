"""Is a lot ready for release? The release rule's own blockers (lims.qc.rules), less the
signature the release applies, plus the optional tests without a result (not blocking,
but QA should see them before signing)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlmodel import Session

from lims.db import utcnow
from lims.materials.models import Material
from lims.materials.policy import TransitionContext
from lims.materials.workflow import RELEASED, machine_for
from lims.parties.models import User
from lims.qc.evidence import current_results, specification_of
from lims.qc.rules import SIGNED_AT_RELEASE, Blocker, release_blockers
from lims.qc.specs import QcTest


@dataclass(frozen=True)
class Readiness:
    releasable_now: bool  # RELEASED is a next state of the material from where it is
    blockers: list[Blocker]  # what must be put right first (the signature excepted)
    optional_missing: list[QcTest]

    @property
    def ready(self) -> bool:
        return self.releasable_now and not self.blockers


def readiness(session: Session, *, material: Material, actor: User) -> Readiness:
    """What stands between ``material`` and release by ``actor``, from the release rule."""
    machine = machine_for(material.kind)
    releasable = RELEASED in machine.targets(material.state, material.held_from_state)
    ctx = TransitionContext(session=session, actor=actor, reason=None, now=utcnow())
    blockers = [b for b in release_blockers(material, ctx) if b.code != SIGNED_AT_RELEASE]
    optional: list[QcTest] = []
    if not any(b.code == "specification" for b in blockers):
        spec = specification_of(session, material=material)
        have = {r.test_code for r in current_results(session, material=material)}
        optional = [t for t in spec.tests if not t.required and t.code not in have]
    return Readiness(releasable, blockers, optional)
