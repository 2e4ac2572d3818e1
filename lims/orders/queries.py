"""Reads of dose orders: lists with filters and pages, tenancy by actor (a clinic user only
ever sees its own clinic's orders and doses)."""

from __future__ import annotations

from sqlmodel import Session, col, select

from lims.custody.models import CustodyEvent
from lims.errors import NotFound
from lims.materials.models import Material
from lims.orders.models import DoseOrder
from lims.paging import Listing, page_of
from lims.parties.models import User
from lims.parties.queries import clinic_scope


def orders_visible_to(
    session: Session,
    *,
    actor: User,
    status: str | None = None,
    limit: int = 100,
    offset: int = 0,
) -> Listing[DoseOrder]:
    """The orders the actor may see, oldest first, optionally of one status."""
    query = select(DoseOrder)
    scope = clinic_scope(actor)
    if scope is not None:
        query = query.where(col(DoseOrder.clinic_id) == scope)
    if status:
        query = query.where(col(DoseOrder.status) == status.strip().upper())
    return page_of(query.order_by(col(DoseOrder.id)), session, limit=limit, offset=offset)


def doses_visible_to(
    session: Session, *, actor: User, limit: int = 100, offset: int = 0
) -> Listing[Material]:
    """The doses allocated to orders the actor may see, in order of their orders."""
    query = select(Material).join(DoseOrder, col(DoseOrder.dose_material_id) == col(Material.id))
    scope = clinic_scope(actor)
    if scope is not None:
        query = query.where(col(DoseOrder.clinic_id) == scope)
    return page_of(query.order_by(col(DoseOrder.id)), session, limit=limit, offset=offset)


def find_order(session: Session, *, number: str) -> DoseOrder:
    """An order by its number, for the lab's own flows; NotFound when there is none."""
    found = session.exec(
        select(DoseOrder).where(col(DoseOrder.number) == (number or "").strip().upper())
    ).first()
    if found is None:
        raise NotFound(f"no order {number}", field="order")
    return found


def order_timeline(session: Session, *, order: DoseOrder) -> list[CustodyEvent]:
    """The ledger's events about one order (placed, status changes), oldest first."""
    return list(
        session.exec(
            select(CustodyEvent)
            .where(col(CustodyEvent.entity) == "order", col(CustodyEvent.entity_id) == order.number)
            .order_by(col(CustodyEvent.seq))
        ).all()
    )
