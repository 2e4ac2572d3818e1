"""Reads for operations: the signed checkpoints a restored ledger is checked against."""

from __future__ import annotations

from sqlmodel import Session, col, select

from lims.custody.models import CustodyCheckpoint


def all_checkpoints(session: Session) -> list[CustodyCheckpoint]:
    """Every signed checkpoint, oldest first."""
    return list(session.exec(select(CustodyCheckpoint).order_by(col(CustodyCheckpoint.id))))


def orders_waiting(session: Session) -> int:
    """Orders placed and not yet allocated (the lab's queue)."""
    from sqlalchemy import func

    from lims.orders.models import DoseOrder, OrderStatus

    query = select(func.count()).select_from(DoseOrder)
    return int(session.exec(query.where(col(DoseOrder.status) == OrderStatus.PLACED)).one())


def custody_events(session: Session) -> int:
    """Events appended to the ledger so far (the head's sequence number)."""
    from lims.custody.models import CustodyHead

    head = session.exec(select(CustodyHead.seq)).first()
    return int(head or 0)


def notifications_pending(session: Session) -> int:
    """Deliveries (webhook or e-mail) not yet made: due now or waiting out a back-off."""
    from sqlalchemy import func

    from lims.notifications.models import DeliveryStatus, NotificationDelivery

    query = select(func.count()).select_from(NotificationDelivery)
    pending = col(NotificationDelivery.status) == DeliveryStatus.PENDING
    return int(session.exec(query.where(pending)).one())
