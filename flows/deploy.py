"""Register the lab flows as deployments on a Prefect server, to be run by workers.

    PREFECT_API_URL=http://prefect-host:4200/api \\
        python -m flows.deploy --pool lab --source /opt/lims

``--source`` is where the workers find this repository: a path that exists on every worker
machine (the same checkout, e.g. /opt/lims, or a shared volume) or a git URL that workers
clone. Each stage flow is deployed under the name ``lims`` (``<flow>/lims``, e.g.
``lipoaspirate-intake/lims``); the maintenance flow also gets a daily schedule. The work
pool is created when missing (type ``process``: each flow run is a subprocess of the
worker, which needs this package installed and LIMS_DATABASE_URL set).
"""

from __future__ import annotations

import argparse
import contextlib
from pathlib import Path

from prefect import flow

from flows import ENTRYPOINTS

DEPLOYMENT = "lims"
MAINTENANCE_CRON = "0 2 * * *"  # daily at 02:00 (server time zone: UTC unless set)
ROOT = Path(__file__).resolve().parent.parent


def ensure_work_pool(name: str) -> None:
    """Create the process work pool (as ``prefect work-pool create --type process``)."""
    from prefect import get_client
    from prefect.client.schemas.actions import WorkPoolCreate
    from prefect.exceptions import ObjectAlreadyExists
    from prefect.workers.process import ProcessWorker

    pool = WorkPoolCreate(
        name=name,
        type="process",
        base_job_template=ProcessWorker.get_default_base_job_template(),
    )
    with get_client(sync_client=True) as client, contextlib.suppress(ObjectAlreadyExists):
        client.create_work_pool(pool)


def deploy_all(*, source: str = str(ROOT), work_pool: str = "lab") -> list[str]:
    """Create or update one deployment per flow; return their names (``flow/deployment``)."""
    ensure_work_pool(work_pool)
    names = []
    for flow_name, entrypoint in ENTRYPOINTS.items():
        loaded = flow.from_source(source=source, entrypoint=entrypoint)
        loaded.deploy(  # type: ignore[union-attr]
            name=DEPLOYMENT,
            work_pool_name=work_pool,
            cron=MAINTENANCE_CRON if flow_name == "lab-maintenance" else None,
            tags=["lims"],
            print_next_steps=False,
            ignore_warnings=True,  # a process pool is what this deployment is for
        )
        names.append(f"{flow_name}/{DEPLOYMENT}")
    return names


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pool", default="lab", help="work pool (created if missing)")
    parser.add_argument(
        "--source", default=str(ROOT), help="repository path or git URL, as workers see it"
    )
    args = parser.parse_args()
    for name in deploy_all(source=args.source, work_pool=args.pool):
        print(f"deployed {name}")


if __name__ == "__main__":
    main()
