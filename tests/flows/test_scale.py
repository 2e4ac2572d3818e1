"""The scale-out path, for real: a Prefect server on PostgreSQL, the lab deployments in a
process work pool, a worker, a stage run through its deployment (``make scale-demo`` runs
the same). Slow (about half a minute): it runs when LIMS_TEST_SLOW=1, which .ci/run sets."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from sqlalchemy import create_engine, make_url, text

from flows import ENTRYPOINTS
from flows.scale import run_scale_check

ADMIN_URL = os.environ.get("LIMS_TEST_POSTGRES_URL", "").strip() or (
    "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)


@pytest.mark.slow
def test_a_stage_runs_on_a_worker_through_its_deployment(tmp_path: Path) -> None:
    check = run_scale_check(ADMIN_URL, tmp_path)
    print("\nscale check timings: " + ", ".join(f"{k} {v:.1f} s" for k, v in check.timings.items()))
    assert check.state == "Completed", (tmp_path / "worker.log").read_text()[-3000:]
    assert check.flow_run_name.startswith("lipoaspirate intake · X0001 ")
    assert (check.material_state, len(check.material_id)) == ("ACCEPTED", 14)
    assert sorted(d.split("/")[0] for d in check.deployments) == sorted(ENTRYPOINTS)
    # Everything it started is gone: the Prefect database and the processes.
    admin = create_engine(make_url(ADMIN_URL).set(drivername="postgresql+psycopg"))
    with admin.connect() as conn:
        left = conn.execute(
            text("select count(*) from pg_database where datname = :name"),
            {"name": check.prefect_database},
        ).scalar_one()
    admin.dispose()
    assert left == 0
    for log in ("server.log", "worker.log"):
        assert (tmp_path / log).exists()
