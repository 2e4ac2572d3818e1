"""Security by default: no public signing key, no token for the system account, no demo
data in production, and in production a Secure cookie, HSTS and no public API docs;
security headers on every answer. Over real HTTP (uvicorn) on each test database."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import jwt
import pytest
from sqlalchemy import Engine

from lims.db import utcnow, write_session
from lims.qc.service import system_user
from lims.settings import PUBLIC_SECRETS, DemoRefused, Settings, get_settings, refuse_demo_data
from tests.api.conftest import Api
from tests.builders import PASSWORD
from tests.live_server import live_server
from tests.reliability.conftest import ROOT

PUBLISHED = next(iter(PUBLIC_SECRETS))


@pytest.fixture
def production(monkeypatch: pytest.MonkeyPatch) -> Iterator[Settings]:
    """The process's settings as in production (same signing key, so the test's tokens
    stay valid), restored afterwards."""
    key = get_settings().secret_key
    for name, value in {
        "LIMS_ENVIRONMENT": "production",
        "LIMS_SECRET_KEY": key,
        "LIMS_DATABASE_URL": "postgresql+psycopg://unused@127.0.0.1/unused",
        "LIMS_ARGON2_TIME_COST": "2",
        "LIMS_ARGON2_MEMORY_KIB": "19456",
    }.items():
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()
    try:
        yield get_settings()
    finally:
        monkeypatch.undo()
        get_settings.cache_clear()


def _claims(uid: int, username: str, role: str) -> dict[str, object]:
    now = int(utcnow().timestamp())
    return {
        "sub": username,
        "uid": uid,
        "ver": 0,
        "role": role,
        "typ": "access",
        "iat": now,
        "exp": now + 600,
    }


def test_unset_secret_is_generated_once_and_kept_private(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("LIMS_SECRET_KEY", raising=False)
    monkeypatch.delenv("LIMS_ENVIRONMENT", raising=False)
    where = tmp_path / "var" / "secret_key"
    first = Settings(secret_key_file=where)
    assert first.environment == "dev"
    assert first.secret_key not in PUBLIC_SECRETS and len(first.secret_key) >= 32
    assert stat.S_IMODE(where.stat().st_mode) == 0o600
    assert Settings(secret_key_file=where).secret_key == first.secret_key  # kept
    other = Settings(secret_key_file=tmp_path / "elsewhere" / "secret_key")
    assert other.secret_key != first.secret_key  # each installation its own
    with pytest.raises(ValueError, match="published value"):
        Settings(secret_key=PUBLISHED)
    with pytest.raises(ValueError, match="must be set"):
        Settings(environment="production", database_url="postgresql+psycopg://x/y")


def test_forged_tokens_for_the_system_account_are_refused(engine: Engine, api: Api) -> None:
    """A token for the password-less system administrator, signed with the value the source
    once shipped or even with the real key, creates nothing (it created a clinic: 201)."""
    with write_session(engine) as s:
        system = system_user(s)
        assert system.id is not None
        uid = system.id
    forged = jwt.encode(_claims(uid, "system", "admin"), PUBLISHED, algorithm="HS256")
    signed = jwt.encode(
        _claims(uid, "system", "admin"), get_settings().secret_key, algorithm="HS256"
    )
    with live_server(engine) as url, httpx.Client(base_url=url, timeout=60) as c:
        for token in (forged, signed):
            r = c.post(
                "/api/v1/admin/clinics",
                json={"code": "EVIL", "name": "Forged"},
                headers={"Authorization": f"Bearer {token}"},
            )
            assert r.status_code == 401, r.text
        for body in ({"username": "system", "password": ""}, {"username": "system"}):
            r = c.post("/api/v1/auth/token", data={"password": "x", **body})
            assert r.status_code in (401, 422), r.text
        admin = c.post(
            "/api/v1/admin/clinics", json={"code": "OK-1", "name": "Real"}, headers=api.as_("admin")
        )
        assert admin.status_code == 201, admin.text  # the check is live


def test_demo_data_is_refused_in_production(production: Settings) -> None:
    with pytest.raises(DemoRefused, match="production"):
        refuse_demo_data()
    from lims.demo import set_up_facility

    with pytest.raises(DemoRefused):
        # refused before the database is touched
        set_up_facility(None, tag="X")  # type: ignore[arg-type]
    env = {
        **os.environ,
        "LIMS_ENVIRONMENT": "production",
        "LIMS_SECRET_KEY": production.secret_key,
        "LIMS_DATABASE_URL": "postgresql+psycopg://nobody@127.0.0.1:9/none",
    }
    done = subprocess.run(
        [sys.executable, "-m", "cli.main", "demo"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 1, done.stdout + done.stderr
    assert "never loaded into a production database" in done.stdout


def test_production_server_refuses_to_start_without_a_checkpoint_key(
    production: Settings,
) -> None:
    env = {
        **os.environ,
        "LIMS_ENVIRONMENT": "production",
        "LIMS_SECRET_KEY": production.secret_key,
        "LIMS_DATABASE_URL": "postgresql+psycopg://nobody@127.0.0.1:9/none",
        "LIMS_ARGON2_TIME_COST": "2",
        "LIMS_ARGON2_MEMORY_KIB": "19456",
    }
    env.pop("LIMS_CHECKPOINT_KEY", None)
    done = subprocess.run(
        [sys.executable, "-m", "cli.main", "serve", "--port", "9"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 1, done.stdout + done.stderr
    assert "refused to serve" in done.stdout
    assert "LIMS_CHECKPOINT_KEY must be set in production" in done.stdout


def test_production_cookie_hsts_and_no_public_docs(
    engine: Engine, api: Api, production: Settings
) -> None:
    with live_server(engine) as url, httpx.Client(base_url=url, timeout=60) as c:
        for path in ("/docs", "/redoc", "/openapi.json"):
            assert c.get(path).status_code == 404, path
        form = c.get("/login")
        assert "Secure" in form.headers["set-cookie"]
        assert form.headers["strict-transport-security"].startswith("max-age=31536000")
        token = form.text.split('name="login_csrf" value="')[1].split('"')[0]
        # A Secure cookie is not sent back over plain HTTP (as it should be): send it by hand.
        signed_in = c.post(
            "/login",
            data={"username": "tanaka", "password": PASSWORD, "login_csrf": token},
            headers={"Cookie": f"lims_login_csrf={token}"},
            follow_redirects=False,
        )
        assert signed_in.status_code == 303, signed_in.text
        cookies = signed_in.headers.get_list("set-cookie")
        session_cookie = [v for v in cookies if v.startswith("lims_session=")]
        assert session_cookie and all(
            "Secure" in v and "HttpOnly" in v and "SameSite=strict" in v for v in session_cookie
        ), session_cookie
        api_answer = c.get("/api/v1/auth/me", headers=api.as_("qa"))
        assert "strict-transport-security" in api_answer.headers


def test_docs_are_public_in_dev_by_default_and_can_be_switched_off(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    # 30 s, not httpx's 5: on a CI machine busy with the rest of the suite the first answer
    # of a fresh server was once slower than 5 s.
    with live_server(engine) as url:
        assert httpx.get(f"{url}/openapi.json", timeout=30).status_code == 200
        assert "strict-transport-security" not in httpx.get(f"{url}/health", timeout=30).headers
    monkeypatch.setenv("LIMS_PUBLIC_API_DOCS", "false")
    get_settings.cache_clear()
    try:
        with live_server(engine) as url:
            assert httpx.get(f"{url}/openapi.json", timeout=30).status_code == 404
    finally:
        monkeypatch.undo()
        get_settings.cache_clear()


def test_security_headers_on_every_answer(engine: Engine, api: Api) -> None:
    with live_server(engine) as url, httpx.Client(base_url=url, timeout=60) as c:
        answers = {
            "sign-in page": c.get("/login"),
            "front door": c.get("/", follow_redirects=False),
            "API, signed in": c.get("/api/v1/lab/materials", headers=api.as_("technician")),
            "API, not signed in": c.get("/api/v1/auth/me"),
            "unknown route": c.get("/api/v1/nowhere"),
            "validation error": c.post("/api/v1/auth/token", data={}),
            "too large": c.post(
                "/api/v1/clinic/api-keys",
                content=b"x" * 1_100_000,
                headers={**api.as_("clinic"), "Content-Type": "application/json"},
            ),
            "health": c.get("/health"),
        }
    for what, r in answers.items():
        csp = r.headers.get("content-security-policy", "")
        assert "frame-ancestors 'none'" in csp, (what, r.headers)
        assert "script-src 'self' 'nonce-" in csp or what == "docs", (what, csp)
        assert "unsafe-inline" not in csp.split("script-src")[1].split(";")[0], (what, csp)
        assert r.headers.get("x-content-type-options") == "nosniff", what
        assert r.headers.get("referrer-policy") == "no-referrer", what
        if what != "health":
            assert r.headers.get("cache-control") == "no-store", (what, r.headers)
    csp = answers["sign-in page"].headers["content-security-policy"]
    nonce = csp.split("'nonce-")[1].split("'")[0]
    assert f'<script nonce="{nonce}">' in answers["sign-in page"].text


def test_an_unhandled_error_answers_with_the_security_headers_too(engine: Engine) -> None:
    # Starlette answers an unhandled exception from outside every middleware, so the 500
    # was the one answer without the headers (found in review).
    from fastapi.testclient import TestClient

    from api.app import create_app

    app = create_app(engine)

    def boom() -> None:
        raise RuntimeError("a defect")

    app.add_api_route("/api/v1/boom", boom)
    with TestClient(app, raise_server_exceptions=False) as c:
        r = c.get("/api/v1/boom")
    assert r.status_code == 500
    assert r.headers["content-type"].startswith("application/problem+json")
    assert "a defect" not in r.text
    assert "frame-ancestors 'none'" in r.headers.get("content-security-policy", "")
    assert r.headers.get("x-content-type-options") == "nosniff"
    assert r.headers.get("cache-control") == "no-store"
