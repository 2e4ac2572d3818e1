"""Template rendering with the signed-in user and the CSRF token filled in."""

from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from lims.identity.codes import format_material_id

templates = Jinja2Templates(directory=str(Path(__file__).parent / "templates"))
templates.env.filters["mid"] = format_material_id


def page(request: Request, name: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    context.setdefault("user", None)
    context.setdefault("csrf", getattr(request.state, "csrf", ""))
    return templates.TemplateResponse(request, name, context, status_code=status_code)
