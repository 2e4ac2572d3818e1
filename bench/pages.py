"""Server time of the portal, lab queue and search pages at 100,000 orders and 1,000,000
materials, against the same app's /health in the same run.

    .venv/bin/python -m bench.pages [--orders 100000] [--materials 1000000]
                                    [--patients 10000] [--requests 200]
                                    [--backends sqlite,postgresql]

Data: the demo facility (clinics, staff, desks) through the services, then patients,
materials and orders written with bulk INSERTs (executemany in batches of 20,000 rows):
page timings need the rows, not their history, so these rows have no custody events.
Two thirds of the orders are GINZA's, the rest OSAKA's; a fifth are still PLACED.

Each page is requested ``--requests`` times in process (Starlette's TestClient: the whole
app and its middleware, no network), as the signed-in clinic desk or technician, with
varying filters and pages; p50/p95 per page are printed with the ratio to /health. Target:
p95 < 100 ms for a page of 50 rows. The pages: the portal's patients and orders lists
(first page, a deep page, a status filter, one patient's orders), the lab's order queue
(the API list of PLACED orders, and the web queue page when the app has one) and search
by material id, order number and chain-of-identity id.
"""

from __future__ import annotations

import argparse
import random
import re
import time
from collections.abc import Callable
from datetime import timedelta
from decimal import Decimal
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import select, text

from api.app import create_app
from bench.common import Database, fresh_database, machine, pct
from lims.db import utcnow, write_session
from lims.demo import DEMO_PASSWORD, set_up_facility
from lims.identity.codes import make_material_id, new_coi_id
from lims.materials.models import Material
from lims.orders.models import DoseOrder
from lims.orders.queries import orders_listed
from lims.paging import encode_cursor, page_of
from lims.parties.models import Patient, User
from lims.parties.queries import get_user
from lims.signatures.passwords import set_password
from lims.sops.service import sync_catalog

BATCH = 20_000
KINDS = ("lipoaspirate", "svf", "adsc_culture", "cm_batch", "aape_lot", "dose")
STATES = ("ACCEPTED", "IN_PROCESS", "RELEASED", "QC_TESTING", "CONSUMED")
STATUSES = ("PLACED", "ALLOCATED", "DISPATCHED", "RECEIVED", "RECEIVED")
TARGET_MS = 100.0


def _bulk(
    db: Database, table: Any, rows: Callable[[int, int], list[dict[str, object]]], total: int
) -> float:
    """Insert ``total`` rows made by ``rows(start, stop)`` in batches through the driver's
    executemany (the columns' own bind processors applied once per value); rows/s."""
    started = time.perf_counter()
    dialect = db.engine.dialect
    mark = "?" if dialect.paramstyle == "qmark" else "%s"
    with db.engine.begin() as conn:
        cursor = conn.connection.cursor()
        for start in range(0, total, BATCH):
            batch = rows(start, min(total, start + BATCH))
            names = list(batch[0])
            procs = [table.c[n].type.bind_processor(dialect) for n in names]
            values = [
                tuple(p(r[n]) if p else r[n] for n, p in zip(names, procs, strict=True))
                for r in batch
            ]
            sql = (
                f"INSERT INTO {table.name} ({', '.join(names)}) "
                f"VALUES ({', '.join([mark] * len(names))})"
            )
            cursor.executemany(sql, values)
    return total / (time.perf_counter() - started)


def generate(db: Database, *, patients: int, materials: int, orders: int) -> dict[str, object]:
    """The facility through the services, then the bulk rows; figures of the generation."""
    with write_session(db.engine) as s:
        sync_catalog(s)
        facility = set_up_facility(s, tag="B", password=DEMO_PASSWORD)
        desk_user = get_user(s, username=facility.desks["GINZA"])
        set_password(s, user=desk_user, password=DEMO_PASSWORD, actor=None)
    clinics = list(facility.clinic_ids.values())
    with db.engine.connect() as conn:
        tech = conn.execute(select(User.id).where(User.username == "tanaka")).scalar_one()
        desk = conn.execute(
            select(User.id).where(User.username == facility.desks["GINZA"])
        ).scalar_one()
    now = utcnow()
    rng = random.Random(7)
    coi = [new_coi_id() for _ in range(patients)]

    def patient_rows(a: int, b: int) -> list[dict[str, object]]:
        return [
            {
                "coi_id": coi[i],
                "clinic_id": clinics[0] if i % 3 else clinics[1],
                "donor_type": "autologous",
                "identifier_1": "1980-01-01",
                "identifier_2": f"REF-{i:06d}",
                "created_at": now,
            }
            for i in range(a, b)
        ]

    started = time.perf_counter()
    figures: dict[str, object] = {
        "patients/s": _bulk(db, Patient.__table__, patient_rows, patients)
    }
    with db.engine.connect() as conn:
        ids = dict(conn.execute(select(Patient.coi_id, Patient.id)).all())
        clinic_of = dict(conn.execute(select(Patient.id, Patient.clinic_id)).all())
    patient_ids = [ids[c] for c in coi]

    def material_rows(a: int, b: int) -> list[dict[str, object]]:
        return [
            {
                "material_id": make_material_id("X0001", 25 + i // 500_000, i % 500_000),
                "kind": KINDS[i % len(KINDS)],
                "state": STATES[i % len(STATES)],
                "patient_id": patient_ids[i % patients],
                "use": "autologous",
                "quantity_kind": "volume",
                "entered_value": Decimal(10),
                "entered_unit": "mL",
                "initial_canonical": Decimal(10),
                "remaining_canonical": Decimal(5),
                "created_by_id": tech,
                "created_at": now,
                "updated_at": now,
            }
            for i in range(a, b)
        ]

    figures["materials/s"] = _bulk(db, Material.__table__, material_rows, materials)

    def order_rows(a: int, b: int) -> list[dict[str, object]]:
        out = []
        for i in range(a, b):
            patient = patient_ids[rng.randrange(patients)]
            out.append(
                {
                    "number": f"ORD-{i + 1:06d}",
                    "clinic_id": clinic_of[patient],
                    "patient_id": patient,
                    "product": "aape",
                    "dose_value": Decimal(4),
                    "dose_unit": "mL",
                    "dose_kind": "reconstituted_volume",
                    "dose_canonical": Decimal(4),
                    "session_number": 1,
                    "sessions_total": 6,
                    "planned_use_at": now + timedelta(minutes=rng.randrange(-500_000, 500_000)),
                    "ship_to": "Ginza",
                    "prescriber": "Dr. F",
                    "consent_ref": "C-1",
                    "status": STATUSES[i % len(STATUSES)],
                    "placed_by_id": desk,
                    "placed_at": now,
                    "updated_at": now,
                }
            )
        return out

    figures["orders/s"] = _bulk(db, DoseOrder.__table__, order_rows, orders)
    # A live database has its statistics (autovacuum's ANALYZE); a bulk load has none yet,
    # and PostgreSQL's planner then sorts a clinic's whole list instead of reading an index.
    with db.engine.connect() as conn:
        conn.execute(text("ANALYZE"))
        conn.commit()
    figures["generation s"] = time.perf_counter() - started
    figures["sample material"] = make_material_id("X0001", 25, 123_456)
    figures["sample coi"] = next(c for i, c in enumerate(coi) if i % 3)
    figures["desk"] = facility.desks["GINZA"]
    return figures


def _deep_cursors(db: Database, desk: str, args: argparse.Namespace) -> dict[str, list[str]]:
    """Cursors for pages deep in the desk's lists (a third to a half of the way down), as
    the pages' own "next" links would carry after walking there."""
    with write_session(db.engine) as session:
        clinic = get_user(session, username=desk).clinic_id

        def at(query: Any, depth: int) -> str:
            row = session.execute(query.offset(depth).limit(1)).one()
            return encode_cursor(list(row))

        mine = DoseOrder.clinic_id == clinic
        by_planned = select(DoseOrder.planned_use_at, DoseOrder.id).where(mine)
        by_planned = by_planned.order_by(DoseOrder.planned_use_at, DoseOrder.id)
        placed = select(DoseOrder.placed_at, DoseOrder.id).where(mine, DoseOrder.status == "PLACED")
        placed = placed.order_by(DoseOrder.placed_at, DoseOrder.id)
        patients = select(Patient.id).where(Patient.clinic_id == clinic).order_by(Patient.id)
        return {
            "patients": [at(patients, args.patients // d // 2) for d in (2, 3, 4)],
            "orders": [at(by_planned, args.orders // d // 2) for d in (5, 3)],
            "placed": [at(placed, args.orders // d // 20) for d in (2, 3)],
        }


def _offset_against_key(
    db: Database, desk: str, args: argparse.Namespace, n: int
) -> list[tuple[str, float, float]]:
    """The same deep page of the desk's orders read by OFFSET and by key (the query alone),
    in the same run: the change keyset paging made."""
    depth = args.orders // 3 // 2
    with write_session(db.engine) as session:
        desk_user = get_user(session, username=desk)
        mine = DoseOrder.clinic_id == desk_user.clinic_id
        keys = select(DoseOrder.planned_use_at, DoseOrder.id).where(mine)
        keys = keys.order_by(DoseOrder.planned_use_at, DoseOrder.id)
        cursor = encode_cursor(list(session.execute(keys.offset(depth - 1).limit(1)).one()))
        query = (
            select(DoseOrder, Patient)
            .join(Patient, Patient.id == DoseOrder.patient_id)
            .where(DoseOrder.clinic_id == desk_user.clinic_id)
            .order_by(DoseOrder.planned_use_at, DoseOrder.id)
        )
        timed: dict[str, list[float]] = {"offset": [], "key": []}
        for _ in range(max(5, n // 4)):
            started = time.perf_counter()
            by_offset = page_of(query, session, limit=50, offset=depth)
            timed["offset"].append((time.perf_counter() - started) * 1000)
            started = time.perf_counter()
            by_key = orders_listed(session, actor=desk_user, limit=50, after=cursor)
            timed["key"].append((time.perf_counter() - started) * 1000)
            assert [o.id for o, _ in by_offset] == [o.id for o, _ in by_key], "pages differ"
    out = []
    for how, times in timed.items():
        p50, p95 = pct(times, 50), pct(times, 95)
        out.append((f"orders row {depth:,} by {how} (query)", p50, p95))
    ratio = pct(timed["key"], 95) / pct(timed["offset"], 95)
    print(f"  deep page at row {depth:,}: by key p95 = x{ratio:.3f} of by offset", flush=True)
    return out


def _sign_in(client: TestClient, username: str) -> None:
    client.cookies.clear()
    token = re.search(r'name="login_csrf" value="([^"]+)"', client.get("/login").text)
    assert token, "no sign-in form"
    done = client.post(
        "/login",
        data={"username": username, "password": DEMO_PASSWORD, "login_csrf": token.group(1)},
        follow_redirects=False,
    )
    assert done.status_code == 303, done.text


BASELINE: list[float] = []


def _time(
    client: TestClient,
    paths: list[str],
    n: int,
    headers: dict[str, str] | None = None,
    rows: int | None = None,
) -> tuple[float, float]:
    times = []
    for k in range(n):
        path = paths[k % len(paths)]
        started = time.perf_counter()
        response = client.get(path, headers=headers or {})
        times.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200, (path, response.status_code, response.text[:300])
        if rows is not None and k == 0:
            assert response.text.count("<tr><td>") >= rows, (path, "fewer rows than a page")
    p50, p95 = pct(times, 50), pct(times, 95)
    name = paths[0][:46]
    if not BASELINE:
        BASELINE.append(p95)
    # Printed as measured: a run cut short still leaves its figures.
    print(f"  {name:46} p50 {p50:7.1f} ms  p95 {p95:7.1f} ms  x{p95 / BASELINE[0]:.1f}", flush=True)
    return p50, p95


def run(backend: str, args: argparse.Namespace) -> list[tuple[str, float, float]]:
    with fresh_database(backend) as db:
        figures = generate(db, patients=args.patients, materials=args.materials, orders=args.orders)
        print(
            f"\n[{backend}] generated {args.patients:,} patients, {args.materials:,} materials, "
            f"{args.orders:,} orders in {figures['generation s']:.1f} s "
            f"(materials {figures['materials/s']:,.0f} rows/s, "
            f"orders {figures['orders/s']:,.0f} rows/s)"
        )
        client = TestClient(create_app(db.engine))
        n = args.requests
        BASELINE.clear()
        results = [("/health (baseline)", *_time(client, ["/health"], n))]
        _sign_in(client, str(figures["desk"]))
        deep = _deep_cursors(db, str(figures["desk"]), args)
        results += _offset_against_key(db, str(figures["desk"]), args, n)
        html = {"Accept": "text/html"}
        pages = {
            "portal patients, first page": (["/portal"], 50),
            "portal patients, deep page (by key)": (
                [f"/portal?after={c}" for c in deep["patients"]],
                50,
            ),
            "portal orders by planned use": (["/portal/orders", "/portal/orders?desc=1"], 50),
            "portal orders, deep page (by key)": (
                [f"/portal/orders?after={c}" for c in deep["orders"]],
                50,
            ),
            "portal orders, status filter": (["/portal/orders?status=PLACED&sort=placed"], 50),
            "portal orders, status filter, deep page": (
                [f"/portal/orders?status=PLACED&sort=placed&after={c}" for c in deep["placed"]],
                50,
            ),
            "portal orders of one patient": (
                [f"/portal/orders?patient={figures['sample coi']}"],
                None,
            ),
            "search (clinic): coi id": ([f"/search?q={figures['sample coi']}"], None),
            "search (clinic): order number": (["/search?q=ORD-000777", "/search?q=4242"], None),
        }
        for name, (paths, rows) in pages.items():
            results.append((name, *_time(client, paths, n, html, rows)))
        _sign_in(client, "tanaka")
        mid = str(figures["sample material"])
        lab_pages = {
            "search (lab): material id": ([f"/search?q={mid}", f"/search?q={mid[:-1]}"], None),
            "search (lab): id prefix": (["/search?q=X00012512"], None),
        }
        if any(getattr(r, "path", "") == "/lab/orders" for r in client.app.routes):  # type: ignore[attr-defined]
            lab_pages["lab order queue (web)"] = (["/lab/orders"], None)
        for name, (paths, rows) in lab_pages.items():
            results.append((name, *_time(client, paths, n, html, rows)))
        # The lab's queue through the API (the list the lab's queue page shows).
        token = client.post(
            "/api/v1/auth/token", data={"username": "tanaka", "password": DEMO_PASSWORD}
        ).json()
        bearer = {"Authorization": f"Bearer {token['access_token']}"}
        results.append(
            (
                "lab queue (API, PLACED, 50)",
                *_time(
                    client,
                    [
                        "/api/v1/lab/orders?status=PLACED&limit=50",
                        "/api/v1/lab/orders?status=PLACED&limit=50&offset=5000",
                    ],
                    n,
                    bearer,
                ),
            )
        )
        results.append(
            (
                "lab queue (web, PLACED, by key)",
                *_time(
                    client,
                    [
                        "/lab/orders?status=PLACED",
                        "/lab/orders?status=PLACED&sort=-due",
                    ],
                    n,
                    bearer,
                ),
            )
        )
        return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--orders", type=int, default=100_000)
    parser.add_argument("--materials", type=int, default=1_000_000)
    parser.add_argument("--patients", type=int, default=10_000)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--backends", default="sqlite")
    args = parser.parse_args()
    print(machine())
    for backend in args.backends.split(","):
        results = run(backend, args)
        base = results[0][2]
        print(f"{'page':44} {'p50 ms':>8} {'p95 ms':>8} {'p95 / health':>13}  target")
        for name, p50, p95 in results:
            verdict = "" if name.startswith("/health") else ("ok" if p95 < TARGET_MS else "MISSED")
            print(f"{name:44} {p50:8.1f} {p95:8.1f} {p95 / base:13.1f}  {verdict}")


if __name__ == "__main__":
    main()
