"""QA's disposition of a cancelled dose: back to its lot, or destroyed.

A cancelled order's dose is CANCELLED and held for QA. QA decides, with a signature: return
the vials to the lot (only when the seal is intact, the dose never left the lab's control
and was stored in range; the lot's count goes back up, so vials are conserved, and a
depleted lot is restocked) or destroy it with a reason. The decision is a row the
conservation check adds back (lims.steps.conservation) and a custody event on both.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum

from sqlmodel import Session, col, select

from lims.amounts import amount_text
from lims.custody import ledger
from lims.db import utcnow
from lims.doses.models import DoseDisposition
from lims.errors import InvalidInput, RuleViolation
from lims.identity.codes import format_material_id
from lims.lifecycle import transition
from lims.materials.models import LineageEdge, Material
from lims.materials.service import lab_custodian
from lims.materials.workflow import DEPLETED, RELEASED
from lims.parties.models import Role, User
from lims.signatures.models import Meaning
from lims.signatures.service import sign
from lims.units import KINDS, QuantityKind


class Decision(StrEnum):
    RETURN = "return"
    DESTROY = "destroy"


@dataclass(frozen=True)
class ReturnChecks:
    """What QA confirms before a vial goes back to stock."""

    seal_intact: bool
    never_left_lab: bool
    stored_in_range: bool

    def failures(self) -> list[str]:
        return [
            words
            for ok, words in (
                (self.seal_intact, "the seal is not intact"),
                (self.never_left_lab, "the dose left the lab's control"),
                (self.stored_in_range, "it was not stored in range"),
            )
            if not ok
        ]


def source_lot(session: Session, *, dose: Material) -> Material:
    lot = session.exec(
        select(Material)
        .join(LineageEdge, col(LineageEdge.parent_id) == col(Material.id))
        .where(col(LineageEdge.child_id) == dose.id)
    ).first()
    if lot is None:
        raise RuleViolation(f"dose {format_material_id(dose.material_id)} has no source lot")
    return lot


def dispose(
    session: Session,
    *,
    dose: Material,
    actor: User,
    password: str,
    decision: Decision | str,
    reason: str,
    checks: ReturnChecks | None = None,
) -> DoseDisposition:
    """QA's signed decision on a cancelled dose: return its vials to the lot or destroy it."""
    name = f"dose {format_material_id(dose.material_id)}"
    if Role(actor.role) is not Role.QA:
        raise RuleViolation(f"the disposition of a cancelled dose is QA's; {actor.role} may not")
    try:
        decision = Decision(decision)
    except ValueError:
        raise InvalidInput("a disposition is 'return' or 'destroy'", field="decision") from None
    reason = ledger.require_reason(reason, "a disposition")
    if dose.kind != "dose" or dose.state != "CANCELLED":
        raise RuleViolation(f"{name} is {dose.state}; only a cancelled dose awaits disposition")
    if dose.custodian is not None and dose.custodian != lab_custodian():
        raise RuleViolation(f"{name} is with {dose.custodian}, not the lab")
    lot = source_lot(session, dose=dose)
    amount = dose.remaining_canonical
    unit = KINDS[QuantityKind(dose.quantity_kind)].canonical_unit
    if decision is Decision.RETURN:
        refused = (checks or ReturnChecks(False, False, False)).failures()
        if refused:
            raise RuleViolation(f"{name} cannot go back to stock: " + "; ".join(refused))
        if lot.state not in (RELEASED, DEPLETED):
            raise RuleViolation(
                f"its lot {format_material_id(lot.material_id)} is {lot.state}; "
                "vials go back only to a released lot"
            )
        if lot.expires_at is not None and lot.expires_at <= utcnow():
            raise RuleViolation(f"its lot {format_material_id(lot.material_id)} has expired")
    signature = sign(
        session,
        user=actor,
        password=password,
        meaning=Meaning.APPROVED,
        record_type="material",
        record_id=dose.material_id,
        comment=f"disposition: {decision.value}: {reason}",
    )
    if decision is Decision.RETURN:
        lot_before = lot.remaining_canonical
        lot.remaining_canonical = lot_before + amount
        lot.updated_at = utcnow()
        session.add(lot)
        dose.remaining_canonical = Decimal(0)
        session.add(dose)
        session.flush()
        if lot.state == DEPLETED:
            transition(
                session, material=lot, to_state=RELEASED, actor=actor, reason="restocked: " + reason
            )
        transition(session, material=dose, to_state="DEALLOCATED", actor=actor, reason=reason)
        ledger.append(
            session,
            actor=actor,
            action="dose.returned_to_lot",
            entity="material",
            entity_id=dose.material_id,
            materials=[dose.material_id, lot.material_id],
            new={
                "lot": lot.material_id,
                "returned": amount_text(amount, unit),
                "lot_before": amount_text(lot_before, unit),
                "lot_after": amount_text(lot.remaining_canonical, unit),
                "signature": signature.id,
            },
            reason=reason,
        )
    else:
        transition(session, material=dose, to_state="DESTROYED", actor=actor, reason=reason)
        ledger.append(
            session,
            actor=actor,
            action="dose.destroyed",
            entity="material",
            entity_id=dose.material_id,
            materials=[dose.material_id],
            new={"destroyed": amount_text(amount, unit), "signature": signature.id},
            reason=reason,
        )
    row = DoseDisposition(
        dose_id=dose.id,  # type: ignore[arg-type]
        lot_id=lot.id if decision is Decision.RETURN else None,
        decision=decision.value,
        amount_canonical=amount if decision is Decision.RETURN else Decimal(0),
        reason=reason,
        signature_id=signature.id,  # type: ignore[arg-type]
        decided_by_id=actor.id,  # type: ignore[arg-type]
    )
    session.add(row)
    session.flush()
    return row
