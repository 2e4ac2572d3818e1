"""Sign-in and sign-out for the browser (same passwords and throttling as the API).

The sign-in form carries a pre-session CSRF token (a random value in a cookie and the
same value in the form), so another site cannot sign a visitor in to an account of its
choosing; sign-out ends the session on the server, not only in this browser.
"""

import hmac
import secrets
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from api.routers.auth import client_address
from api.security import EngineDep, cookie_options, device_proof, new_session, set_device_cookie
from api.web.render import page
from api.web.session import COOKIE, HOME, HOURS, WebUser, check_csrf
from lims.auth.service import end_sessions
from lims.auth.service import sign_in as check_sign_in
from lims.db import write_session
from lims.errors import LimsError
from lims.parties.models import Role, User

router = APIRouter(include_in_schema=False)
LOGIN_COOKIE = "lims_login_csrf"
EXPIRED_FORM = "the sign-in form has expired or did not come from this site; sign in again"


def _form(
    request: Request, *, next: str, status_code: int = 200, errors: list[str] | None = None
) -> HTMLResponse:
    token = secrets.token_urlsafe(24)
    response = page(
        request,
        "login.html",
        status_code=status_code,
        next=next,
        login_csrf=token,
        errors=errors or [],
    )
    response.set_cookie(LOGIN_COOKIE, token, max_age=3600, path="/login", **cookie_options())
    return response


@router.get("/login", response_class=HTMLResponse)
def login_form(request: Request, next: str = "") -> HTMLResponse:
    return _form(request, next=next)


@router.post("/login")
def login(
    request: Request,
    engine: EngineDep,
    username: Annotated[str, Form()],
    password: Annotated[str, Form()],
    next: Annotated[str, Form()] = "",
    login_csrf: Annotated[str, Form()] = "",
) -> Response:
    expected = request.cookies.get(LOGIN_COOKIE, "")
    if not expected or not login_csrf or not hmac.compare_digest(expected, login_csrf):
        return _form(request, next=next, status_code=403, errors=[EXPIRED_FORM])
    try:
        with write_session(engine) as session:
            user = check_sign_in(
                session,
                username=username,
                password=password,
                client=client_address(request),
                proof=device_proof(request, username),
            )
    except LimsError as exc:
        refused = _form(request, next=next, status_code=exc.http_status, errors=[exc.message])
        if "retry_after" in exc.details:
            refused.headers["Retry-After"] = str(exc.details["retry_after"])
        return refused
    cookie, _csrf = new_session(user)
    target = next if next.startswith("/") and not next.startswith("//") else HOME[Role(user.role)]
    response = RedirectResponse(target, status_code=303)
    response.set_cookie(COOKIE, cookie, max_age=HOURS * 3600, **cookie_options())
    response.delete_cookie(LOGIN_COOKIE, path="/login")
    set_device_cookie(response, user)
    return response


@router.post("/logout")
def logout(
    request: Request, engine: EngineDep, user: WebUser, csrf: Annotated[str, Form()] = ""
) -> Response:
    check_csrf(request, csrf)
    with write_session(engine) as session:
        fresh = session.get(User, user.id)
        assert fresh is not None
        end_sessions(session, user=fresh, actor=fresh, why="signed out")
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(COOKIE)
    return response
