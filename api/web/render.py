"""Template rendering with the signed-in user, the CSRF token and the CSP nonce filled in,
and one-time notices carried across a redirect.

A notice (a confirmation or the errors of a refused form) travels in a short-lived cookie
signed by the server, never in the query string: a link cannot put text of its sender's
choosing on a page.
"""

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import jwt
from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.templating import Jinja2Templates
from jinja2 import pass_context

from api.web import i18n
from api.web.forms import install_filters
from api.web.menu import menu
from lims.amounts import meaningful
from lims.db import utcnow
from lims.identity.codes import format_material_id
from lims.settings import get_settings

templates = Jinja2Templates(directory=str(Path(__file__).parent / "templates"))
templates.env.filters["mid"] = format_material_id
templates.env.filters["amount"] = meaningful
templates.env.add_extension("jinja2.ext.i18n")
templates.env.install_gettext_callables(  # type: ignore[attr-defined]
    i18n.gettext, i18n.ngettext, newstyle=True
)
templates.env.globals["menu"] = menu
templates.env.globals["languages"] = i18n.LANGUAGES
install_filters(templates.env)


@pass_context
def when(context: Any, moment: datetime | None, date_only: bool = False) -> str:
    """A stored (UTC) time in the page's zone with its offset: "2026-12-03 21:00 UTC+09:00"."""
    if moment is None:
        return "—"
    zone = context.get("zone") or ZoneInfo("UTC")
    local = moment.astimezone(zone)
    if date_only:
        return f"{local:%Y-%m-%d}"
    offset = local.strftime("%z")
    shown = "" if offset == "+0000" else f"{offset[:3]}:{offset[3:]}"
    return f"{local:%Y-%m-%d %H:%M} UTC{shown}"


templates.env.filters["when"] = when
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


def viewer_zone(request: Request, user: Any) -> ZoneInfo:
    """The zone a page shows times in: a clinic's own for its desk, the lab's for the rest."""
    if user is not None and getattr(user, "clinic_id", None):
        from lims.db import read_session
        from lims.parties.models import Clinic

        with read_session(request.app.state.engine) as session:
            clinic = session.get(Clinic, user.clinic_id)
            if clinic is not None:
                return ZoneInfo(clinic.time_zone)
    return ZoneInfo(get_settings().lab_time_zone)


def page(request: Request, name: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    context.setdefault("user", None)
    context.setdefault("csrf", getattr(request.state, "csrf", ""))
    context.setdefault("csp_nonce", getattr(request.state, "csp_nonce", ""))
    if "zone" not in context:
        context["zone"] = viewer_zone(request, context["user"])
    language = i18n.language_of(request)
    i18n.use(language)  # the template is rendered below, in this call
    context["lang"] = language
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
