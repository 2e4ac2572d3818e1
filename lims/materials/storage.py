"""Storage: positions in freezers and racks, and moving a material into one."""

from __future__ import annotations

from sqlalchemy import select
from sqlmodel import Session, col

from lims.custody import ledger
from lims.db import utcnow
from lims.errors import InvalidInput, RuleViolation
from lims.identity.codes import format_material_id
from lims.materials.models import Material, StorageLocation
from lims.materials.workflow import machine_for
from lims.parties.models import User
from lims.units import Quantity


def _describe(material: Material) -> str:
    return f"{material.kind} {format_material_id(material.material_id)}"


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
