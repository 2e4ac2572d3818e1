"""Transition rules as objects, and the policy that holds them.

A rule declares the states it guards (``FROM_STATES``, ``TO_STATES``; empty means any) and
returns the reasons a transition is refused. A policy is an explicit list of rules (the
Prefect server's orchestration policies are the model): whoever composes the lab's policy
lists the rules, so the state machine never imports the features whose evidence a rule
reads (QC, signatures). The rules here need only the materials and their steps.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

from sqlalchemy import CompoundSelect, select
from sqlmodel import col

from lims.materials.workflow import DEPLETED, EXPIRED, RELEASED

if TYPE_CHECKING:
    from datetime import datetime

    from sqlmodel import Session

    from lims.materials.models import Material
    from lims.parties.models import User

# Steps that work on a material where it is (intake, lyophilisation, a count), as opposed
# to steps that take from it to make something else (a dose, a passage).
PROCESSING_MODES = ("inspect", "in_place", "measure")


@dataclass
class TransitionContext:
    session: Session
    actor: User
    reason: str | None
    now: datetime


class TransitionRule(ABC):
    """A guard on some transitions; ``problems`` is empty when the transition may go."""

    FROM_STATES: ClassVar[frozenset[str]] = frozenset()
    TO_STATES: ClassVar[frozenset[str]] = frozenset()
    # States this rule does not guard even when FROM_STATES is empty.
    NOT_FROM: ClassVar[frozenset[str]] = frozenset()

    def applies(self, from_state: str, to_state: str) -> bool:
        return (
            (not self.FROM_STATES or from_state in self.FROM_STATES)
            and from_state not in self.NOT_FROM
            and (not self.TO_STATES or to_state in self.TO_STATES)
        )

    @abstractmethod
    def problems(self, material: Material, ctx: TransitionContext) -> list[str]:
        """Why the transition may not go (empty: it may)."""


class TransitionPolicy:
    """An ordered list of rules; a transition is refused with every rule's reasons."""

    def __init__(self, rules: Iterable[TransitionRule]) -> None:
        self.rules: tuple[TransitionRule, ...] = tuple(rules)

    def problems(self, material: Material, to_state: str, ctx: TransitionContext) -> list[str]:
        found: list[str] = []
        for rule in self.rules:
            if rule.applies(material.state, to_state):
                found.extend(rule.problems(material, ctx))
        return found


def processing_step_ids(material: Material) -> CompoundSelect[int | None]:
    """A query for the ids of the steps that made ``material`` or processed it in place:
    its batch record (what a release signs and whose performers may not release it)."""
    from lims.steps.models import Step, StepInput

    made = select(col(Step.id)).where(col(Step.id) == material.created_in_step_id)
    processed = select(col(StepInput.step_id)).where(
        col(StepInput.material_id) == material.id,
        col(StepInput.mode).in_(PROCESSING_MODES),
    )
    return made.union(processed)


class FourEyesRelease(TransitionRule):
    """Nobody releases a material whose batch record they helped make."""

    TO_STATES = frozenset({RELEASED})
    # A vial returned to a depleted lot restocks a lot released before, not a new release.
    NOT_FROM = frozenset({DEPLETED})

    def problems(self, material: Material, ctx: TransitionContext) -> list[str]:
        from lims.steps.models import Step

        ids = processing_step_ids(material).subquery()
        query = select(col(Step.performed_by_id)).where(col(Step.id).in_(select(ids.c[0])))
        if ctx.actor.id in set(ctx.session.execute(query).scalars()):
            return [
                f"{ctx.actor.printed_name} recorded a processing step of this material; "
                "release needs a second person (four-eyes)"
            ]
        return []


class NotExpiredAtRelease(TransitionRule):
    TO_STATES = frozenset({RELEASED})

    def problems(self, material: Material, ctx: TransitionContext) -> list[str]:
        if material.expires_at is not None and material.expires_at <= ctx.now:
            return [f"it expired at {material.expires_at:%Y-%m-%d %H:%M} UTC"]
        return []


class ExpiryDue(TransitionRule):
    """A material expires only once its expiry time has passed."""

    TO_STATES = frozenset({EXPIRED})

    def problems(self, material: Material, ctx: TransitionContext) -> list[str]:
        if material.expires_at is None or material.expires_at > ctx.now:
            return [f"it does not expire until {material.expires_at or 'never'}"]
        return []


# The state machines' own rules; the lab's policy (lims.lifecycle) adds QC's release rules.
MATERIAL_RULES: tuple[TransitionRule, ...] = (FourEyesRelease(), NotExpiredAtRelease(), ExpiryDue())
