"""Faults: the API process killed with SIGKILL during a burst and restarted, the database
connection dropped in the middle of a transaction, SQLite's write lock held by another
writer. Each time: a clean answer or none, nothing half-written, and a retry with the same
Idempotency-Key gives the first result (or does the work exactly once)."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, text
from sqlmodel import col, select

from api.app import create_app
from lims.auth.models import IdempotencyRecord
from lims.custody.ledger import verify_chain
from lims.custody.models import CustodyEvent, CustodyHead
from lims.db import make_engine, read_session, utcnow
from lims.materials.models import Material
from lims.orders.models import DoseOrder
from lims.settings import get_settings
from lims.steps.conservation import verify_conservation
from lims.steps.models import Step, StepInput
from tests.api.conftest import Api
from tests.builders import PASSWORD, Lab, more_patients
from tests.conftest import World
from tests.live_server import live_server
from tests.reliability.conftest import (
    LONG,
    PROBLEM,
    ROOT,
    Outcome,
    Outcomes,
    Row,
    assert_clean_refusals,
    database_url,
    lims_serve,
)

NANOFAT = {"emulsification_passes": 30, "filter_mesh": "500 um", "needle_gauge": 27}


def order_body(coi: str, ref: str) -> dict[str, Any]:
    return {
        "coi_id": coi,
        "product": "aape",
        "dose": "1 vial",
        "session_number": 1,
        "sessions_total": 6,
        "planned_use_at": (utcnow() + timedelta(days=3)).replace(microsecond=0).isoformat(),
        "ship_to": "Ginza Hair Clinic, Tokyo",
        "prescriber": "Dr. H. Fukuoka",
        "consent_ref": ref,
    }


def assert_nothing_half_written(engine: Engine) -> dict[str, int]:
    """The invariants a crash must not break: every order has its event, every allocated
    order its dose and step (and no dose without an order), every idempotency record the
    order it answered for, conservation and the custody chain."""
    with read_session(engine) as s:
        orders = s.exec(select(DoseOrder)).all()
        placed = set(
            s.exec(
                select(CustodyEvent.entity_id).where(col(CustodyEvent.action) == "order.placed")
            ).all()
        )
        assert {o.number for o in orders} == placed, "an order without its event, or vice versa"
        for o in orders:
            assert (o.status == "PLACED") == (o.dose_material_id is None), o.number
        doses = {m.id for m in s.exec(select(Material).where(col(Material.kind) == "dose"))}
        assert doses == {o.dose_material_id for o in orders if o.dose_material_id is not None}
        allocate_steps = s.exec(select(Step).where(col(Step.sop_code) == "DOSE-ALLOCATE")).all()
        assert len(allocate_steps) == len(doses)
        numbers = {o.number for o in orders}
        for record in s.exec(select(IdempotencyRecord)).all():
            if record.path.endswith("/clinic/orders") or record.path.endswith("/allocation"):
                assert record.response["number"] in numbers, record.key
        conservation = verify_conservation(s)
        assert conservation.ok, conservation.problems[:5]
        chain = verify_chain(s)
        assert chain.ok, chain.summary()
        return {"orders": len(orders), "doses": len(doses), "events": chain.events}


# --- the API process killed mid-request ------------------------------------------------------


@dataclass
class Call:
    key: str
    who: str
    path: str
    body: dict[str, Any]
    first: Outcome | None = None
    retry: Outcome | None = None

    def send(self, out: Outcomes, client: httpx.Client, api: Api, label: str) -> Outcome:
        headers = api.as_(self.who) | {"Idempotency-Key": self.key}
        return out.send(client, label, "POST", self.path, json=self.body, headers=headers)


def _burst(
    api: Api,
    world: World,
    numbers: list[str],
    parent: str,
    round_: int,
    patients: list[str],
    lots: list[str],
) -> list[Call]:
    calls = [
        Call(
            f"r{round_}-alloc-{i}",
            "technician",
            f"/api/v1/lab/orders/{n}/allocation",
            # The donor's lots (15 vials each), one after the other.
            {"lot_id": lots[(round_ * 10 + i) // 15]},
        )
        for i, n in enumerate(numbers)
    ]
    calls += [
        Call(
            f"r{round_}-order-{i}",
            "clinic",
            "/api/v1/clinic/orders",
            order_body(patients.pop(), f"kill-r{round_}-{i}"),
        )
        for i in range(10)
    ]
    calls += [
        Call(
            f"r{round_}-step-{i}",
            "technician2",
            "/api/v1/lab/steps",
            {
                "sop_code": "NANOFAT-PREP",
                "inputs": [{"material_id": parent, "quantity": "1 mL"}],
                "outputs": [{"quantity": "1 mL"}],
                "parameters": NANOFAT,
                "notes": f"kill-r{round_}-{i}",
            },
        )
        for i in range(4)
    ]
    return calls


def test_api_killed_mid_request_restarts_clean_and_replays(
    engine: Engine, world: World, api: Api, figures: Row, tmp_path: Path
) -> None:
    lab = Lab.start(engine, world)
    rounds = 3 if LONG else 1
    # 30 vials from a donor (each order is for another patient): 10 allocations a round,
    # up to 3 rounds.
    lots = [lab.allogeneic_lot(), lab.allogeneic_lot()]
    parent = lab.accepted_lipoaspirate("30 mL")
    log = tmp_path / "lims-serve.log"
    out = Outcomes()
    cut_total = committed_unanswered = 0
    # Session 1 of a course is ordered once: each order is for another patient.
    patients = more_patients(engine, world, 20 * rounds)
    for round_ in range(rounds):
        numbers = []
        for i in range(10):
            r = api.client.post(
                "/api/v1/clinic/orders",
                json=order_body(patients.pop(), f"pre-r{round_}-{i}"),
                headers=api.as_("clinic"),
            )
            assert r.status_code == 201, r.text
            numbers.append(r.json()["number"])
        calls = _burst(api, world, numbers, parent, round_, patients, lots)
        with lims_serve(engine, log) as server:
            go = threading.Barrier(len(calls) + 1)

            def fire(call: Call, base: str, go: threading.Barrier) -> None:
                with httpx.Client(base_url=base, timeout=30) as client:
                    go.wait(timeout=30)
                    call.first = call.send(out, client, api, "burst")

            threads = [threading.Thread(target=fire, args=(c, server.url, go)) for c in calls]
            for t in threads:
                t.start()
            go.wait(timeout=30)
            deadline = time.monotonic() + 30
            while sum(c.first is not None for c in calls) < 3 and time.monotonic() < deadline:
                time.sleep(0.005)
            server.kill9()  # SIGKILL: no shutdown, no rollback by the process itself
            for t in threads:
                t.join(timeout=60)
        answered = [c for c in calls if c.first is not None and c.first.status is not None]
        cut = [c for c in calls if c.first is None or c.first.status is None]
        cut_total += len(cut)
        assert answered and cut, f"the kill did not land mid-burst ({len(answered)} answered)"

        assert_nothing_half_written(engine)  # before any retry: the crash left no torn write

        with lims_serve(engine, log) as server, httpx.Client(base_url=server.url, timeout=30) as c:
            for call in calls:
                call.retry = call.send(out, c, api, "retry")
        for call in calls:
            assert call.retry is not None and call.retry.status is not None
            if call in answered:
                assert call.first is not None
                assert (call.retry.status, call.retry.body) == (call.first.status, call.first.body)
                assert call.retry.replayed or call.retry.status >= 400
            else:
                assert call.retry.status in (200, 201), call.retry.text
                committed_unanswered += call.retry.replayed
        counts = assert_nothing_half_written(engine)
        with read_session(engine) as s:
            for i in range(10):
                same = s.exec(
                    select(DoseOrder).where(col(DoseOrder.consent_ref) == f"kill-r{round_}-{i}")
                ).all()
                assert len(same) == 1, f"order kill-r{round_}-{i} exists {len(same)} times"
            for number in numbers:
                order = s.exec(select(DoseOrder).where(col(DoseOrder.number) == number)).one()
                assert order.status == "ALLOCATED" and order.dose_material_id is not None
            for i in range(4):
                steps = s.exec(select(Step).where(col(Step.notes) == f"kill-r{round_}-{i}")).all()
                assert len(steps) == 1
        assert_clean_refusals(out)
    # The killed server's own log never shows a password or a token.
    text_log = log.read_text(errors="replace")
    for secret in (PASSWORD, *api.tokens.values()):
        assert secret not in text_log
    figures.requests = len(out.items)
    figures.refusals = sum(1 for o in out.items if o.status and 400 <= o.status < 500)
    figures.faults = rounds
    figures.notes = (
        f"kill -9 of `lims serve` during a burst of 24 POSTs, x{rounds}; {cut_total} requests "
        f"cut mid-flight ({committed_unanswered} had committed, their retry replayed the "
        f"stored answer; the rest were done once on retry); answered ones replayed as first; "
        f"{counts['orders']} orders, {counts['doses']} doses, chain of {counts['events']} ok"
    )
    print(f"\nkill -9 on {engine.dialect.name}: {figures.notes}")


# --- the database connection dropped mid-transaction (PostgreSQL) -----------------------------


def _head(engine: Engine) -> tuple[int, str]:
    with read_session(engine) as s:
        head = s.exec(select(CustodyHead)).one()
        return head.seq, head.hash


def test_connection_dropped_mid_transaction_is_a_clean_error(
    engine: Engine, world: World, api: Api, figures: Row
) -> None:
    """Hold the custody head's row lock so that a request stops inside its transaction
    (after its first INSERTs, waiting to append its event), then kill that request's
    PostgreSQL backend with pg_terminate_backend."""
    if engine.dialect.name != "postgresql":
        pytest.skip("pg_terminate_backend needs PostgreSQL (SQLite has no server connection)")
    lab = Lab.start(engine, world)
    lot = lab.lot()
    number = api.client.post(
        "/api/v1/clinic/orders",
        json=order_body(world.patient_coi, "pre-drop"),
        headers=api.as_("clinic"),
    ).json()["number"]
    out = Outcomes()
    cases = [
        (
            "clinic",
            "/api/v1/clinic/orders",
            order_body(more_patients(engine, world, 1)[0], "drop-1"),
            "drop-o",
        ),
        ("technician", f"/api/v1/lab/orders/{number}/allocation", {}, "drop-a"),
    ]
    with live_server(engine) as url, httpx.Client(base_url=url, timeout=60) as client:
        for who, path, body, key in cases:
            with read_session(engine) as s:
                orders_before = s.execute(select(func.count()).select_from(DoseOrder)).scalar_one()
                steps_before = s.execute(select(func.count()).select_from(Step)).scalar_one()
            head_before = _head(engine)
            got: list[Outcome] = []
            with engine.connect() as locker:
                locker.begin()
                locker_pid = locker.execute(text("SELECT pg_backend_pid()")).scalar_one()
                locker.execute(text("SELECT seq FROM custody_head WHERE id = 1 FOR UPDATE"))
                headers = api.as_(who) | {"Idempotency-Key": key}
                request = threading.Thread(
                    target=lambda p=path, b=body, h=headers, into=got: into.append(
                        out.send(client, "dropped", "POST", p, json=b, headers=h)
                    )
                )
                request.start()
                victim = None
                deadline = time.monotonic() + 20
                with engine.connect() as watcher:
                    while victim is None and time.monotonic() < deadline:
                        # pg_stat_activity is a snapshot per transaction: one per look.
                        victim = watcher.execute(
                            text(
                                "SELECT pid FROM pg_stat_activity "
                                "WHERE :locker = ANY(pg_blocking_pids(pid))"
                            ),
                            {"locker": locker_pid},
                        ).scalar()
                        watcher.rollback()
                        time.sleep(0.02)
                    assert victim is not None, "the request never reached the custody append"
                    # The victim has already written in its transaction; now it is cut off.
                    watcher.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": victim})
                    watcher.rollback()
                locker.rollback()
            request.join(timeout=60)
            (answer,) = got
            assert answer.status == 503, answer.text
            assert answer.content_type.startswith(PROBLEM)
            assert "nothing was changed" in answer.body["detail"]
            # Nothing partial: no order, no step, no event, the lot untouched.
            assert _head(engine) == head_before
            with read_session(engine) as s:
                assert (
                    s.execute(select(func.count()).select_from(DoseOrder)).scalar_one()
                    == orders_before
                )
                assert (
                    s.execute(select(func.count()).select_from(Step)).scalar_one() == steps_before
                )
                assert (
                    s.exec(select(Material).where(col(Material.material_id) == lot)).one()
                ).remaining_canonical == 15
            # The same key again, now that the database is reachable: done once.
            again = out.send(
                client,
                "retry",
                "POST",
                path,
                json=body,
                headers=api.as_(who) | {"Idempotency-Key": key},
            )
            assert again.status in (200, 201), again.text
    with read_session(engine) as s:
        assert (
            len(s.exec(select(DoseOrder).where(col(DoseOrder.consent_ref) == "drop-1")).all()) == 1
        )
        order = s.exec(select(DoseOrder).where(col(DoseOrder.number) == number)).one()
        assert order.status == "ALLOCATED"
    assert_nothing_half_written(engine)
    figures.requests = len(out.items)
    figures.refusals = sum(1 for o in out.items if o.status and 400 <= o.status < 500)
    figures.server_errors = 0  # the 503s are the clean "retry" answer this test expects
    figures.faults = len(cases)
    figures.notes = (
        "pg_terminate_backend on a request's backend mid-transaction (order; allocation): "
        "503 problem+json, nothing partial, the same key then succeeds once"
    )


# --- SQLite: another writer holds the lock ------------------------------------------------------


@pytest.fixture
def short_busy_timeout(monkeypatch: pytest.MonkeyPatch) -> Any:
    """A 100 ms busy timeout, so that write_session's own retries are what waits."""
    monkeypatch.setenv("LIMS_SQLITE_BUSY_TIMEOUT_MS", "100")
    get_settings.cache_clear()
    yield
    monkeypatch.undo()
    get_settings.cache_clear()


def _hold_write_lock(path: str, seconds: float) -> threading.Thread:
    holder = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    holder.execute("BEGIN IMMEDIATE")
    holder.execute("UPDATE custody_head SET seq = seq WHERE id = 1")

    def release() -> None:
        time.sleep(seconds)
        holder.execute("COMMIT")
        holder.close()

    thread = threading.Thread(target=release)
    thread.start()
    return thread


def test_sqlite_lock_contention_is_retried_not_failed(
    engine: Engine, world: World, api: Api, figures: Row, short_busy_timeout: Any
) -> None:
    if engine.dialect.name != "sqlite":
        pytest.skip("SQLite's database-level write lock")
    path = str(engine.url.database)
    busy = make_engine(f"sqlite:///{path}")  # picks up the 100 ms busy timeout
    out = Outcomes()
    try:
        client = TestClient(create_app(busy), raise_server_exceptions=False)
        headers = api.as_("clinic")
        other = more_patients(engine, world, 1)[0]  # session 1 of a course is ordered once
        # 1. The lock is held for 1.5 s, 15 times the busy timeout: the request waits and
        # is retried inside write_session with back-off, and succeeds.
        holder = _hold_write_lock(path, 1.5)
        started = time.monotonic()
        ok = out.send(
            client,
            "locked",
            "POST",
            "/api/v1/clinic/orders",
            json=order_body(other, "lock-1"),
            headers=headers | {"Idempotency-Key": "lock-1"},
        )
        waited = time.monotonic() - started
        holder.join(timeout=30)
        assert ok.status == 201, ok.text
        assert waited >= 1.3, f"answered after {waited:.2f} s: the lock was not contended"
        # 2. Held longer than every retry (about 3.7 s): a clean 503, nothing written, and
        # the same key succeeds once the lock is free.
        holder = _hold_write_lock(path, 6)
        body = order_body(world.patient_coi, "lock-2")
        refused = out.send(
            client,
            "locked",
            "POST",
            "/api/v1/clinic/orders",
            json=body,
            headers=headers | {"Idempotency-Key": "lock-2"},
        )
        holder.join(timeout=30)
        assert refused.status == 503 and refused.content_type.startswith(PROBLEM), refused.text
        assert "retry with the same Idempotency-Key" in refused.body["detail"]
        again = out.send(
            client,
            "retry",
            "POST",
            "/api/v1/clinic/orders",
            json=body,
            headers=headers | {"Idempotency-Key": "lock-2"},
        )
        assert again.status == 201, again.text
        client.close()
    finally:
        busy.dispose()
    with read_session(engine) as s:
        for ref in ("lock-1", "lock-2"):
            assert (
                len(s.exec(select(DoseOrder).where(col(DoseOrder.consent_ref) == ref)).all()) == 1
            )
    assert_nothing_half_written(engine)
    figures.requests = len(out.items)
    figures.faults = 2
    figures.notes = (
        f"write lock held by another connection: 1.5 s with a 100 ms busy timeout -> "
        f"retried, 201 after {waited:.1f} s; 6 s -> 503 'retry', then 201 once"
    )


# --- a flow worker killed mid-flow (LIMS_TEST_LONG: each worker start costs ~20 s) ----------


def _processes_with(prefect_home: str) -> list[int]:
    """Our own processes: the ones started with this test's private PREFECT_HOME."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            environ = (entry / "environ").read_bytes()
        except OSError:
            continue
        if f"PREFECT_HOME={prefect_home}".encode() in environ.split(b"\0"):
            found.append(int(entry.name))
    return found


def _worker(request_path: Path, url: str, prefect_home: Path, log: Path) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env.update(
        PREFECT_HOME=str(prefect_home),
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
        PREFECT_LOGGING_LEVEL="WARNING",
        PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS="90",
    )
    with log.open("ab") as sink:
        return subprocess.Popen(
            [sys.executable, "-m", "tests.reliability.flow_worker", str(request_path), url],
            cwd=ROOT,
            env=env,
            stdout=sink,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: the worker and its Prefect server
        )


def _lot_steps(engine: Engine, cm: str) -> tuple[list[Step], list[Step], list[Material]]:
    """The fill steps that took from ``cm``, the lots they made, and those lots' LYO steps."""
    with read_session(engine) as s:
        cm_row = s.exec(select(Material).where(col(Material.material_id) == cm)).one()
        fills = s.exec(
            select(Step)
            .join(StepInput, col(StepInput.step_id) == col(Step.id))
            .where(col(StepInput.material_id) == cm_row.id, col(Step.sop_code) == "AAPE-FILL")
        ).all()
        lots = s.exec(
            select(Material).where(col(Material.created_in_step_id).in_([f.id for f in fills]))
        ).all()
        lyos = s.exec(
            select(Step)
            .join(StepInput, col(StepInput.step_id) == col(Step.id))
            .where(
                col(StepInput.material_id).in_([lot.id for lot in lots]),
                col(Step.sop_code) == "AAPE-LYO",
            )
        ).all()
        return list(fills), list(lyos), list(lots)


@pytest.mark.skipif(
    not LONG, reason="starts two Prefect worker processes (~40 s): LIMS_TEST_LONG=1"
)
def test_flow_worker_killed_mid_flow_rerun_without_duplicates(
    engine: Engine, world: World, figures: Row, tmp_path: Path
) -> None:
    """A worker process runs the lot flow (fill, lyophilise, store) on its own Prefect;
    right after the fill commits, the whole process group is frozen and killed (SIGSTOP,
    SIGKILL). A new worker re-runs the same request."""
    from tests.flows import requests as rq

    lab = Lab.start(engine, world)
    cm = lab.cm_batch("61 mL")
    request_path = tmp_path / "lot-fill.json"
    request_path.write_text(json.dumps(rq.lot_fill(lab, cm)), encoding="utf-8")
    url = database_url(engine)
    home = tmp_path / "prefect-home"
    log = tmp_path / "worker.log"
    worker = _worker(request_path, url, home, log)
    try:
        deadline = time.monotonic() + 180
        while not _lot_steps(engine, cm)[0]:
            assert worker.poll() is None, log.read_text(errors="replace")
            assert time.monotonic() < deadline, "the worker never recorded the fill"
            time.sleep(0.005)
        # Frozen at once (SIGSTOP), wherever it is: between steps or inside the next one's
        # transaction; then killed. Taking the custody lock first and killing after was a
        # race the worker won when its next steps committed before the lock was granted
        # (SQLite's busy handler favours the connection that keeps writing).
        os.killpg(worker.pid, signal.SIGSTOP)
        time.sleep(0.2)
        os.killpg(worker.pid, signal.SIGKILL)
        worker.wait(timeout=30)
    finally:
        if worker.poll() is None:
            os.killpg(worker.pid, signal.SIGKILL)
            worker.wait(timeout=30)
        for pid in _processes_with(str(home)):  # e.g. its ephemeral Prefect server
            os.kill(pid, signal.SIGKILL)
    fills, lyos, lots = _lot_steps(engine, cm)
    at_kill = f"{len(fills)} fill, {len(lyos)} lyophilisation"
    assert len(fills) == len(lots) == 1 and len(lyos) <= 1
    assert lots[0].location_id is None, "the flow had already finished when it was killed"
    assert_nothing_half_written(engine)

    rerun = _worker(request_path, url, home, log)
    try:
        assert rerun.wait(timeout=300) == 0, log.read_text(errors="replace")
    finally:
        if rerun.poll() is None:
            os.killpg(rerun.pid, signal.SIGKILL)
            rerun.wait(timeout=30)
        for pid in _processes_with(str(home)):
            os.kill(pid, signal.SIGKILL)
    fills, lyos, lots = _lot_steps(engine, cm)
    assert (len(fills), len(lyos), len(lots)) == (1, 1, 1), (fills, lyos, lots)
    with read_session(engine) as s:
        lot = s.exec(select(Material).where(col(Material.id) == lots[0].id)).one()
    assert lot.state == "LYOPHILISED" and lot.location_id is not None
    assert_nothing_half_written(engine)
    figures.faults = 1
    figures.notes = (
        f"SIGKILL to the worker's process group after {at_kill} committed; the re-run "
        "finished the flow: 1 fill, 1 lyophilisation, 1 lot, stored, nothing duplicated"
    )
