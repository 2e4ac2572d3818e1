"""An app per test on the test's database, and signed-in clients for each role."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from api.app import create_app
from lims.db import write_session
from lims.parties.models import Clinic, Role, User
from lims.parties.service import create_user
from lims.signatures.passwords import set_password
from tests.builders import PASSWORD
from tests.conftest import World

ROLES = ("technician", "qa", "clinic", "auditor", "admin")


@dataclass
class Api:
    client: TestClient
    tokens: dict[str, str]

    def as_(self, who: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[who]}"} if who in self.tokens else {}


@pytest.fixture
def api(engine: Engine, world: World) -> Iterator[Api]:
    with write_session(engine) as s:
        osaka = s.get(Clinic, world.other_clinic_id)
        create_user(
            s, username="osaka-desk", printed_name="Osaka desk", role=Role.CLINIC, clinic=osaka
        )
        create_user(s, username="root", printed_name="Ada Admin", role=Role.ADMIN)
        for name in ("tanaka", "mori", "sato", "ginza-desk", "audit", "osaka-desk", "root"):
            user = s.exec(__import__("sqlmodel").select(User).where(User.username == name)).one()
            set_password(s, user=user, password=PASSWORD, actor=None)
    client = TestClient(create_app(engine), raise_server_exceptions=False)
    accounts = {
        "technician": "tanaka",
        "technician2": "mori",
        "qa": "sato",
        "clinic": "ginza-desk",
        "auditor": "audit",
        "other_clinic": "osaka-desk",
        "admin": "root",
    }
    tokens = {}
    for role, username in accounts.items():
        response = client.post(
            "/api/v1/auth/token", data={"username": username, "password": PASSWORD}
        )
        assert response.status_code == 200, response.text
        tokens[role] = response.json()["access_token"]
    yield Api(client=client, tokens=tokens)
    client.close()
