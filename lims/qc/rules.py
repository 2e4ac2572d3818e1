"""QC's rule on the materials state machine: what a release needs on file."""

from __future__ import annotations

from dataclasses import dataclass

from lims.errors import RuleViolation
from lims.materials.kinds import Use
from lims.materials.models import Material
from lims.materials.policy import TransitionContext, TransitionRule
from lims.materials.workflow import DEPLETED, RELEASED
from lims.qc.deviations import deviations_of
from lims.qc.eligibility import donor_is_eligible
from lims.qc.evidence import current_results, missing_tests, specification_of
from lims.signatures.models import Meaning
from lims.signatures.service import signatures_for


class ReleaseEvidence(TransitionRule):
    """Results, deviations, donor eligibility and the releaser's signature (lims.qc)."""

    TO_STATES = frozenset({RELEASED})
    # A vial returned to a depleted lot restocks a lot QA released before (its evidence
    # and signature are unchanged); that is QA's disposition, signed on its own.
    NOT_FROM = frozenset({DEPLETED})

    def problems(self, material: Material, ctx: TransitionContext) -> list[str]:
        return release_problems(material, ctx)


@dataclass(frozen=True)
class Blocker:
    """One thing standing between a material and release: a stable code and its words."""

    code: str  # specification | missing | failing | deviation | eligibility | signature
    message: str


# What the release itself supplies: its signature is applied as the material is released.
SIGNED_AT_RELEASE = "signature"


def release_problems(material: Material, ctx: TransitionContext) -> list[str]:
    """Everything that stands between ``material`` and release (empty: it may go)."""
    return [b.message for b in release_blockers(material, ctx)]


def release_blockers(material: Material, ctx: TransitionContext) -> list[Blocker]:
    """``release_problems``, each with its code (a QA page says 'ready' when the only one
    left is the signature the release applies)."""
    session = ctx.session
    problems: list[Blocker] = []
    try:
        spec = specification_of(session, material=material)
    except RuleViolation as exc:
        return [Blocker("specification", str(exc))]
    results = {r.test_code: r for r in current_results(session, material=material)}
    missing = [t.name for t in missing_tests(spec, results)]
    if missing:
        problems.append(
            Blocker(
                "missing",
                f"results missing for {', '.join(missing)} ({spec.code} v{spec.version})",
            )
        )
    failing = [
        f"{spec.test(c).name} {r.value_text}{' ' + r.unit if r.unit else ''}"  # type: ignore[union-attr]
        for c, r in results.items()
        if r.passed is False
    ]
    if failing:
        problems.append(Blocker("failing", f"out of specification: {', '.join(failing)}"))
    open_ones = [d.number for d in deviations_of(session, material=material) if d.closed_at is None]
    if open_ones:
        problems.append(
            Blocker("deviation", f"open deviations {', '.join(open_ones)} must be closed first")
        )
    if material.use == Use.ALLOGENEIC and not donor_is_eligible(
        session, patient_id=material.patient_id
    ):
        problems.append(
            Blocker(
                "eligibility",
                "an allogeneic product needs a donor-eligibility determination "
                "(eligible) before release",
            )
        )
    signed = [
        c
        for c in signatures_for(
            session,
            record_type="batch_record",
            record_id=material.material_id,
            meaning=Meaning.RELEASED,
        )
        if c.valid and c.signature.user_id == ctx.actor.id
    ]
    if not signed:
        problems.append(
            Blocker(
                SIGNED_AT_RELEASE,
                f"a QA signature with meaning 'released' by {ctx.actor.printed_name} "
                "on the current batch record is required",
            )
        )
    return problems
