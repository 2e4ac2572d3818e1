"""`lims serve --workers 2`: two processes behind one port keep the guarantees one has. The
same Idempotency-Key sent at once over many connections (answered by both processes)
makes one patient; /metrics sums both processes' request counts; killing the supervisor
with SIGKILL leaves no worker answering. On each test database."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from prometheus_client.mmap_dict import MmapedDict
from sqlalchemy import Engine, func
from sqlmodel import select

from lims.db import read_session
from lims.parties.models import Patient
from lims.settings import get_settings
from tests.api.conftest import Api
from tests.reliability.conftest import ROOT, database_url, free_port, lims_serve

CALLS = 48
ROUNDS = 10


def _children(parent: int, marker: bytes = b"") -> set[int]:
    """The pids of ``parent``'s children whose command line holds ``marker``."""
    found = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            command = (entry / "cmdline").read_bytes()
        except (OSError, IndexError, ValueError):
            continue
        if ppid == parent and marker in command:
            found.add(int(entry.name))
    return found


def _workers(supervisor: int) -> set[int]:
    """The pids of the processes uvicorn spawned to serve (not its resource tracker)."""
    return _children(supervisor, b"spawn_main")


def _posts_by_worker(metrics_dir: Path) -> dict[int, float]:
    """How many POST /api/v1/clinic/patients each worker answered, from the files each
    writes in the multiprocess directory (its request histogram's buckets, which are kept
    per bucket there and made cumulative only when /metrics is read)."""
    counts: dict[int, float] = {}
    for f in metrics_dir.glob("histogram_*.db"):
        pid = int(f.stem.split("_")[1])
        for key, value, *_ in MmapedDict.read_all_values_from_file(str(f)):
            _, sample, labels, *_ = json.loads(key)
            if (
                sample == "lims_http_request_duration_seconds_bucket"
                and labels.get("route") == "/api/v1/clinic/patients"
                and labels.get("method") == "POST"
            ):
                counts[pid] = counts.get(pid, 0) + value
    return {pid: n for pid, n in counts.items() if n}


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="reads the process table in /proc")
def test_two_workers_keep_one_answer_per_key_and_one_metrics_view(
    engine: Engine, api: Api, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    metrics_dir = tmp_path / "metrics"
    metrics_dir.mkdir()
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(metrics_dir))
    with lims_serve(engine, tmp_path / "serve.log", workers=2) as server:
        deadline = time.monotonic() + 30
        while len(workers := _workers(server.process.pid)) < 2 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert len(workers) == 2, workers

        body = {"identifier_1": "1990-01-01", "identifier_2": "WORKERS-1"}
        headers = {**api.as_("clinic"), "Idempotency-Key": "two-workers-one-patient"}

        def register(_: int) -> tuple[int, str]:
            # A client per call: a new connection, which either process may accept.
            with httpx.Client(base_url=server.url, timeout=60) as c:
                r = c.post("/api/v1/clinic/patients", json=body, headers=headers)
                return r.status_code, r.text

        # Rounds of concurrent retries until both processes have answered some: one process
        # may accept a whole round's connections before the other wakes.
        answers: list[tuple[int, str]] = []
        for _ in range(ROUNDS):
            with ThreadPoolExecutor(max_workers=16) as pool:
                answers += pool.map(register, range(CALLS))
            if len(_posts_by_worker(metrics_dir)) == 2:
                break
        statuses = {status for status, _ in answers}
        # The first answer, or a 409 "still in progress" to a retry that overtook it.
        assert statuses <= {201, 409}, answers[:3]
        firsts = {text for status, text in answers if status == 201}
        assert len(firsts) == 1, firsts  # every 201 is the same answer, replayed
        with read_session(engine) as s:
            made = s.exec(select(func.count()).where(Patient.identifier_2 == "WORKERS-1")).one()
        assert made == 1

        # Both processes answered the retries, and /metrics counts every request whichever
        # answered.
        by_worker = _posts_by_worker(metrics_dir)
        assert set(by_worker) == workers and all(by_worker.values()), (by_worker, workers)
        assert sum(by_worker.values()) == len(answers)
        scraped = httpx.get(f"{server.url}/metrics", timeout=60).text
        total = sum(
            float(m.group(2))
            for m in re.finditer(
                r'lims_http_request_duration_seconds_count\{method="POST",'
                r'route="/api/v1/clinic/patients",status="(\d+)"\} ([\d.e+]+)',
                scraped,
            )
        )
        assert total == len(answers), scraped[:2000]

        # The supervisor killed outright: its workers end too, nothing answers on the port.
        os.kill(server.process.pid, signal.SIGKILL)
        server.process.wait(timeout=20)
        deadline = time.monotonic() + 20
        while any(_alive(pid) for pid in workers) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not any(_alive(pid) for pid in workers)
        with pytest.raises(httpx.HTTPError):
            httpx.get(f"{server.url}/health", timeout=5)


@pytest.mark.skipif(
    shutil.which("unshare") is None or os.geteuid() != 0, reason="a pid namespace needs root"
)
def test_workers_stay_up_when_the_supervisor_is_pid_1(engine: Engine, tmp_path: Path) -> None:
    """In a container `lims serve` is pid 1: its workers' parent is pid 1 while it lives, which
    must not read as "the supervisor is gone" (they would end and be restarted in a loop)."""
    port = free_port()
    log = tmp_path / "pid1.log"
    env = {
        **os.environ,
        "LIMS_DATABASE_URL": database_url(engine),
        "LIMS_SECRET_KEY": get_settings().secret_key,
    }
    serve = [sys.executable, "-m", "cli.main", "serve", "--port", str(port), "--workers", "2"]
    with log.open("ab") as sink:
        process = subprocess.Popen(
            # --kill-child: the server (and with it the namespace) ends if unshare is killed.
            ["unshare", "--pid", "--fork", "--mount-proc", "--kill-child=SIGTERM", *serve],
            cwd=ROOT,
            env=env,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        time.sleep(3)  # a worker that ended itself would have been restarted by now
        text = log.read_text(errors="replace")
        assert text.count("Started server process") == 2, text[-3000:]
        assert "died" not in text, text[-3000:]
        assert httpx.get(f"http://127.0.0.1:{port}/health", timeout=10).status_code == 200
    finally:
        # unshare does not pass signals on: stop the server it forked (pid 1 inside).
        for pid in _children(process.pid):
            os.kill(pid, signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=20)
