"""What a schedule does: expiry of materials, overdue QC, and the system account that
automatic processes act as."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlmodel import Session, col, select

from lims.custody import ledger
from lims.db import utcnow
from lims.lifecycle import transition
from lims.materials.models import Material
from lims.materials.workflow import machine_for
from lims.parties.models import SYSTEM_USERNAME, Role, User
from lims.qc.evidence import missing_results


def system_user(session: Session) -> User:
    """The account automatic processes act as (it has no password and cannot sign)."""
    user = session.exec(select(User).where(col(User.username) == SYSTEM_USERNAME)).first()
    if user is None:
        user = User(
            username=SYSTEM_USERNAME, printed_name="LIMS automatic process", role=Role.ADMIN
        )
        session.add(user)
        session.flush()
        ledger.append(
            session,
            actor=None,
            action="user.created",
            entity="user",
            entity_id=SYSTEM_USERNAME,
            new={"role": Role.ADMIN, "system": True},
        )
    return user


def expire_due(session: Session, *, now: datetime | None = None) -> list[Material]:
    """Move every material past its expiry from a usable state to EXPIRED (for a schedule)."""
    now = now or utcnow()
    actor = system_user(session)
    candidates = session.exec(
        select(Material)
        .where(
            col(Material.expires_at) <= now,
            col(Material.state).in_(["RELEASED", "ALLOCATED", "LABELED"]),
        )
        .order_by(col(Material.id))
        .with_for_update(key_share=True)
    ).all()
    expired = []
    for material in candidates:
        if "EXPIRED" in machine_for(material.kind).targets(material.state):
            transition(
                session,
                material=material,
                to_state="EXPIRED",
                actor=actor,
                reason=f"expiry {material.expires_at:%Y-%m-%d %H:%M} UTC passed",
            )
            expired.append(material)
    return expired


# Sterility takes 14 days (USP <71>) [34]; a week more to report gives 21 days from the
# start of QC testing [I]. A lab sets its own turnaround from its validated methods.
QC_TURNAROUND = timedelta(days=21)
QC_TESTING = "QC_TESTING"


@dataclass(frozen=True)
class OverdueQc:
    material_id: str
    kind: str
    testing_since: datetime
    missing: list[str]


def qc_testing_since(session: Session, *, material: Material) -> datetime | None:
    """When ``material`` last entered QC testing (from the custody ledger)."""
    since = None
    for event in ledger.history(session, material_id=material.material_id):
        if (
            event.action == "material.state_changed"
            and (event.new or {}).get("state") == QC_TESTING
        ):
            since = event.occurred_at
    return since


def overdue_qc(
    session: Session, *, now: datetime | None = None, turnaround: timedelta = QC_TURNAROUND
) -> list[OverdueQc]:
    """Materials in QC testing for longer than ``turnaround`` whose required results are
    not all in (for a schedule to flag; nothing is changed)."""
    now = now or utcnow()
    overdue = []
    for material in session.exec(
        select(Material).where(col(Material.state) == QC_TESTING).order_by(col(Material.id))
    ).all():
        since = qc_testing_since(session, material=material)
        if since is None or now - since < turnaround:
            continue
        missing = missing_results(session, material=material)
        if missing:
            overdue.append(
                OverdueQc(
                    material_id=material.material_id,
                    kind=material.kind,
                    testing_since=since,
                    missing=[t.name for t in missing],
                )
            )
    return overdue
