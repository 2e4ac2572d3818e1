"""Record a process step against the SOP version in force.

One call checks everything first -- the actor, the SOP, every parameter, each input's state
and identity, instrument calibration and reagent expiry, the quantities taken and whether
they add up -- and refuses with every problem named, having written nothing. Only then
does it book what each input lost, create the outputs with their lineage, and move each
material to its next state. The caller owns the transaction (``write_session``).
"""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlmodel import Session, col, select

from lims.custody import ledger
from lims.db import utcnow
from lims.errors import InvalidInput, LimsError, RuleViolation, StepRefused
from lims.identity.codes import format_material_id
from lims.materials.kinds import KIND_DIMENSIONS, MaterialKind, Use
from lims.materials.models import LineageEdge, Material
from lims.lifecycle import transition
from lims.materials.service import describe, lock_materials, next_material_id
from lims.materials.workflow import machine_for
from lims.parties.models import LAB_STAFF, Instrument, ReagentLot, Role, User
from lims.sops.service import definition_of, sop_in_force
from lims.sops.spec import InputMode, InputSpec, OutputSpec, SopDefinition, shelf_life_delta
from lims.sops.validation import check_parameters
from lims.steps.models import Step, StepInput, StepLoss, StepResource
from lims.units import KINDS, Quantity, QuantityKind, parse_quantity

RECORDING_ROLES = LAB_STAFF
# A step may be entered after the fact (a bench without a terminal), but not weeks later
# and never in the future: records are contemporaneous (ALCOA+).
MAX_LATE_ENTRY = timedelta(days=7)


@dataclass(frozen=True)
class InputBooking:
    material_id: str
    quantity: Any = None


@dataclass(frozen=True)
class OutputRequest:
    quantity: Any
    kind: MaterialKind | None = None
    container: str | None = None


@dataclass(frozen=True)
class LossBooking:
    material_id: str
    quantity: Any
    reason: str


@dataclass
class StepResult:
    step: Step
    inputs: list[Material]
    outputs: list[Material]
    replayed: bool = False

    @property
    def warnings(self) -> list[str]:
        return list(self.step.warnings)


@dataclass
class _Input:
    material: Material
    spec: InputSpec
    taken: Quantity | None
    measured: Decimal | None = None


@dataclass
class _Output:
    request: OutputRequest
    spec: OutputSpec
    quantity: Quantity
    attrs: dict[str, Any] = field(default_factory=dict)


@dataclass
class StepContext:
    """What a stage's rules (hooks) see and may add to while a step is checked."""

    session: Session
    sop: SopDefinition
    actor: User
    performed_at: datetime
    inputs: list[_Input]
    outputs: list[_Output]
    raw: dict[str, Any]
    derived: dict[str, Any] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    updates: dict[int, dict[str, Any]] = field(default_factory=dict)
    recipient_id: int | None = None

    def raw_quantity(self, name: str) -> Quantity | None:
        """A parameter as entered, parsed; None if missing or invalid (reported elsewhere)."""
        spec = self.sop.parameter(name)
        if spec.quantity_kind is None or self.raw.get(name) in (None, ""):
            return None
        try:
            return parse_quantity(self.raw[name], spec.quantity_kind)
        except InvalidInput:
            return None


def _request_digest(**request: Any) -> str:
    text = json.dumps(request, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def _parse(raw: Any, kind: QuantityKind, field: str, problems: list[str]) -> Quantity | None:
    try:
        return parse_quantity(raw, kind, field=field)
    except InvalidInput as exc:
        problems.append(str(exc))
        return None


def _path(material: Material, target: str) -> list[str]:
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
            if nxt in seen or nxt == "ON_HOLD":
                continue
            if nxt == target:
                return [*route[1:], nxt]
            seen.add(nxt)
            frontier.append([*route, nxt])
    raise RuleViolation(f"{material.kind} cannot reach {target} from {start}")


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


def _check_conservation(ctx: StepContext, losses: list[tuple[Material, Quantity, str]]) -> None:
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
    for _material, qty, _reason in losses:
        lost[qty.kind] += qty.canonical
    for dim in sorted(set(taken) | set(lost), key=str):
        unit = KINDS[dim].canonical_unit
        if dim in produced or dim in in_place or dim not in taken:
            accounted = produced[dim] + lost[dim]
            if taken[dim] != accounted:
                diff = taken[dim] - accounted
                ctx.problems.append(
                    f"{KINDS[dim].noun} does not add up: {_n(taken[dim])} {unit} taken, "
                    f"{_n(produced[dim])} {unit} produced + {_n(lost[dim])} {unit} lost = "
                    f"{_n(accounted)} {unit}; "
                    + (
                        f"{_n(diff)} {unit} unaccounted, record it as a loss"
                        if diff > 0
                        else f"{_n(-diff)} {unit} more than was taken"
                    )
                )
        elif lost[dim] > taken[dim]:
            ctx.problems.append(
                f"{_n(lost[dim])} {unit} lost is more than the {_n(taken[dim])} {unit} taken"
            )


def _n(value: Decimal) -> str:
    return format(value.normalize(), "f")


def record_step(
    session: Session,
    *,
    sop_code: str,
    actor: User,
    inputs: Sequence[InputBooking],
    outputs: Sequence[OutputRequest] = (),
    losses: Sequence[LossBooking] = (),
    parameters: dict[str, Any] | None = None,
    instrument_ids: Sequence[int] = (),
    reagent_lot_ids: Sequence[int] = (),
    performed_at: datetime | None = None,
    notes: str | None = None,
    idempotency_key: str | None = None,
) -> StepResult:
    """Validate and record one step; refuse with every problem named, writing nothing."""
    from lims.steps import rules  # the stage rules register themselves on import

    raw = dict(parameters or {})
    digest = _request_digest(
        sop=sop_code,
        inputs=[(i.material_id, i.quantity) for i in inputs],
        outputs=[(o.quantity, o.kind, o.container) for o in outputs],
        losses=[(x.material_id, x.quantity, x.reason) for x in losses],
        params=raw,
        instruments=list(instrument_ids),
        reagents=list(reagent_lot_ids),
        notes=notes,
    )
    if idempotency_key:
        replay = _replay(session, idempotency_key, digest)
        if replay is not None:
            return replay
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
    sop_row = sop_in_force(session, code=sop_code, at=at)
    sop = definition_of(sop_row)
    where = f"SOP {sop.code} v{sop.version}"
    problems: list[str] = []

    if not inputs:
        raise StepRefused(f"{where} refused", problems=["at least one input material is needed"])
    ids = [i.material_id for i in inputs]
    if len(set(ids)) != len(ids):
        raise StepRefused(f"{where} refused", problems=["a material is listed twice as input"])
    materials = lock_materials(session, ids)

    ctx = StepContext(
        session=session, sop=sop, actor=actor, performed_at=at, inputs=[], outputs=[], raw=raw
    )
    counts: dict[int, int] = defaultdict(int)
    for booking, material in zip(inputs, materials, strict=True):
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
            if material.expires_at is not None and material.expires_at <= at:
                problems.append(f"{name} expired at {material.expires_at:%Y-%m-%d %H:%M} UTC")
        elif booking.quantity is not None and spec.mode is not InputMode.IN_PLACE:
            problems.append(f"{name}: {where} takes nothing from it; give no quantity")
        ctx.inputs.append(_Input(material=material, spec=spec, taken=taken))
    for index, spec in enumerate(sop.inputs):
        if not spec.min_count <= counts[index] <= spec.max_count:
            problems.append(
                f"{where} takes {spec.min_count}-{spec.max_count} "
                f"{'/'.join(k.value for k in spec.kinds)}, got {counts[index]}"
            )

    patients = {item.material.patient_id for item in ctx.inputs}
    if len(patients) > 1:
        problems.append(
            "inputs come from different patients or donors; pooling across chains of "
            "identity is refused"
        )

    loss_rows: list[tuple[Material, Quantity, str]] = []
    by_id = {m.material_id: m for m in materials}
    for loss in losses:
        try:
            from lims.identity.codes import parse_material_id

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
            loss_rows.append((lost_from, qty, loss.reason.strip()))
    for item in ctx.inputs:
        if item.spec.mode is InputMode.IN_PLACE:
            lost_here = [q for m, q, _ in loss_rows if m.id == item.material.id]
            total = sum((q.canonical for q in lost_here), Decimal(0))
            item.taken = Quantity.from_canonical(QuantityKind(item.material.quantity_kind), total)

    if not sop.outputs and outputs:
        problems.append(f"{where} produces no new material")
    out_counts: dict[int, int] = defaultdict(int)
    for n, request in enumerate(outputs):
        spec_index = next(
            (i for i, s in enumerate(sop.outputs) if request.kind in (None, s.kind)), None
        )
        if spec_index is None:
            problems.append(f"output {n + 1}: {where} does not produce {request.kind}")
            continue
        out_spec = sop.outputs[spec_index]
        out_counts[spec_index] += 1
        qty = None
        last_error: InvalidInput | None = None
        for qkind in KIND_DIMENSIONS[out_spec.kind]:
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
        ctx.outputs.append(_Output(request=request, spec=out_spec, quantity=qty))
    for index, out_spec in enumerate(sop.outputs):
        if not out_spec.min_count <= out_counts[index] <= out_spec.max_count:
            problems.append(
                f"{where} produces {out_spec.min_count}-{out_spec.max_count} "
                f"{out_spec.kind.value}, got {out_counts[index]}"
            )

    instruments, reagents = _check_resources(
        session, sop, instrument_ids, reagent_lot_ids, at, problems
    )
    rules.apply(ctx)
    problems.extend(ctx.problems)
    ctx.problems = []
    for item in ctx.inputs:
        if item.taken is None or item.spec.mode is InputMode.IN_PLACE:
            continue
        available = (
            item.measured if item.measured is not None else (item.material.remaining_canonical)
        )
        if item.taken.canonical > available:
            unit = KINDS[item.taken.kind].canonical_unit
            problems.append(
                f"{format_material_id(item.material.material_id)}: {item.taken} asked, only "
                f"{_n(available)} {unit} remain{'s' if available == 1 else ''}"
            )
    for item in ctx.inputs:
        in_place = item.spec.mode is InputMode.IN_PLACE and item.taken is not None
        if in_place and item.taken.canonical > item.material.remaining_canonical:  # type: ignore[union-attr]
            problems.append(
                f"{format_material_id(item.material.material_id)}: losses exceed what remains"
            )
    checked = check_parameters(sop, raw, ctx.derived)
    problems.extend(checked.problems)
    _check_conservation(ctx, loss_rows)
    problems.extend(ctx.problems)
    rejected = bool(checked.failed_acceptance)
    plans = _plan_states(ctx, rejected, checked.failed_acceptance, problems)
    if problems:
        raise StepRefused(f"{where} refused", problems=problems)

    outcome = (
        "rejected"
        if rejected
        else (
            "accepted"
            if any(
                p.accept_min or p.accept_max or p.accept_equals is not None for p in sop.parameters
            )
            else "completed"
        )
    )
    step = Step(
        sop_version_id=sop_row.id,  # type: ignore[arg-type]
        sop_code=sop.code,
        performed_by_id=actor.id,  # type: ignore[arg-type]
        performed_at=at,
        recorded_at=now,
        outcome=outcome,
        parameters=checked.record(),
        warnings=checked.warnings,
        acceptance_failures=checked.failed_acceptance,
        notes=notes,
        idempotency_key=idempotency_key,
        request_sha256=digest if idempotency_key else None,
    )
    session.add(step)
    session.flush()
    ledger.append(
        session,
        actor=actor,
        action="step.recorded",
        entity="step",
        entity_id=step.id or 0,
        materials=[m.material_id for m in materials],
        new={
            "sop": sop.code,
            "sop_version": sop.version,
            "outcome": outcome,
            "performed_at": at,
            "parameters": step.parameters,
            "warnings": step.warnings,
            "acceptance_failures": step.acceptance_failures,
            "notes": notes,
            "instruments": [i.asset_tag for i in instruments],
            "reagent_lots": [f"{r.reagent_type}:{r.lot_number}" for r in reagents],
            "losses": [
                {"material": m.material_id, "quantity": q, "reason": why} for m, q, why in loss_rows
            ],
        },
    )
    reason = "; ".join(checked.failed_acceptance) or None
    for item in ctx.inputs:
        material = item.material
        before = material.remaining_canonical
        base = item.measured if item.measured is not None else before
        taken_canonical = item.taken.canonical if item.taken is not None else Decimal(0)
        after = base - taken_canonical
        state_before = material.state
        for key, value in ctx.updates.get(material.id or 0, {}).items():
            setattr(material, key, value)
        material.remaining_canonical = after
        material.updated_at = now
        if after != before or item.measured is not None:
            ledger.append(
                session,
                actor=actor,
                action="quantity.booked",
                entity="material",
                entity_id=material.material_id,
                materials=[material.material_id],
                old={"remaining": before},
                new={
                    "remaining": after,
                    "taken": taken_canonical,
                    "measured": item.measured,
                    "unit": KINDS[QuantityKind(material.quantity_kind)].canonical_unit,
                    "step": step.id,
                    "population_doublings": material.population_doublings,
                },
            )
        for target in plans[material.id or 0]:
            transition(session, material=material, to_state=target, actor=actor, reason=reason)
        session.add(
            StepInput(
                step_id=step.id,  # type: ignore[arg-type]
                material_id=material.id,  # type: ignore[arg-type]
                mode=item.spec.mode,
                quantity_kind=material.quantity_kind,
                entered_value=item.taken.value if item.taken is not None else None,
                entered_unit=item.taken.unit if item.taken is not None else None,
                taken_canonical=taken_canonical,
                measured_canonical=item.measured,
                remaining_before=before,
                remaining_after=after,
                state_before=state_before,
                state_after=material.state,
            )
        )
    for material, qty, why in loss_rows:
        session.add(
            StepLoss(
                step_id=step.id,  # type: ignore[arg-type]
                material_id=material.id,  # type: ignore[arg-type]
                quantity_kind=qty.kind,
                entered_value=qty.value,
                entered_unit=qty.unit,
                canonical=qty.canonical,
                reason=why,
            )
        )
    for inst in instruments:
        session.add(StepResource(step_id=step.id, instrument_id=inst.id))  # type: ignore[arg-type]
    for lot in reagents:
        session.add(StepResource(step_id=step.id, reagent_lot_id=lot.id))  # type: ignore[arg-type]
    created = _create_outputs(session, ctx, step, rejected, reason, now)
    session.flush()
    return StepResult(step=step, inputs=materials, outputs=created)


def _plan_states(
    ctx: StepContext, rejected: bool, failures: list[str], problems: list[str]
) -> dict[int, list[str]]:
    """Work out each input's next states now, so no transition can fail mid-write."""
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
                route = _path(material, target)
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


def _create_outputs(
    session: Session,
    ctx: StepContext,
    step: Step,
    rejected: bool,
    reason: str | None,
    now: datetime,
) -> list[Material]:
    created: list[Material] = []
    parents = [
        i.material for i in ctx.inputs if i.spec.mode in (InputMode.CONSUME, InputMode.REFERENCE)
    ]
    if not parents:
        return created
    source = parents[0]
    use = Use.ALLOGENEIC if any(p.use == Use.ALLOGENEIC for p in parents) else Use.AUTOLOGOUS
    for out in ctx.outputs:
        expiry_candidates = []
        if out.spec.shelf_life:
            expiry_candidates.append(ctx.performed_at + shelf_life_delta(out.spec.shelf_life))
        if out.spec.inherit_expiry:
            expiry_candidates.extend(p.expires_at for p in parents if p.expires_at)
        material = Material(
            material_id=next_material_id(session, at=now),
            kind=out.spec.kind,
            state=out.spec.state,
            patient_id=source.patient_id,
            recipient_id=ctx.recipient_id,
            use=use,
            quantity_kind=out.quantity.kind,
            entered_value=out.quantity.value,
            entered_unit=out.quantity.unit,
            initial_canonical=out.quantity.canonical,
            remaining_canonical=out.quantity.canonical,
            expires_at=min(expiry_candidates) if expiry_candidates else None,
            container=out.request.container or out.spec.container,
            custodian=source.custodian,
            created_in_step_id=step.id,
            created_by_id=ctx.actor.id,  # type: ignore[arg-type]
            created_at=now,
            updated_at=now,
            **out.attrs,
        )
        session.add(material)
        session.flush()
        ledger.append(
            session,
            actor=ctx.actor,
            action="material.created",
            entity="material",
            entity_id=material.material_id,
            materials=[material.material_id, *(p.material_id for p in parents)],
            from_=", ".join(p.material_id for p in parents),
            to=material.custodian,
            new=describe(material),
        )
        for parent in parents:
            session.add(
                LineageEdge(
                    parent_id=parent.id,  # type: ignore[arg-type]
                    child_id=material.id,  # type: ignore[arg-type]
                    step_id=step.id,
                )
            )
        follow = out.spec.state_if_rejected if rejected else out.spec.state_if_accepted
        if follow:
            transition(session, material=material, to_state=follow, actor=ctx.actor, reason=reason)
        created.append(material)
    return created


def _replay(session: Session, key: str, digest: str) -> StepResult | None:
    step = session.exec(select(Step).where(col(Step.idempotency_key) == key)).first()
    if step is None:
        return None
    if step.request_sha256 != digest:
        raise InvalidInput(
            f"idempotency key {key!r} was already used for a different step request",
            field="idempotency_key",
        )
    inputs = session.exec(
        select(Material)
        .join(StepInput, col(StepInput.material_id) == col(Material.id))
        .where(col(StepInput.step_id) == step.id)
        .order_by(col(StepInput.id))
    ).all()
    outputs = session.exec(
        select(Material)
        .where(col(Material.created_in_step_id) == step.id)
        .order_by(col(Material.id))
    ).all()
    return StepResult(step=step, inputs=list(inputs), outputs=list(outputs), replayed=True)


def steps_for(session: Session, *, material: Material) -> list[Step]:
    """Steps that used ``material`` as an input, oldest first."""
    return list(
        session.exec(
            select(Step)
            .join(StepInput, col(StepInput.step_id) == col(Step.id))
            .where(col(StepInput.material_id) == material.id)
            .order_by(col(Step.performed_at))
        ).all()
    )
