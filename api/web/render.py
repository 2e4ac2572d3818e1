"""Template rendering with the signed-in user, the CSRF token and the CSP nonce filled in,
and one-time notices carried across a redirect.

A notice (a confirmation or the errors of a refused form) travels in a short-lived cookie
signed by the server, never in the query string: a link cannot put text of its sender's
choosing on a page.
"""

from datetime import timedelta
from pathlib import Path
from typing import Any

import jwt
from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.templating import Jinja2Templates

from lims.db import utcnow
from lims.identity.codes import format_material_id
from lims.settings import get_settings

templates = Jinja2Templates(directory=str(Path(__file__).parent / "templates"))
templates.env.filters["mid"] = format_material_id
NOTICE = "lims_notice"
NOTICE_SECONDS = 60


def redirect_with(
    url: str, *, message: str = "", errors: list[str] | None = None
) -> RedirectResponse:
    """A 303 to ``url`` whose page shows ``message`` / ``errors`` once."""
    response = RedirectResponse(url, status_code=303)
    exp = int((utcnow() + timedelta(seconds=NOTICE_SECONDS)).timestamp())
    claims = {"typ": "notice", "message": message, "errors": errors or [], "exp": exp}
    value = jwt.encode(claims, get_settings().secret_key, algorithm="HS256")
    response.set_cookie(
        NOTICE,
        value,
        max_age=NOTICE_SECONDS,
        httponly=True,
        samesite="strict",
        secure=get_settings().production,
    )
    return response


def _notice(request: Request) -> dict[str, Any] | None:
    value = request.cookies.get(NOTICE)
    if not value:
        return None
    try:
        claims: dict[str, Any] = jwt.decode(value, get_settings().secret_key, algorithms=["HS256"])
    except jwt.PyJWTError:
        return None
    return claims if claims.get("typ") == "notice" else None


def page(request: Request, name: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    context.setdefault("user", None)
    context.setdefault("csrf", getattr(request.state, "csrf", ""))
    context.setdefault("csp_nonce", getattr(request.state, "csp_nonce", ""))
    notice = _notice(request)
    if notice is not None:
        if not context.get("message"):
            context["message"] = str(notice.get("message") or "")
        if not context.get("errors"):
            context["errors"] = [str(e) for e in notice.get("errors") or []]
    response = templates.TemplateResponse(request, name, context, status_code=status_code)
    if NOTICE in request.cookies:
        response.delete_cookie(NOTICE)
    return response
