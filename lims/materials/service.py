"""Material use cases: ids, finding and locking, registration, custody hand-overs.

State transitions are ``lims.lifecycle.transition`` (the lab's whole policy); storage is
``lims.materials.storage`` and lineage ``lims.materials.lineage``, re-exported here for
their many callers.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session, col

from lims.custody import ledger
from lims.db import is_write_session, utcnow
from lims.errors import IllegalTransition, InvalidInput, NotFound, RuleViolation
from lims.identity.codes import format_material_id, make_material_id, parse_material_id
from lims.materials.kinds import KIND_DIMENSIONS, MaterialKind, Use
from lims.materials.lineage import LineageRow, ancestors, descendants
from lims.materials.models import IdSequence, Material, StorageLocation
from lims.materials.storage import add_storage_location, move_material
from lims.materials.workflow import machine_for
from lims.parties.models import Patient, User
from lims.settings import get_settings
from lims.units import Quantity, QuantityKind

__all__ = [
    "LineageRow",
    "add_storage_location",
    "ancestors",
    "descendants",
    "describe",
    "get_material",
    "hand_over",
    "is_expired",
    "lab_custodian",
    "lock_materials",
    "move_material",
    "next_material_id",
    "register_material",
    "remaining",
]


def next_material_id(session: Session, *, at: datetime | None = None) -> str:
    """Allocate the next material id for this facility and year, race-free on both DBs."""
    facility = get_settings().facility_code
    year = (at or utcnow()).year % 100
    dialect = session.get_bind().dialect.name
    insert_fn = postgresql.insert if dialect == "postgresql" else sqlite.insert
    session.execute(
        insert_fn(IdSequence)
        .values(facility=facility, year=year, next_value=1)
        .on_conflict_do_nothing()
    )
    # One atomic UPDATE ... RETURNING: two writers can never get the same number.
    issued = (
        session.execute(
            update(IdSequence)
            .where(col(IdSequence.facility) == facility, col(IdSequence.year) == year)
            .values(next_value=IdSequence.next_value + 1)
            .returning(col(IdSequence.next_value))
        ).scalar_one()
        - 1
    )
    if issued > 999_999:
        raise RuleViolation(f"facility {facility} has used all 999,999 ids for 20{year:02d}")
    return make_material_id(facility, year, issued)


def get_material(session: Session, material_id: str, *, lock: bool = False) -> Material:
    """Find a material by its id as typed or scanned (check character verified)."""
    stored = parse_material_id(material_id)
    query = select(Material).where(col(Material.material_id) == stored)
    if lock:
        query = query.with_for_update(key_share=True)
    material = session.execute(query).scalar_one_or_none()
    if material is None:
        raise NotFound(f"no material {format_material_id(stored)}", field="material_id")
    return material


def lock_materials(session: Session, material_ids: list[str]) -> list[Material]:
    """Load and row-lock materials in a fixed order (no deadlock between two writers).

    The lock is FOR NO KEY UPDATE: it serialises writers of the row but not inserts that
    only reference it (lineage edges, QC results), which take a key-share lock."""
    if not is_write_session(session):
        raise RuleViolation("changing stock needs a write transaction (lims.db.write_session)")
    stored = sorted({parse_material_id(m) for m in material_ids})
    rows = session.execute(
        select(Material)
        .where(col(Material.material_id).in_(stored))
        .order_by(col(Material.material_id))
        .with_for_update(key_share=True)
        .execution_options(populate_existing=True)
    ).scalars()
    found = {m.material_id: m for m in rows}
    missing = [format_material_id(m) for m in stored if m not in found]
    if missing:
        raise NotFound(f"no material {', '.join(missing)}", field="material_id")
    return [found[parse_material_id(m)] for m in material_ids]


def check_quantity_kind(kind: MaterialKind, quantity: Quantity) -> None:
    allowed = KIND_DIMENSIONS[kind]
    if quantity.kind not in allowed:
        expected = " or ".join(k.value for k in allowed)
        raise InvalidInput(
            f"{kind.value} is measured as {expected}, got {quantity}", field="quantity"
        )


def register_material(
    session: Session,
    *,
    kind: MaterialKind,
    patient: Patient,
    use: Use,
    quantity: Quantity,
    actor: User,
    state: str,
    collected_at: datetime | None = None,
    expires_at: datetime | None = None,
    container: str | None = None,
    location: StorageLocation | None = None,
    custodian: str | None = None,
) -> Material:
    """Register starting material (lipoaspirate, scalp biopsy): announced by its clinic or
    registered on arrival at the lab."""
    machine = machine_for(kind)
    if state not in machine.initial:
        raise IllegalTransition(
            f"a new {kind.value} starts as {' or '.join(sorted(machine.initial))}, not {state}"
        )
    check_quantity_kind(kind, quantity)
    if quantity.canonical <= 0:
        raise InvalidInput(f"a new {kind.value} needs an amount above zero", field="quantity")
    now = utcnow()
    if collected_at is not None and collected_at > now:
        raise InvalidInput("collection time is in the future", field="collected_at")
    if use is Use.AUTOLOGOUS and patient.donor_type == "allogeneic_donor":
        raise RuleViolation("an allogeneic donor's tissue cannot be registered as autologous")
    material = Material(
        material_id=next_material_id(session, at=now),
        kind=kind,
        state=state,
        patient_id=patient.id,  # type: ignore[arg-type]
        use=use,
        quantity_kind=quantity.kind,
        entered_value=quantity.value,
        entered_unit=quantity.unit,
        initial_canonical=quantity.canonical,
        remaining_canonical=quantity.canonical,
        collected_at=collected_at,
        expires_at=expires_at,
        container=container,
        custodian=custodian or lab_custodian(),
        created_by_id=actor.id,  # type: ignore[arg-type]
        created_at=now,
        updated_at=now,
    )
    session.add(material)
    session.flush()
    ledger.append(
        session,
        actor=actor,
        action="material.registered",
        entity="material",
        entity_id=material.material_id,
        materials=[material.material_id],
        to=material.custodian,
        new=describe(material, patient=patient),
    )
    if location is not None:
        move_material(session, material=material, location=location, actor=actor)
    return material


def _describe(material: Material) -> str:
    return f"{material.kind} {format_material_id(material.material_id)}"


CUSTODIAN_KINDS = ("lab", "courier", "clinic")


def lab_custodian() -> str:
    return f"lab:{get_settings().facility_code}"


def hand_over(
    session: Session,
    *,
    material: Material,
    to_custodian: str,
    actor: User,
    reason: str | None = None,
) -> Material:
    """Record that ``material`` passed to another person or site (courier, clinic, lab)."""
    kind, _, name = (to_custodian or "").partition(":")
    if kind not in CUSTODIAN_KINDS or not name.strip() or len(to_custodian) > 120:
        raise InvalidInput(
            "a custodian is 'lab:<site>', 'courier:<company and waybill>' or 'clinic:<code>'",
            field="to_custodian",
        )
    if material.state in machine_for(material.kind).terminal:
        raise RuleViolation(f"{_describe(material)} is {material.state}; it cannot be handed on")
    if material.custodian == to_custodian:
        raise RuleViolation(f"{_describe(material)} is already with {to_custodian}")
    previous = material.custodian
    material.custodian = to_custodian
    material.updated_at = utcnow()
    session.add(material)
    session.flush()
    ledger.append(
        session,
        actor=actor,
        action="custody.handed_over",
        entity="material",
        entity_id=material.material_id,
        materials=[material.material_id],
        from_=previous,
        to=to_custodian,
        reason=reason,
    )
    return material


def describe(material: Material, *, patient: Patient | None = None) -> dict[str, object]:
    """The fields of a material as a ledger event records them."""
    return {
        "kind": material.kind,
        "state": material.state,
        "quantity": {"value": material.entered_value, "unit": material.entered_unit},
        "canonical": material.initial_canonical,
        "patient_id": material.patient_id,
        "coi": patient.coi_id if patient else None,
        "recipient_id": material.recipient_id,
        "use": material.use,
        "collected_at": material.collected_at,
        "expires_at": material.expires_at,
        "container": material.container,
        "passage": material.passage,
        "population_doublings": material.population_doublings,
        "created_in_step": material.created_in_step_id,
    }


def remaining(material: Material) -> Quantity:
    return Quantity.from_canonical(
        QuantityKind(material.quantity_kind), material.remaining_canonical
    )


def is_expired(material: Material, at: datetime | None = None) -> bool:
    return material.expires_at is not None and material.expires_at <= (at or utcnow())
