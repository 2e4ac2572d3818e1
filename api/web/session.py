"""Browser sessions: the API's signed token in an HttpOnly cookie (api.security), plus a
CSRF token bound to it that every form must send back."""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy import Engine

from api.security import COOKIE, HOURS, Forbidden, engine_of, holder_of, read_cookie
from lims.db import read_session
from lims.parties.models import Role, User
from lims.signatures.passwords import AuthenticationFailed

__all__ = ["COOKIE", "HOME", "HOURS", "NeedsSignIn", "WebUser", "check_csrf", "web_user"]


class NeedsSignIn(Exception):
    def __init__(self, next_path: str) -> None:
        self.next_path = next_path


def web_user(request: Request, engine: Annotated[Engine, Depends(engine_of)]) -> User:
    """The signed-in browser user; unsigned visitors are sent to the sign-in page."""
    claims = read_cookie(request.cookies.get(COOKIE))
    if claims is None:
        raise NeedsSignIn(request.url.path)
    with read_session(engine) as session:
        try:
            user = holder_of(session, claims)
        except AuthenticationFailed:
            raise NeedsSignIn(request.url.path) from None
    request.state.csrf = claims["csrf"]
    request.state.user = user  # for an error page later in this request
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


# Where "/" and signing in lead: the lab's roles to their home of counts and work lists
# (api.web.homes), a clinic desk to its portal, an auditor to the audit view.
HOME = {
    Role.TECHNICIAN: "/home",
    Role.QA: "/home",
    Role.CLINIC: "/portal",
    Role.AUDITOR: "/audit",
    Role.ADMIN: "/home",
}
