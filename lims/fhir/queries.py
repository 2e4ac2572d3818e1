"""The SELECTs behind FHIR reads and searches, with tenancy by actor: a clinic user finds
only its own clinic's patients, orders, doses and specimens (another clinic's are simply
not there); lab staff and auditors find every clinic's."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy import or_
from sqlalchemy.orm import aliased
from sqlmodel import Session, col, select

from lims.fhir import systems
from lims.fhir.resources import (
    DOSE_AVAILABLE,
    REQUEST_STATUS,
    SPECIMEN_KINDS,
    SPECIMEN_UNAVAILABLE,
    SPECIMEN_UNSATISFACTORY,
    TASK_STATUS,
)
from lims.fhir.search import Criteria
from lims.materials.models import LineageEdge, Material, StorageLocation
from lims.orders.models import DoseOrder
from lims.paging import Listing, page_of
from lims.parties.models import Patient, User
from lims.parties.queries import clinic_scope
from lims.recalls.models import RecallItem
from lims.recalls.queries import under_open_recall


@dataclass(frozen=True)
class OrderRow:
    order: DoseOrder
    coi_id: str
    dose_id: str | None


@dataclass(frozen=True)
class DoseRow:
    dose: Material
    order: DoseOrder
    coi_id: str
    lot_id: str | None
    storage_c: Decimal | None
    recalled: bool = False  # an open recall reached it: not available


@dataclass(frozen=True)
class SpecimenRow:
    material: Material
    coi_id: str


def _identified(criteria: Criteria, system: str) -> list[str] | None:
    """The identifier values of ``system`` (or of no system) asked for; None: not asked."""
    if criteria.identifiers is None:
        return None
    return [i.value for i in criteria.identifiers if i.system in (None, system)]


def _scoped(query: Any, actor: User, clinic_column: Any) -> Any:
    scope = clinic_scope(actor)
    return query if scope is None else query.where(clinic_column == scope)


def _page(session: Session, query: Any, criteria: Criteria) -> Listing[Any]:
    return page_of(query, session, limit=criteria.count, offset=criteria.offset)


def _statuses(criteria: Criteria, mapping: dict[Any, str]) -> list[str] | None:
    """The lims statuses behind the FHIR statuses asked for."""
    if criteria.statuses is None:
        return None
    return [str(status) for status, code in mapping.items() if code in criteria.statuses]


def patients(session: Session, *, actor: User, criteria: Criteria) -> Listing[Patient]:
    """Patients the actor may see matching ``criteria``, oldest first."""
    query = _scoped(select(Patient), actor, col(Patient.clinic_id))
    if criteria.ids is not None:
        query = query.where(col(Patient.coi_id).in_(criteria.ids))
    wanted = _identified(criteria, systems.COI)
    if wanted is not None:
        query = query.where(col(Patient.coi_id).in_(wanted))
    return _page(session, query.order_by(col(Patient.id)), criteria)


def orders(
    session: Session, *, actor: User, criteria: Criteria, as_task: bool = False
) -> Listing[OrderRow]:
    """Orders (as ServiceRequests, or as Tasks for their statuses) matching ``criteria``."""
    dose = aliased(Material)
    query = (
        select(DoseOrder, Patient.coi_id, dose.material_id)
        .join(Patient, col(Patient.id) == col(DoseOrder.patient_id))
        .outerjoin(dose, col(dose.id) == col(DoseOrder.dose_material_id))
    )
    query = _scoped(query, actor, col(DoseOrder.clinic_id))
    if criteria.ids is not None:
        query = query.where(col(DoseOrder.number).in_(criteria.ids))
    wanted = _identified(criteria, systems.ORDER)
    if wanted is not None:
        query = query.where(col(DoseOrder.number).in_(wanted))
    if criteria.patients is not None:
        query = query.where(col(Patient.coi_id).in_(criteria.patients))
    statuses = _statuses(criteria, TASK_STATUS if as_task else REQUEST_STATUS)
    if statuses is not None:
        query = query.where(col(DoseOrder.status).in_(statuses))
    listing = _page(session, query.order_by(col(DoseOrder.id)), criteria)
    return _relist(listing, [OrderRow(o, coi, dose_id) for o, coi, dose_id in listing])


def doses(session: Session, *, actor: User, criteria: Criteria) -> Listing[DoseRow]:
    """Doses allocated to orders the actor may see, matching ``criteria``."""
    query = (
        select(Material, DoseOrder, Patient.coi_id, col(StorageLocation.temperature_c))
        .join(DoseOrder, col(DoseOrder.dose_material_id) == col(Material.id))
        .join(Patient, col(Patient.id) == col(DoseOrder.patient_id))
        .outerjoin(StorageLocation, col(StorageLocation.id) == col(Material.location_id))
    )
    query = _scoped(query, actor, col(DoseOrder.clinic_id))
    if criteria.ids is not None:
        query = query.where(col(Material.material_id).in_(criteria.ids))
    if criteria.identifiers is not None:
        by_id = _identified(criteria, systems.MATERIAL) or []
        by_lot = [i.value for i in criteria.identifiers if i.system in (None, systems.LOT)]
        lot = aliased(Material)
        from_lot = (
            select(LineageEdge.child_id)
            .join(lot, col(lot.id) == col(LineageEdge.parent_id))
            .where(col(lot.material_id).in_(by_lot))
        )
        query = query.where(col(Material.material_id).in_(by_id) | col(Material.id).in_(from_lot))
    if criteria.patients is not None:
        query = query.where(col(Patient.coi_id).in_(criteria.patients))
    if criteria.statuses is not None:
        # A dose an open recall reached is not available, whatever its state (one still
        # in the lab keeps its state and is blocked at the dispatch gate).
        available = col(Material.state).in_(DOSE_AVAILABLE) & ~col(Material.id).in_(
            under_open_recall()
        )
        if criteria.statuses == ("available",):
            query = query.where(available)
        elif criteria.statuses == ("unavailable",):
            query = query.where(~available)
    listing = _page(session, query.order_by(col(DoseOrder.id)), criteria)
    ids = [m.id for m, *_ in listing if m.id is not None]
    lots = lots_of(session, dose_ids=ids)
    recalled = set(
        session.exec(
            select(RecallItem.material_id).where(
                col(RecallItem.material_id).in_(ids),
                col(RecallItem.material_id).in_(under_open_recall()),
            )
        ).all()
    )
    return _relist(
        listing,
        [
            DoseRow(m, o, coi, lots.get(m.id or 0), temperature, m.id in recalled)
            for m, o, coi, temperature in listing
        ],
    )


def lots_of(session: Session, *, dose_ids: Collection[int]) -> dict[int, str]:
    """The lot (the parent in lineage) each dose was drawn from."""
    if not dose_ids:
        return {}
    rows = session.exec(
        select(LineageEdge.child_id, Material.material_id)
        .join(Material, col(Material.id) == col(LineageEdge.parent_id))
        .where(col(LineageEdge.child_id).in_(list(dose_ids)))
        .order_by(col(LineageEdge.id))
    ).all()
    return {child: lot for child, lot in rows}


def specimens(session: Session, *, actor: User, criteria: Criteria) -> Listing[SpecimenRow]:
    """Lipoaspirates and scalp biopsies of patients the actor may see."""
    kinds = list(SPECIMEN_KINDS)
    if criteria.types is not None:
        kinds = [k for k in kinds if k in criteria.types]
    query = (
        select(Material, Patient.coi_id)
        .join(Patient, col(Patient.id) == col(Material.patient_id))
        .where(col(Material.kind).in_(kinds))
    )
    query = _scoped(query, actor, col(Patient.clinic_id))
    if criteria.ids is not None:
        query = query.where(col(Material.material_id).in_(criteria.ids))
    wanted = _identified(criteria, systems.MATERIAL)
    if wanted is not None:
        query = query.where(col(Material.material_id).in_(wanted))
    if criteria.patients is not None:
        query = query.where(col(Patient.coi_id).in_(criteria.patients))
    if criteria.statuses is not None:
        state = col(Material.state)
        unusual = SPECIMEN_UNSATISFACTORY | SPECIMEN_UNAVAILABLE
        clauses = {
            "unsatisfactory": state.in_(SPECIMEN_UNSATISFACTORY),
            "unavailable": state.in_(SPECIMEN_UNAVAILABLE),
            "available": ~state.in_(unusual),
        }
        chosen = [clauses[s] for s in criteria.statuses]
        query = query.where(or_(*chosen))
    listing = _page(session, query.order_by(col(Material.id)), criteria)
    return _relist(listing, [SpecimenRow(m, coi) for m, coi in listing])


def _relist(listing: Listing[Any], rows: list[Any]) -> Listing[Any]:
    return Listing(
        rows, limit=listing.limit, offset=listing.offset, next_offset=listing.next_offset
    )
