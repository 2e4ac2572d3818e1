"""Starting a stage's flow from the API: in-process on the ephemeral engine (no server)."""

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text

from api.app import create_app
from lims.settings import get_settings
from tests.api.conftest import Api, api  # noqa: F401  (the accounts fixture, shared)
from tests.builders import Lab
from tests.conftest import World


@pytest.fixture
def lims_database(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Point LIMS_DATABASE_URL (what a flow started by the API uses) at the test's database."""
    url = engine.url.render_as_string(hide_password=False)
    if engine.dialect.name == "postgresql":
        with engine.connect() as conn:
            schema = conn.execute(text("SELECT current_schema()")).scalar_one()
        url = f"{url}?options=-csearch_path%3D{schema}"
    monkeypatch.setenv("LIMS_DATABASE_URL", url)
    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def test_start_flows_from_the_api(
    api: Api,  # noqa: F811  (the shared accounts fixture)
    engine: Engine,
    world: World,
    lims_database: None,
) -> None:
    lab = Lab.start(engine, world)
    lab.lot()
    client = TestClient(create_app(engine), raise_server_exceptions=False)
    tech = api.as_("technician")
    listed = client.get("/api/v1/lab/flows", headers=tech).json()
    assert "lipoaspirate-intake" in listed and listed["lab-maintenance"] is None
    ran = client.post("/api/v1/lab/flows/lab-maintenance", json={}, headers=tech)
    assert ran.status_code == 200, ran.text
    assert ran.json()["result"]["custody"]["ok"] is True
    bad = client.post(
        "/api/v1/lab/flows/lipoaspirate-intake",
        json={"request": {"volume": "120 kg"}},
        headers=tech,
    )
    assert bad.status_code == 422 and bad.headers["content-type"] == "application/problem+json"
    assert client.post("/api/v1/lab/flows/no-such-flow", json={}, headers=tech).status_code == 404
    assert (
        client.post(
            "/api/v1/lab/flows/lab-maintenance", json={}, headers=api.as_("clinic")
        ).status_code
        == 403
    )
