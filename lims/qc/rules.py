"""QC's rule on the materials state machine: what a release needs on file."""

from __future__ import annotations

from lims.errors import RuleViolation
from lims.materials.kinds import Use
from lims.materials.models import Material
from lims.materials.policy import TransitionContext, TransitionRule
from lims.materials.workflow import RELEASED
from lims.qc.deviations import deviations_of
from lims.qc.eligibility import donor_is_eligible
from lims.qc.evidence import current_results, missing_tests, specification_of
from lims.signatures.models import Meaning
from lims.signatures.service import signatures_for


class ReleaseEvidence(TransitionRule):
    """Results, deviations, donor eligibility and the releaser's signature (lims.qc)."""

    TO_STATES = frozenset({RELEASED})

    def problems(self, material: Material, ctx: TransitionContext) -> list[str]:
        return release_problems(material, ctx)


def release_problems(material: Material, ctx: TransitionContext) -> list[str]:
    """Everything that stands between ``material`` and release (empty: it may go)."""
    session = ctx.session
    problems: list[str] = []
    try:
        spec = specification_of(session, material=material)
    except RuleViolation as exc:
        return [str(exc)]
    results = {r.test_code: r for r in current_results(session, material=material)}
    missing = [t.name for t in missing_tests(spec, results)]
    if missing:
        problems.append(f"results missing for {', '.join(missing)} ({spec.code} v{spec.version})")
    failing = [
        f"{spec.test(c).name} {r.value_text}{' ' + r.unit if r.unit else ''}"  # type: ignore[union-attr]
        for c, r in results.items()
        if r.passed is False
    ]
    if failing:
        problems.append(f"out of specification: {', '.join(failing)}")
    open_ones = [d.number for d in deviations_of(session, material=material) if d.closed_at is None]
    if open_ones:
        problems.append(f"open deviations {', '.join(open_ones)} must be closed first")
    if material.use == Use.ALLOGENEIC and not donor_is_eligible(
        session, patient_id=material.patient_id
    ):
        problems.append(
            "an allogeneic product needs a donor-eligibility determination "
            "(eligible) before release"
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
            f"a QA signature with meaning 'released' by {ctx.actor.printed_name} "
            "on the current batch record is required"
        )
    return problems
