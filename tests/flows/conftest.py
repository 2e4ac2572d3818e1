"""Flow tests: Prefect's real engine against one temporary Prefect server for the session.

Prefect reads its settings when it is first imported, so they are set here, before any
test module imports a flow: no PREFECT_API_URL (removed, never set empty), a temporary
PREFECT_HOME, no analytics. The one ``prefect_test_harness`` below is the only one in the
test suite. Flow-run heartbeats are switched off: they detect crashed runs of deployed flows
and only add a second to each in-process run.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from typing import Any
from uuid import UUID

import pytest

os.environ.pop("PREFECT_API_URL", None)
os.environ["PREFECT_HOME"] = tempfile.mkdtemp(prefix="lims-prefect-home-")
os.environ["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"
os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")

from sqlalchemy import Engine, func, select


@pytest.fixture(scope="session", autouse=True)
def prefect_server() -> Iterator[None]:
    from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings
    from prefect.testing.utilities import prefect_test_harness

    from flows.common import dispose_engines

    with (
        prefect_test_harness(server_startup_timeout=90),
        temporary_settings(updates={PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}),
    ):
        yield
    dispose_engines()


@pytest.fixture
def db_url(engine: Engine) -> str:
    """The test database as a URL a flow can take (``database_url``): on PostgreSQL with
    the run's schema as the search path."""
    url = engine.url
    if url.get_backend_name() == "postgresql":
        with engine.connect() as conn:
            schema = conn.exec_driver_sql("select current_schema()").scalar_one()
        url = url.update_query_dict({"options": f"-csearch_path={schema}"})
    return url.render_as_string(hide_password=False)


def counts(engine: Engine) -> dict[str, int]:
    """Rows that a duplicated write would add."""
    from lims.custody.models import CustodyEvent
    from lims.idempotency.models import FlowIdempotency
    from lims.materials.models import Material
    from lims.orders.models import DoseOrder
    from lims.qc.models import QcResult
    from lims.steps.models import Step, StepInput

    with engine.connect() as conn:
        return {
            table.__tablename__: conn.execute(select(func.count()).select_from(table)).scalar_one()
            for table in (
                Material,
                CustodyEvent,
                Step,
                StepInput,
                QcResult,
                DoseOrder,
                FlowIdempotency,
            )
        }


def run(flow: Any, **parameters: Any) -> Any:
    """Call a flow with JSON parameters, as a deployment run gets them (Prefect validates
    them into the flow's typed models; ``return_state=True`` returns the final state)."""
    return flow(**parameters)


def flow_run_id(state: Any) -> UUID:
    run_id = state.state_details.flow_run_id
    assert isinstance(run_id, UUID)
    return run_id
