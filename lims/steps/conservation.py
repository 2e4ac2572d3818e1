"""Re-add the books: every material's quantity history and every step's balance.

For each material, starting from its initial amount, each step that used it must pick up
where the previous one left off (``remaining_before``), take what it says it took, and the
last ``remaining_after`` must be what the material holds now; only cultures may be
re-counted (growth). For each step, per dimension, what was taken must equal what was
produced plus what was lost, wherever the step produced or processed in that dimension.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal

from sqlmodel import Session, col, select

from lims.doses.models import DoseDisposition
from lims.identity.codes import format_material_id
from lims.materials.kinds import GROWING_KINDS, MaterialKind
from lims.materials.models import Material
from lims.sops.models import SopVersion
from lims.sops.spec import InputMode, SopDefinition
from lims.steps.models import Step, StepInput, StepLoss
from lims.units import KINDS, QuantityKind, parse_quantity


@dataclass(frozen=True)
class Imbalance:
    kind: QuantityKind
    taken: Decimal
    produced: Decimal
    lost: Decimal
    # A dimension the step transforms (mL of fat into cells) need not balance, but its
    # losses cannot exceed what was taken.
    over_loss: bool = False

    @property
    def accounted(self) -> Decimal:
        return self.produced + self.lost


def imbalances(
    *,
    taken: Mapping[QuantityKind, Decimal],
    produced: Mapping[QuantityKind, Decimal],
    lost: Mapping[QuantityKind, Decimal],
    in_place: set[QuantityKind],
) -> list[Imbalance]:
    """The conservation rule, per dimension: taken = produced + lost wherever the step
    produced or processed in place in that dimension (or only lost in it)."""
    found = []
    for dim in sorted(set(taken) | set(lost), key=str):
        t, p, x = (
            taken.get(dim, Decimal(0)),
            produced.get(dim, Decimal(0)),
            lost.get(dim, Decimal(0)),
        )
        if dim in produced or dim in in_place or dim not in taken:
            if t != p + x:
                found.append(Imbalance(dim, t, p, x))
        elif x > t:
            found.append(Imbalance(dim, t, p, x, over_loss=True))
    return found


@dataclass
class ConservationReport:
    materials_checked: int = 0
    steps_checked: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def verify_conservation(session: Session) -> ConservationReport:
    """Check every material's quantity ledger and every step's balance."""
    report = ConservationReport()
    materials = {m.id: m for m in session.exec(select(Material))}
    ledger: dict[int, list[StepInput | DoseDisposition]] = defaultdict(list)
    for booked in session.exec(select(StepInput).order_by(col(StepInput.id))):
        ledger[booked.material_id].append(booked)
    _add_returns(session, ledger)
    for mid, material in materials.items():
        report.materials_checked += 1
        name = format_material_id(material.material_id)
        running = material.initial_canonical
        for row in ledger.get(mid or 0, []):
            if isinstance(row, DoseDisposition):
                # QA returned a cancelled dose's vials: out of the dose, back into the lot.
                running += row.amount_canonical if row.lot_id == mid else -row.amount_canonical
                continue
            if row.remaining_before != running:
                report.problems.append(
                    f"{name}: step {row.step_id} starts from {row.remaining_before}, "
                    f"the ledger says {running}"
                )
            base = row.remaining_before
            if row.measured_canonical is not None:
                if MaterialKind(material.kind) not in GROWING_KINDS:
                    report.problems.append(
                        f"{name}: re-counted, but a {material.kind} does not grow"
                    )
                base = row.measured_canonical
            if base - row.taken_canonical != row.remaining_after:
                report.problems.append(
                    f"{name}: step {row.step_id} took {row.taken_canonical} from {base} "
                    f"but left {row.remaining_after}"
                )
            if row.remaining_after < 0:
                report.problems.append(f"{name}: negative after step {row.step_id}")
            running = row.remaining_after
        if running != material.remaining_canonical:
            report.problems.append(
                f"{name}: holds {material.remaining_canonical}, its ledger adds up to {running}"
            )
    _check_steps(session, materials, ledger, report)
    return report


def _add_returns(session: Session, ledger: dict[int, list[StepInput | DoseDisposition]]) -> None:
    """Put each return to stock into its lot's and its dose's books, in time order."""
    returns = session.exec(
        select(DoseDisposition).where(col(DoseDisposition.lot_id).is_not(None))
    ).all()
    if not returns:
        return
    times = {
        step_id: at for step_id, at in session.execute(select(col(Step.id), col(Step.recorded_at)))
    }
    for row in returns:
        for mid in (row.dose_id, row.lot_id or 0):
            ledger[mid].append(row)
            ledger[mid].sort(
                key=lambda r: r.decided_at if isinstance(r, DoseDisposition) else times[r.step_id]
            )


def _check_steps(
    session: Session,
    materials: dict[int | None, Material],
    ledger: dict[int, list[StepInput | DoseDisposition]],
    report: ConservationReport,
) -> None:
    inputs_by_step: dict[int, list[StepInput]] = defaultdict(list)
    for rows in ledger.values():
        for row in rows:
            if isinstance(row, StepInput):
                inputs_by_step[row.step_id].append(row)
    outputs_by_step: dict[int, list[Material]] = defaultdict(list)
    for m in materials.values():
        if m.created_in_step_id is not None:
            outputs_by_step[m.created_in_step_id].append(m)
    losses_by_step: dict[int, list[StepLoss]] = defaultdict(list)
    for loss in session.exec(select(StepLoss)):
        losses_by_step[loss.step_id].append(loss)
    sops = {
        row.id: SopDefinition.model_validate(row.definition)
        for row in session.exec(select(SopVersion))
    }
    for step in session.exec(select(Step).order_by(col(Step.id))):
        report.steps_checked += 1
        sop = sops[step.sop_version_id]
        taken: dict[QuantityKind, Decimal] = defaultdict(Decimal)
        produced: dict[QuantityKind, Decimal] = defaultdict(Decimal)
        lost: dict[QuantityKind, Decimal] = defaultdict(Decimal)
        in_place: set[QuantityKind] = set()
        for row in inputs_by_step.get(step.id or 0, []):
            taken[QuantityKind(row.quantity_kind)] += row.taken_canonical
            if row.mode == InputMode.IN_PLACE:
                in_place.add(QuantityKind(row.quantity_kind))
        for out in outputs_by_step.get(step.id or 0, []):
            produced[QuantityKind(out.quantity_kind)] += out.initial_canonical
            param = sop.conversions.get(KINDS[QuantityKind(out.quantity_kind)].canonical_unit)
            if param and param in step.parameters:
                spec = sop.parameter(param)
                assert spec.quantity_kind is not None
                entered = step.parameters[param]
                per_unit = parse_quantity(
                    {"value": entered["value"], "unit": entered["unit"]}, spec.quantity_kind
                )
                produced[per_unit.kind] += out.initial_canonical * per_unit.canonical
        for loss in losses_by_step.get(step.id or 0, []):
            lost[QuantityKind(loss.quantity_kind)] += loss.canonical
        for gap in imbalances(taken=taken, produced=produced, lost=lost, in_place=in_place):
            report.problems.append(
                f"step {step.id} ({step.sop_code}): {gap.taken} {gap.kind} taken, "
                f"{gap.produced} produced + {gap.lost} lost"
            )
