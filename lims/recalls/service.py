"""Open, acknowledge and close a lot recall (21 CFR 1271.290: trace forward, act, tell).

Opening is one transaction: QA's signature (password re-entered, meaning 'approved'), the
look-forward trace through lineage, every derived lot and dose out of the lab made
RECALLED (do not use), doses still in the lab recorded as blocked (the dispatch gate refuses
them while the recall is open), the custody event, and one notification per clinic reached
(webhook and e-mail through the outbox). Closing needs every clinic's acknowledgement or
QA's signed override with a reason.
"""

from __future__ import annotations

import secrets

from sqlmodel import Session, col, select

from lims.custody import ledger
from lims.custody.ledger import format_time, last_seq
from lims.db import utcnow
from lims.errors import InvalidInput, RuleViolation
from lims.identity.codes import format_material_id
from lims.lifecycle import transition
from lims.materials.kinds import MaterialKind
from lims.materials.lineage import lineage_graph
from lims.materials.models import Material
from lims.materials.service import get_material
from lims.materials.workflow import DEPLETED, ON_HOLD, RELEASED, machine_for
from lims.notifications.events import RECALL_CLOSED, RECALL_OPENED
from lims.notifications.outbox import notify
from lims.orders.models import DoseOrder
from lims.parties.models import Patient, Role, User
from lims.recalls.models import ItemAction, Recall, RecallClinic, RecallItem, RecallStatus
from lims.recalls.queries import affected_items, get_recall, open_recall_of_lot, unacknowledged
from lims.signatures.models import Meaning
from lims.signatures.service import sign

RECALLED = "RECALLED"
# A dose still in the lab: it stays as it is, and the dispatch gate refuses it.
IN_THE_LAB = frozenset({"ALLOCATED", "LABELED", "DISPATCH_VERIFIED"})
RECALLABLE = frozenset({RELEASED, DEPLETED})


class LotNotRecallable(RuleViolation):
    code = "recall_lot_not_released"


class RecallAlreadyOpen(RuleViolation):
    code = "recall_already_open"


class RecallNotAcknowledged(RuleViolation):
    code = "recall_not_acknowledged"


class RecallClosed(RuleViolation):
    code = "recall_closed"


def _qa(actor: User, what: str) -> None:
    if Role(actor.role) != Role.QA:
        raise RuleViolation(f"only QA may {what}; a {actor.role} account cannot")


def _text(value: str | None, field: str, what: str) -> str:
    text = (value or "").strip()
    if not text:
        raise InvalidInput(f"{what} is required", field=field)
    if len(text) > 2000:
        raise InvalidInput(f"{what} is longer than 2000 characters", field=field)
    return text


def _recallable(lot: Material) -> bool:
    if lot.state == ON_HOLD:
        return lot.held_from_state in RECALLABLE
    return lot.state in RECALLABLE


def _act(session: Session, material: Material, *, actor: User, reason: str) -> str:
    """Do what the recall does to one material and say what that was."""
    machine = machine_for(material.kind)
    if material.kind == MaterialKind.DOSE and material.state in IN_THE_LAB:
        return ItemAction.BLOCKED
    if material.state == "ADMINISTERED":
        return ItemAction.ADMINISTERED
    targets = machine.targets(material.state, material.held_from_state)
    if RECALLED in targets:
        transition(session, material=material, to_state=RECALLED, actor=actor, reason=reason)
        return ItemAction.RECALLED
    if ON_HOLD in targets and material.state not in machine.terminal:
        transition(session, material=material, to_state=ON_HOLD, actor=actor, reason=reason)
        return ItemAction.HELD
    return ItemAction.NONE


def open_recall(
    session: Session, *, lot_material_id: str, reason: str, password: str, actor: User
) -> Recall:
    """QA recalls a released lot: trace forward, block, mark do-not-use, tell each clinic."""
    _qa(actor, "recall a lot")
    reason = _text(reason, "reason", "a reason for the recall")
    lot = get_material(session, lot_material_id, lock=True)
    existing = open_recall_of_lot(session, lot=lot)
    if existing is not None:
        raise RecallAlreadyOpen(
            f"lot {format_material_id(lot.material_id)} is already under recall {existing.number}",
            field="material_id",
        )
    if lot.kind == MaterialKind.DOSE or not _recallable(lot):
        raise LotNotRecallable(
            f"{format_material_id(lot.material_id)} is a {lot.kind} in state {lot.state}; "
            "only a released (or depleted) lot is recalled",
            field="material_id",
        )
    recall = Recall(
        number=f"tmp-{secrets.token_hex(5)}",
        lot_id=lot.id or 0,
        reason=reason,
        opened_by_id=actor.id or 0,
    )
    session.add(recall)
    session.flush()
    recall.number = f"RC-{recall.id:06d}"
    why = f"recall {recall.number}: {reason}"

    graph = lineage_graph(session, material=lot, up=False)
    ordered = sorted(graph.nodes.values(), key=lambda m: (graph.levels[m.id or 0], m.id or 0))
    clinics: dict[int, list[str]] = {}
    for material in ordered:
        before = material.state
        action = _act(session, material, actor=actor, reason=why)
        order = None
        patient = None
        if material.kind == MaterialKind.DOSE:
            order = session.exec(
                select(DoseOrder).where(col(DoseOrder.dose_material_id) == material.id)
            ).first()
            pid = order.patient_id if order else material.recipient_id
            patient = session.get(Patient, pid) if pid else None
        clinic_id = order.clinic_id if order else (patient.clinic_id if patient else None)
        session.add(
            RecallItem(
                recall_id=recall.id or 0,
                material_id=material.id or 0,
                depth=graph.levels[material.id or 0],
                state_before=before,
                state_after=material.state,
                action=action,
                order_id=order.id if order else None,
                patient_id=patient.id if patient else None,
                clinic_id=clinic_id,
            )
        )
        if clinic_id is not None:
            clinics.setdefault(clinic_id, []).append(material.material_id)
    session.flush()

    signature = sign(
        session,
        user=actor,
        password=password,
        meaning=Meaning.APPROVED,
        record_type="recall",
        record_id=recall.number,
        comment=f"recall of lot {format_material_id(lot.material_id)}: {reason}",
    )
    recall.open_signature_id = signature.id
    session.add(recall)
    event = ledger.append(
        session,
        actor=actor,
        action="recall.opened",
        entity="recall",
        entity_id=recall.number,
        materials=[m.material_id for m in ordered],
        new={"lot": lot.material_id, "clinics": sorted(clinics), "signature": signature.id},
        reason=reason,
    )
    for clinic_id, doses in clinics.items():
        items = affected_items(session, recall=recall, clinic_id=clinic_id)
        note = notify(
            session,
            clinic_id=clinic_id,
            event_type=RECALL_OPENED,
            subject=recall.number,
            custody_seq=event.seq,
            data={
                "recall": recall.number,
                "lot": lot.material_id,
                "reason": reason,
                "opened_at": format_time(recall.opened_at),
                "doses": doses,
                "items": [
                    {
                        "dose": a.material.material_id,
                        "order": a.order.number if a.order else None,
                        "patient": a.patient.coi_id if a.patient else None,
                        "state": a.material.state,
                        "action": a.item.action,
                    }
                    for a in items
                ],
            },
        )
        session.add(
            RecallClinic(
                recall_id=recall.id or 0, clinic_id=clinic_id, notification_id=note.id or 0
            )
        )
    session.flush()
    return recall


def acknowledge(session: Session, *, number: str, actor: User, note: str | None = None) -> Recall:
    """The clinic says it has acted on the recall (an acknowledgement sent twice is kept once)."""
    if Role(actor.role) != Role.CLINIC or actor.clinic_id is None:
        raise RuleViolation("a recall is acknowledged by the clinic it reached")
    recall = get_recall(session, number=number, actor=actor, lock=True)
    row = session.exec(
        select(RecallClinic).where(
            col(RecallClinic.recall_id) == recall.id, col(RecallClinic.clinic_id) == actor.clinic_id
        )
    ).one()
    if row.acknowledged_at is not None:
        return recall
    if recall.status != RecallStatus.OPEN:
        raise RecallClosed(f"recall {recall.number} is already closed")
    row.acknowledged_at = utcnow()
    row.acknowledged_by_id = actor.id
    row.acknowledgement_note = note.strip()[:2000] if note and note.strip() else None
    session.add(row)
    session.flush()
    ledger.append(
        session,
        actor=actor,
        action="recall.acknowledged",
        entity="recall",
        entity_id=recall.number,
        new={"clinic_id": actor.clinic_id, "note": row.acknowledgement_note},
    )
    return recall


def close_recall(
    session: Session,
    *,
    number: str,
    actor: User,
    password: str,
    override_reason: str | None = None,
) -> Recall:
    """QA closes the recall once every clinic acknowledged it, or overrides with a reason."""
    _qa(actor, "close a recall")
    recall = get_recall(session, number=number, actor=actor, lock=True)
    if recall.status != RecallStatus.OPEN:
        raise RecallClosed(f"recall {recall.number} is already closed")
    pending = unacknowledged(session, recall=recall)
    override = (override_reason or "").strip() or None
    if pending and override is None:
        names = ", ".join(f"{c.name} ({c.code})" for c in pending)
        raise RecallNotAcknowledged(
            f"recall {recall.number} is not acknowledged by {names}; close it when they have, "
            "or override with a signed reason",
            field="override_reason",
            clinics=[c.code for c in pending],
        )
    if override is not None:
        override = _text(override, "override_reason", "the override's reason")
    comment = (
        f"closed by override ({', '.join(c.code for c in pending)} not acknowledged): {override}"
        if pending
        else "closed: every clinic acknowledged"
    )
    signature = sign(
        session,
        user=actor,
        password=password,
        meaning=Meaning.APPROVED,
        record_type="recall",
        record_id=recall.number,
        comment=comment,
    )
    recall.status = RecallStatus.CLOSED
    recall.closed_at = utcnow()
    recall.closed_by_id = actor.id
    recall.close_signature_id = signature.id
    recall.override_reason = override if pending else None
    session.add(recall)
    session.flush()
    ledger.append(
        session,
        actor=actor,
        action="recall.closed",
        entity="recall",
        entity_id=recall.number,
        old={"status": RecallStatus.OPEN},
        new={"status": RecallStatus.CLOSED, "signature": signature.id, "override": bool(pending)},
        reason=recall.override_reason,
    )
    seq = last_seq(session)
    lot = session.get(Material, recall.lot_id)
    assert lot is not None
    rows = session.exec(select(RecallClinic).where(col(RecallClinic.recall_id) == recall.id)).all()
    for row in rows:
        note = notify(
            session,
            clinic_id=row.clinic_id,
            event_type=RECALL_CLOSED,
            subject=recall.number,
            custody_seq=seq,
            data={
                "recall": recall.number,
                "lot": lot.material_id,
                "closed_at": format_time(recall.closed_at),
                "override": bool(pending),
            },
        )
        row.closed_notification_id = note.id
        session.add(row)
    session.flush()
    return recall
