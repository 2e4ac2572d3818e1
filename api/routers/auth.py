"""Sign in (OAuth2 password flow), refresh, sign out, and who am I."""

from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response
from fastapi.security import OAuth2PasswordRequestForm

from api.schemas import RefreshIn, TokenOut, UserOut
from api.security import (
    CurrentUser,
    EngineDep,
    device_proof,
    holder_of,
    issue_token,
    read_token,
    set_device_cookie,
)
from lims.auth.service import end_sessions, sign_in
from lims.db import read_session, write_session
from lims.parties.models import Clinic, User

router = APIRouter(prefix="/auth", tags=["auth"])


def client_address(request: Request) -> str:
    """The address the request came from (the throttling key for anonymous sign-in)."""
    return request.client.host if request.client else "unknown"


def _tokens(user: User) -> TokenOut:
    access, seconds = issue_token(user, "access")
    refresh, _ = issue_token(user, "refresh")
    return TokenOut(access_token=access, refresh_token=refresh, expires_in=seconds)


@router.post("/token", response_model=TokenOut, responses={401: {}, 423: {}, 429: {}})
def token(
    request: Request,
    response: Response,
    engine: EngineDep,
    form: Annotated[OAuth2PasswordRequestForm, Depends()],
) -> TokenOut:
    """Sign in with user name and password (in the form body, never the query string).
    Wrong passwords are throttled per client and per account: after a few, the next try
    must wait (429 with Retry-After), doubling each time. A device cookie from an earlier
    sign-in to the account (set by this answer and by the sign-in page) spares the
    client the account's throttle, not its own."""
    with write_session(engine) as session:
        user = sign_in(
            session,
            username=form.username,
            password=form.password,
            client=client_address(request),
            proof=device_proof(request, form.username),
        )
        set_device_cookie(response, user)
        return _tokens(user)


@router.post("/refresh", response_model=TokenOut, responses={401: {}})
def refresh(engine: EngineDep, body: RefreshIn) -> TokenOut:
    """Trade a refresh token for a new pair (the user must still be active, not locked,
    and not signed out or given a new password since)."""
    claims = read_token(body.refresh_token, "refresh")
    with read_session(engine) as session:
        return _tokens(holder_of(session, claims))


@router.post("/logout", status_code=204, responses={401: {}})
def logout(engine: EngineDep, user: CurrentUser) -> Response:
    """Sign out everywhere: every token and browser session of this user stops working."""
    with write_session(engine) as session:
        fresh = session.get(User, user.id)
        assert fresh is not None
        end_sessions(session, user=fresh, actor=fresh, why="signed out")
    return Response(status_code=204)


@router.get("/me", response_model=UserOut)
def me(engine: EngineDep, user: CurrentUser) -> UserOut:
    """Who the token or API key belongs to: username, role, clinic."""
    with read_session(engine) as session:
        clinic = session.get(Clinic, user.clinic_id) if user.clinic_id else None
    return UserOut(
        username=user.username,
        printed_name=user.printed_name,
        role=user.role,
        clinic=clinic.code if clinic else None,
    )
