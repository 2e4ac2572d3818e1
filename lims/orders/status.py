"""An order's status changes here and nowhere else.

Everything that must happen with a status change (its custody event and the clinic's
notification, lims.notifications) is added in this one function, in the caller's
transaction, so no path can change a status without it.
"""

from __future__ import annotations

from sqlmodel import Session

from lims.custody import ledger
from lims.db import utcnow
from lims.materials.models import Material
from lims.notifications import events
from lims.orders.models import DoseOrder, OrderStatus
from lims.parties.models import User


def set_order_status(
    session: Session,
    order: DoseOrder,
    status: OrderStatus,
    actor: User,
    reason: str | None = None,
    **extra: object,
) -> None:
    """Move ``order`` to ``status`` and write its custody event in the same transaction."""
    old = order.status
    order.status = status
    order.updated_at = utcnow()
    session.add(order)
    session.flush()
    dose = session.get(Material, order.dose_material_id) if order.dose_material_id else None
    event = ledger.append(
        session,
        actor=actor,
        action="order.status_changed",
        entity="order",
        entity_id=order.number,
        materials=[dose.material_id] if dose else [],
        old={"status": old},
        new={"status": status, **extra},
        reason=reason,
    )
    events.order_status_changed(session, order=order, old=old, seq=event.seq, reason=reason)
