"""Tokens and sessions end when they should, on the server: locking, a new password,
deactivation and signing out end every access token, refresh token, browser session and
(for a clinic account) API key at once. Over real HTTP (uvicorn) on each test database."""

from __future__ import annotations

from datetime import timedelta

import httpx
import pytest
from sqlalchemy import Engine
from sqlmodel import col, select

from lims.auth.service import deactivate_user
from lims.db import utcnow, write_session
from lims.parties.models import User
from lims.settings import get_settings
from lims.signatures.passwords import AuthenticationFailed, check_password, set_password
from tests.api.conftest import Api
from tests.builders import PASSWORD
from tests.live_server import live_server

NEW_PASSWORD = "a brand new passphrase 2026"


def tokens(c: httpx.Client, username: str, password: str = PASSWORD) -> dict[str, str]:
    r = c.post("/api/v1/auth/token", data={"username": username, "password": password})
    assert r.status_code == 200, r.text
    return dict(r.json())


def web_sign_in(c: httpx.Client, username: str) -> str:
    """Sign in through the sign-in form; return the session cookie's value."""
    form = c.get("/login")
    token = form.text.split('name="login_csrf" value="')[1].split('"')[0]
    r = c.post(
        "/login",
        data={"username": username, "password": PASSWORD, "login_csrf": token},
        follow_redirects=False,
    )
    assert r.status_code == 303, r.text
    cookie = c.cookies.get("lims_session")
    assert cookie
    return cookie


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _works(c: httpx.Client, pair: dict[str, str], cookie: str | None = None) -> dict[str, int]:
    """What each credential gets now: the access token, the refresh token, the cookie."""
    out = {
        "access": c.get("/api/v1/auth/me", headers=_bearer(pair["access_token"])).status_code,
        "refresh": c.post(
            "/api/v1/auth/refresh", json={"refresh_token": pair["refresh_token"]}
        ).status_code,
    }
    if cookie is not None:
        fresh = httpx.Client(base_url=str(c.base_url), cookies={"lims_session": cookie}, timeout=60)
        with fresh:
            out["cookie page"] = fresh.get("/bench", follow_redirects=False).status_code
            out["cookie API"] = fresh.get("/api/v1/lab/materials").status_code
    return out


ALIVE = {"access": 200, "refresh": 200, "cookie page": 200, "cookie API": 200}
ENDED = {"access": 401, "refresh": 401, "cookie page": 303, "cookie API": 401}


def _user(engine: Engine, username: str) -> User:
    with write_session(engine) as s:
        user = s.exec(select(User).where(col(User.username) == username)).one()
        s.expunge(user)
        return user


def test_a_locked_account_loses_tokens_refresh_and_session(engine: Engine, api: Api) -> None:
    """Wrong e-signature passwords lock the account (Part 11); its tokens, refresh token
    and browser session stop at once (the refresh endpoint kept issuing tokens)."""
    with live_server(engine) as url, httpx.Client(base_url=url, timeout=60) as c:
        pair = tokens(c, "mori")
        cookie = web_sign_in(c, "mori")
        assert _works(c, pair, cookie) == ALIVE
        mori = _user(engine, "mori")
        for _ in range(get_settings().max_password_failures):
            with pytest.raises(AuthenticationFailed), write_session(engine) as s:
                check_password(s, user=mori, password="not my password")
        assert _user(engine, "mori").locked_until is not None
        assert _works(c, pair, cookie) == ENDED


def test_a_lock_ends_sessions_even_when_set_by_hand(engine: Engine, api: Api) -> None:
    """A lock written straight into the row (no version bump) is still honoured."""
    with live_server(engine) as url, httpx.Client(base_url=url, timeout=60) as c:
        pair = tokens(c, "tanaka")
        cookie = web_sign_in(c, "tanaka")
        with write_session(engine) as s:
            tanaka = s.exec(select(User).where(col(User.username) == "tanaka")).one()
            tanaka.locked_until = utcnow() + timedelta(minutes=5)
            s.add(tanaka)
        assert _works(c, pair, cookie) == ENDED


def test_a_new_password_ends_every_old_token(engine: Engine, api: Api) -> None:
    with live_server(engine) as url, httpx.Client(base_url=url, timeout=60) as c:
        pair = tokens(c, "sato")
        assert _works(c, pair) == {"access": 200, "refresh": 200}
        with write_session(engine) as s:
            sato = s.exec(select(User).where(col(User.username) == "sato")).one()
            set_password(s, user=sato, password=NEW_PASSWORD, actor=None)
        assert _works(c, pair) == {"access": 401, "refresh": 401}
        assert _works(c, tokens(c, "sato", NEW_PASSWORD)) == {"access": 200, "refresh": 200}


def test_signing_out_ends_the_session_on_the_server(engine: Engine, api: Api) -> None:
    """A copy of the cookie taken before sign-out no longer works after it (it did)."""
    with live_server(engine) as url, httpx.Client(base_url=url, timeout=60) as c:
        cookie = web_sign_in(c, "tanaka")
        page = c.get("/bench")
        csrf = page.text.split('name="csrf" value="')[1].split('"')[0]
        out = c.post("/logout", data={"csrf": csrf}, follow_redirects=False)
        assert out.status_code == 303 and out.headers["location"] == "/login"
        with httpx.Client(base_url=url, cookies={"lims_session": cookie}, timeout=60) as copied:
            assert copied.get("/bench", follow_redirects=False).status_code == 303
            assert copied.get("/api/v1/lab/materials").status_code == 401
        # The API's sign-out ends bearer tokens the same way.
        pair = tokens(c, "mori")
        bye = c.post("/api/v1/auth/logout", headers=_bearer(pair["access_token"]))
        assert bye.status_code == 204, bye.text
        assert _works(c, pair) == {"access": 401, "refresh": 401}


def test_api_keys_stop_while_their_clinic_account_is_locked_or_deactivated(
    engine: Engine, api: Api
) -> None:
    made = api.client.post(
        "/api/v1/clinic/api-keys", json={"name": "EMR"}, headers=api.as_("clinic")
    )
    key = made.json()["key"]
    with live_server(engine) as url, httpx.Client(base_url=url, timeout=60) as c:

        def listed() -> int:
            return c.get("/api/v1/clinic/patients", headers={"X-API-Key": key}).status_code

        assert listed() == 200
        with write_session(engine) as s:
            desk = s.exec(select(User).where(col(User.username) == "ginza-desk")).one()
            desk.locked_until = utcnow() + timedelta(minutes=5)
            s.add(desk)
        assert listed() == 401
        with write_session(engine) as s:
            desk = s.exec(select(User).where(col(User.username) == "ginza-desk")).one()
            desk.locked_until = None
            s.add(desk)
        assert listed() == 200  # the key itself was not revoked
        pair = tokens(c, "ginza-desk")
        with write_session(engine) as s:
            desk = s.exec(select(User).where(col(User.username) == "ginza-desk")).one()
            root = s.exec(select(User).where(col(User.username) == "root")).one()
            deactivate_user(s, user=desk, actor=root)
        assert listed() == 401
        assert _works(c, pair) == {"access": 401, "refresh": 401}
        again = c.post("/api/v1/auth/token", data={"username": "ginza-desk", "password": PASSWORD})
        assert again.status_code == 401 and "not active" in again.json()["detail"]
