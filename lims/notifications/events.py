"""What each kind of change tells a clinic: the hooks called from set_order_status,
lims.lifecycle.transition and the recall service, and the event types they write.

Generic on purpose: every status or state (including ones added later) notifies with its new
value, so a new state needs no change here.
"""

from __future__ import annotations

from typing import Any

from sqlmodel import Session, col, select

from lims.materials.kinds import MaterialKind
from lims.materials.models import Material
from lims.materials.workflow import ON_HOLD, machine_for
from lims.notifications.outbox import notify
from lims.orders.models import DoseOrder

ORDER_STATUS_CHANGED = "order.status_changed"
DOSE_STATE_CHANGED = "dose.state_changed"
MATERIAL_QUARANTINED = "material.quarantined"
RECALL_OPENED = "recall.opened"
RECALL_CLOSED = "recall.closed"
WEBHOOK_DISABLED = "webhook.disabled"
PING = "webhook.ping"
EVENT_TYPES = (
    ORDER_STATUS_CHANGED,
    DOSE_STATE_CHANGED,
    MATERIAL_QUARANTINED,
    RECALL_OPENED,
    RECALL_CLOSED,
    WEBHOOK_DISABLED,
    PING,
)


def order_status_changed(
    session: Session, *, order: DoseOrder, old: str, seq: int, reason: str | None
) -> None:
    """Tell the order's clinic its order moved from ``old`` to its current status."""
    notify(
        session,
        clinic_id=order.clinic_id,
        event_type=ORDER_STATUS_CHANGED,
        subject=order.number,
        custody_seq=seq,
        data={"order": order.number, "old_status": old, "status": order.status, "reason": reason},
    )


def is_quarantine(material: Material, state: str) -> bool:
    return state == ON_HOLD or state in machine_for(material.kind).quarantine


def material_state_changed(
    session: Session, *, material: Material, old: str, seq: int | None, reason: str | None
) -> None:
    """A dose's state change tells its order's clinic; a quarantine is always recorded."""
    order = None
    if material.kind == MaterialKind.DOSE:
        order = session.exec(
            select(DoseOrder).where(col(DoseOrder.dose_material_id) == material.id)
        ).first()
    data: dict[str, Any] = {
        "material_id": material.material_id,
        "kind": material.kind,
        "old_state": old,
        "state": material.state,
        "reason": reason,
    }
    if order is not None:
        data["order"] = order.number
        notify(
            session,
            clinic_id=order.clinic_id,
            event_type=DOSE_STATE_CHANGED,
            subject=material.material_id,
            custody_seq=seq,
            data=data,
        )
    elif is_quarantine(material, material.state):
        # A lab material held or quarantined: the outbox keeps the lab's record; a recall
        # (lims.recalls) is what tells the clinics that received something made from it.
        notify(
            session,
            clinic_id=None,
            event_type=MATERIAL_QUARANTINED,
            subject=material.material_id,
            custody_seq=seq,
            data=data,
        )
