"""What an IT team's monitoring reads: /ready and /metrics (/health, alive, is in app.py).

/ready answers 200 only when this process can do its work: the database answers, its
schema is at the revision this code expects, and the Prefect server answers where one is
configured (PREFECT_API_URL); otherwise 503 with what is wrong, so a load balancer sends
requests elsewhere. /metrics is Prometheus's text format: the process's request latency
per route and refusals by problem type (api/metrics.py), and, read from the database at
scrape time, custody appends and the lab's queues; flow runs by state from Prefect.
/metrics needs ``Authorization: Bearer $LIMS_METRICS_TOKEN``; without a token set it is
open in dev and test and refused in production (queue sizes are the lab's business).
"""

from __future__ import annotations

import os
import secrets
from typing import Any, Literal

import httpx
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Gauge, generate_latest
from prometheus_client.core import CounterMetricFamily
from pydantic import BaseModel, Field
from sqlalchemy import Engine, text

from api.problems import problem
from lims.db import read_session
from lims.migrate import current_revision, head_revision
from lims.operations.queries import custody_events, notifications_pending, orders_waiting
from lims.qc.maintenance import overdue_qc
from lims.settings import get_settings

router = APIRouter(tags=["health"])
PREFECT_TIMEOUT_S = 2.0
# Prefect's state types (prefect.client.schemas.objects.StateType).
FLOW_RUN_STATES = (
    "SCHEDULED",
    "PENDING",
    "RUNNING",
    "COMPLETED",
    "FAILED",
    "CANCELLED",
    "CANCELLING",
    "CRASHED",
    "PAUSED",
)


def _prefect_url() -> str | None:
    url = os.environ.get("PREFECT_API_URL", "").strip().rstrip("/")
    return url or None


def _checks(engine: Engine) -> dict[str, str]:
    checks: dict[str, str] = {}
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        checks["database"] = "ok"
    except Exception as exc:
        checks["database"] = f"unreachable: {type(exc).__name__}"
        return checks
    current, expected = current_revision(engine), head_revision()
    checks["migrations"] = (
        "ok" if current == expected else f"at {current or 'none'}, code expects {expected}"
    )
    prefect = _prefect_url()
    if prefect:
        try:
            httpx.get(f"{prefect}/health", timeout=PREFECT_TIMEOUT_S).raise_for_status()
            checks["prefect"] = "ok"
        except httpx.HTTPError as exc:
            checks["prefect"] = f"unreachable: {type(exc).__name__}"
    return checks


class ReadinessOut(BaseModel):
    status: Literal["ready", "not ready"]
    checks: dict[str, str] = Field(
        description="database, migrations and (where configured) prefect: 'ok' or what is wrong"
    )


@router.get("/ready", response_model=ReadinessOut)
def ready(request: Request) -> JSONResponse:
    """200 when the database, its migrations and Prefect (if configured) are fine, else 503."""
    checks = _checks(request.app.state.engine)
    ok = all(v == "ok" for v in checks.values())
    return JSONResponse(
        {"status": "ready" if ok else "not ready", "checks": checks},
        status_code=200 if ok else 503,
        headers={"Cache-Control": "no-store"},
    )


def _allowed(request: Request) -> Response | None:
    settings = get_settings()
    token = settings.metrics_token
    if not token:
        if settings.production:
            return problem(
                403,
                "metrics are off: set LIMS_METRICS_TOKEN and scrape with that bearer token",
                code="metrics_token_unset",
            )
        return None
    given = request.headers.get("authorization", "")
    if not secrets.compare_digest(given.encode(), f"Bearer {token}".encode()):
        return problem(
            401, "send Authorization: Bearer <LIMS_METRICS_TOKEN>", code="not_authenticated"
        )
    return None


def _flow_runs(prefect: str) -> dict[str, int] | None:
    counts = {}
    try:
        with httpx.Client(timeout=PREFECT_TIMEOUT_S) as client:
            for state in FLOW_RUN_STATES:
                body = {"flow_runs": {"state": {"type": {"any_": [state]}}}}
                answer = client.post(f"{prefect}/flow_runs/count", json=body)
                answer.raise_for_status()
                counts[state] = int(answer.json())
    except (httpx.HTTPError, ValueError):
        return None  # the scrape still answers; lims_prefect_up says why the series is gone
    return counts


def lab_registry(engine: Engine) -> CollectorRegistry:
    """The lab-wide figures, read now (not kept in this process)."""
    registry = CollectorRegistry()
    with read_session(engine) as session:
        appended = custody_events(session)
        waiting = orders_waiting(session)
        overdue = len(overdue_qc(session))
        pending = notifications_pending(session)
    appends = CounterMetricFamily("lims_custody_appends", "Events appended to the ledger.")
    appends.add_metric([], appended)

    class Appends:
        def collect(self) -> Any:
            yield appends

    registry.register(Appends())
    Gauge("lims_orders_waiting", "Orders placed, not yet allocated.", registry=registry).set(
        waiting
    )
    Gauge("lims_qc_overdue", "Materials in QC testing past turnaround.", registry=registry).set(
        overdue
    )
    Gauge(
        "lims_notifications_pending",
        "Webhook and e-mail deliveries not yet made.",
        registry=registry,
    ).set(pending)
    prefect = _prefect_url()
    if prefect:
        runs = _flow_runs(prefect)
        Gauge("lims_prefect_up", "The Prefect server answered.", registry=registry).set(
            runs is not None
        )
        if runs is not None:
            gauge = Gauge(
                "lims_flow_runs", "Flow runs by state (Prefect).", ["state"], registry=registry
            )
            for state, count in runs.items():
                gauge.labels(state=state).set(count)
    return registry


def _process_registry() -> CollectorRegistry:
    """This process's request metrics, or every worker's summed when ``lims serve`` runs
    several (it sets PROMETHEUS_MULTIPROC_DIR, where each worker writes its own)."""
    from prometheus_client import REGISTRY, multiprocess

    if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        return REGISTRY
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)
    return registry


@router.get("/metrics", include_in_schema=False)
def metrics(request: Request) -> Response:
    refused = _allowed(request)
    if refused is not None:
        return refused
    body = generate_latest(_process_registry()) + generate_latest(
        lab_registry(request.app.state.engine)
    )
    return Response(body, media_type=CONTENT_TYPE_LATEST, headers={"Cache-Control": "no-store"})
