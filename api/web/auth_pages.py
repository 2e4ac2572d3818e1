"""Sign-in and sign-out for the browser (same passwords and lockout as the API)."""

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from api.security import EngineDep
from api.web.render import page
from api.web.session import COOKIE, HOME, HOURS, WebUser, check_csrf, new_session
from lims.auth.service import sign_in
from lims.db import write_session
from lims.errors import LimsError
from lims.parties.models import Role

router = APIRouter(include_in_schema=False)


@router.get("/login", response_class=HTMLResponse)
def login_form(request: Request, next: str = "") -> HTMLResponse:
    return page(request, "login.html", next=next)


@router.post("/login")
def login(
    request: Request,
    engine: EngineDep,
    username: Annotated[str, Form()],
    password: Annotated[str, Form()],
    next: Annotated[str, Form()] = "",
) -> Response:
    try:
        with write_session(engine) as session:
            user = sign_in(session, username=username, password=password)
    except LimsError as exc:
        return page(
            request, "login.html", status_code=exc.http_status, errors=[exc.message], next=next
        )
    cookie, _csrf = new_session(user)
    target = next if next.startswith("/") and not next.startswith("//") else HOME[Role(user.role)]
    response = RedirectResponse(target, status_code=303)
    response.set_cookie(COOKIE, cookie, max_age=HOURS * 3600, httponly=True, samesite="strict")
    return response


@router.post("/logout")
def logout(request: Request, user: WebUser, csrf: Annotated[str, Form()] = "") -> Response:
    check_csrf(request, csrf)
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(COOKIE)
    return response
