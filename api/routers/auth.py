"""Sign in (OAuth2 password flow), refresh, and who am I."""

from typing import Annotated

from fastapi import APIRouter, Depends
from fastapi.security import OAuth2PasswordRequestForm

from api.schemas import RefreshIn, TokenOut, UserOut
from api.security import CurrentUser, EngineDep, issue_token, read_token
from lims.auth.service import sign_in
from lims.db import read_session, write_session
from lims.parties.models import Clinic, User
from lims.signatures.passwords import AuthenticationFailed

router = APIRouter(prefix="/auth", tags=["auth"])


def _tokens(user: User) -> TokenOut:
    access, seconds = issue_token(user, "access")
    refresh, _ = issue_token(user, "refresh")
    return TokenOut(access_token=access, refresh_token=refresh, expires_in=seconds)


@router.post("/token", response_model=TokenOut, responses={401: {}, 423: {}})
def token(engine: EngineDep, form: Annotated[OAuth2PasswordRequestForm, Depends()]) -> TokenOut:
    """Sign in with user name and password; wrong passwords are counted and lock the
    account for a while after repeated failures."""
    with write_session(engine) as session:
        user = sign_in(session, username=form.username, password=form.password)
        return _tokens(user)


@router.post("/refresh", response_model=TokenOut, responses={401: {}})
def refresh(engine: EngineDep, body: RefreshIn) -> TokenOut:
    """Trade a refresh token for a new pair (the user must still be active)."""
    claims = read_token(body.refresh_token, "refresh")
    with read_session(engine) as session:
        user = session.get(User, claims["uid"])
        if user is None or not user.active or user.username != claims["sub"]:
            raise AuthenticationFailed("the token is not valid")
        return _tokens(user)


@router.get("/me", response_model=UserOut)
def me(engine: EngineDep, user: CurrentUser) -> UserOut:
    with read_session(engine) as session:
        clinic = session.get(Clinic, user.clinic_id) if user.clinic_id else None
    return UserOut(
        username=user.username,
        printed_name=user.printed_name,
        role=user.role,
        clinic=clinic.code if clinic else None,
    )
