"""Times on the pages: stored in UTC, shown in the viewer's zone with its offset (a
clinic's desk in its clinic's zone, the lab in LIMS_LAB_TIME_ZONE), and a zone that is
not an IANA name refused at start."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta

import pytest
from sqlalchemy import Engine

from lims.db import read_session, utcnow, write_session
from lims.orders.models import DoseOrder
from lims.orders.service import patient_for, place_order
from lims.settings import Settings, get_settings
from tests.api.conftest import Api
from tests.builders import Lab
from tests.conftest import World
from tests.web.test_portal import _signed_in


@pytest.fixture
def lab_in_tokyo(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("LIMS_LAB_TIME_ZONE", "Asia/Tokyo")
    get_settings.cache_clear()
    yield
    monkeypatch.undo()
    get_settings.cache_clear()


def _order(engine: Engine, world: World) -> DoseOrder:
    with write_session(engine) as s:
        desk = Lab.start(engine, world).user(s, world.clinic_user_id)
        return place_order(
            s,
            actor=desk,
            patient=patient_for(s, actor=desk, coi_id=world.patient_coi),
            product="aape",
            dose="1 vial",
            session_number=1,
            sessions_total=6,
            planned_use_at=(utcnow() + timedelta(days=5)).replace(
                hour=1, minute=30, second=0, microsecond=0
            ),
            ship_to="Ginza",
            prescriber="Dr. Z",
            consent_ref="C-1",
        )


def test_the_lab_sees_its_own_zone_and_the_clinic_its_own(
    engine: Engine, world: World, api: Api, lab_in_tokyo: None
) -> None:
    order = _order(engine, world)
    with read_session(engine) as s:
        stored = s.get(DoseOrder, order.id)
        assert stored is not None
        planned = stored.planned_use_at  # 01:30 UTC
    tech = _signed_in(api, "tanaka")
    queue = tech.get(f"/lab/orders/{order.number}").text
    # 01:30 UTC is 10:30 in Tokyo, with the offset said.
    assert f"{planned:%Y-%m-%d} 10:30 UTC+09:00" in queue, re.findall(r"\d\d:\d\d UTC[^<]*", queue)
    assert "01:30" not in queue
    listed = tech.get("/lab/orders").text
    assert "10:30 UTC+09:00" in listed


def test_the_lab_zone_defaults_to_utc_and_a_wrong_name_is_refused(
    engine: Engine, world: World, api: Api
) -> None:
    order = _order(engine, world)
    shown = _signed_in(api, "tanaka").get(f"/lab/orders/{order.number}").text
    assert "01:30 UTC<" in shown or "01:30 UTC " in shown
    for wrong in ("Tokyo", "Asia/Nowhere", "../etc/passwd"):
        with pytest.raises(ValueError, match="LIMS_LAB_TIME_ZONE"):
            Settings(lab_time_zone=wrong)
