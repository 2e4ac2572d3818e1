"""Material use cases: ids, registration, state transitions, storage moves, lineage."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import CompoundSelect, func, literal, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session, col

from lims.custody import ledger
from lims.db import is_write_session, utcnow
from lims.errors import IllegalTransition, InvalidInput, NotFound, RuleViolation
from lims.identity.codes import format_material_id, make_material_id, parse_material_id
from lims.materials.kinds import KIND_DIMENSIONS, MaterialKind, Use
from lims.materials.models import IdSequence, LineageEdge, Material, StorageLocation
from lims.materials.workflow import (
    EXPIRED,
    ON_HOLD,
    REASON_REQUIRED,
    RELEASED,
    TransitionContext,
    machine_for,
)
from lims.parties.models import Patient, Role, User
from lims.settings import get_settings
from lims.units import Quantity


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
        query = query.with_for_update()
    material = session.execute(query).scalar_one_or_none()
    if material is None:
        raise NotFound(f"no material {format_material_id(stored)}", field="material_id")
    return material


def lock_materials(session: Session, material_ids: list[str]) -> list[Material]:
    """Load and row-lock materials in a fixed order (no deadlock between two writers)."""
    if not is_write_session(session):
        raise RuleViolation("changing stock needs a write transaction (lims.db.write_session)")
    stored = sorted({parse_material_id(m) for m in material_ids})
    rows = session.execute(
        select(Material)
        .where(col(Material.material_id).in_(stored))
        .order_by(col(Material.material_id))
        .with_for_update()
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


def transition(
    session: Session,
    *,
    material: Material,
    to_state: str,
    actor: User,
    reason: str | None = None,
) -> Material:
    """Move ``material`` to ``to_state`` if the kind's machine, roles and guards allow it."""
    machine = machine_for(material.kind)
    current = material.state
    allowed = machine.targets(current, material.held_from_state)
    if to_state not in allowed:
        options = ", ".join(sorted(allowed)) or "nothing (final state)"
        hint = machine.hints.get(to_state)
        quarantine = " (QUARANTINE)" if current in machine.quarantine else ""
        raise IllegalTransition(
            f"{_describe(material)} is {current}{quarantine}; it cannot go to {to_state}"
            + (f": {hint}" if hint else "")
            + f". From {current} it can go to: {options}",
            field="state",
        )
    roles = machine.roles_for(to_state)
    if Role(actor.role) not in roles:
        raise RuleViolation(
            f"{actor.role} {actor.username} may not move {_describe(material)} to "
            f"{to_state}; that needs {' or '.join(sorted(r.value for r in roles))}"
        )
    if to_state in REASON_REQUIRED and not (reason and reason.strip()):
        raise InvalidInput(f"moving to {to_state} needs a reason", field="reason")
    ctx = TransitionContext(session=session, actor=actor, reason=reason, now=utcnow())
    problems: list[str] = []
    for guard in GUARDS.get(to_state, []):
        problems.extend(guard(material, ctx))
    if problems:
        raise IllegalTransition(
            f"{_describe(material)} cannot go to {to_state}: " + "; ".join(problems)
        )
    ledger.append(
        session,
        actor=actor,
        action="material.state_changed",
        entity="material",
        entity_id=material.material_id,
        materials=[material.material_id],
        old={"state": current},
        new={"state": to_state},
        reason=reason,
    )
    if to_state == ON_HOLD:
        material.held_from_state = current
    elif current == ON_HOLD:
        material.held_from_state = None
    material.state = to_state
    material.updated_at = ctx.now
    if to_state in machine.terminal:
        material.location_id = None
    session.add(material)
    session.flush()
    return material


# Steps that work on a material where it is (intake, lyophilisation, a count), as opposed
# to steps that take from it to make something else (a dose, a passage).
PROCESSING_MODES = ("inspect", "in_place", "measure")


def processing_step_ids(material: Material) -> CompoundSelect[int | None]:
    """A query for the ids of the steps that made ``material`` or processed it in place:
    its batch record (what a release signs and whose performers may not release it)."""
    from lims.steps.models import Step, StepInput

    made = select(col(Step.id)).where(col(Step.id) == material.created_in_step_id)
    processed = select(col(StepInput.step_id)).where(
        col(StepInput.material_id) == material.id,
        col(StepInput.mode).in_(PROCESSING_MODES),
    )
    return made.union(processed)


def _performers(session: Session, material: Material) -> set[int]:
    """Users who performed a step of this material's batch record."""
    from lims.steps.models import Step

    ids = processing_step_ids(material).subquery()
    query = select(col(Step.performed_by_id)).where(col(Step.id).in_(select(ids.c[0])))
    return set(session.execute(query).scalars())


def _release_guard(material: Material, ctx: TransitionContext) -> list[str]:
    problems = []
    if ctx.actor.id in _performers(ctx.session, material):
        problems.append(
            f"{ctx.actor.printed_name} recorded a processing step of this material; "
            "release needs a second person (four-eyes)"
        )
    if material.expires_at is not None and material.expires_at <= ctx.now:
        problems.append(f"it expired at {material.expires_at:%Y-%m-%d %H:%M} UTC")
    # QC results, deviations, donor eligibility and the release signature (lims.qc).
    from lims.qc.service import release_problems

    problems.extend(release_problems(material, ctx))
    return problems


def _expiry_guard(material: Material, ctx: TransitionContext) -> list[str]:
    if material.expires_at is None or material.expires_at > ctx.now:
        return [f"it does not expire until {material.expires_at or 'never'}"]
    return []


GUARDS = {RELEASED: [_release_guard], EXPIRED: [_expiry_guard]}


def move_material(
    session: Session, *, material: Material, location: StorageLocation, actor: User
) -> Material:
    """Put ``material`` in a storage position; a position holds one material at a time."""
    if material.state in machine_for(material.kind).terminal:
        raise RuleViolation(f"{_describe(material)} is {material.state}; it is not stored")
    occupant = session.execute(
        select(Material).where(col(Material.location_id) == location.id)
    ).scalar_one_or_none()
    if occupant is not None and occupant.id != material.id:
        raise RuleViolation(f"{location.label()} already holds {_describe(occupant)}")
    previous = session.get(StorageLocation, material.location_id) if material.location_id else None
    if location.id is None:
        session.flush()
    material.location_id = location.id
    material.updated_at = utcnow()
    session.add(material)
    session.flush()
    ledger.append(
        session,
        actor=actor,
        action="material.moved",
        entity="material",
        entity_id=material.material_id,
        materials=[material.material_id],
        from_=previous.label() if previous else None,
        to=location.label(),
    )
    return material


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


def add_storage_location(
    session: Session,
    *,
    site: str,
    freezer: str,
    rack: str,
    box: str,
    position: str,
    actor: User,
    temperature: Quantity | None = None,
) -> StorageLocation:
    """Register a storage position (one material fits in it)."""
    parts = {"site": site, "freezer": freezer, "rack": rack, "box": box, "position": position}
    for name, value in parts.items():
        if not isinstance(value, str) or not value.strip() or "/" in value:
            raise InvalidInput(f"{name} is required and may not contain '/'", field=name)
    location = StorageLocation(
        site=site.strip(),
        freezer=freezer.strip(),
        rack=rack.strip(),
        box=box.strip(),
        position=position.strip(),
        temperature_c=temperature.canonical if temperature is not None else None,
    )
    exists = session.execute(
        select(StorageLocation).where(
            col(StorageLocation.site) == location.site,
            col(StorageLocation.freezer) == location.freezer,
            col(StorageLocation.rack) == location.rack,
            col(StorageLocation.box) == location.box,
            col(StorageLocation.position) == location.position,
        )
    ).scalar_one_or_none()
    if exists is not None:
        raise RuleViolation(f"storage position {exists.label()} already exists")
    session.add(location)
    session.flush()
    ledger.append(
        session,
        actor=actor,
        action="storage.position_added",
        entity="storage_location",
        entity_id=location.id or 0,
        new={**parts, "temperature": temperature},
    )
    return location


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


@dataclass(frozen=True)
class LineageRow:
    material_id: str
    kind: str
    state: str
    depth: int
    remaining: Quantity
    initial: Quantity
    patient_id: int


def _lineage(session: Session, material: Material, *, up: bool) -> list[LineageRow]:
    edge = LineageEdge.__table__.c  # type: ignore[attr-defined]
    near, far = (edge.child_id, edge.parent_id) if up else (edge.parent_id, edge.child_id)
    seed = select(far.label("id"), literal(1).label("depth")).where(near == material.id)
    tree = seed.cte("tree", recursive=True)
    step = select(far, tree.c.depth + 1).join(tree, near == tree.c.id)
    # UNION, not UNION ALL: a material reached by two pooled paths at the same depth is
    # kept once, so pooling does not multiply the rows the recursion carries.
    tree = tree.union(step)
    nearest = (
        select(tree.c.id, func.min(tree.c.depth).label("depth")).group_by(tree.c.id).subquery()
    )
    rows = session.execute(
        select(Material, nearest.c.depth)
        .join(nearest, col(Material.id) == nearest.c.id)
        .order_by(nearest.c.depth, col(Material.id))
    ).all()
    return [_row(m, depth) for m, depth in rows]


def _row(m: Material, depth: int) -> LineageRow:
    from lims.units import QuantityKind

    kind = QuantityKind(m.quantity_kind)
    return LineageRow(
        material_id=m.material_id,
        kind=m.kind,
        state=m.state,
        depth=depth,
        remaining=Quantity.from_canonical(kind, m.remaining_canonical),
        initial=Quantity.from_canonical(kind, m.initial_canonical),
        patient_id=m.patient_id,
    )


def ancestors(session: Session, *, material: Material) -> list[LineageRow]:
    """Every material this one came from, nearest first (recursive CTE)."""
    return _lineage(session, material, up=True)


def descendants(session: Session, *, material: Material) -> list[LineageRow]:
    """Every material made from this one, nearest first (recursive CTE)."""
    return _lineage(session, material, up=False)


def remaining(material: Material) -> Quantity:
    from lims.units import QuantityKind

    return Quantity.from_canonical(
        QuantityKind(material.quantity_kind), material.remaining_canonical
    )


def is_expired(material: Material, at: datetime | None = None) -> bool:
    return material.expires_at is not None and material.expires_at <= (at or utcnow())
