"""Reads of materials and storage: filters, pages, the storage map (SQLite and
PostgreSQL)."""

from datetime import timedelta

import pytest
from sqlalchemy import Engine

from lims.db import read_session, utcnow, write_session
from lims.errors import NotFound
from lims.materials.queries import (
    box_map,
    find_position,
    get_position,
    in_states,
    materials,
    storage_boxes,
)
from lims.materials.service import add_storage_location, get_material, move_material
from lims.units import QuantityKind, parse_quantity
from tests.builders import Lab
from tests.conftest import World


def test_materials_by_kind_state_time_and_page(engine: Engine, world: World) -> None:
    lab = Lab.start(engine, world)
    received = [lab.lipoaspirate() for _ in range(3)]
    accepted = lab.accepted_lipoaspirate()
    with read_session(engine) as s:
        lipo = materials(s, kind="lipoaspirate")
        assert [m.material_id for m in lipo] == [*received, accepted]
        assert [m.material_id for m in materials(s, state="received")] == received
        assert [m.material_id for m in materials(s, state="ACCEPTED")] == [accepted]
        assert list(materials(s, kind="svf")) == []
        assert list(materials(s, created_after=utcnow() + timedelta(minutes=5))) == []
        first = materials(s, kind="lipoaspirate", limit=3)
        rest = materials(s, kind="lipoaspirate", limit=3, offset=first.next_offset or 0)
        assert ([m.material_id for m in first], first.next_offset) == (received, 3)
        assert ([m.material_id for m in rest], rest.next_offset) == ([accepted], None)
        assert [m.material_id for m in in_states(s, states=["RECEIVED"], limit=2)] == received[:2]
        assert in_states(s, states=["RECEIVED"], kinds=["svf"]) == []


def test_the_storage_map(engine: Engine, world: World) -> None:
    lab = Lab.start(engine, world)
    lipo = lab.lipoaspirate()
    with write_session(engine) as s:
        tech = lab.user(s, world.tech_id)
        minus80 = parse_quantity("-80 degC", QuantityKind.TEMPERATURE)
        made = {
            (box, pos): add_storage_location(
                s,
                site="LAB1",
                freezer="F2",
                rack="R1",
                box=box,
                position=pos,
                actor=tech,
                temperature=minus80,
            )
            for box in ("B2", "B1")
            for pos in ("A2", "A1")
        }
        move_material(s, material=get_material(s, lipo), location=made[("B1", "A2")], actor=tech)
        a1_id = made[("B1", "A1")].id
    with read_session(engine) as s:
        boxes = storage_boxes(s)
        assert [tuple(b) for b in boxes] == [("LAB1", "F2", "R1", "B1"), ("LAB1", "F2", "R1", "B2")]
        here = box_map(s, site="LAB1", freezer="F2", rack="R1", box="B1")
        assert [p.position for p in here.positions] == ["A1", "A2"]
        assert {p.position: here.held.get(p.id or 0) for p in here.positions}["A1"] is None
        assert [m.material_id for m in here.held.values()] == [lipo]
        empty = box_map(s, site="LAB1", freezer="F2", rack="R1", box="B9")
        assert (empty.positions, empty.held) == ([], {})
        found = find_position(s, site="LAB1", freezer="F2", rack="R1", box="B1", position="A1")
        assert found is not None and found.id == a1_id
        assert (
            find_position(s, site="LAB1", freezer="F2", rack="R1", box="B1", position="Z9") is None
        )
        assert get_position(s, location_id=a1_id or 0).label() == "LAB1/F2/R1/B1/A1"
        with pytest.raises(NotFound, match="no storage location 999999"):
            get_position(s, location_id=999999)
