"""Error pages for browsers, inside the layout: the signed-in person keeps their menu and
is not offered "Sign in". API clients (and anything not asking for HTML) keep getting
problem+json."""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import HTMLResponse

from api.security import COOKIE, holder_of, read_cookie
from api.web.i18n import N_
from lims.db import read_session
from lims.parties.models import User
from lims.signatures.passwords import AuthenticationFailed

# What each status means to the person reading the page.
HEADINGS = {
    400: N_("The request could not be read"),
    403: N_("You cannot open this page"),
    404: N_("Page not found"),
    405: N_("This page cannot do that"),
    409: N_("Refused by a rule"),
    413: N_("What you sent is too large"),
    422: N_("Some values could not be used"),
    429: N_("Too many attempts"),
    500: N_("Something went wrong on our side"),
    503: N_("The system is busy"),
}


def wants_html(request: Request) -> bool:
    """A browser asking for a page: not the JSON API, and HTML in its Accept header."""
    path = request.url.path
    if path.startswith("/api/") or path in ("/health", "/openapi.json"):
        return False
    return "text/html" in request.headers.get("accept", "")


def viewer(request: Request) -> User | None:
    """The signed-in person, if any (an error can come before any page looked them up)."""
    known = getattr(request.state, "user", None)
    if isinstance(known, User):
        return known
    claims = read_cookie(request.cookies.get(COOKIE))
    if claims is None:
        return None
    try:
        with read_session(request.app.state.engine) as session:
            user = holder_of(session, claims)
    except AuthenticationFailed:
        return None
    except Exception:  # an error page must not fail in its turn (e.g. the database is down)
        return None
    request.state.csrf = claims.get("csrf", "")
    return user


def error_page(request: Request, status: int, detail: str) -> HTMLResponse:
    """The HTML page for one error status, inside the layout."""
    from api.web.render import page

    return page(
        request,
        "error.html",
        status_code=status,
        user=viewer(request),
        errors=[detail] if detail else [],
        title=HEADINGS.get(status, "Error"),
        status=status,
    )
