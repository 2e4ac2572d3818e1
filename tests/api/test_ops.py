"""/ready, /metrics and the request id, against the app on the test's database."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import Engine, text
from sqlmodel import col, select

from api.app import create_app
from api.jsonlog import JsonFormatter
from lims.custody.models import CustodyEvent
from lims.db import read_session
from lims.operations.queries import notifications_pending
from lims.settings import get_settings
from tests.api.conftest import Api
from tests.api.test_idempotency import _order_body
from tests.builders import Lab
from tests.conftest import World


def samples(body: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    found = {}
    for family in text_string_to_metric_families(body):
        for s in family.samples:
            found[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return found


@pytest.fixture
def settings_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[pytest.MonkeyPatch]:
    get_settings.cache_clear()
    yield monkeypatch
    monkeypatch.undo()
    get_settings.cache_clear()


def test_ready_checks_database_and_migrations(engine: Engine, api: Api) -> None:
    answer = api.client.get("/ready")
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"status": "ready", "checks": {"database": "ok", "migrations": "ok"}}


def test_ready_is_503_when_the_schema_is_behind(engine: Engine, world: World) -> None:
    from lims import migrate

    if engine.dialect.name == "postgresql":
        pytest.skip("the alembic_version row is shared by the run's tests on PostgreSQL")
    with engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '0001'"))
    client = TestClient(create_app(engine))
    answer = client.get("/ready")
    assert answer.status_code == 503
    assert answer.json()["checks"]["migrations"] == (
        f"at 0001, code expects {migrate.head_revision()}"
    )


def test_ready_is_503_when_prefect_is_unreachable(
    engine: Engine, world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PREFECT_API_URL", "http://127.0.0.1:9/api")  # discard port: refused
    answer = TestClient(create_app(engine)).get("/ready")
    assert answer.status_code == 503
    assert answer.json()["checks"]["prefect"].startswith("unreachable")


def test_metrics_count_latency_refusals_appends_and_queues(
    engine: Engine, world: World, api: Api
) -> None:
    Lab.start(engine, world).lot()
    before = samples(api.client.get("/metrics").text)
    placed = api.client.post(
        "/api/v1/clinic/orders", json=_order_body(world), headers=api.as_("clinic")
    )
    assert placed.status_code == 201, placed.text
    refused = api.client.post(
        "/api/v1/clinic/orders",
        json={**_order_body(world), "dose": "3 kg"},
        headers=api.as_("clinic"),
    )
    assert refused.status_code == 422
    answer = api.client.get("/metrics")
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/plain")
    after = samples(answer.text)

    def delta(name: str, **labels: str) -> float:
        key = (name, tuple(sorted(labels.items())))
        return after.get(key, 0) - before.get(key, 0)

    route = {"method": "POST", "route": "/api/v1/clinic/orders"}
    assert delta("lims_http_request_duration_seconds_count", **route, status="201") == 1
    assert delta("lims_http_request_duration_seconds_count", **route, status="422") == 1
    assert delta("lims_refusals_total", type="/problems/invalid_input", status="422") == 1
    with read_session(engine) as s:
        events = len(s.exec(select(CustodyEvent.seq)).all())
    assert after[("lims_custody_appends_total", ())] == events
    assert delta("lims_custody_appends_total") >= 1
    assert after[("lims_orders_waiting", ())] == 1
    assert after[("lims_qc_overdue", ())] == 0
    with read_session(engine) as s:
        pending = notifications_pending(s)
    assert after[("lims_notifications_pending", ())] == pending
    # No raw paths as labels (an order number would make a series per order).
    assert not any("DO-" in str(labels) for _, labels in after)


def test_metrics_token(engine: Engine, world: World, settings_env: pytest.MonkeyPatch) -> None:
    settings_env.setenv("LIMS_METRICS_TOKEN", "scrape-token-0123456789")
    client = TestClient(create_app(engine))
    assert client.get("/metrics").status_code == 401
    wrong = {"Authorization": "Bearer nope"}
    assert client.get("/metrics", headers=wrong).status_code == 401
    right = {"Authorization": "Bearer scrape-token-0123456789"}
    assert client.get("/metrics", headers=right).status_code == 200


def test_metrics_refused_in_production_without_a_token(
    engine: Engine, world: World, settings_env: pytest.MonkeyPatch
) -> None:
    client = TestClient(create_app(engine))
    settings_env.setenv("LIMS_ENVIRONMENT", "production")
    settings_env.setenv("LIMS_SECRET_KEY", "a" * 40)
    settings_env.setenv("LIMS_DATABASE_URL", "postgresql+psycopg://nobody@127.0.0.1/none")
    settings_env.setenv("LIMS_ARGON2_TIME_COST", "2")
    settings_env.setenv("LIMS_ARGON2_MEMORY_KIB", "19456")
    get_settings.cache_clear()
    answer = client.get("/metrics")
    assert answer.status_code == 403
    assert answer.json()["type"] == "/problems/metrics_token_unset"


def test_request_id_in_the_answer_the_log_line_and_the_custody_event(
    engine: Engine, world: World, api: Api, caplog: pytest.LogCaptureFixture
) -> None:
    Lab.start(engine, world).lot()
    headers = api.as_("clinic") | {"X-Request-ID": "lb-7f3a9c"}
    with caplog.at_level(logging.INFO, logger="lims.request"):
        logging.getLogger("lims.request").addHandler(caplog.handler)
        try:
            placed = api.client.post(
                "/api/v1/clinic/orders", json=_order_body(world), headers=headers
            )
        finally:
            logging.getLogger("lims.request").removeHandler(caplog.handler)
    assert placed.status_code == 201, placed.text
    assert placed.headers["x-request-id"] == "lb-7f3a9c"
    lines: list[dict[str, Any]] = [
        json.loads(JsonFormatter().format(r)) for r in caplog.records if r.name == "lims.request"
    ]
    line = next(x for x in lines if x.get("route") == "/api/v1/clinic/orders")
    assert line["request_id"] == "lb-7f3a9c" and line["status"] == 201 and line["ms"] > 0
    with read_session(engine) as s:
        event = (
            s.exec(select(CustodyEvent).where(col(CustodyEvent.action) == "order.placed")).first()
            or s.exec(select(CustodyEvent).order_by(col(CustodyEvent.seq).desc())).first()
        )
    assert event is not None and (event.new or {}).get("request_id") == "lb-7f3a9c"
    # An id with markup or spaces is not taken: a fresh one is made instead.
    odd = api.client.get("/health", headers={"X-Request-ID": "<script> x"})
    assert odd.headers["x-request-id"] != "<script> x" and len(odd.headers["x-request-id"]) == 32
