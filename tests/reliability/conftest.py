"""Shared pieces of the reliability suite: the figures every test reports, HTTP outcome
bookkeeping, and a real `lims serve` process for the fault tests.

Figures: each test adds one row (requests run, refusals, faults injected, cases fuzzed,
whether nothing was lost). They are printed at the end of the run and, when
LIMS_RELIABILITY_FIGURES names a file, written there as a Markdown table
(docs/reliability.md quotes such a table).

LIMS_TEST_LONG=1 (.ci/run sets it) lengthens the soak and repeats the kill -9 rounds.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine, text

from lims.settings import get_settings
from tests.api.conftest import api  # noqa: F401  (the signed-in clients, for these tests too)

LONG = os.environ.get("LIMS_TEST_LONG", "").strip() == "1"
PROBLEM = "application/problem+json"
ROOT = Path(__file__).resolve().parents[2]


# --- figures ------------------------------------------------------------------------------


@dataclass
class Row:
    test: str
    backend: str
    requests: int = 0
    refusals: int = 0  # 4xx answers, each checked for a problem+json reason
    server_errors: int = 0
    faults: int = 0
    cases: int = 0  # hand-written or generated bad-input cases
    nothing_lost: bool = True
    notes: str = ""


@dataclass
class Figures:
    rows: list[Row] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, row: Row) -> Row:
        with self.lock:
            self.rows.append(row)
        return row

    def table(self) -> str:
        head = (
            "| test | database | requests | refusals (4xx) | 5xx | faults injected "
            "| cases | nothing lost | notes |\n|---|---|---|---|---|---|---|---|---|\n"
        )
        lines = [
            f"| {r.test} | {r.backend} | {r.requests} | {r.refusals} | {r.server_errors} "
            f"| {r.faults} | {r.cases} | {'yes' if r.nothing_lost else 'NO'} | {r.notes} |"
            for r in self.rows
        ]
        total = Row(test="**total**", backend="")
        for r in self.rows:
            total.requests += r.requests
            total.refusals += r.refusals
            total.server_errors += r.server_errors
            total.faults += r.faults
            total.cases += r.cases
            total.nothing_lost &= r.nothing_lost
        lines.append(
            f"| **total** | | {total.requests} | {total.refusals} | {total.server_errors} "
            f"| {total.faults} | {total.cases} | {'yes' if total.nothing_lost else 'NO'} | |"
        )
        return head + "\n".join(lines) + "\n"


FIGURES = Figures()


@pytest.fixture
def figures(request: pytest.FixtureRequest) -> Iterator[Row]:
    """A row for the calling test; it is reported only if the test got to its end."""
    backend = "-"
    if "engine" in request.fixturenames:
        backend = request.getfixturevalue("engine").dialect.name
    row = Row(test=request.node.originalname or request.node.name, backend=backend)
    yield row
    report = getattr(request.node, "rep_call", None)
    if report is not None and report.passed:
        FIGURES.add(row)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    if report.when == "call":
        item.rep_call = report  # type: ignore[attr-defined]
    return report


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not FIGURES.rows:
        return
    terminalreporter.write_sep("=", "reliability figures")
    terminalreporter.write(FIGURES.table())
    target = os.environ.get("LIMS_RELIABILITY_FIGURES", "").strip()
    if target:
        Path(target).write_text(FIGURES.table(), encoding="utf-8")
        terminalreporter.write_line(f"figures written to {target}")


# --- HTTP outcomes ------------------------------------------------------------------------


@dataclass
class Outcome:
    label: str
    status: int | None  # None: no answer (connection dropped, timeout)
    body: Any
    text: str
    content_type: str = ""
    error: str = ""
    replayed: bool = False  # answered from a stored Idempotency-Key record


class Outcomes:
    """Thread-safe record of every request a test sent and what came back."""

    def __init__(self) -> None:
        self.items: list[Outcome] = []
        self._lock = threading.Lock()

    def send(self, client: httpx.Client, label: str, method: str, url: str, **kw: Any) -> Outcome:
        try:
            r = client.request(method, url, **kw)
        except httpx.HTTPError as exc:
            outcome = Outcome(label, None, None, "", error=f"{type(exc).__name__}: {exc}")
        else:
            try:
                body = r.json()
            except ValueError:
                body = None
            outcome = Outcome(
                label,
                r.status_code,
                body,
                r.text,
                r.headers.get("content-type", ""),
                replayed=r.headers.get("idempotent-replayed") == "true",
            )
        with self._lock:
            self.items.append(outcome)
        return outcome

    def statuses(self) -> Counter[int | None]:
        return Counter(o.status for o in self.items)

    def bad_refusals(self) -> list[Outcome]:
        """4xx answers without a problem+json body that says why."""
        return [
            o
            for o in self.items
            if o.status is not None
            and 400 <= o.status < 500
            and not (
                o.content_type.startswith(PROBLEM)
                and isinstance(o.body, dict)
                and isinstance(o.body.get("detail"), str)
                and o.body["detail"].strip()
                and o.body.get("status") == o.status
            )
        ]

    def server_errors(self) -> list[Outcome]:
        return [o for o in self.items if o.status is not None and o.status >= 500]


def assert_clean_refusals(outcomes: Outcomes) -> None:
    assert outcomes.server_errors() == [], outcomes.server_errors()[:5]
    assert outcomes.bad_refusals() == [], outcomes.bad_refusals()[:5]


# --- a real server process ------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def database_url(engine: Engine) -> str:
    """The test database's URL for another process (on PostgreSQL, with the test schema)."""
    url = engine.url.render_as_string(hide_password=False)
    if engine.dialect.name == "postgresql":
        with engine.connect() as conn:
            schema = conn.execute(text("SELECT current_schema()")).scalar_one()
        url = f"{url}?options=-csearch_path%3D{schema}"
    return url


@dataclass
class ServerProcess:
    process: subprocess.Popen[bytes]
    url: str
    log: Path

    def kill9(self) -> None:
        if self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=20)


@contextmanager
def lims_serve(
    engine: Engine, log: Path, *, timeout: float = 60, workers: int = 1
) -> Iterator[ServerProcess]:
    """`lims serve --workers N` (one unless asked) on a free loopback port against the test's
    database; always stopped."""
    port = free_port()
    # The same signing key as this process, wherever the key file would be looked for.
    env = {
        **os.environ,
        "LIMS_DATABASE_URL": database_url(engine),
        "LIMS_SECRET_KEY": get_settings().secret_key,
    }
    with log.open("ab") as sink:
        process = subprocess.Popen(
            [
                *(sys.executable, "-m", "cli.main", "serve", "--host", "127.0.0.1"),
                *("--port", str(port), "--workers", str(workers)),
            ],
            cwd=ROOT,
            env=env,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    server = ServerProcess(process, f"http://127.0.0.1:{port}", log)
    try:
        deadline = time.monotonic() + timeout
        while True:
            if process.poll() is not None:
                raise AssertionError(f"lims serve exited: {log.read_text(errors='replace')}")
            try:
                if httpx.get(f"{server.url}/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError("lims serve did not answer /health in time")
            time.sleep(0.1)
        yield server
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                server.kill9()
