"""Reads of materials and storage: lists with filters and pages, and the storage map."""

from __future__ import annotations

import re
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime
from typing import NamedTuple

from sqlmodel import Session, col, select

from lims.errors import NotFound
from lims.materials.models import Material, StorageLocation
from lims.paging import Listing, page_by_id


def materials(
    session: Session,
    *,
    kind: str | None = None,
    state: str | None = None,
    created_after: datetime | None = None,
    limit: int = 50,
    offset: int = 0,
    cursor: str | None = None,
) -> Listing[Material]:
    """Materials, oldest first, optionally of one kind, in one state, made after a time."""
    query = select(Material)
    if kind:
        query = query.where(col(Material.kind) == kind)
    if state:
        query = query.where(col(Material.state) == state.strip().upper())
    if created_after:
        query = query.where(col(Material.created_at) >= created_after)
    return page_by_id(
        query, session, id_column=col(Material.id), limit=limit, offset=offset, cursor=cursor
    )


def in_states(
    session: Session,
    *,
    states: Collection[str],
    kinds: Collection[str] | None = None,
    limit: int | None = None,
) -> list[Material]:
    """Materials in any of ``states`` (and of ``kinds``, if given), oldest first."""
    query = select(Material).where(col(Material.state).in_(list(states)))
    if kinds is not None:
        query = query.where(col(Material.kind).in_(list(kinds)))
    query = query.order_by(col(Material.id))
    if limit is not None:
        query = query.limit(limit)
    return list(session.exec(query).all())


def made_in_step(session: Session, *, step_id: int) -> list[Material]:
    """The materials a step produced, in the order they were made."""
    return list(
        session.exec(
            select(Material)
            .where(col(Material.created_in_step_id) == step_id)
            .order_by(col(Material.id))
        ).all()
    )


class Box(NamedTuple):
    """A storage box's address (a tuple: site, freezer, rack, box)."""

    site: str
    freezer: str
    rack: str
    box: str


@dataclass(frozen=True)
class BoxMap:
    """One storage box: its positions, in order, and the material held in each."""

    positions: list[StorageLocation]
    held: dict[int, Material]

    def grid(self) -> BoxGrid:
        """The box as rows (A, B, ...) by columns (1, 2, ...), from positions named like
        "B3"; a position named otherwise is listed apart, never dropped."""
        cells: dict[tuple[str, int], StorageLocation] = {}
        apart = []
        for p in self.positions:
            match = _GRID_NAME.fullmatch(p.position.strip().upper())
            if match:
                cells[(match[1], int(match[2]))] = p
            else:
                apart.append(p)
        rows = sorted({r for r, _ in cells}, key=lambda r: (len(r), r))
        columns = list(range(1, max((c for _, c in cells), default=0) + 1))
        return BoxGrid(
            columns=columns,
            rows=[(r, [cells.get((r, c)) for c in columns]) for r in rows],
            apart=apart,
        )


_GRID_NAME = re.compile(r"([A-Z]{1,2})(\d{1,3})")


@dataclass(frozen=True)
class BoxGrid:
    columns: list[int]
    rows: list[tuple[str, list[StorageLocation | None]]]
    apart: list[StorageLocation]


def storage_boxes(session: Session) -> list[Box]:
    """Every storage box that has at least one position, by site and freezer."""
    rows = session.exec(
        select(
            StorageLocation.site,
            StorageLocation.freezer,
            StorageLocation.rack,
            StorageLocation.box,
        )
        .distinct()
        .order_by(
            col(StorageLocation.site),
            col(StorageLocation.freezer),
            col(StorageLocation.rack),
            col(StorageLocation.box),
        )
    ).all()
    return [Box(*row) for row in rows]


def box_map(session: Session, *, site: str, freezer: str, rack: str, box: str) -> BoxMap:
    """The positions of one box and what each holds (empty for a box that does not exist)."""
    positions = list(
        session.exec(
            select(StorageLocation)
            .where(
                col(StorageLocation.site) == site,
                col(StorageLocation.freezer) == freezer,
                col(StorageLocation.rack) == rack,
                col(StorageLocation.box) == box,
            )
            .order_by(col(StorageLocation.position))
        ).all()
    )
    ids = [p.id for p in positions if p.id is not None]
    held = {
        m.location_id: m
        for m in session.exec(select(Material).where(col(Material.location_id).in_(ids))).all()
        if m.location_id is not None
    }
    return BoxMap(positions=positions, held=held)


def find_position(
    session: Session, *, site: str, freezer: str, rack: str, box: str, position: str
) -> StorageLocation | None:
    """The storage position at this address, or None when it is not registered."""
    return session.exec(
        select(StorageLocation).where(
            col(StorageLocation.site) == site,
            col(StorageLocation.freezer) == freezer,
            col(StorageLocation.rack) == rack,
            col(StorageLocation.box) == box,
            col(StorageLocation.position) == position,
        )
    ).first()


def get_position(session: Session, *, location_id: int) -> StorageLocation:
    """A storage position by id; NotFound when there is none."""
    location = session.get(StorageLocation, location_id)
    if location is None:
        raise NotFound(f"no storage location {location_id}", field="location_id")
    return location
