"""The front door: send a browser to its home page, or to sign in."""

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse

from api.security import COOKIE, read_cookie
from api.web.session import HOME
from lims.parties.models import Role

router = APIRouter(include_in_schema=False)


@router.get("/")
def index(request: Request) -> RedirectResponse:
    claims = read_cookie(request.cookies.get(COOKIE))
    if claims is None:
        return RedirectResponse("/login", status_code=303)
    return (
        RedirectResponse("/bench", status_code=303)
        if claims
        else RedirectResponse(HOME[Role.TECHNICIAN], status_code=303)
    )
