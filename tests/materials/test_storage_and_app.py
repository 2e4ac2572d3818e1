"""Storage positions hold one material; the served app shows materials and lineage."""

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from lims.db import write_session
from lims.errors import RuleViolation
from lims.materials.models import StorageLocation
from lims.materials.service import add_storage_location, get_material, move_material
from lims.parties.models import User
from tests.builders import Lab
from tests.conftest import World


def test_one_material_per_position_and_positions_freed_at_end(engine: Engine, world: World) -> None:
    lab = Lab.start(engine, world)
    first, second = lab.lipoaspirate(), lab.lipoaspirate()
    with write_session(engine) as s:
        tech = s.get(User, world.tech_id)
        assert tech is not None
        box = add_storage_location(
            s, site="Lab 1", freezer="ULT-80-A", rack="R1", box="B1", position="A1", actor=tech
        )
        with pytest.raises(RuleViolation, match="already exists"):
            add_storage_location(
                s, site="Lab 1", freezer="ULT-80-A", rack="R1", box="B1", position="A1", actor=tech
            )
        move_material(s, material=get_material(s, first), location=box, actor=tech)
        with pytest.raises(RuleViolation, match="Lab 1/ULT-80-A/R1/B1/A1 already holds"):
            move_material(s, material=get_material(s, second), location=box, actor=tech)
        box_id = box.id
    lab.move(first, "REJECTED", reason="container leaked")
    lab.move(first, "DESTROYED", reason="witnessed by QA")
    assert lab.get(first).location_id is None  # a destroyed material frees its position
    with write_session(engine) as s:
        tech = s.get(User, world.tech_id)
        freed = s.get(StorageLocation, box_id)
        assert tech is not None and freed is not None
        moved = move_material(s, material=get_material(s, second), location=freed, actor=tech)
        assert moved.location_id == box_id


def test_app_front_door_needs_sign_in(engine: Engine, world: World) -> None:
    import api.app
    from lims.migrate import head_revision

    client = TestClient(api.app.create_app(engine))
    assert client.get("/health").json() == {"status": "ok", "database_revision": head_revision()}
    first = client.get("/", follow_redirects=False)
    assert first.status_code == 303 and first.headers["location"] == "/login"
    page = client.get("/bench", follow_redirects=False)
    assert page.status_code == 303 and page.headers["location"] == "/login?next=/bench"
    assert "Sign in" in client.get("/login").text
