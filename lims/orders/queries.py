"""Reads of dose orders: lists with filters and pages, tenancy by actor (a clinic user only
ever sees its own clinic's orders and doses)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlmodel import Session, col, select

from lims.custody.models import CustodyEvent
from lims.dispatch.gate import DispatchRequest, GateFailure, gate_failures
from lims.errors import NotFound
from lims.materials.models import Material
from lims.orders.models import DoseOrder
from lims.paging import Listing, SortKey, keyset_page, page_by_id, page_of
from lims.parties.models import Clinic, Patient, User
from lims.parties.queries import clinic_scope


def orders_visible_to(
    session: Session,
    *,
    actor: User,
    status: str | None = None,
    limit: int = 100,
    offset: int = 0,
    cursor: str | None = None,
) -> Listing[DoseOrder]:
    """The orders the actor may see, oldest first, optionally of one status."""
    query = select(DoseOrder)
    scope = clinic_scope(actor)
    if scope is not None:
        query = query.where(col(DoseOrder.clinic_id) == scope)
    if status:
        query = query.where(col(DoseOrder.status) == status.strip().upper())
    return page_by_id(
        query, session, id_column=col(DoseOrder.id), limit=limit, offset=offset, cursor=cursor
    )


# The orders list's sort keys (the clinic portal's); ties go by order id.
ORDER_SORTS = {
    "planned": SortKey(col(DoseOrder.planned_use_at), lambda row: row[0].planned_use_at),
    "placed": SortKey(col(DoseOrder.placed_at), lambda row: row[0].placed_at),
    "number": SortKey(col(DoseOrder.number), lambda row: row[0].number),
    "status": SortKey(col(DoseOrder.status), lambda row: row[0].status),
}
_BY_ORDER_ID = SortKey(col(DoseOrder.id), lambda row: row[0].id)


def orders_listed(
    session: Session,
    *,
    actor: User,
    status: str | None = None,
    coi_id: str | None = None,
    sort: str = "planned",
    descending: bool = False,
    limit: int = 50,
    after: str | None = None,
    before: str | None = None,
) -> Listing[tuple[DoseOrder, Patient]]:
    """One page of the orders the actor may see with their patients, filtered by status
    and patient, sorted by one of ORDER_SORTS (an unknown key sorts by planned use), paged
    by key (lims.paging.keyset_page)."""
    query = select(DoseOrder, Patient).join(Patient, col(Patient.id) == col(DoseOrder.patient_id))
    scope = clinic_scope(actor)
    if scope is not None:
        query = query.where(col(DoseOrder.clinic_id) == scope)
    if status:
        query = query.where(col(DoseOrder.status) == status.strip().upper())
    if coi_id:
        query = query.where(col(Patient.coi_id) == coi_id.strip().upper())
    key = ORDER_SORTS.get(sort, ORDER_SORTS["planned"])
    return keyset_page(
        query,
        session,
        keys=(key, _BY_ORDER_ID),
        descending=descending,
        limit=limit,
        after=after,
        before=before,
    )


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


# The queue's sort keys, by name: a page asks for one of these, never for a column.
_DUE = SortKey(col(DoseOrder.planned_use_at), lambda row: row[0].planned_use_at)
_QUEUE_ID = SortKey(col(DoseOrder.id), lambda row: row[0].id)
QUEUE_SORTS: dict[str, tuple[tuple[SortKey, ...], bool]] = {
    "due": ((_DUE, _QUEUE_ID), False),
    "-due": ((_DUE, _QUEUE_ID), True),
    "placed": ((_QUEUE_ID,), False),
    "-placed": ((_QUEUE_ID,), True),
}


@dataclass(frozen=True)
class QueueRow:
    order: DoseOrder
    clinic: Clinic
    patient: Patient


def order_queue(
    session: Session,
    *,
    actor: User,
    status: str | None = None,
    clinic: str | None = None,
    product: str | None = None,
    due_before: datetime | None = None,
    sort: str = "due",
    limit: int = 50,
    after: str | None = None,
    before: str | None = None,
) -> Listing[QueueRow]:
    """Orders the actor may see with their clinic and patient, filtered and sorted by name
    (an unknown sort is the default: soonest planned use first), paged by key."""
    query = (
        select(DoseOrder, Clinic, Patient)
        .join(Clinic, col(Clinic.id) == col(DoseOrder.clinic_id))
        .join(Patient, col(Patient.id) == col(DoseOrder.patient_id))
    )
    scope = clinic_scope(actor)
    if scope is not None:
        query = query.where(col(DoseOrder.clinic_id) == scope)
    if status:
        query = query.where(col(DoseOrder.status) == status.strip().upper())
    if clinic:
        query = query.where(col(Clinic.code) == clinic.strip().upper())
    if product:
        query = query.where(col(DoseOrder.product) == product.strip().lower())
    if due_before is not None:
        query = query.where(col(DoseOrder.planned_use_at) <= due_before)
    keys, descending = QUEUE_SORTS.get(sort, QUEUE_SORTS["due"])
    listing = keyset_page(
        query, session, keys=keys, descending=descending, limit=limit, after=after, before=before
    )
    return listing.shown_as(QueueRow(o, c, p) for o, c, p in listing)


def dispatch_preview(session: Session, *, order: DoseOrder) -> list[GateFailure]:
    """The dispatch gate's failures that do not depend on the packing form (state, identity,
    lot, expiry, signatures): what must be put right before scanning is worth trying."""
    dose = session.get(Material, order.dose_material_id) if order.dose_material_id else None
    patient = session.get(Patient, order.patient_id)
    if dose is None or patient is None:
        return []
    request = DispatchRequest(
        recipient_coi=patient.coi_id,
        identifier_1=patient.identifier_1,
        identifier_2=patient.identifier_2,
        planned_use_at=order.planned_use_at,
        transit="0 h",  # the form gives the real transit; its check is the form's
        scanned_label=dose.material_id,
        shipper="(from the form)",
        temperature_logger="(from the form)",
    )
    return [f for f in gate_failures(session, dose=dose, request=request) if f.field is None]


def order_of_dose(session: Session, *, dose: Material) -> DoseOrder | None:
    """The order a dose was allocated to (None for any other material)."""
    if dose.kind != "dose":
        return None
    return session.exec(select(DoseOrder).where(col(DoseOrder.dose_material_id) == dose.id)).first()


def order_numbers_with_consent_prefix(session: Session, *, prefix: str) -> list[str]:
    """The numbers of the orders whose consent reference starts with ``prefix``."""
    return list(
        session.exec(
            select(DoseOrder.number).where(col(DoseOrder.consent_ref).startswith(prefix))
        ).all()
    )
