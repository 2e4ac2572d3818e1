"""GET /api/v1/clinic/orders/{n}/events: the order's timeline in words, in time order, in the
clinic's time zone with its offset, with who did it; another clinic's order is 404."""

from datetime import datetime, timedelta

from sqlalchemy import Engine

from lims.db import utcnow, write_session
from lims.parties.models import Clinic
from tests.api.conftest import Api
from tests.api.test_journey import _order, _post
from tests.builders import Lab
from tests.conftest import World


def test_timeline_in_the_clinics_zone_with_names_and_who(
    api: Api, engine: Engine, world: World
) -> None:
    with write_session(engine) as s:
        clinic = s.get(Clinic, world.clinic_id)
        assert clinic is not None
        clinic.time_zone = "America/New_York"  # not the server's zone nor UTC
        s.add(clinic)
    Lab.start(engine, world).lot()
    before = utcnow()
    number = _order(api, world, world.patient_coi)["number"]
    dose = _post(api, "technician", f"/lab/orders/{number}/allocation", {})["dose_material"]
    _post(
        api,
        "technician",
        f"/lab/materials/{dose['material_id']}/transitions",
        {"to_state": "LABELED"},
    )
    r = api.client.get(f"/api/v1/clinic/orders/{number}/events", headers=api.as_("clinic"))
    assert r.status_code == 200, r.text
    events = r.json()
    assert [(e["event"], e["status"], e["name"]) for e in events][:2] == [
        ("order.placed", "PLACED", "Order placed"),
        ("order.status_changed", "ALLOCATED", "Dose allocated"),
    ]
    assert events[-1]["event"] == "material.state_changed" and events[-1]["status"] == "LABELED"
    assert events[-1]["name"] == "Dose labeled"  # a state the names do not list, made readable
    assert [e["actor"] for e in events[:2]] == ["ginza-desk", "tanaka"]
    assert [e["seq"] for e in events] == sorted(e["seq"] for e in events)
    times = [datetime.fromisoformat(e["at"]) for e in events]
    assert times == sorted(times) and times[0] >= before - timedelta(seconds=1)
    # New York's offset (-05:00 in winter, -04:00 in summer), never UTC's
    assert all(e["at"].endswith(("-05:00", "-04:00")) for e in events), events


def test_another_clinics_order_and_unknown_numbers_are_not_found(
    api: Api, engine: Engine, world: World
) -> None:
    number = _order(api, world, world.patient_coi)["number"]
    r = api.client.get(f"/api/v1/clinic/orders/{number}/events", headers=api.as_("other_clinic"))
    assert r.status_code == 404 and number in r.text
    assert (
        api.client.get(
            "/api/v1/clinic/orders/ORD-999999/events", headers=api.as_("clinic")
        ).status_code
        == 404
    )
    assert api.client.get(f"/api/v1/clinic/orders/{number}/events").status_code == 401
    mine = api.client.get(f"/api/v1/clinic/orders/{number}/events", headers=api.as_("clinic"))
    assert [e["at"][-6:] for e in mine.json()] == ["+09:00"]  # Tokyo, the default zone
