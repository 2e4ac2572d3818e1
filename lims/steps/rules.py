"""Stage rules that need more than a parameter range: derived values and cross-checks.

Each rule is an object that names the SOP codes it applies to and runs while the step is
being checked; it adds derived parameter values (validated against the SOP like typed
ones), problems that refuse the step, and attribute updates for inputs or outputs. Limits
come from the SOP's data. ``STAGE_RULES`` lists them; the step service holds that book.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal

from sqlmodel import col, select

from lims.errors import InvalidInput
from lims.identity.codes import format_material_id, parse_coi_id
from lims.materials.kinds import MaterialKind, Use
from lims.parties.models import Patient
from lims.sops.spec import limit_decimal
from lims.steps.context import StepContext
from lims.steps.models import Step, StepInput
from lims.units import Quantity, QuantityKind, parse_quantity


@dataclass(frozen=True)
class StageRule:
    """A check of one or more stages (SOP codes) that a parameter range cannot express."""

    sop_codes: frozenset[str]
    check: Callable[[StepContext], None]

    @property
    def name(self) -> str:
        return self.check.__name__


class RuleBook:
    """The stage rules, by SOP code, in the order they were listed."""

    def __init__(self, rules: Iterable[StageRule]) -> None:
        self.rules = tuple(rules)

    def for_sop(self, code: str) -> list[StageRule]:
        return [r for r in self.rules if code in r.sop_codes]

    def apply(self, ctx: StepContext) -> None:
        for rule in self.for_sop(ctx.sop.code):
            rule.check(ctx)


def _derived(kind: QuantityKind, value: Decimal, unit: str, places: str = "0.01") -> Quantity:
    shown = value.quantize(Decimal(places), rounding=ROUND_HALF_EVEN)
    return parse_quantity({"value": str(shown), "unit": unit}, kind)


def time_since_harvest(ctx: StepContext) -> None:
    for item in ctx.inputs:
        collected = item.material.collected_at
        if collected is None:
            ctx.problems.append(
                f"{format_material_id(item.material.material_id)} has no harvest time; "
                "record when it was collected"
            )
            continue
        hours = Decimal((ctx.performed_at - collected).total_seconds()) / 3600
        if hours < 0:
            ctx.problems.append("the step is recorded before the material was collected")
            continue
        ctx.derived["time_since_harvest"] = _derived(QuantityKind.DURATION, hours, "h")


def svf_yield(ctx: StepContext) -> None:
    taken = sum((i.taken.canonical for i in ctx.inputs if i.taken), Decimal(0))
    cells = sum((o.quantity.canonical for o in ctx.outputs), Decimal(0))
    if taken > 0 and cells > 0:
        ctx.derived["yield_per_ml"] = _derived(
            QuantityKind.CELL_CONCENTRATION, cells / taken, "cell/mL", "1"
        )


def _seeding_density(ctx: StepContext) -> None:
    area = ctx.raw_quantity("culture_area")
    cells = sum((o.quantity.canonical for o in ctx.outputs), Decimal(0))
    if area is not None and area.canonical > 0 and cells > 0:
        ctx.derived["seeding_density"] = _derived(
            QuantityKind.CELL_DENSITY, cells / area.canonical, "cell/cm**2", "1"
        )


def new_culture(ctx: StepContext) -> None:
    if ctx.sop.code == "ADSC-SEED":
        _seeding_density(ctx)
    for out in ctx.outputs:
        out.attrs.update(
            passage=0, doublings_at_seeding=Decimal(0), population_doublings=Decimal(0)
        )


def _doublings(material_initial: Decimal, at_seeding: Decimal | None, count: Decimal) -> Decimal:
    """Cumulative population doublings: at seeding + log2(count now / cells seeded)."""
    start = at_seeding or Decimal(0)
    if material_initial <= 0 or count <= 0:
        return start
    # Doublings are an estimate from counts; float log2 is ample, the record keeps 4 places.
    gained = Decimal(str(math.log2(float(count / material_initial))))
    return (start + gained).quantize(Decimal("0.0001"), rounding=ROUND_HALF_EVEN)


def culture_count(ctx: StepContext) -> None:
    count = ctx.raw_quantity("cell_count")
    if count is None:
        return
    for item in ctx.inputs:
        m = item.material
        item.measured = count.canonical
        ctx.updates[m.id or 0] = {
            "population_doublings": _doublings(
                m.initial_canonical, m.doublings_at_seeding, count.canonical
            )
        }


def passage(ctx: StepContext) -> None:
    _seeding_density(ctx)
    harvested = ctx.raw_quantity("harvested_cells")
    max_passage = limit_decimal(ctx.sop, "max_passage")
    max_pd = limit_decimal(ctx.sop, "max_population_doublings")
    for item in ctx.inputs:
        m = item.material
        name = format_material_id(m.material_id)
        if harvested is not None:
            item.measured = harvested.canonical
        count = item.measured if item.measured is not None else m.remaining_canonical
        pd = _doublings(m.initial_canonical, m.doublings_at_seeding, count)
        ctx.updates[m.id or 0] = {"population_doublings": pd}
        next_passage = (m.passage or 0) + 1
        if max_passage is not None and next_passage > max_passage:
            ctx.problems.append(
                f"{name} is P{m.passage}; passaging to P{next_passage} exceeds the limit "
                f"P{max_passage} ({ctx.sop.limits['max_passage'].source})"
            )
        if max_pd is not None and pd > max_pd:
            ctx.problems.append(
                f"{name} has reached {pd} population doublings, above the limit {max_pd} "
                f"({ctx.sop.limits['max_population_doublings'].source})"
            )
        for out in ctx.outputs:
            out.attrs.update(passage=next_passage, doublings_at_seeding=pd, population_doublings=pd)


def conditioning_time(ctx: StepContext) -> None:
    for item in ctx.inputs:
        started = ctx.session.exec(
            select(Step.performed_at)
            .join(StepInput, col(StepInput.step_id) == col(Step.id))
            .where(
                col(StepInput.material_id) == item.material.id,
                col(Step.sop_code) == "HYPOXIA-START",
            )
            .order_by(col(Step.performed_at).desc())
        ).first()
        if started is None:
            ctx.problems.append(
                f"{format_material_id(item.material.material_id)} has no recorded start of "
                "hypoxic conditioning (HYPOXIA-START)"
            )
            continue
        hours = Decimal((ctx.performed_at - started).total_seconds()) / 3600
        ctx.derived["conditioning_duration"] = _derived(QuantityKind.DURATION, hours, "h")


def dose_identity(ctx: StepContext) -> None:
    """Chain of identity: an autologous dose goes only to its own patient, matched on the
    chain-of-identity id and both identifiers."""
    raw_coi = ctx.raw.get("recipient_coi")
    if not isinstance(raw_coi, str) or not raw_coi:
        return  # reported as a missing parameter
    try:
        coi = parse_coi_id(raw_coi)
    except InvalidInput as exc:
        ctx.problems.append(f"recipient_coi: {exc.message}")
        return
    recipient = ctx.session.exec(select(Patient).where(col(Patient.coi_id) == coi)).first()
    if recipient is None:
        ctx.problems.append(f"recipient_coi: no patient {coi}")
        return
    given = (
        str(ctx.raw.get("recipient_identifier_1", "")).strip(),
        str(ctx.raw.get("recipient_identifier_2", "")).strip(),
    )
    if given != (recipient.identifier_1, recipient.identifier_2):
        ctx.problems.append(
            f"the identifiers given do not match patient {coi}; check both identifiers "
            "against the order"
        )
    for item in ctx.inputs:
        m = item.material
        donor = ctx.session.get(Patient, m.patient_id)
        if m.use == Use.AUTOLOGOUS and m.patient_id != recipient.id:
            ctx.problems.append(
                f"{format_material_id(m.material_id)} is autologous material of "
                f"{donor.coi_id if donor else '?'}; it cannot be allocated to {coi}"
            )
        if m.use == Use.ALLOGENEIC and m.patient_id == recipient.id:
            ctx.problems.append("an allogeneic donor cannot receive their own donated lot")
        for out in ctx.outputs:
            if out.quantity.kind.value != m.quantity_kind:
                ctx.problems.append(
                    f"a dose from {m.kind} is counted in {m.quantity_kind}, got {out.quantity}"
                )
        if MaterialKind(m.kind) is MaterialKind.DP_CULTURE:
            low = limit_decimal(ctx.sop, "dp_dose_min_cells")
            high = limit_decimal(ctx.sop, "dp_dose_max_cells")
            for out in ctx.outputs:
                cells = out.quantity.canonical
                if out.quantity.kind is not QuantityKind.CELLS:
                    ctx.problems.append("a dermal papilla dose is counted in cells")
                elif (low is not None and cells < low) or (high is not None and cells > high):
                    ctx.problems.append(
                        f"a dermal papilla dose of {out.quantity} is outside "
                        f"{low:f}-{high:f} cells ({ctx.sop.limits['dp_dose_min_cells'].source})"
                    )
    ctx.recipient_id = recipient.id


STAGE_RULES = RuleBook(
    [
        StageRule(frozenset({"LIPO-INTAKE", "BIOPSY-INTAKE"}), time_since_harvest),
        StageRule(frozenset({"SVF-SEP"}), svf_yield),
        StageRule(frozenset({"ADSC-SEED", "DP-MICRODISSECT"}), new_culture),
        StageRule(frozenset({"CULTURE-COUNT"}), culture_count),
        StageRule(frozenset({"ADSC-PASSAGE", "DP-PASSAGE"}), passage),
        StageRule(frozenset({"CM-HARVEST"}), conditioning_time),
        StageRule(frozenset({"DOSE-ALLOCATE"}), dose_identity),
    ]
)
