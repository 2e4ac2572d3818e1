"""Every SELECT the recall feature makes: a recall by number (the clinic's own only), the
lists, what a recall reached, and the open recall a dose is under (for the dispatch gate)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlmodel import Session, col, select

from lims.errors import NotFound
from lims.materials.models import Material
from lims.notifications.models import NotificationDelivery
from lims.orders.models import DoseOrder
from lims.paging import MAX_PAGE, Listing, page_by_id
from lims.parties.models import Clinic, Patient, Role, User
from lims.recalls.models import Recall, RecallClinic, RecallItem, RecallStatus


def get_recall(session: Session, *, number: str, actor: User, lock: bool = False) -> Recall:
    """A recall by its number; a clinic sees only the recalls that reached it (404 else)."""
    query = select(Recall).where(col(Recall.number) == number.strip().upper())
    if Role(actor.role) == Role.CLINIC:
        query = query.join(RecallClinic, col(RecallClinic.recall_id) == col(Recall.id)).where(
            col(RecallClinic.clinic_id) == actor.clinic_id
        )
    if lock:
        query = query.with_for_update(key_share=True)
    recall = session.exec(query).first()
    if recall is None:
        raise NotFound(f"no recall {number}", field="number")
    return recall


def recalls_listed(
    session: Session,
    *,
    actor: User,
    status: str | None = None,
    limit: int = MAX_PAGE,
    offset: int = 0,
    cursor: str | None = None,
) -> Listing[Recall]:
    """A page of recalls, newest first; a clinic's list holds only those that reached it."""
    query = select(Recall)
    if Role(actor.role) == Role.CLINIC:
        query = query.join(RecallClinic, col(RecallClinic.recall_id) == col(Recall.id)).where(
            col(RecallClinic.clinic_id) == actor.clinic_id
        )
    if status:
        query = query.where(col(Recall.status) == status)
    return page_by_id(
        query,
        session,
        id_column=col(Recall.id),
        limit=limit,
        offset=offset,
        cursor=cursor,
        newest_first=True,
    )


def open_recall_of_lot(session: Session, *, lot: Material) -> Recall | None:
    return session.exec(
        select(Recall).where(col(Recall.lot_id) == lot.id, col(Recall.status) == RecallStatus.OPEN)
    ).first()


def under_open_recall() -> Any:
    """A subquery: the ids of materials an open recall reached."""
    return (
        select(RecallItem.material_id)
        .join(Recall, col(Recall.id) == col(RecallItem.recall_id))
        .where(col(Recall.status) == RecallStatus.OPEN)
    )


def open_recall_of(session: Session, *, material: Material) -> Recall | None:
    """The open recall that reached ``material`` (a dose, a derived lot), if any."""
    return session.exec(
        select(Recall)
        .join(RecallItem, col(RecallItem.recall_id) == col(Recall.id))
        .where(col(RecallItem.material_id) == material.id, col(Recall.status) == RecallStatus.OPEN)
        .order_by(col(Recall.id))
    ).first()


@dataclass(frozen=True)
class AffectedItem:
    item: RecallItem
    material: Material
    order: DoseOrder | None
    patient: Patient | None
    clinic: Clinic | None


def affected_items(
    session: Session, *, recall: Recall, clinic_id: int | None = None
) -> list[AffectedItem]:
    """What the recall reached, nearest first; ``clinic_id``: that clinic's items only."""
    query = (
        select(RecallItem, Material)
        .join(Material, col(Material.id) == col(RecallItem.material_id))
        .where(col(RecallItem.recall_id) == recall.id)
    )
    if clinic_id is not None:
        query = query.where(col(RecallItem.clinic_id) == clinic_id)
    rows = session.exec(query.order_by(col(RecallItem.depth), col(RecallItem.id))).all()
    return [
        AffectedItem(
            i,
            m,
            session.get(DoseOrder, i.order_id) if i.order_id else None,
            session.get(Patient, i.patient_id) if i.patient_id else None,
            session.get(Clinic, i.clinic_id) if i.clinic_id else None,
        )
        for i, m in rows
    ]


@dataclass(frozen=True)
class ClinicNotice:
    """One clinic a recall reached: who was told, how and when, and its acknowledgement."""

    row: RecallClinic
    clinic: Clinic
    deliveries: list[NotificationDelivery]
    acknowledged_by: User | None

    @property
    def acknowledged(self) -> bool:
        return self.row.acknowledged_at is not None

    @property
    def first_told_at(self) -> datetime | None:
        times = [d.delivered_at for d in self.deliveries if d.delivered_at is not None]
        return min(times) if times else None


def clinic_notices(
    session: Session, *, recall: Recall, clinic_id: int | None = None
) -> list[ClinicNotice]:
    query = (
        select(RecallClinic, Clinic)
        .join(Clinic, col(Clinic.id) == col(RecallClinic.clinic_id))
        .where(col(RecallClinic.recall_id) == recall.id)
    )
    if clinic_id is not None:
        query = query.where(col(RecallClinic.clinic_id) == clinic_id)
    notices = []
    for row, clinic in session.exec(query.order_by(col(Clinic.code))).all():
        ids = [i for i in (row.notification_id, row.closed_notification_id) if i is not None]
        deliveries = session.exec(
            select(NotificationDelivery)
            .where(col(NotificationDelivery.notification_id).in_(ids))
            .order_by(col(NotificationDelivery.id))
        ).all()
        by = session.get(User, row.acknowledged_by_id) if row.acknowledged_by_id else None
        notices.append(ClinicNotice(row, clinic, list(deliveries), by))
    return notices


def unacknowledged(session: Session, *, recall: Recall) -> list[Clinic]:
    return list(
        session.exec(
            select(Clinic)
            .join(RecallClinic, col(RecallClinic.clinic_id) == col(Clinic.id))
            .where(
                col(RecallClinic.recall_id) == recall.id,
                col(RecallClinic.acknowledged_at).is_(None),
            )
            .order_by(col(Clinic.code))
        ).all()
    )


def open_recalls_for_clinic(session: Session, *, clinic_id: int) -> list[tuple[Recall, bool]]:
    """The clinic's open recalls, each with whether the clinic acknowledged it (the banner)."""
    rows = session.exec(
        select(Recall, RecallClinic)
        .join(RecallClinic, col(RecallClinic.recall_id) == col(Recall.id))
        .where(col(RecallClinic.clinic_id) == clinic_id, col(Recall.status) == RecallStatus.OPEN)
        .order_by(col(Recall.id).desc())
    ).all()
    return [(r, rc.acknowledged_at is not None) for r, rc in rows]
