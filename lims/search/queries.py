"""Search across the ids people type or scan: material ids (with or without spaces, with
or without the check character, or their first characters), order numbers, patients'
chain-of-identity ids and the clinic's own patient reference, reagent lot numbers and
deviation numbers. Tenancy by actor: a clinic finds only its own patients, orders and
their materials; reagent lots and deviations are the lab's.

Every lookup is an exact match or a prefix range on an indexed column (``>= prefix`` and
``< prefix + U+FFFF``), never a LIKE with a leading wildcard, so a search costs a few index
probes at a million materials.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, or_
from sqlmodel import Session, col, select

from lims.identity.codes import COI_PREFIX, MATERIAL_ID_LENGTH
from lims.materials.models import Material
from lims.orders.models import DoseOrder
from lims.parties.models import Patient, ReagentLot, User
from lims.parties.queries import clinic_scope
from lims.qc.models import Deviation

_SEPARATORS = re.compile(r"[\s\-_]")
# The most hits of one kind shown for one search; more means the text is too short.
PER_KIND = 20
# A prefix this short matches too much to be useful (a facility code alone).
MIN_PREFIX = 5
_END = "\uffff"


@dataclass(frozen=True, slots=True)
class Hit:
    """One record a search found: its kind, its key (material id, order number, ...), and
    what to show of it."""

    kind: str  # "material", "order", "patient", "reagent_lot", "deviation"
    key: str
    detail: str
    about: str | None = None  # a deviation's material id: its page is the material's


def _prefix(column: Any, text: str) -> ColumnElement[bool]:
    return (col(column) >= text) & (col(column) < text + _END)


def _materials(session: Session, compact: str, scope: int | None) -> list[Hit]:
    if not (MIN_PREFIX <= len(compact) <= MATERIAL_ID_LENGTH) or not compact.isalnum():
        return []
    query = select(Material)
    if len(compact) == MATERIAL_ID_LENGTH:
        query = query.where(col(Material.material_id) == compact)
    else:  # no check character, or only the first characters
        query = query.where(_prefix(Material.material_id, compact))
    if scope is not None:
        own = select(Patient.id).where(col(Patient.clinic_id) == scope)
        query = query.where(
            or_(col(Material.patient_id).in_(own), col(Material.recipient_id).in_(own))
        )
    rows = session.exec(query.order_by(col(Material.material_id)).limit(PER_KIND)).all()
    return [Hit("material", m.material_id, f"{m.kind}, {m.state}") for m in rows]


def _orders(session: Session, compact: str, scope: int | None) -> list[Hit]:
    digits = compact.removeprefix("ORD")
    if not digits.isdigit() or len(digits) > 6:
        return []
    query = select(DoseOrder).where(col(DoseOrder.number) == f"ORD-{int(digits):06d}")
    if scope is not None:
        query = query.where(col(DoseOrder.clinic_id) == scope)
    return [Hit("order", o.number, o.status) for o in session.exec(query).all()]


def _patients(session: Session, text: str, compact: str, scope: int | None) -> list[Hit]:
    conditions = [col(Patient.identifier_2) == text]
    if compact.startswith(COI_PREFIX) and len(compact) > len(COI_PREFIX) + 3:
        body = compact[len(COI_PREFIX) :]
        dashed = "-".join(filter(None, (COI_PREFIX, body[:4], body[4:8], body[8:9])))
        conditions.append(_prefix(Patient.coi_id, dashed))
    query = select(Patient).where(or_(*conditions))
    if scope is not None:
        query = query.where(col(Patient.clinic_id) == scope)
    rows = session.exec(query.order_by(col(Patient.id)).limit(PER_KIND)).all()
    return [Hit("patient", p.coi_id, p.identifier_2) for p in rows]


def _lab_only(session: Session, text: str, compact: str) -> list[Hit]:
    hits = []
    if compact.startswith("DV") and compact[2:].isdigit() and len(compact) <= 8:
        number = f"DV-{int(compact[2:]):06d}"
        found = session.exec(
            select(Deviation, Material)
            .join(Material, col(Material.id) == col(Deviation.material_id))
            .where(col(Deviation.number) == number)
        ).all()
        hits += [
            Hit("deviation", d.number, "open" if d.closed_at is None else "closed", m.material_id)
            for d, m in found
        ]
    lots = session.exec(
        select(ReagentLot)
        .where(col(ReagentLot.lot_number) == text)
        .order_by(col(ReagentLot.id))
        .limit(PER_KIND)
    ).all()
    hits += [Hit("reagent_lot", f"{r.reagent_type}:{r.lot_number}", r.supplier) for r in lots]
    return hits


def search(session: Session, *, actor: User, text: str) -> list[Hit]:
    """Everything the actor may see whose id matches ``text``: materials, orders,
    patients, then (lab staff and auditors) deviations and reagent lots."""
    text = (text or "").strip()[:100]
    if not text:
        return []
    compact = _SEPARATORS.sub("", text).upper()
    scope = clinic_scope(actor)
    hits = [
        *_materials(session, compact, scope),
        *_orders(session, compact, scope),
        *_patients(session, text, compact, scope),
    ]
    if scope is None:
        hits += _lab_only(session, text, compact)
    return hits
