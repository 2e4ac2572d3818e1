"""Plan each input's next states before anything is written, so no transition can fail
mid-write: the shortest legal route to the SOP's target state, and who may take it."""

from __future__ import annotations

from lims.errors import RuleViolation
from lims.materials.models import Material
from lims.materials.workflow import ON_HOLD, machine_for
from lims.parties.models import Role
from lims.sops.spec import InputMode
from lims.steps.check import CheckedStep


def route_to(material: Material, target: str) -> list[str]:
    """Shortest sequence of legal transitions from the material's state to ``target``."""
    machine = machine_for(material.kind)
    start = material.state
    if start == target:
        return []
    frontier: list[list[str]] = [[start]]
    seen = {start}
    while frontier:
        route = frontier.pop(0)
        for nxt in sorted(machine.targets(route[-1])):
            if nxt in seen or nxt == ON_HOLD:
                continue
            if nxt == target:
                return [*route[1:], nxt]
            seen.add(nxt)
            frontier.append([*route, nxt])
    raise RuleViolation(f"{material.kind} cannot reach {target} from {start}")


def plan_states(checked: CheckedStep) -> dict[int, list[str]]:
    """Each input's route of states by row id; what cannot be done goes to the problems."""
    ctx, problems = checked.ctx, checked.problems
    rejected, failures = checked.rejected, checked.parameters.failed_acceptance
    plans: dict[int, list[str]] = {}
    for item in ctx.inputs:
        material, spec = item.material, item.spec
        target: str | None
        if spec.mode is InputMode.INSPECT and rejected and spec.state_if_rejected:
            target = spec.state_if_rejected
        elif spec.mode is InputMode.CONSUME:
            base = item.measured if item.measured is not None else material.remaining_canonical
            left = base - (item.taken.canonical if item.taken is not None else 0)
            target = spec.state_after_depleted if left == 0 else spec.state_after
            if left == 0 and target is None:
                target = spec.state_after
        else:
            target = spec.state_after
        route: list[str] = []
        if target and target != material.state:
            try:
                route = route_to(material, target)
            except RuleViolation as exc:
                problems.append(str(exc))
            machine = machine_for(material.kind)
            for hop in route:
                roles = machine.roles_for(hop)
                if Role(ctx.actor.role) not in roles:
                    problems.append(f"{ctx.actor.role} may not move {material.kind} to {hop}")
        if rejected and spec.mode is InputMode.INSPECT and not spec.state_if_rejected:
            problems.extend(failures)
        plans[material.id or 0] = route
    return plans
