"""The scale-out topology across hosts on this machine (network namespaces, flows.netns):
a database host (a PostgreSQL of its own), a Prefect server host, two worker hosts and two
API hosts, each started with the command and environment flows/topology.py gives
docker-compose.yml. flows/hosts_run.py drives the faults through it.

    python -m flows.scale --hosts        (make scale-demo HOSTS=1; root and iproute2)
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from flows import topology
from flows.deploy import ROOT
from flows.netns import PREFIX, SUBNET, Network, network
from flows.scale import process

PG_PORT = 5433
WORKERS = ("w1", "w2")
APIS = ("api1", "api2")
# The database host drops a dead client's session within seconds (a worker host whose link
# went down may hold a row lock mid-transaction); a production server wants the same.
PG_OPTIONS = (
    "-c tcp_keepalives_idle=2 -c tcp_keepalives_interval=1 -c tcp_keepalives_count=3 "
    "-c tcp_user_timeout=5000 -c idle_in_transaction_session_timeout=10s"
)


def local(command: list[str]) -> list[str]:
    """A topology command with this installation's executables (the venv's)."""
    head = (
        sys.executable if command[0] == "python" else str(Path(sys.executable).parent / command[0])
    )
    return [head, *command[1:]]


def checkpoint_pem() -> str:
    key = Ed25519PrivateKey.generate()
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


@dataclass
class Topology:
    net: Network
    workdir: Path
    hosts: topology.Hosts
    lims_url: str  # as the machine (and every host) reaches it
    prefect_api: str
    api_urls: dict[str, str] = field(default_factory=dict)
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)

    def env(self, host: str) -> dict[str, str]:
        """A LIMS host's environment: topology's, plus its own PREFECT_HOME and poll rates."""
        base = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "LIMS_"))}
        home = self.workdir / host / "prefect-home"
        home.mkdir(parents=True, exist_ok=True)
        return {
            **base,
            **topology.lims_environment(self.hosts),
            "PREFECT_HOME": str(home),
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
            "PREFECT_WORKER_QUERY_SECONDS": "1",
            "PREFECT_WORKER_PREFETCH_SECONDS": "5",
            "NO_PROXY": "*",
        }

    def once(self, host: str, command: list[str], log: str) -> None:
        """A one-shot command on ``host`` (compose's lims-migrate, lims-deploy)."""
        with (self.workdir / log).open("wb") as out:
            done = subprocess.run(
                [*self.net.prefix(host), *local(command)],
                env=self.env(host),
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=ROOT,
                timeout=300,
            )
        if done.returncode != 0:
            raise RuntimeError(f"{command} on {host} failed: {(self.workdir / log).read_text()}")


def wait_http(url: str, proc: subprocess.Popen[bytes], what: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode}")
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise TimeoutError(f"{what} did not answer {url} in {timeout:.0f} s")


@contextmanager
def postgres_host(net: Network, host: str, workdir: Path) -> Iterator[str]:
    """A PostgreSQL of its own on ``host`` (docs/recipes.md); its admin URL. Stopped after."""
    bindir = subprocess.run(
        ["pg_config", "--bindir"], capture_output=True, text=True, check=True
    ).stdout.strip()
    data = Path(tempfile.mkdtemp(prefix=f"{PREFIX}-pg-"))
    shutil.chown(data, "postgres")
    db = data / "db"
    address = net.hosts[host]

    def as_postgres(command: str, *, inside: bool) -> None:
        args = ["su", "postgres", "-c", command]
        subprocess.run(
            [*net.prefix(host), *args] if inside else args,
            check=True,
            capture_output=True,
            timeout=120,
        )

    try:
        as_postgres(f"{bindir}/initdb -D {db} -A trust -U postgres", inside=False)
        with (db / "pg_hba.conf").open("a") as hba:
            hba.write(f"host all all {SUBNET}.0/24 trust\n")
        options = f"-c listen_addresses={address} -p {PG_PORT} -k {data} {PG_OPTIONS}"
        as_postgres(f"{bindir}/pg_ctl -D {db} -l {data}/log -w -o '{options}' start", inside=True)
        (workdir / "postgres.log").symlink_to(data / "log")
        yield f"postgresql+psycopg://postgres@{address}:{PG_PORT}/postgres"
    finally:
        if (db / "postmaster.pid").exists():
            subprocess.run(
                [
                    *net.prefix(host),
                    "su",
                    "postgres",
                    "-c",
                    f"{bindir}/pg_ctl -D {db} -m immediate stop",
                ],
                capture_output=True,
                timeout=60,
            )
        shutil.rmtree(data, ignore_errors=True)


@contextmanager
def started(workdir: Path) -> Iterator[Topology]:
    """Every host up: database, Prefect server, deployments, two workers, two APIs."""
    from sqlalchemy import create_engine, text

    t0 = time.perf_counter()
    with ExitStack() as stack:
        net = stack.enter_context(network())
        for name in ("db", "prefect", *WORKERS, *APIS):
            net.add(name)
        admin = stack.enter_context(postgres_host(net, "db", workdir))
        engine = create_engine(admin, isolation_level="AUTOCOMMIT")
        with engine.connect() as conn:
            for name in ("lims", "prefect"):
                conn.execute(text(f'CREATE DATABASE "{name}"'))
        engine.dispose()
        db = net.hosts["db"]
        prefect_api = f"http://{net.hosts['prefect']}:{topology.PREFECT_PORT}/api"
        hosts = topology.Hosts(
            lims_database_url=f"postgresql+psycopg://postgres@{db}:{PG_PORT}/lims",
            prefect_api_url=prefect_api,
            secret_key=secrets.token_hex(32),
            checkpoint_key=checkpoint_pem(),
        )
        top = Topology(net, workdir, hosts, hosts.lims_database_url, prefect_api)
        top.timings["hosts and database"] = time.perf_counter() - t0
        prefect_db = f"postgresql+asyncpg://postgres@{db}:{PG_PORT}/prefect"
        server_env = {
            **top.env("prefect"),
            **topology.prefect_server_environment(prefect_db, prefect_api),
            "PREFECT_UI_ENABLED": "false",  # nobody looks at it here
        }
        server_cmd = local(topology.prefect_server_command(net.hosts["prefect"]))
        server = stack.enter_context(
            process([*net.prefix("prefect"), *server_cmd], server_env, workdir / "prefect.log")
        )
        top.procs["prefect"] = server
        top.once("api1", topology.migrate_command(), "migrate.log")
        wait_http(f"{prefect_api}/health", server, "the Prefect server")
        top.timings["prefect server up"] = time.perf_counter() - t0
        top.once("w1", topology.deploy_command(source=str(ROOT)), "deploy.log")
        top.timings["deployed"] = time.perf_counter() - t0
        for name in WORKERS:
            cmd = local(topology.worker_command(name=name, limit=1))
            top.procs[name] = stack.enter_context(
                process([*net.prefix(name), *cmd], top.env(name), workdir / f"{name}.log")
            )
        for name in APIS:
            # One process per API host: the hosts' test kills one host's server and counts on
            # the other, and two API hosts on a CI machine's two cores have none to spare.
            cmd = local(topology.api_command(net.hosts[name], topology.API_PORT, workers=1))
            top.procs[name] = stack.enter_context(
                process([*net.prefix(name), *cmd], top.env(name), workdir / f"{name}.log")
            )
            top.api_urls[name] = f"http://{net.hosts[name]}:{topology.API_PORT}"
        for name in APIS:
            wait_http(f"{top.api_urls[name]}/health", top.procs[name], f"the API on {name}")
        top.timings["all hosts up"] = time.perf_counter() - t0
        yield top
