"""50 clients allocate from one lot at once, over real HTTP: never more than the stock."""

import threading
from collections.abc import Iterator
from datetime import timedelta
from decimal import Decimal

import httpx
import pytest
from sqlalchemy import Engine

from lims.db import utcnow
from tests.api.conftest import Api
from tests.builders import Lab, more_patients
from tests.conftest import World
from tests.live_server import live_server


@pytest.fixture
def server(engine: Engine, api: Api) -> Iterator[str]:
    with live_server(engine) as url:
        yield url


def test_fifty_parallel_allocations_never_exceed_stock(
    server: str, api: Api, engine: Engine, world: World
) -> None:
    lot = Lab.start(engine, world).allogeneic_lot()  # 15 vials, for any of the patients
    patients = more_patients(engine, world, 50)  # a session is ordered once per course
    numbers = []
    for n in range(50):
        r = api.client.post(
            "/api/v1/clinic/orders",
            headers=api.as_("clinic"),
            json={
                "coi_id": patients[n],
                "dose": "1 vial",
                "session_number": 1,
                "sessions_total": 6,
                "planned_use_at": (utcnow() + timedelta(days=3)).isoformat(),
                "ship_to": "Ginza",
                "prescriber": "Dr. F",
                "consent_ref": f"C-{n}",
            },
        )
        numbers.append(r.json()["number"])
    start = threading.Barrier(50)
    results: list[tuple[int, str]] = []
    guard = threading.Lock()
    headers = api.as_("technician")

    def allocate(number: str) -> None:
        with httpx.Client(base_url=server, timeout=60) as client:
            start.wait(timeout=30)
            r = client.post(
                f"/api/v1/lab/orders/{number}/allocation", json={"lot_id": lot}, headers=headers
            )
        with guard:
            results.append((r.status_code, r.text))

    threads = [threading.Thread(target=allocate, args=(n,)) for n in numbers]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    statuses = sorted(code for code, _ in results)
    assert len(results) == 50
    assert all(code < 500 for code in statuses), [r for r in results if r[0] >= 500]
    assert statuses.count(200) == 15
    refusals = [text for code, text in results if code != 200]
    assert all(code == 409 for code in statuses if code != 200)
    assert all("no released, unexpired aape_lot" in t or "remain" in t for t in refusals)
    remaining = api.client.get(f"/api/v1/lab/materials/{lot}", headers=headers).json()
    assert Decimal(remaining["remaining"]["value"]) == 0
    verdict = api.client.get("/api/v1/audit/verify", headers=api.as_("auditor")).json()
    assert verdict["ok"]
