"""Check a step request whole, before anything is written.

The actor, the time, the SOP in force, each input's kind, state and amount, the losses,
the outputs, instruments and reagent lots, the stage rules, what remains, the parameters
and conservation: every problem is collected so a refusal names them all.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlmodel import Session

from lims.db import utcnow
from lims.errors import InvalidInput, LimsError, RuleViolation, StepRefused
from lims.identity.codes import format_material_id, parse_material_id
from lims.materials.kinds import KIND_DIMENSIONS, MaterialKind
from lims.materials.models import Material
from lims.materials.service import lock_materials
from lims.parties.models import LAB_STAFF, Instrument, ReagentLot, Role, User
from lims.sops.models import SopVersion
from lims.sops.service import definition_of, sop_in_force
from lims.sops.spec import InputMode, SopDefinition
from lims.sops.validation import ParameterCheck, check_parameters
from lims.steps.conservation import imbalances
from lims.steps.context import (
    CheckedInput,
    CheckedLoss,
    CheckedOutput,
    InputBooking,
    LossBooking,
    OutputRequest,
    StepContext,
)
from lims.steps.rules import RuleBook
from lims.units import KINDS, Quantity, QuantityKind, parse_quantity

RECORDING_ROLES = LAB_STAFF
# A step may be entered after the fact (a bench without a terminal), but not weeks later
# and never in the future: records are contemporaneous (ALCOA+).
MAX_LATE_ENTRY = timedelta(days=7)


@dataclass
class CheckedStep:
    """A step request with everything the plan and the write need, and its problems."""

    sop_row: SopVersion
    sop: SopDefinition
    ctx: StepContext
    materials: list[Material]
    losses: list[CheckedLoss]
    instruments: list[Instrument]
    reagents: list[ReagentLot]
    parameters: ParameterCheck
    recorded_at: datetime
    problems: list[str]

    @property
    def where(self) -> str:
        return f"SOP {self.sop.code} v{self.sop.version}"

    @property
    def rejected(self) -> bool:
        return bool(self.parameters.failed_acceptance)


def _n(value: Decimal) -> str:
    return format(value.normalize(), "f")


def _parse(raw: Any, kind: QuantityKind, field: str, problems: list[str]) -> Quantity | None:
    try:
        return parse_quantity(raw, kind, field=field)
    except InvalidInput as exc:
        problems.append(str(exc))
        return None


def _check_actor_and_time(actor: User, performed_at: datetime | None) -> tuple[datetime, datetime]:
    if Role(actor.role) not in RECORDING_ROLES or not actor.active:
        raise RuleViolation(f"{actor.role} {actor.username} may not record process steps")
    now = utcnow()
    at = performed_at or now
    if at.tzinfo is None:
        raise InvalidInput("performed_at needs a time zone", field="performed_at")
    if at > now + timedelta(minutes=1):
        raise InvalidInput(
            "a step cannot be recorded as performed in the future", field="performed_at"
        )
    if at < now - MAX_LATE_ENTRY:
        raise InvalidInput(
            "a step more than 7 days old needs a deviation, not a late entry", field="performed_at"
        )
    return now, at


def _check_inputs(
    ctx: StepContext,
    bookings: Sequence[InputBooking],
    materials: list[Material],
    where: str,
    problems: list[str],
) -> None:
    sop = ctx.sop
    counts: dict[int, int] = defaultdict(int)
    for booking, material in zip(bookings, materials, strict=True):
        name = f"{material.kind} {format_material_id(material.material_id)}"
        spec_index = next(
            (n for n, s in enumerate(sop.inputs) if MaterialKind(material.kind) in s.kinds), None
        )
        if spec_index is None:
            kinds = ", ".join(k.value for s in sop.inputs for k in s.kinds)
            problems.append(f"{name}: {where} takes {kinds}, not {material.kind}")
            continue
        spec = sop.inputs[spec_index]
        counts[spec_index] += 1
        if material.state not in spec.states:
            problems.append(
                f"{name} is {material.state}; {where} needs it {' or '.join(spec.states)}"
            )
        qkind = QuantityKind(material.quantity_kind)
        taken: Quantity | None = None
        if spec.mode is InputMode.CONSUME:
            if booking.quantity is None:
                problems.append(f"{name}: how much is taken is required")
            else:
                taken = _parse(booking.quantity, qkind, f"{name} taken", problems)
                if taken is not None and taken.canonical <= 0:
                    problems.append(f"{name}: the amount taken must be above zero")
            if material.expires_at is not None and material.expires_at <= ctx.performed_at:
                problems.append(f"{name} expired at {material.expires_at:%Y-%m-%d %H:%M} UTC")
        elif booking.quantity is not None and spec.mode is not InputMode.IN_PLACE:
            problems.append(f"{name}: {where} takes nothing from it; give no quantity")
        ctx.inputs.append(CheckedInput(material=material, spec=spec, taken=taken))
    for index, spec in enumerate(sop.inputs):
        if not spec.min_count <= counts[index] <= spec.max_count:
            problems.append(
                f"{where} takes {spec.min_count}-{spec.max_count} "
                f"{'/'.join(k.value for k in spec.kinds)}, got {counts[index]}"
            )
    if len({item.material.patient_id for item in ctx.inputs}) > 1:
        problems.append(
            "inputs come from different patients or donors; pooling across chains of "
            "identity is refused"
        )


def _check_losses(
    ctx: StepContext,
    losses: Sequence[LossBooking],
    materials: list[Material],
    problems: list[str],
) -> list[CheckedLoss]:
    rows: list[CheckedLoss] = []
    by_id = {m.material_id: m for m in materials}
    for loss in losses:
        try:
            lost_from = by_id.get(parse_material_id(loss.material_id))
        except LimsError as exc:
            problems.append(str(exc))
            continue
        if lost_from is None:
            problems.append(f"loss booked against {loss.material_id}, which is not an input")
            continue
        qty = _parse(
            loss.quantity,
            QuantityKind(lost_from.quantity_kind),
            f"loss from {format_material_id(lost_from.material_id)}",
            problems,
        )
        if not (loss.reason and loss.reason.strip()):
            problems.append("every loss needs a reason (e.g. 'hold-up volume in filter')")
        if qty is not None:
            rows.append(CheckedLoss(lost_from, qty, loss.reason.strip()))
    # A step that works in place takes from its input exactly what it lost.
    for item in ctx.inputs:
        if item.spec.mode is InputMode.IN_PLACE:
            total = sum(
                (x.quantity.canonical for x in rows if x.material.id == item.material.id),
                Decimal(0),
            )
            item.taken = Quantity.from_canonical(QuantityKind(item.material.quantity_kind), total)
    return rows


def _check_outputs(
    ctx: StepContext, outputs: Sequence[OutputRequest], where: str, problems: list[str]
) -> None:
    sop = ctx.sop
    if not sop.outputs and outputs:
        problems.append(f"{where} produces no new material")
    counts: dict[int, int] = defaultdict(int)
    for n, request in enumerate(outputs):
        spec_index = next(
            (i for i, s in enumerate(sop.outputs) if request.kind in (None, s.kind)), None
        )
        if spec_index is None:
            problems.append(f"output {n + 1}: {where} does not produce {request.kind}")
            continue
        spec = sop.outputs[spec_index]
        counts[spec_index] += 1
        qty = None
        last_error: InvalidInput | None = None
        for qkind in KIND_DIMENSIONS[spec.kind]:
            try:
                qty = parse_quantity(request.quantity, qkind, field=f"output {n + 1}")
                break
            except InvalidInput as exc:
                last_error = exc
        if qty is None:
            problems.append(str(last_error))
            continue
        if qty.canonical <= 0:
            problems.append(f"output {n + 1}: a new material needs an amount above zero")
        ctx.outputs.append(CheckedOutput(request=request, spec=spec, quantity=qty))
    for index, spec in enumerate(sop.outputs):
        if not spec.min_count <= counts[index] <= spec.max_count:
            problems.append(
                f"{where} produces {spec.min_count}-{spec.max_count} "
                f"{spec.kind.value}, got {counts[index]}"
            )


def _check_resources(
    session: Session,
    sop: SopDefinition,
    instrument_ids: Sequence[int],
    reagent_lot_ids: Sequence[int],
    at: datetime,
    problems: list[str],
) -> tuple[list[Instrument], list[ReagentLot]]:
    instruments = [session.get(Instrument, i) for i in instrument_ids]
    reagents = [session.get(ReagentLot, r) for r in reagent_lot_ids]
    found_i = [i for i in instruments if i is not None]
    found_r = [r for r in reagents if r is not None]
    for given, found in ((instrument_ids, instruments), (reagent_lot_ids, reagents)):
        for ident, row in zip(given, found, strict=True):
            if row is None:
                problems.append(f"no instrument or reagent lot with id {ident}")
    for inst in found_i:
        if not inst.active:
            problems.append(f"instrument {inst.asset_tag} is out of service")
        if inst.calibration_due <= at:
            problems.append(
                f"instrument {inst.asset_tag} ({inst.instrument_type}) was due for "
                f"calibration on {inst.calibration_due:%Y-%m-%d}"
            )
    for lot in found_r:
        if lot.expires_at <= at:
            problems.append(
                f"{lot.reagent_type} lot {lot.lot_number} expired on {lot.expires_at:%Y-%m-%d}"
            )
    have_i = {i.instrument_type for i in found_i}
    have_r = {r.reagent_type for r in found_r}
    for needed in sop.instrument_types:
        if needed not in have_i:
            problems.append(f"SOP {sop.code} v{sop.version} needs a {needed}; none recorded")
    for needed in sop.reagent_types:
        if needed not in have_r:
            problems.append(f"SOP {sop.code} v{sop.version} needs a {needed} lot; none recorded")
    return found_i, found_r


def _check_available(ctx: StepContext, problems: list[str]) -> None:
    for item in ctx.inputs:
        if item.taken is None or item.spec.mode is InputMode.IN_PLACE:
            continue
        available = (
            item.measured if item.measured is not None else item.material.remaining_canonical
        )
        if item.taken.canonical > available:
            unit = KINDS[item.taken.kind].canonical_unit
            problems.append(
                f"{format_material_id(item.material.material_id)}: {item.taken} asked, only "
                f"{_n(available)} {unit} remain{'s' if available == 1 else ''}"
            )
    for item in ctx.inputs:
        if item.spec.mode is not InputMode.IN_PLACE or item.taken is None:
            continue
        if item.taken.canonical > item.material.remaining_canonical:
            problems.append(
                f"{format_material_id(item.material.material_id)}: losses exceed what remains"
            )


def _check_conservation(ctx: StepContext, losses: list[CheckedLoss], problems: list[str]) -> None:
    """Per dimension: what was taken = what was produced + what was lost.

    A dimension that only goes in (millilitres of fat becoming cells) is a transformation;
    the step's conversions (a vial is worth ``fill_volume`` mL) bring outputs back into the
    input's dimension so that, for example, a lot's vials are balanced against its CM.
    """
    taken: dict[QuantityKind, Decimal] = defaultdict(Decimal)
    produced: dict[QuantityKind, Decimal] = defaultdict(Decimal)
    lost: dict[QuantityKind, Decimal] = defaultdict(Decimal)
    in_place: set[QuantityKind] = set()
    for item in ctx.inputs:
        if item.taken is not None:
            taken[item.taken.kind] += item.taken.canonical
            if item.spec.mode is InputMode.IN_PLACE:
                in_place.add(item.taken.kind)
    for out in ctx.outputs:
        produced[out.quantity.kind] += out.quantity.canonical
        per_unit_param = ctx.sop.conversions.get(KINDS[out.quantity.kind].canonical_unit)
        if per_unit_param:
            per_unit = ctx.raw_quantity(per_unit_param)
            if per_unit is None:
                continue
            produced[per_unit.kind] += out.quantity.canonical * per_unit.canonical
    for loss in losses:
        lost[loss.quantity.kind] += loss.quantity.canonical
    for gap in imbalances(taken=taken, produced=produced, lost=lost, in_place=in_place):
        unit = KINDS[gap.kind].canonical_unit
        if gap.over_loss:
            problems.append(
                f"{_n(gap.lost)} {unit} lost is more than the {_n(gap.taken)} {unit} taken"
            )
            continue
        diff = gap.taken - gap.accounted
        problems.append(
            f"{KINDS[gap.kind].noun} does not add up: {_n(gap.taken)} {unit} taken, "
            f"{_n(gap.produced)} {unit} produced + {_n(gap.lost)} {unit} lost = "
            f"{_n(gap.accounted)} {unit}; "
            + (
                f"{_n(diff)} {unit} unaccounted, record it as a loss"
                if diff > 0
                else f"{_n(-diff)} {unit} more than was taken"
            )
        )


def check_step(
    session: Session,
    *,
    sop_code: str,
    actor: User,
    inputs: Sequence[InputBooking],
    outputs: Sequence[OutputRequest],
    losses: Sequence[LossBooking],
    parameters: dict[str, Any],
    instrument_ids: Sequence[int],
    reagent_lot_ids: Sequence[int],
    performed_at: datetime | None,
    rules: RuleBook,
) -> CheckedStep:
    """Check a step request whole (inputs row-locked); the problems are returned, not raised,
    so the plan can add its own before the refusal."""
    now, at = _check_actor_and_time(actor, performed_at)
    sop_row = sop_in_force(session, code=sop_code, at=at)
    sop = definition_of(sop_row)
    where = f"SOP {sop.code} v{sop.version}"
    if not inputs:
        raise StepRefused(f"{where} refused", problems=["at least one input material is needed"])
    ids = [i.material_id for i in inputs]
    if len(set(ids)) != len(ids):
        raise StepRefused(f"{where} refused", problems=["a material is listed twice as input"])
    materials = lock_materials(session, ids)
    ctx = StepContext(
        session=session,
        sop=sop,
        actor=actor,
        performed_at=at,
        inputs=[],
        outputs=[],
        raw=parameters,
    )
    problems: list[str] = []
    _check_inputs(ctx, inputs, materials, where, problems)
    loss_rows = _check_losses(ctx, losses, materials, problems)
    _check_outputs(ctx, outputs, where, problems)
    instruments, reagents = _check_resources(
        session, sop, instrument_ids, reagent_lot_ids, at, problems
    )
    rules.apply(ctx)
    problems.extend(ctx.problems)
    ctx.problems = []
    _check_available(ctx, problems)
    checked = check_parameters(sop, parameters, ctx.derived)
    problems.extend(checked.problems)
    _check_conservation(ctx, loss_rows, problems)
    return CheckedStep(
        sop_row=sop_row,
        sop=sop,
        ctx=ctx,
        materials=materials,
        losses=loss_rows,
        instruments=instruments,
        reagents=reagents,
        parameters=checked,
        recorded_at=now,
        problems=problems,
    )
