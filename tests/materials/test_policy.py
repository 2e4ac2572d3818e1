"""Transition rules and stage rules are objects held by an explicit policy or book."""

from typing import Any

import pytest
from sqlalchemy import Engine

from lims.db import write_session
from lims.errors import IllegalTransition, StepRefused
from lims.lifecycle import LAB_POLICY
from lims.materials.models import Material
from lims.materials.policy import (
    MATERIAL_RULES,
    ExpiryDue,
    FourEyesRelease,
    TransitionContext,
    TransitionPolicy,
    TransitionRule,
)
from lims.materials.service import get_material
from lims.materials.transitions import apply_transition
from lims.materials.workflow import RELEASED
from lims.qc.rules import ReleaseEvidence
from lims.steps.context import StepContext
from lims.steps.rules import STAGE_RULES, RuleBook, StageRule
from lims.steps.service import InputBooking, OutputRequest
from tests.builders import Lab
from tests.conftest import World


def test_the_lab_policy_lists_its_rules() -> None:
    kinds = [type(r) for r in LAB_POLICY.rules]
    assert kinds[: len(MATERIAL_RULES)] == [type(r) for r in MATERIAL_RULES]
    assert ReleaseEvidence in kinds and FourEyesRelease in kinds
    release = [type(r) for r in LAB_POLICY.rules if r.applies("QC_TESTING", RELEASED)]
    assert set(release) == {FourEyesRelease, ReleaseEvidence} | {
        type(r) for r in MATERIAL_RULES if RELEASED in r.TO_STATES
    }
    assert [type(r) for r in LAB_POLICY.rules if r.applies("RELEASED", "EXPIRED")] == [ExpiryDue]


class _NoHoldOnFridays(TransitionRule):
    FROM_STATES = frozenset({"RELEASED"})
    TO_STATES = frozenset({"ON_HOLD"})

    def problems(self, material: Material, ctx: TransitionContext) -> list[str]:
        return ["not on Fridays"]


def test_a_policy_refuses_with_its_rules_reasons(engine: Engine, world: World) -> None:
    lab = Lab.start(engine, world)
    lot = lab.lot()
    policy = TransitionPolicy([*LAB_POLICY.rules, _NoHoldOnFridays()])
    with write_session(engine) as s, pytest.raises(IllegalTransition, match="not on Fridays"):
        apply_transition(
            s,
            material=get_material(s, lot),
            to_state="ON_HOLD",
            actor=lab.user(s, world.tech_id),
            reason="freezer alarm",
            policy=policy,
        )
    assert lab.get(lot).state == "RELEASED"
    lab.move(lot, "ON_HOLD", reason="freezer alarm")  # the lab's policy has no such rule
    assert lab.get(lot).state == "ON_HOLD"


def test_stage_rules_are_a_book_the_step_service_is_given(engine: Engine, world: World) -> None:
    assert [r.name for r in STAGE_RULES.for_sop("CULTURE-COUNT")] == ["culture_count"]
    assert [r.name for r in STAGE_RULES.for_sop("DOSE-ALLOCATE")] == ["dose_identity"]
    assert STAGE_RULES.for_sop("NANOFAT-PREP") == []

    def no_nanofat_today(ctx: StepContext) -> None:
        ctx.problems.append("no nanofat today")

    book = RuleBook([*STAGE_RULES.rules, StageRule(frozenset({"NANOFAT-PREP"}), no_nanofat_today)])
    lab = Lab.start(engine, world)
    lipo = lab.accepted_lipoaspirate("50 mL")
    kw: dict[str, Any] = {
        "inputs": [InputBooking(lipo, "10 mL")],
        "outputs": [OutputRequest("10 mL")],
        "parameters": {"emulsification_passes": 30, "filter_mesh": "500 um", "needle_gauge": 27},
    }
    with pytest.raises(StepRefused, match="no nanofat today"):
        lab.step("NANOFAT-PREP", 5, rules=book, **kw)
    assert lab.step("NANOFAT-PREP", 5, **kw).step.outcome in ("completed", "accepted")
