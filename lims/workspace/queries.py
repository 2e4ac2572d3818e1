"""A home per role: counts and short work lists, from the domain's own rules (the QA
queue's states, QC's turnaround, the order statuses), never re-stated here."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func
from sqlmodel import Session, col, select

from lims.db import utcnow
from lims.materials.kinds import MaterialKind
from lims.materials.models import Material
from lims.materials.workflow import ON_HOLD
from lims.orders.models import DoseOrder, OrderStatus
from lims.qc.maintenance import QC_TESTING, overdue_qc
from lims.qc.models import Deviation
from lims.qc.queries import QA_KINDS

# Released stock expiring within this horizon is listed for planning [I]: a lab's choice
# (a month covers the next treatment session of a monthly schedule), not a rule.
EXPIRY_WARNING = timedelta(days=30)
# How many rows each list on a home shows; the full lists are paginated pages.
HOME_ROWS = 10
USABLE = ("RELEASED", "ALLOCATED", "LABELED")


@dataclass
class WorkList:
    """One tile of a home: what it counts, how many, the first rows and where the rest are."""

    key: str
    title: str
    count: int
    rows: list[Any] = field(default_factory=list)
    more: str = ""


def _count(session: Session, query: Any) -> int:
    return int(session.exec(select(func.count()).select_from(query.subquery())).one())


def _list(session: Session, query: Any) -> list[Any]:
    return list(session.exec(query.limit(HOME_ROWS)).all())


def orders_in(session: Session, *, status: OrderStatus) -> WorkList:
    """Orders of one status, the soonest planned use first."""
    query = (
        select(DoseOrder)
        .where(col(DoseOrder.status) == status)
        .order_by(col(DoseOrder.planned_use_at), col(DoseOrder.id))
    )
    title = {
        OrderStatus.PLACED: "Orders waiting for allocation",
        OrderStatus.ALLOCATED: "Orders to label, sign and dispatch",
    }.get(status, f"Orders {status.lower()}")
    return WorkList(
        key=f"orders-{status.lower()}",
        title=title,
        count=_count(session, query),
        rows=_list(session, query),
        more=f"/lab/orders?status={status}",
    )


def materials_in(session: Session, *, state: str, title: str, key: str) -> WorkList:
    """QA's kinds (lots, SVF, DP cultures) in one state, oldest first."""
    query = (
        select(Material)
        .where(col(Material.state) == state, col(Material.kind).in_(list(QA_KINDS)))
        .order_by(col(Material.id))
    )
    return WorkList(key, title, _count(session, query), _list(session, query), "/qa")


def doses_in(session: Session, *, state: str, title: str, key: str) -> WorkList:
    """Doses waiting for QA in one state (a cancellation's disposition, a quarantine after
    an excursion), oldest first."""
    query = (
        select(Material)
        .where(col(Material.state) == state, col(Material.kind) == MaterialKind.DOSE)
        .order_by(col(Material.id))
    )
    return WorkList(key, title, _count(session, query), _list(session, query))


def held(session: Session) -> WorkList:
    """Everything on hold (any kind), oldest first."""
    query = select(Material).where(col(Material.state) == ON_HOLD).order_by(col(Material.id))
    return WorkList("held", "On hold", _count(session, query), _list(session, query), "/qa")


def expiring(session: Session, *, now: datetime | None = None) -> WorkList:
    """Usable stock that expires within EXPIRY_WARNING, the first to expire first."""
    now = now or utcnow()
    query = (
        select(Material)
        .where(
            col(Material.state).in_(USABLE),
            col(Material.expires_at) <= now + EXPIRY_WARNING,
        )
        .order_by(col(Material.expires_at), col(Material.id))
    )
    days = EXPIRY_WARNING.days
    return WorkList(
        "expiring", f"Expiring within {days} days", _count(session, query), _list(session, query)
    )


def open_deviations(session: Session) -> WorkList:
    """Deviations not yet closed, oldest first, each with its material."""
    query = (
        select(Deviation, Material)
        .join(Material, col(Material.id) == col(Deviation.material_id))
        .where(col(Deviation.closed_at).is_(None))
        .order_by(col(Deviation.id))
    )
    return WorkList(
        "deviations", "Open deviations", _count(session, query), _list(session, query), "/qa"
    )


def overdue(session: Session) -> WorkList:
    """Materials in QC testing past QC's turnaround with results still missing."""
    rows = overdue_qc(session)
    return WorkList("overdue-qc", "QC overdue", len(rows), rows[:HOME_ROWS])


def technician_home(session: Session) -> list[WorkList]:
    """The bench's day: orders to allocate and dispatch, QC under way, expiring stock."""
    return [
        orders_in(session, status=OrderStatus.PLACED),
        orders_in(session, status=OrderStatus.ALLOCATED),
        materials_in(session, state=QC_TESTING, title="In QC testing", key="in-qc"),
        overdue(session),
        expiring(session),
    ]


def qa_home(session: Session) -> list[WorkList]:
    """QA's day: lots to release, QC under way and overdue, holds, deviations, expiry."""
    return [
        materials_in(session, state="QC_PASSED", title="Passed QC, to review", key="qc-passed"),
        materials_in(session, state=QC_TESTING, title="In QC testing", key="in-qc"),
        overdue(session),
        doses_in(
            session, state="CANCELLED", title="Cancelled doses to dispose of", key="doses-cancelled"
        ),
        doses_in(
            session,
            state="CLINIC_QUARANTINE",
            title="Doses in quarantine at a clinic",
            key="doses-quarantine",
        ),
        held(session),
        open_deviations(session),
        expiring(session),
    ]
