"""Sign-in, tokens, API keys, lockout, and problem+json errors for bad input."""

from datetime import timedelta

import jwt
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from api.app import create_app
from lims.db import utcnow
from lims.settings import get_settings
from tests.api.conftest import Api
from tests.builders import PASSWORD
from tests.conftest import World

PROBLEM = "application/problem+json"


def test_token_refresh_and_me(api: Api) -> None:
    c = api.client
    r = c.post("/api/v1/auth/token", data={"username": "sato", "password": PASSWORD})
    body = r.json()
    assert r.status_code == 200 and body["token_type"] == "bearer"
    assert body["expires_in"] == 900
    me = c.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {body['access_token']}"})
    assert me.json() == {
        "username": "sato",
        "printed_name": "Kenji Sato",
        "role": "qa",
        "clinic": None,
    }
    fresh = c.post("/api/v1/auth/refresh", json={"refresh_token": body["refresh_token"]})
    assert fresh.status_code == 200 and fresh.json()["access_token"]
    as_refresh = c.post("/api/v1/auth/refresh", json={"refresh_token": body["access_token"]})
    assert as_refresh.status_code == 401
    refresh_as_access = c.get(
        "/api/v1/auth/me", headers={"Authorization": f"Bearer {body['refresh_token']}"}
    )
    assert refresh_as_access.status_code == 401


def test_wrong_passwords_throttle_the_client_not_the_account(api: Api, engine: Engine) -> None:
    """Five wrong passwords make this client wait (429, Retry-After, the password not even
    checked), but the account's owner signs in from another client. (Was: the fifth
    locked the account for everybody, which anyone could keep up; see docs/reliability.md.)"""
    c = api.client
    for _ in range(5):
        r = c.post("/api/v1/auth/token", data={"username": "mori", "password": "nope-nope"})
        assert r.status_code == 401
        assert r.headers["content-type"] == PROBLEM
        assert r.json()["detail"] == "user name or password is wrong"
        assert "nope-nope" not in r.text
    waits = c.post("/api/v1/auth/token", data={"username": "mori", "password": PASSWORD})
    assert waits.status_code == 429 and "try again in" in waits.json()["detail"], waits.text
    assert waits.headers["content-type"] == PROBLEM
    retry = int(waits.headers["retry-after"])
    assert 0 < retry <= get_settings().sign_in_backoff_seconds
    # Throttled for unknown names too: nothing tells a name that exists from one that does not.
    ghost = c.post("/api/v1/auth/token", data={"username": "ghost", "password": "x"})
    assert ghost.status_code == 429
    with TestClient(create_app(engine), client=("10.1.2.3", 40000)) as elsewhere:
        owner = elsewhere.post(
            "/api/v1/auth/token", data={"username": "mori", "password": PASSWORD}
        )
        assert owner.status_code == 200, owner.text
        unknown = elsewhere.post("/api/v1/auth/token", data={"username": "ghost", "password": "x"})
        assert unknown.status_code == 401
        assert unknown.json()["detail"] == "user name or password is wrong"  # no user leak


def test_an_account_under_attack_still_admits_its_owner(api: Api, engine: Engine) -> None:
    """Wrong passwords for one account from many clients throttle the account for every
    client without a device cookie from an earlier sign-in to it, fresh ones included; the
    owner's client, which signed in before, still signs in. (Until device cookies, any
    client that had not failed itself was let through: rotating addresses guessed without
    bound.)"""
    limit = get_settings().max_account_failures
    app = create_app(engine)
    with TestClient(app, client=("10.200.0.1", 40000)) as owner:
        first = owner.post("/api/v1/auth/token", data={"username": "sato", "password": PASSWORD})
        assert first.status_code == 200, first.text
        for n in range(limit):
            with TestClient(app, client=(f"10.9.{n // 200}.{n % 200 + 1}", 40000)) as attacker:
                r = attacker.post(
                    "/api/v1/auth/token", data={"username": "sato", "password": "no!"}
                )
                assert r.status_code == 401
        with TestClient(app, client=("10.9.0.1", 40000)) as attacker:
            again = attacker.post(
                "/api/v1/auth/token", data={"username": "sato", "password": PASSWORD}
            )
            assert again.status_code == 429 and int(again.headers["retry-after"]) > 0
        with TestClient(app, client=("10.200.0.2", 40000)) as fresh:
            cold = fresh.post("/api/v1/auth/token", data={"username": "sato", "password": PASSWORD})
            assert cold.status_code == 429, cold.text
        ok = owner.post("/api/v1/auth/token", data={"username": "sato", "password": PASSWORD})
        assert ok.status_code == 200, ok.text
    # The owner's sign-in on a known device leaves the account's count alone: the attack
    # stays throttled.
    with TestClient(app, client=("10.9.0.1", 40000)) as attacker:
        r = attacker.post("/api/v1/auth/token", data={"username": "sato", "password": PASSWORD})
        assert r.status_code == 429, r.text


def test_expired_forged_and_missing_tokens(api: Api) -> None:
    c = api.client
    secret = get_settings().secret_key
    now = int(utcnow().timestamp())
    expired = jwt.encode(
        {
            "sub": "sato",
            "uid": 3,
            "typ": "access",
            "role": "qa",
            "iat": now - 3600,
            "exp": now - 60,
        },
        secret,
        algorithm="HS256",
    )
    forged = jwt.encode(
        {"sub": "sato", "uid": 3, "typ": "access", "role": "qa", "iat": now, "exp": now + 600},
        "not-the-secret-but-long-enough-for-hs256",
        algorithm="HS256",
    )
    none_alg = jwt.encode(
        {"sub": "sato", "uid": 3, "typ": "access", "exp": now + 600}, "", algorithm="none"
    )
    for token, detail in (
        (expired, "expired"),
        (forged, "not valid"),
        (none_alg, "not valid"),
        ("garbage", "not valid"),
    ):
        r = c.get("/api/v1/lab/materials", headers={"Authorization": f"Bearer {token}"})
        assert r.status_code == 401 and detail in r.json()["detail"]
        assert r.headers["www-authenticate"] == "Bearer"
    r = c.get("/api/v1/lab/materials")
    assert r.status_code == 401 and "sign in first" in r.json()["detail"]


def test_api_keys_are_scoped_hashed_and_revocable(api: Api, engine: Engine) -> None:
    c = api.client
    made = c.post("/api/v1/clinic/api-keys", json={"name": "EMR bridge"}, headers=api.as_("clinic"))
    assert made.status_code == 201
    key = made.json()["key"]
    assert key.startswith("lims_")
    with engine.connect() as conn:
        from sqlalchemy import text

        stored = conn.execute(text("SELECT secret_sha256 FROM api_key")).scalar_one()
    assert key.split("_", 2)[2] not in stored
    listed = c.get("/api/v1/clinic/patients", headers={"X-API-Key": key})
    assert listed.status_code == 200 and len(listed.json()["items"]) == 2  # GINZA's two
    assert c.get("/api/v1/lab/materials", headers={"X-API-Key": key}).status_code == 403
    assert (
        c.get("/api/v1/clinic/api-keys", headers=api.as_("clinic")).json()["items"][0]["key"]
        is None
    )
    prefix = made.json()["prefix"]
    assert (
        c.delete(f"/api/v1/clinic/api-keys/{prefix}", headers=api.as_("other_clinic")).status_code
        == 404
    )
    assert (
        c.delete(f"/api/v1/clinic/api-keys/{prefix}", headers=api.as_("clinic")).status_code == 204
    )
    revoked = c.get("/api/v1/clinic/patients", headers={"X-API-Key": key})
    assert revoked.status_code == 401 and "revoked" in revoked.json()["detail"]
    assert (
        c.get("/api/v1/clinic/patients", headers={"X-API-Key": key[:-2] + "xx"}).status_code == 401
    )


def _order_body(world: World, **change: object) -> dict[str, object]:
    body: dict[str, object] = {
        "coi_id": world.patient_coi,
        "product": "aape",
        "dose": "1 vial",
        "session_number": 1,
        "sessions_total": 6,
        "planned_use_at": (utcnow() + timedelta(days=3)).isoformat(),
        "ship_to": "Ginza Hair Clinic",
        "prescriber": "Dr. F",
        "consent_ref": "C-1",
    }
    body.update(change)
    return body


@pytest.mark.parametrize(
    ("change", "status", "field", "detail"),
    [
        ({"dose": "3 kg"}, 422, "dose", "largest dose 10 mg for AAPE"),
        ({"dose": "3 cm"}, 422, "dose", "got 3 cm"),
        ({"dose": "-2 vials"}, 422, "dose", "must not be negative"),
        ({"dose": "1e30 mL"}, 422, "dose", "too large"),
        ({"dose": {"value": "NaN", "unit": "vial"}}, 422, "dose", "finite"),
        ({"session_number": 0}, 422, "session_number", "greater than or equal to 1"),
        ({"colour": "red"}, 422, "colour", "Extra inputs are not permitted"),
        ({"planned_use_at": "2030-01-01T10:00:00"}, 422, "planned_use_at", "timezone"),
        ({"coi_id": "COI-ZZZZ"}, 422, "coi_id", "not a chain-of-identity id"),
        ({"coi_id": "'; DROP TABLE patient; --"}, 422, "coi_id", "not a chain-of-identity"),
        ({"ship_to": "\u2603" * 301}, 422, "ship_to", "at most 300"),
    ],
)
def test_bad_order_input_is_a_clear_problem(
    api: Api, world: World, change: dict[str, object], status: int, field: str, detail: str
) -> None:
    r = api.client.post(
        "/api/v1/clinic/orders", json=_order_body(world, **change), headers=api.as_("clinic")
    )
    assert r.status_code == status, r.text
    problem = r.json()
    assert r.headers["content-type"] == PROBLEM
    assert problem["status"] == status and problem["field"] == field
    assert detail in problem["detail"], problem
    listed = api.client.get("/api/v1/clinic/orders", headers=api.as_("clinic")).json()
    assert listed["items"] == []  # nothing half-written


def test_nul_characters_are_refused_on_every_database(api: Api, world: World) -> None:
    r = api.client.post(
        "/api/v1/clinic/orders",
        json=_order_body(world, ship_to="Ginza\x00"),
        headers=api.as_("clinic"),
    )
    assert r.status_code == 422 and "NUL" in r.json()["detail"]
    login = api.client.post("/api/v1/auth/token", data={"username": "\x00", "password": "x"})
    assert login.status_code == 401


def test_malformed_json_oversize_body_and_unknown_route(api: Api) -> None:
    c = api.client
    r = c.post(
        "/api/v1/clinic/orders",
        content=b'{"coi_id": ',
        headers={**api.as_("clinic"), "Content-Type": "application/json"},
    )
    assert r.status_code == 400 and r.json()["detail"] == "the body is not valid JSON"
    big = b'{"name": "' + b"x" * 1_100_000 + b'"}'
    r = c.post(
        "/api/v1/clinic/api-keys",
        content=big,
        headers={**api.as_("clinic"), "Content-Type": "application/json"},
    )
    assert r.status_code == 413 and r.headers["content-type"] == PROBLEM
    assert c.get("/api/v1/nowhere", headers=api.as_("qa")).status_code == 404
    assert c.get("/api/v1/nowhere").headers["content-type"] == PROBLEM


def test_security_code_does_not_import_the_web_pages() -> None:
    """api.security owns tokens and session cookies; api.web.session builds on it, never
    the other way round (they imported each other, one of them lazily)."""
    import ast
    from pathlib import Path

    import api.security

    tree = ast.parse(Path(api.security.__file__).read_text(encoding="utf-8"))
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            imported.add(node.module or "")
        elif isinstance(node, ast.Import):
            imported.update(alias.name for alias in node.names)
    assert not {m for m in imported if m.startswith("api.web")}, imported
