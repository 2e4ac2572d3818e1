"""Bearer tokens (short-lived access, longer refresh), browser session cookies, API keys,
and role checks. Every token and session is checked against the user's row on every
request: a locked, deactivated or signed-out user's tokens end at once."""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable
from datetime import timedelta
from typing import Annotated, Any

import jwt
from fastapi import Depends, Request, Response
from fastapi.security import APIKeyHeader, OAuth2PasswordBearer
from sqlalchemy import Engine
from sqlmodel import Session

from lims.auth.service import SYSTEM_USERNAME, DeviceProof, authenticate_api_key, usable
from lims.db import read_session, utcnow
from lims.errors import LimsError
from lims.parties.models import LAB_STAFF, Role, User
from lims.settings import get_settings
from lims.signatures.passwords import AuthenticationFailed

ACCESS_MINUTES = 15
REFRESH_HOURS = 8
DEVICE_COOKIE = "lims_device"
DEVICE_DAYS = 90
ALGORITHM = "HS256"
COOKIE = "lims_session"
HOURS = 8
DEVICE_COOKIE = "lims_device"
DEVICE_DAYS = 90
oauth2 = OAuth2PasswordBearer(tokenUrl="/api/v1/auth/token", auto_error=False)
# A security scheme (not a bare header parameter) so generated clients know the key.
api_key = APIKeyHeader(
    name="X-API-Key",
    scheme_name="ApiKey",
    description="A clinic's API key (`lims` admin or the portal creates one)",
    auto_error=False,
)


class Forbidden(LimsError):
    http_status = 403
    code = "forbidden"


def _sign(user: User, kind: str, lifetime: timedelta, **extra: Any) -> str:
    now = utcnow()
    claims = {
        "sub": user.username,
        "uid": user.id,
        "ver": user.token_version,
        "typ": kind,
        "iat": int(now.timestamp()),
        "exp": int((now + lifetime).timestamp()),
        **extra,
    }
    return jwt.encode(claims, get_settings().secret_key, algorithm=ALGORITHM)


def issue_token(user: User, kind: str) -> tuple[str, int]:
    """A signed token for ``user``; returns (token, seconds until it expires)."""
    lifetime = (
        timedelta(minutes=ACCESS_MINUTES) if kind == "access" else timedelta(hours=REFRESH_HOURS)
    )
    return _sign(user, kind, lifetime, role=user.role), int(lifetime.total_seconds())


def read_token(token: str, kind: str) -> dict[str, Any]:
    try:
        claims: dict[str, Any] = jwt.decode(
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


def holder_of(session: Session, claims: dict[str, Any]) -> User:
    """The user a verified token or session speaks for, if it has not been revoked since."""
    user = session.get(User, claims["uid"])
    if (
        user is None
        or user.username != claims["sub"]
        or user.username == SYSTEM_USERNAME
        or claims.get("ver") != user.token_version
    ):
        raise AuthenticationFailed("the token is not valid; sign in again")
    if not usable(user):
        raise AuthenticationFailed("the account is locked or not active")
    return user


def new_session(user: User) -> tuple[str, str]:
    """(cookie value, csrf token) for a freshly signed-in browser."""
    csrf = secrets.token_urlsafe(24)
    return _sign(user, "web", timedelta(hours=HOURS), csrf=csrf), csrf


def read_cookie(value: str | None) -> dict[str, Any] | None:
    """The claims of a session cookie with a valid signature (not yet checked against the
    user's row: see holder_of)."""
    if not value:
        return None
    try:
        claims: dict[str, Any] = jwt.decode(
            value,
            get_settings().secret_key,
            algorithms=[ALGORITHM],
            options={"require": ["exp", "sub", "uid", "typ", "csrf"]},
        )
    except jwt.PyJWTError:
        return None
    return claims if claims.get("typ") == "web" else None


def device_cookie_name(username: str) -> str:
    """One device cookie per account, so a shared bench PC keeps each user's proof."""
    name = (username or "").strip().lower()
    return f"{DEVICE_COOKIE}_{hashlib.sha256(name.encode()).hexdigest()[:16]}"


def new_device_cookie(user: User) -> str:
    """Proof that this browser (or script) signed in to ``user`` before, with a random id,
    void once the user's token version changes (a new password, a sign-out everywhere)."""
    return _sign(user, "device", timedelta(days=DEVICE_DAYS), did=secrets.token_urlsafe(16))


def device_proof(request: Request, username: str) -> DeviceProof | None:
    """The verified device cookie this request carries for ``username``, if any (its
    account and version are checked against the user's row by sign_in)."""
    value = request.cookies.get(device_cookie_name(username))
    if not value:
        return None
    try:
        claims: dict[str, Any] = jwt.decode(
            value,
            get_settings().secret_key,
            algorithms=[ALGORITHM],
            options={"require": ["exp", "sub", "uid", "ver", "typ", "did"]},
        )
    except jwt.PyJWTError:
        return None
    if claims.get("typ") != "device":
        return None
    try:
        return DeviceProof(
            account=str(claims["sub"]),
            user_id=int(claims["uid"]),
            version=int(claims["ver"]),
            device=str(claims["did"])[:64],
        )
    except (TypeError, ValueError):
        return None


def set_device_cookie(response: Response, user: User) -> None:
    response.set_cookie(
        device_cookie_name(user.username),
        new_device_cookie(user),
        max_age=DEVICE_DAYS * 86400,
        **cookie_options(),
    )


def cookie_options() -> dict[str, Any]:
    """HttpOnly, SameSite=Strict, and Secure in production (served over HTTPS only)."""
    return {"httponly": True, "samesite": "strict", "secure": get_settings().production}


def engine_of(request: Request) -> Engine:
    engine: Engine = request.app.state.engine
    return engine


EngineDep = Annotated[Engine, Depends(engine_of)]


def current_user(
    request: Request,
    engine: EngineDep,
    token: Annotated[str | None, Depends(oauth2)],
    x_api_key: Annotated[str | None, Depends(api_key)] = None,
) -> User:
    """The signed-in user, from a bearer token or a clinic API key."""
    with read_session(engine) as session:
        if x_api_key:
            return authenticate_api_key(session, presented=x_api_key)
        if not token and request.method in ("GET", "HEAD"):
            # A signed-in browser may read (downloads, exports) with its session cookie;
            # it writes only through the pages' CSRF-checked forms.
            session_claims = read_cookie(request.cookies.get(COOKIE))
            if session_claims is not None:
                return holder_of(session, session_claims)
        if not token:
            raise AuthenticationFailed("sign in first: send 'Authorization: Bearer <token>'")
        return holder_of(session, read_token(token, "access"))


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
