"""Write a checked, planned step: the step row and its event, each input's booking and
state, the losses, instruments and reagents, and the outputs with their lineage."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlmodel import Session

from lims.custody import ledger
from lims.lifecycle import transition
from lims.materials.kinds import Use
from lims.materials.models import LineageEdge, Material
from lims.materials.service import describe, next_material_id
from lims.sops.spec import InputMode, shelf_life_delta
from lims.steps.check import CheckedStep
from lims.steps.context import StepContext, StepResult
from lims.steps.models import Step, StepInput, StepLoss, StepResource
from lims.units import KINDS, QuantityKind


def _outcome(checked: CheckedStep) -> str:
    if checked.rejected:
        return "rejected"
    judged = any(
        p.accept_min or p.accept_max or p.accept_equals is not None for p in checked.sop.parameters
    )
    return "accepted" if judged else "completed"


def write_step(
    session: Session,
    *,
    checked: CheckedStep,
    plans: dict[int, list[str]],
    notes: str | None,
    idempotency_key: str | None,
    request_sha256: str | None,
) -> StepResult:
    """Write what ``checked`` and ``plans`` describe, with its custody events."""
    ctx, sop, params = checked.ctx, checked.sop, checked.parameters
    actor, at, now = ctx.actor, ctx.performed_at, checked.recorded_at
    outcome = _outcome(checked)
    step = Step(
        sop_version_id=checked.sop_row.id,  # type: ignore[arg-type]
        sop_code=sop.code,
        performed_by_id=actor.id,  # type: ignore[arg-type]
        performed_at=at,
        recorded_at=now,
        outcome=outcome,
        parameters=params.record(),
        warnings=params.warnings,
        acceptance_failures=params.failed_acceptance,
        notes=notes,
        idempotency_key=idempotency_key,
        request_sha256=request_sha256,
    )
    session.add(step)
    session.flush()
    ledger.append(
        session,
        actor=actor,
        action="step.recorded",
        entity="step",
        entity_id=step.id or 0,
        materials=[m.material_id for m in checked.materials],
        new={
            "sop": sop.code,
            "sop_version": sop.version,
            "outcome": outcome,
            "performed_at": at,
            "parameters": step.parameters,
            "warnings": step.warnings,
            "acceptance_failures": step.acceptance_failures,
            "notes": notes,
            "instruments": [i.asset_tag for i in checked.instruments],
            "reagent_lots": [f"{r.reagent_type}:{r.lot_number}" for r in checked.reagents],
            "losses": [
                {"material": x.material.material_id, "quantity": x.quantity, "reason": x.reason}
                for x in checked.losses
            ],
        },
    )
    reason = "; ".join(params.failed_acceptance) or None
    _book_inputs(session, ctx, step, plans, reason, now)
    for loss in checked.losses:
        session.add(
            StepLoss(
                step_id=step.id,  # type: ignore[arg-type]
                material_id=loss.material.id,  # type: ignore[arg-type]
                quantity_kind=loss.quantity.kind,
                entered_value=loss.quantity.value,
                entered_unit=loss.quantity.unit,
                canonical=loss.quantity.canonical,
                reason=loss.reason,
            )
        )
    for inst in checked.instruments:
        session.add(StepResource(step_id=step.id, instrument_id=inst.id))  # type: ignore[arg-type]
    for lot in checked.reagents:
        session.add(StepResource(step_id=step.id, reagent_lot_id=lot.id))  # type: ignore[arg-type]
    created = create_outputs(session, ctx, step, checked.rejected, reason, now)
    session.flush()
    return StepResult(step=step, inputs=checked.materials, outputs=created)


def _book_inputs(
    session: Session,
    ctx: StepContext,
    step: Step,
    plans: dict[int, list[str]],
    reason: str | None,
    now: datetime,
) -> None:
    actor = ctx.actor
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


def create_outputs(
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
