"""Quantities, duplicates, the export's `since` and OPTIONS, through the real server.

Found by an attacker's review of main: canonical values from about 1e16 to 1e24 crashed
rounding (500) on orders, harvests and storage positions; physically impossible values
(a 1 km**3 harvest, a freezer at -500 K) were stored (201); a duplicate instrument asset
tag or reagent lot answered 500; the export's `since` took "0" as a time; 405 named only
some of the methods a path has, and OPTIONS was refused.
"""

from __future__ import annotations

import threading
from datetime import timedelta
from typing import Any

import httpx
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlmodel import func, select

from api.app import create_app
from lims.custody.models import CustodyEvent
from lims.db import read_session, utcnow, write_session
from lims.materials.models import Material, StorageLocation
from lims.parties.models import Instrument, ReagentLot
from tests.api.conftest import Api
from tests.conftest import World
from tests.live_server import live_server
from tests.reliability.conftest import PROBLEM, Row

HUGE = ["1e16 mL", "99999999999999999 mL", "1e20 L", {"value": "1e20", "unit": "L"}, "4 parsec**3"]
IMPOSSIBLE_HARVESTS = ["1 m**3", "1 km**3", "10.5 L"]
IMPOSSIBLE_TEMPERATURES = ["-300 degC", "-500 K", "-460 degF", "1e17 K", "500 degC"]


def _order(coi: str, dose: Any) -> dict[str, Any]:
    return {
        "coi_id": coi,
        "dose": dose,
        "session_number": 1,
        "sessions_total": 6,
        "planned_use_at": (utcnow() + timedelta(days=3)).replace(microsecond=0).isoformat(),
        "ship_to": "Ginza",
        "prescriber": "Dr. F",
        "consent_ref": "C-1",
    }


def _harvest(coi: str, quantity: Any) -> dict[str, Any]:
    return {
        "coi_id": coi,
        "kind": "lipoaspirate",
        "quantity": quantity,
        "collected_at": (utcnow() - timedelta(hours=2)).isoformat(),
        "courier": "ColdChain",
    }


def _location(n: int, temperature: Any) -> dict[str, Any]:
    return {
        "site": "Main",
        "freezer": "F1",
        "rack": "R1",
        "box": "B1",
        "position": f"P{n}",
        "temperature": temperature,
    }


def _refused(r: httpx.Response, field: str, words: str) -> bool:
    return (
        r.status_code == 422
        and r.headers["content-type"].startswith(PROBLEM)
        and r.json().get("field") == field
        and words in r.json()["detail"]
    )


def _count(engine: Engine, model: Any) -> int:
    with read_session(engine) as s:
        return int(s.exec(select(func.count()).select_from(model)).one())


def test_huge_and_impossible_quantities_are_422_with_the_reason(
    engine: Engine, world: World, api: Api, figures: Row
) -> None:
    coi = world.patient_coi
    clinic, tech = api.as_("clinic"), api.as_("technician")
    materials, locations = _count(engine, Material), _count(engine, StorageLocation)
    failures = []
    sent = 0
    with live_server(engine) as url, httpx.Client(base_url=url, timeout=60) as client:
        for dose in HUGE:
            r = client.post("/api/v1/clinic/orders", json=_order(coi, dose), headers=clinic)
            sent += 1
            if not _refused(r, "dose", "above the largest plausible"):
                failures.append(f"order {dose}: {r.status_code} {r.text[:300]}")
        for quantity in [*HUGE, *IMPOSSIBLE_HARVESTS]:
            r = client.post("/api/v1/clinic/harvests", json=_harvest(coi, quantity), headers=clinic)
            sent += 1
            if not _refused(r, "quantity", "above the largest plausible volume 10000 mL"):
                failures.append(f"harvest {quantity}: {r.status_code} {r.text[:300]}")
        for n, temperature in enumerate(IMPOSSIBLE_TEMPERATURES):
            r = client.post(
                "/api/v1/lab/storage-locations", json=_location(n, temperature), headers=tech
            )
            sent += 1
            words = "absolute zero" if "-" in temperature else "largest plausible temperature"
            if not _refused(r, "temperature", words):
                failures.append(f"storage {temperature}: {r.status_code} {r.text[:300]}")
        # Real values still go through.
        ok = [
            client.post("/api/v1/clinic/harvests", json=_harvest(coi, "120 mL"), headers=clinic),
            client.post(
                "/api/v1/lab/storage-locations", json=_location(99, "-196 degC"), headers=tech
            ),
            client.post("/api/v1/clinic/orders", json=_order(coi, "4 mL"), headers=clinic),
        ]
    assert failures == []
    assert [r.status_code for r in ok] == [201, 201, 201], [r.text for r in ok]
    assert _count(engine, Material) == materials + 1
    assert _count(engine, StorageLocation) == locations + 1
    figures.requests = sent + len(ok)
    figures.refusals = figures.cases = sent
    figures.notes = "canonical 1e16-1e24, 1 km**3 harvests, storage below absolute zero: 422"


def test_duplicate_instruments_and_reagent_lots_are_409(
    engine: Engine, world: World, api: Api
) -> None:
    admin = api.as_("admin")
    instrument = {
        "asset_tag": "centrifuge-1",  # the world's centrifuge
        "instrument_type": "centrifuge",
        "name": "another",
        "calibration_due": (utcnow() + timedelta(days=30)).isoformat(),
    }
    reagent = {
        "reagent_type": "collagenase",
        "lot_number": "col-1",  # the world's collagenase lot
        "supplier": "s",
        "expires_at": (utcnow() + timedelta(days=30)).isoformat(),
    }
    events = _count(engine, CustodyEvent)
    with live_server(engine) as url, httpx.Client(base_url=url, timeout=60) as client:
        answers = [
            client.post("/api/v1/admin/instruments", json=instrument, headers=admin),
            client.post("/api/v1/admin/reagent-lots", json=reagent, headers=admin),
        ]
        other_lot = client.post(
            "/api/v1/admin/reagent-lots", json={**reagent, "lot_number": "col-2"}, headers=admin
        )
    for r, field in zip(answers, ("asset_tag", "lot_number"), strict=True):
        assert r.status_code == 409, r.text
        assert r.headers["content-type"].startswith(PROBLEM)
        assert r.json()["field"] == field and "already exists" in r.json()["detail"]
    assert other_lot.status_code == 201, other_lot.text
    assert _count(engine, CustodyEvent) == events + 1


def test_racing_duplicates_are_one_201_and_409s(engine: Engine, world: World, api: Api) -> None:
    """Writers racing to one asset tag: one is created, the rest are 409, never a 500."""
    admin = api.as_("admin")
    body = {
        "asset_tag": "RACE-1",
        "instrument_type": "centrifuge",
        "name": "raced",
        "calibration_due": (utcnow() + timedelta(days=30)).isoformat(),
    }
    statuses: list[int] = []
    with live_server(engine) as url:
        start = threading.Barrier(6)

        def post() -> None:
            with httpx.Client(base_url=url, timeout=60) as client:
                start.wait()
                r = client.post("/api/v1/admin/instruments", json=body, headers=admin)
                statuses.append(r.status_code)

        threads = [threading.Thread(target=post) for _ in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert sorted(statuses) == [201, 409, 409, 409, 409, 409], statuses
    with read_session(engine) as s:
        tags = s.exec(select(Instrument).where(Instrument.asset_tag == "RACE-1")).all()
    assert len(tags) == 1


def test_a_unique_constraint_that_a_service_missed_is_409(engine: Engine, world: World) -> None:
    """The backstop: an IntegrityError on a unique key answers 409, other errors stay 500."""
    app = create_app(engine)

    @app.post("/api/v1/test-only/duplicate-lot")
    def duplicate_lot() -> dict[str, str]:
        with write_session(engine) as s:  # past the service's own check, on purpose
            s.add(
                ReagentLot(
                    reagent_type="collagenase",
                    lot_number="col-1",
                    supplier="s",
                    expires_at=utcnow(),
                )
            )
            s.flush()
        return {}

    @app.post("/api/v1/test-only/null-name")
    def null_name() -> dict[str, str]:
        with write_session(engine) as s:
            nameless: Any = None  # a NOT NULL violation, which is not a duplicate
            s.add(
                Instrument(
                    asset_tag="NULL-1", instrument_type="x", name=nameless, calibration_due=utcnow()
                )
            )
            s.flush()
        return {}

    with TestClient(app, raise_server_exceptions=False) as client:
        dup = client.post("/api/v1/test-only/duplicate-lot")
        null = client.post("/api/v1/test-only/null-name")
    assert dup.status_code == 409 and dup.headers["content-type"].startswith(PROBLEM)
    assert dup.json()["type"] == "/problems/duplicate"
    assert null.status_code == 500 and null.headers["content-type"].startswith(PROBLEM)


def test_export_since_must_be_a_date_time(engine: Engine, world: World, api: Api) -> None:
    auditor = api.as_("auditor")
    with live_server(engine) as url, httpx.Client(base_url=url, timeout=60) as client:
        refused = {
            value: client.get(
                f"/api/v1/audit/exports/{export}", params={"since": value}, headers=auditor
            )
            for export in ("custody.jsonl", "custody.csv")
            for value in ("0", "-5", "1700000000", "1700000000.5", "abc", "")
        }
        fine = client.get(
            "/api/v1/audit/exports/custody.jsonl",
            params={"since": "2020-01-01T00:00:00Z"},
            headers=auditor,
        )
    for value, r in refused.items():
        assert r.status_code == 422, (value, r.status_code, r.text[:200])
        assert r.headers["content-type"].startswith(PROBLEM)
        assert r.json()["field"] == "since", r.text
    assert fine.status_code == 200 and fine.text.strip()


def test_options_is_answered_and_405_names_every_method(
    engine: Engine, world: World, api: Api
) -> None:
    with live_server(engine) as url, httpx.Client(base_url=url, timeout=60) as client:
        options = client.options("/api/v1/clinic/orders")
        options_item = client.options("/api/v1/lab/materials/X000126000001A/label.pdf")
        refused = client.request("PATCH", "/api/v1/clinic/orders", headers=api.as_("clinic"))
        nowhere = client.options("/api/v1/nowhere")
    assert options.status_code == 204 and options.content == b""
    assert options.headers["allow"] == "GET, OPTIONS, POST"
    assert options_item.status_code == 204 and options_item.headers["allow"] == "OPTIONS, POST"
    assert refused.status_code == 405 and refused.headers["allow"] == "GET, OPTIONS, POST"
    assert refused.headers["content-type"].startswith(PROBLEM)
    assert nowhere.status_code == 404
