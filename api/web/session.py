"""Browser sessions: the API's signed token in an HttpOnly cookie, plus a CSRF token bound
to it that every form must send back."""

from __future__ import annotations

import hmac
import secrets
from typing import Annotated

import jwt
from fastapi import Depends, Request
from sqlalchemy import Engine

from api.security import ALGORITHM, Forbidden, engine_of
from lims.db import read_session, utcnow
from lims.parties.models import Role, User
from lims.settings import get_settings

COOKIE = "lims_session"
HOURS = 8


class NeedsSignIn(Exception):
    def __init__(self, next_path: str) -> None:
        self.next_path = next_path


def new_session(user: User) -> tuple[str, str]:
    """(cookie value, csrf token) for a freshly signed-in user."""
    csrf = secrets.token_urlsafe(24)
    now = int(utcnow().timestamp())
    claims = {
        "sub": user.username,
        "uid": user.id,
        "typ": "web",
        "csrf": csrf,
        "iat": now,
        "exp": now + HOURS * 3600,
    }
    return jwt.encode(claims, get_settings().secret_key, algorithm=ALGORITHM), csrf


def read_cookie(value: str | None) -> dict[str, object] | None:
    if not value:
        return None
    try:
        claims = jwt.decode(value, get_settings().secret_key, algorithms=[ALGORITHM])
    except jwt.PyJWTError:
        return None
    return claims if claims.get("typ") == "web" else None


def web_user(request: Request, engine: Annotated[Engine, Depends(engine_of)]) -> User:
    """The signed-in browser user; unsigned visitors are sent to the sign-in page."""
    claims = read_cookie(request.cookies.get(COOKIE))
    if claims is None:
        raise NeedsSignIn(request.url.path)
    with read_session(engine) as session:
        user = session.get(User, claims["uid"])
    if user is None or not user.active or user.username != claims["sub"]:
        raise NeedsSignIn(request.url.path)
    request.state.csrf = claims["csrf"]
    return user


WebUser = Annotated[User, Depends(web_user)]


def check_csrf(request: Request, token: str | None) -> None:
    expected = getattr(request.state, "csrf", None)
    if not expected or not token or not hmac.compare_digest(str(expected), token):
        raise Forbidden("the form has expired or did not come from this site; reload it")


def require_role(user: User, *roles: Role) -> None:
    if Role(user.role) not in roles:
        names = ", ".join(r.value for r in roles)
        raise Forbidden(f"this page is for {names}; you are {user.role}")


HOME = {
    Role.TECHNICIAN: "/bench",
    Role.QA: "/qa",
    Role.CLINIC: "/portal",
    Role.AUDITOR: "/audit",
    Role.ADMIN: "/audit",
}
