"""A home per lab role: counts and the first rows of each work list (lims.workspace)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from api.security import EngineDep
from api.web.render import page
from api.web.session import WebUser, require_role
from lims.db import read_session
from lims.parties.models import LAB_STAFF, Role
from lims.workspace.queries import qa_home, technician_home

router = APIRouter(include_in_schema=False)


@router.get("/home", response_class=HTMLResponse)
def home(request: Request, engine: EngineDep, user: WebUser) -> Response:
    require_role(user, *sorted(LAB_STAFF))
    with read_session(engine) as session:
        lists = qa_home(session) if Role(user.role) is Role.QA else technician_home(session)
    title = "QA today" if Role(user.role) is Role.QA else "The lab today"
    return page(request, "home.html", user=user, lists=lists, title=title)
