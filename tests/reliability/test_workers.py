"""`lims serve --workers 2`: two processes behind one port keep the guarantees one has. The
same Idempotency-Key sent at once over many connections (answered by both processes)
makes one patient; /metrics sums both processes' request counts; killing the supervisor
with SIGKILL leaves no worker answering. On each test database."""

from __future__ import annotations

import os
import re
import signal
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from sqlalchemy import Engine, func
from sqlmodel import select

from lims.db import read_session
from lims.parties.models import Patient
from tests.api.conftest import Api
from tests.reliability.conftest import lims_serve

CALLS = 48


def _workers(supervisor: int) -> set[int]:
    """The pids of the processes uvicorn spawned to serve (not its resource tracker)."""
    found = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            command = (entry / "cmdline").read_bytes()
        except (OSError, IndexError, ValueError):
            continue
        if parent == supervisor and b"spawn_main" in command:
            found.add(int(entry.name))
    return found


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

        with ThreadPoolExecutor(max_workers=16) as pool:
            answers = list(pool.map(register, range(CALLS)))
        statuses = {status for status, _ in answers}
        # The first answer, or a 409 "still in progress" to a retry that overtook it.
        assert statuses <= {201, 409}, answers[:3]
        firsts = {text for status, text in answers if status == 201}
        assert len(firsts) == 1, firsts  # every 201 is the same answer, replayed
        with read_session(engine) as s:
            made = s.exec(select(func.count()).where(Patient.identifier_2 == "WORKERS-1")).one()
        assert made == 1

        # Both processes answered, and /metrics counts every request whichever answered.
        answered = {
            int(m.group(1))
            for f in metrics_dir.iterdir()
            if (m := re.match(r"histogram_(\d+)\.db", f.name))
        }
        assert answered == workers, (answered, workers)
        scraped = httpx.get(f"{server.url}/metrics", timeout=60).text
        total = sum(
            float(m.group(2))
            for m in re.finditer(
                r'lims_http_request_duration_seconds_count\{method="POST",'
                r'route="/api/v1/clinic/patients",status="(\d+)"\} ([\d.e+]+)',
                scraped,
            )
        )
        assert total == CALLS, scraped[:2000]

        # The supervisor killed outright: its workers end too, nothing answers on the port.
        os.kill(server.process.pid, signal.SIGKILL)
        server.process.wait(timeout=20)
        deadline = time.monotonic() + 20
        while any(_alive(pid) for pid in workers) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not any(_alive(pid) for pid in workers)
        with pytest.raises(httpx.HTTPError):
            httpx.get(f"{server.url}/health", timeout=5)
