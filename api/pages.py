"""The front door: send a browser to its signed-in user's home page, or to sign in; the
language switch; the site's icon (a browser asks for /favicon.ico on every site)."""

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response

from api.security import EngineDep
from api.web import i18n
from api.web.session import HOME, NeedsSignIn, web_user
from lims.parties.models import Role

router = APIRouter(include_in_schema=False)
ICON = (
    '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 16 16">'
    '<rect width="16" height="16" rx="3" fill="#16324f"/>'
    '<path d="M5 3v10h7" stroke="#fff" stroke-width="2" fill="none"/></svg>'
)
YEAR = 365 * 24 * 3600


@router.get("/")
def index(request: Request, engine: EngineDep) -> RedirectResponse:
    try:
        user = web_user(request, engine)
    except NeedsSignIn:
        return RedirectResponse("/login", status_code=303)
    return RedirectResponse(HOME[Role(user.role)], status_code=303)


@router.get("/favicon.ico")
def favicon() -> Response:
    return Response(ICON, media_type="image/svg+xml")


@router.post("/language")
def choose_language(
    language: Annotated[str, Form()], next: Annotated[str, Form()] = "/"
) -> RedirectResponse:
    """Remember the person's language (a cookie) and go back to the page they were on."""
    # Only a path on this site: never an address of the sender's choosing.
    back = next if next.startswith("/") and not next.startswith("//") else "/"
    response = RedirectResponse(back, status_code=303)
    if language in i18n.LANGUAGES:
        response.set_cookie(i18n.COOKIE, language, max_age=YEAR, samesite="lax", httponly=True)
    return response
