"""Deviations against a material: opened by anyone in the lab, closed by QA; release waits
until every one is closed."""

from __future__ import annotations

import secrets

from sqlmodel import Session, col, select

from lims.custody import ledger
from lims.db import utcnow
from lims.errors import NotFound, RuleViolation
from lims.materials.models import Material
from lims.parties.models import Role, User
from lims.qc.models import Deviation, QcResult


def open_deviation(
    session: Session,
    *,
    material: Material,
    description: str,
    actor: User,
    qc_result: QcResult | None = None,
) -> Deviation:
    """Record a deviation against a material; release waits until it is closed."""
    description = ledger.require_reason(description, "a deviation")
    deviation = Deviation(
        # Unique per transaction until the id gives the number (a shared placeholder would
        # make concurrent writers queue on the unique index).
        number=f"tmp-{secrets.token_hex(6)}",
        material_id=material.id,  # type: ignore[arg-type]
        description=description,
        opened_by_id=actor.id,  # type: ignore[arg-type]
        qc_result_id=qc_result.id if qc_result else None,
    )
    session.add(deviation)
    session.flush()
    deviation.number = f"DV-{deviation.id:06d}"
    session.add(deviation)
    session.flush()
    ledger.append(
        session,
        actor=actor,
        action="deviation.opened",
        entity="deviation",
        entity_id=deviation.number,
        materials=[material.material_id],
        new={"description": description, "qc_result": qc_result.id if qc_result else None},
    )
    return deviation


def close_deviation(
    session: Session, *, deviation: Deviation, resolution: str, actor: User
) -> Deviation:
    """QA closes a deviation with its resolution."""
    if Role(actor.role) is not Role.QA:
        raise RuleViolation("only QA closes deviations")
    if deviation.closed_at is not None:
        raise RuleViolation(f"{deviation.number} is already closed")
    deviation.resolution = ledger.require_reason(resolution, "closing a deviation")
    deviation.closed_by_id = actor.id
    deviation.closed_at = utcnow()
    session.add(deviation)
    session.flush()
    material = session.get(Material, deviation.material_id)
    ledger.append(
        session,
        actor=actor,
        action="deviation.closed",
        entity="deviation",
        entity_id=deviation.number,
        materials=[material.material_id] if material else [],
        old={"closed": False},
        new={"closed": True},
        reason=deviation.resolution,
    )
    return deviation


def deviations_of(session: Session, *, material: Material) -> list[Deviation]:
    return list(
        session.exec(
            select(Deviation)
            .where(col(Deviation.material_id) == material.id)
            .order_by(col(Deviation.id))
        ).all()
    )


def get_deviation(session: Session, *, number: str) -> Deviation:
    row = session.exec(select(Deviation).where(col(Deviation.number) == number)).first()
    if row is None:
        raise NotFound(f"no deviation {number}")
    return row
