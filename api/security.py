"""Bearer tokens (short-lived access, longer refresh), API keys, and role checks."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Annotated, Any

import jwt
from fastapi import Depends, Header, Request
from fastapi.security import OAuth2PasswordBearer
from sqlalchemy import Engine

from lims.auth.service import authenticate_api_key
from lims.db import read_session, utcnow
from lims.errors import LimsError
from lims.parties.models import LAB_STAFF, Role, User
from lims.settings import get_settings
from lims.signatures.passwords import AuthenticationFailed

ACCESS_MINUTES = 15
REFRESH_HOURS = 8
ALGORITHM = "HS256"
oauth2 = OAuth2PasswordBearer(tokenUrl="/api/v1/auth/token", auto_error=False)


class Forbidden(LimsError):
    http_status = 403
    code = "forbidden"


def issue_token(user: User, kind: str) -> tuple[str, int]:
    """A signed token for ``user``; returns (token, seconds until it expires)."""
    lifetime = (
        timedelta(minutes=ACCESS_MINUTES) if kind == "access" else timedelta(hours=REFRESH_HOURS)
    )
    now = utcnow()
    claims = {
        "sub": user.username,
        "uid": user.id,
        "role": user.role,
        "typ": kind,
        "iat": int(now.timestamp()),
        "exp": int((now + lifetime).timestamp()),
    }
    token = jwt.encode(claims, get_settings().secret_key, algorithm=ALGORITHM)
    return token, int(lifetime.total_seconds())


def read_token(token: str, kind: str) -> dict[str, Any]:
    try:
        claims = jwt.decode(
            token,
            get_settings().secret_key,
            algorithms=[ALGORITHM],
            options={"require": ["exp", "sub", "uid", "typ"]},
        )
    except jwt.ExpiredSignatureError:
        raise AuthenticationFailed("the token has expired; sign in again") from None
    except jwt.PyJWTError:
        raise AuthenticationFailed("the token is not valid") from None
    if claims.get("typ") != kind:
        raise AuthenticationFailed(f"a {claims.get('typ')} token cannot be used here")
    return claims


def engine_of(request: Request) -> Engine:
    engine: Engine = request.app.state.engine
    return engine


EngineDep = Annotated[Engine, Depends(engine_of)]


def current_user(
    request: Request,
    engine: EngineDep,
    token: Annotated[str | None, Depends(oauth2)],
    x_api_key: Annotated[str | None, Header(description="A clinic's API key")] = None,
) -> User:
    """The signed-in user, from a bearer token or a clinic API key."""
    with read_session(engine) as session:
        if x_api_key:
            return authenticate_api_key(session, presented=x_api_key)
        if not token and request.method in ("GET", "HEAD"):
            # A signed-in browser may read (downloads, exports) with its session cookie;
            # it writes only through the pages' CSRF-checked forms.
            from api.web.session import COOKIE, read_cookie

            session_claims = read_cookie(request.cookies.get(COOKIE))
            if session_claims is not None:
                token_claims: dict[str, Any] = dict(session_claims)
                user = session.get(User, token_claims["uid"])
                if user is not None and user.active and user.username == token_claims["sub"]:
                    return user
        if not token:
            raise AuthenticationFailed("sign in first: send 'Authorization: Bearer <token>'")
        claims = read_token(token, "access")
        user = session.get(User, claims["uid"])
        if user is None or not user.active or user.username != claims["sub"]:
            raise AuthenticationFailed("the token is not valid")
        if user.locked_until is not None and user.locked_until > utcnow():
            raise AuthenticationFailed("the account is locked")
        return user


CurrentUser = Annotated[User, Depends(current_user)]


def require(*roles: Role) -> Callable[[User], User]:
    """A dependency that lets only ``roles`` through (403 for other signed-in users)."""
    allowed = frozenset(roles)

    def check(user: CurrentUser) -> User:
        if Role(user.role) not in allowed:
            names = ", ".join(sorted(r.value for r in allowed))
            raise Forbidden(f"this needs the role {names}; you are {user.role}")
        return user

    return check


CLINIC = (Role.CLINIC,)
LAB = sorted(LAB_STAFF)
QA = (Role.QA,)
AUDIT = (Role.AUDITOR, Role.QA, Role.ADMIN)
ADMIN = (Role.ADMIN,)
ClinicUser = Annotated[User, Depends(require(*CLINIC))]
LabUser = Annotated[User, Depends(require(*LAB))]
QaUser = Annotated[User, Depends(require(*QA))]
AuditUser = Annotated[User, Depends(require(*AUDIT))]
AdminUser = Annotated[User, Depends(require(*ADMIN))]
