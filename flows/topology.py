"""The scale-out topology's services, in one place: each one's command and environment.

docker-compose.yml says the same (tests/test_compose.py checks it against this module),
and the runs on this machine start their processes from here (flows/scale.py), so the
file and what was run cannot drift apart. Addresses are parameters: compose uses service
names (``lims-db``, ``prefect-server``), a run on this machine uses loopback ports or
network-namespace addresses.
"""

from __future__ import annotations

from dataclasses import dataclass

POOL = "lab"
API_PORT = 8000
PREFECT_PORT = 4200
# Where the image puts the code (the Dockerfile's WORKDIR); deployments' source.
IMAGE_SOURCE = "/opt/lims"


@dataclass(frozen=True)
class Hosts:
    """Where each service is reached, and the secrets as the environment gives them."""

    lims_database_url: str
    prefect_api_url: str
    secret_key: str
    checkpoint_key: str
    metrics_token: str = ""


# How compose names them: service names, secrets from the operator's environment.
COMPOSE = Hosts(
    lims_database_url="postgresql+psycopg://lims:${LIMS_DB_PASSWORD:-lims}@lims-db:5432/lims",
    prefect_api_url=f"http://prefect-server:{PREFECT_PORT}/api",
    secret_key="${LIMS_SECRET_KEY:?set LIMS_SECRET_KEY to a real secret}",
    checkpoint_key="${LIMS_CHECKPOINT_KEY:?set LIMS_CHECKPOINT_KEY to the lab's Ed25519 PEM}",
    metrics_token="${LIMS_METRICS_TOKEN:-}",
)


def prefect_server_command(host: str = "0.0.0.0", port: int = PREFECT_PORT) -> list[str]:
    return ["prefect", "server", "start", "--host", host, "--port", str(port)]


def worker_command(
    pool: str = POOL, name: str | None = None, limit: int | None = None
) -> list[str]:
    """A process worker; ``name`` and ``limit`` (concurrent flow runs) when given."""
    command = ["prefect", "worker", "start", "--pool", pool, "--type", "process"]
    if name is not None:
        command += ["--name", name]
    if limit is not None:
        command += ["--limit", str(limit)]
    return command


def deploy_command(source: str = IMAGE_SOURCE, pool: str = POOL) -> list[str]:
    return ["python", "-m", "flows.deploy", "--pool", pool, "--source", source]


def migrate_command() -> list[str]:
    return ["lims", "db", "upgrade"]


def api_command(host: str = "0.0.0.0", port: int = API_PORT, workers: int = 0) -> list[str]:
    """The API's command: one process per core unless ``workers`` says how many."""
    chosen = ["--workers", str(workers)] if workers else []
    return ["lims", "serve", "--host", host, "--port", str(port), *chosen]


def lims_environment(hosts: Hosts) -> dict[str, str]:
    """What every LIMS process (migrate, deploy, worker, API) is given."""
    return {
        "LIMS_ENVIRONMENT": "production",
        "LIMS_DATABASE_URL": hosts.lims_database_url,
        "LIMS_SECRET_KEY": hosts.secret_key,
        "LIMS_CHECKPOINT_KEY": hosts.checkpoint_key,
        "LIMS_METRICS_TOKEN": hosts.metrics_token,
        "PREFECT_API_URL": hosts.prefect_api_url,
    }


def prefect_server_environment(database_url: str, ui_api_url: str) -> dict[str, str]:
    """The Prefect server's: its PostgreSQL database (asyncpg URL), no analytics, and where
    the browser finds its API (``ui_api_url``)."""
    return {
        "PREFECT_SERVER_DATABASE_CONNECTION_URL": database_url,
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_UI_API_URL": ui_api_url,
    }


COMPOSE_PREFECT_SERVER = prefect_server_environment(
    "postgresql+asyncpg://prefect:${PREFECT_DB_PASSWORD:-prefect}@prefect-db:5432/prefect",
    f"http://localhost:{PREFECT_PORT}/api",
)


def compose_commands() -> dict[str, list[str]]:
    """Each LIMS-built service's command in docker-compose.yml."""
    return {
        "prefect-server": prefect_server_command(),
        "lims-migrate": migrate_command(),
        "lims-deploy": deploy_command(),
        "prefect-worker": worker_command(),
        "api": api_command(),
    }


LIMS_SERVICES = ("lims-migrate", "lims-deploy", "prefect-worker", "api")
