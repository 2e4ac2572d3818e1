"""The scale-out topology on one machine: a real Prefect server on PostgreSQL, the lab
deployments in a process work pool, a worker, and a stage run through its deployment.

    python -m flows.scale --postgres postgresql://postgres@127.0.0.1:5432/postgres

(``make scale-demo``.) It creates a fresh PostgreSQL database for Prefect
(``prefect_scale_<random>``), starts ``prefect server start`` on a free local port, creates
the ``process`` work pool, registers every lab deployment with
``flow.from_source(<this checkout>, entrypoint).deploy(...)``, starts
``prefect worker start --pool ...`` with LIMS_DATABASE_URL pointing at a LIMS database
prepared with the demo's clinics, staff and patients, runs the lipoaspirate intake
through its deployment, and reads the result back from the LIMS database. It stops every
process it started and drops the database it created, also when something fails.
On separate hosts the same steps apply (README, "Running at scale").
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, redirect_stdout, suppress
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
from prefect.client.schemas.objects import FlowRun
from sqlalchemy import create_engine, make_url, text

from flows.common import engine_for
from flows.deploy import ROOT, deploy_all
from flows.topology import prefect_server_command, worker_command
from lims.db import read_session
from lims.demo import newest_material

PREFECT = str(Path(sys.executable).with_name("prefect"))


@dataclass
class ScaleCheck:
    prefect_database: str
    api_url: str
    deployments: list[str]
    flow_run_name: str
    state: str
    material_id: str
    material_state: str
    timings: dict[str, float] = field(default_factory=dict)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def prefect_database(admin_url: str) -> Iterator[str]:
    """A fresh PostgreSQL database for the Prefect server (asyncpg URL); dropped after."""
    name = f"prefect_scale_{uuid.uuid4().hex[:10]}"
    url = make_url(admin_url).set(drivername="postgresql+psycopg")
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        yield url.set(drivername="postgresql+asyncpg", database=name).render_as_string(
            hide_password=False
        )
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@contextmanager
def process(args: list[str], env: dict[str, str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    """Run ``args`` in its own process group; stop the whole group afterwards."""
    with log.open("wb") as out:
        proc = subprocess.Popen(
            args, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
        try:
            yield proc
        finally:
            for sig, wait in ((signal.SIGTERM, 15), (signal.SIGKILL, 5)):
                if proc.poll() is not None:
                    break
                os.killpg(proc.pid, sig)
                try:
                    proc.wait(timeout=wait)
                except subprocess.TimeoutExpired:
                    continue
            # Children of the group (a flow run the worker started) go with it.
            with suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)


def wait_for_api(api_url: str, server: subprocess.Popen[bytes], timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"prefect server exited with {server.returncode}")
        try:
            if httpx.get(f"{api_url}/health", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise TimeoutError(f"the Prefect server at {api_url} did not answer in {timeout:.0f} s")


def prepare_lims(lims_url: str) -> dict[str, Any]:
    """Migrate the LIMS database, load the demo's cast; return an intake request for it
    (collected 5 h ago, inspected 3 h later)."""
    from flows.scenario_requests import Requests, set_up_cast
    from lims import migrate
    from lims.db import utcnow

    engine = engine_for(lims_url)
    migrate.upgrade(engine)
    requests = Requests(set_up_cast(engine), utcnow() - timedelta(hours=5))
    return requests.intake(requests.cast.patient, "120 mL", 0, f"SCALE-{uuid.uuid4().hex[:8]}")


def run_scale_check(postgres_admin_url: str, workdir: Path, pool: str = "lab") -> ScaleCheck:
    from prefect.deployments import run_deployment
    from prefect.settings import PREFECT_API_URL, temporary_settings

    timings: dict[str, float] = {}
    started = time.perf_counter()
    lims_url = f"sqlite:///{workdir / 'lims.db'}"
    request = prepare_lims(lims_url)
    port = free_port()
    api_url = f"http://127.0.0.1:{port}/api"
    home = workdir / "prefect-home"
    home.mkdir(exist_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env.update(
        PREFECT_HOME=str(home),
        PREFECT_API_URL=api_url,
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
        PREFECT_UI_ENABLED="false",
        PREFECT_WORKER_QUERY_SECONDS="1",
        PREFECT_WORKER_PREFETCH_SECONDS="5",
        LIMS_DATABASE_URL=lims_url,
    )
    with prefect_database(postgres_admin_url) as prefect_db:
        server_env = {**env, "PREFECT_SERVER_DATABASE_CONNECTION_URL": prefect_db}
        server_args = [PREFECT, *prefect_server_command("127.0.0.1", port)[1:]]
        with process(server_args, server_env, workdir / "server.log") as server:
            wait_for_api(api_url, server)
            timings["server start"] = time.perf_counter() - started
            mark = time.perf_counter()
            with (
                temporary_settings(updates={PREFECT_API_URL: api_url}),
                (workdir / "deploy.log").open("w") as log,
                redirect_stdout(log),
            ):
                names = deploy_all(source=str(ROOT), work_pool=pool)
            timings["deploy"] = time.perf_counter() - mark
            worker_args = [PREFECT, *worker_command(pool)[1:]]
            with process(worker_args, env, workdir / "worker.log"):
                mark = time.perf_counter()
                with temporary_settings(updates={PREFECT_API_URL: api_url}):
                    run = run_deployment(
                        "lipoaspirate-intake/lims", parameters={"request": request}, timeout=240
                    )
                    assert isinstance(run, FlowRun)
                timings["run via deployment"] = time.perf_counter() - mark
    timings["total"] = time.perf_counter() - started
    assert run.state is not None
    with read_session(engine_for(lims_url)) as session:
        material = newest_material(session)
    return ScaleCheck(
        prefect_database=make_url(prefect_db).database or "",
        api_url=api_url,
        deployments=names,
        flow_run_name=run.name,
        state=str(run.state.name),
        material_id=material.material_id if material else "",
        material_state=material.state if material else "",
        timings=timings,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--postgres",
        default=os.environ.get(
            "LIMS_SCALE_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
        ),
        help="a PostgreSQL URL whose user may create databases",
    )
    parser.add_argument(
        "--hosts",
        action="store_true",
        help="across hosts made with network namespaces (root; flows/hosts.py)",
    )
    args = parser.parse_args()
    if args.hosts:
        hosts_main()
        return
    workdir = Path(tempfile.mkdtemp(prefix="lims-scale-"))
    try:
        check = run_scale_check(args.postgres, workdir)
    except BaseException:
        print(f"logs kept in {workdir}", file=sys.stderr)
        raise
    print(f"Prefect server {check.api_url} on PostgreSQL database {check.prefect_database}")
    print(f"{len(check.deployments)} deployments: {', '.join(check.deployments)}")
    print(f"flow run {check.flow_run_name!r}: {check.state}")
    print(f"LIMS database: {check.material_id} {check.material_state}")
    print("timings: " + ", ".join(f"{k} {v:.1f} s" for k, v in check.timings.items()))
    shutil.rmtree(workdir, ignore_errors=True)
    if check.state != "Completed" or check.material_state != "ACCEPTED":
        raise SystemExit(1)


def hosts_main() -> None:
    """The topology across namespace hosts: a worker link cut, an API host killed."""
    from flows import netns
    from flows.hosts_run import run_hosts_check

    reason = netns.unavailable()
    if reason:
        raise SystemExit(f"--hosts: {reason}")
    workdir = Path(tempfile.mkdtemp(prefix="lims-hosts-"))
    try:
        check = run_hosts_check(workdir)
    except BaseException:
        print(f"logs kept in {workdir}", file=sys.stderr)
        raise
    print("\n".join(check.lines()))
    shutil.rmtree(workdir, ignore_errors=True)
    ok = check.duplicate_steps == 0 and check.conservation_ok and check.chain_ok
    if not ok or check.orders_stored != check.orders_sent:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
