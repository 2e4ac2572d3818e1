"""The clinic's recalls: a banner on its portal pages while one waits for its
acknowledgement, the list, a recall's page (its own doses: do not use) and the
acknowledge button. A recall that did not reach this clinic answers 'not found'."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy import Engine

from api.security import EngineDep
from api.web import i18n
from api.web.i18n import N_
from api.web.i18n import gettext as _
from api.web.paging import PAGE_ROWS, id_pager, web_cursor
from api.web.render import page, redirect_with
from api.web.session import WebUser, check_csrf, require_role
from lims.db import read_session, write_session
from lims.errors import LimsError
from lims.materials.models import Material
from lims.parties.models import Role, User
from lims.recalls import queries
from lims.recalls.models import Recall
from lims.recalls.service import acknowledge

router = APIRouter(include_in_schema=False)
# What the recall did to each of the clinic's doses, in the clinic's words.
ACTIONS = {
    "recalled": N_("Do not use: set it aside, then return or discard it"),
    "blocked": N_("Still at the lab: it will not be sent"),
    "administered": N_("Already given: follow the patient up"),
    "held": N_("Held at the lab"),
    "none": N_("Already used up or discarded: nothing to do"),
}


def waiting_recalls(engine: Engine, user: User) -> list[Recall]:
    """Open recalls the clinic has not acknowledged yet (the portal's banner)."""
    if user.clinic_id is None:
        return []
    with read_session(engine) as session:
        rows = queries.open_recalls_for_clinic(session, clinic_id=user.clinic_id)
    return [r for r, acknowledged in rows if not acknowledged]


@router.get("/portal/recalls", response_class=HTMLResponse)
def recalls(request: Request, engine: EngineDep, user: WebUser, cursor: str = "") -> Response:
    require_role(user, Role.CLINIC)
    with read_session(engine) as session:
        listing = queries.recalls_listed(
            session, actor=user, limit=PAGE_ROWS, cursor=web_cursor(cursor)
        )
        rows = []
        for r in listing:
            (notice,) = queries.clinic_notices(session, recall=r, clinic_id=user.clinic_id)
            rows.append((r, session.get(Material, r.lot_id), notice))
    pages = id_pager("/portal/recalls", {}, listing, cursor)
    return page(request, "portal_recalls.html", user=user, rows=rows, pages=pages)


@router.get("/portal/recalls/{number}", response_class=HTMLResponse)
def recall_page(request: Request, engine: EngineDep, user: WebUser, number: str) -> Response:
    require_role(user, Role.CLINIC)
    with read_session(engine) as session:
        recall = queries.get_recall(session, number=number, actor=user)
        lot = session.get(Material, recall.lot_id)
        items = queries.affected_items(session, recall=recall, clinic_id=user.clinic_id)
        (notice,) = queries.clinic_notices(session, recall=recall, clinic_id=user.clinic_id)
    return page(
        request,
        "portal_recall.html",
        user=user,
        recall=recall,
        lot=lot,
        items=[a for a in items if a.material.kind == "dose"],
        notice=notice,
        actions=ACTIONS,
    )


@router.post("/portal/recalls/{number}/acknowledgement", response_class=HTMLResponse)
def acknowledge_page(
    request: Request,
    engine: EngineDep,
    user: WebUser,
    number: str,
    csrf: Annotated[str, Form()],
    note: Annotated[str, Form(max_length=2000)] = "",
) -> Response:
    require_role(user, Role.CLINIC)
    check_csrf(request, csrf)
    i18n.use(i18n.language_of(request))
    try:
        with write_session(engine) as session:
            acknowledge(session, number=number, actor=user, note=note or None)
    except LimsError as exc:
        return redirect_with(f"/portal/recalls/{number}", errors=[exc.message])
    return redirect_with(
        f"/portal/recalls/{number}", message=_("Thank you: the lab has your acknowledgement")
    )
