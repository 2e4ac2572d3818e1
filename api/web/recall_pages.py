"""QA's recall pages: open a recall from a lot's page (reason, meaning, password again),
the recalls list, and a recall's page (every affected item, who was told how and when, the
clinics' acknowledgements, the report, close or override with a signature)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, Response

from api.security import EngineDep
from api.web.forms import Problems
from api.web.paging import PAGE_ROWS, id_pager, web_cursor
from api.web.render import page, redirect_with
from api.web.session import WebUser, check_csrf, require_role
from lims.db import read_session, write_session
from lims.errors import LimsError
from lims.materials.models import Material
from lims.materials.service import get_material
from lims.parties.models import Role, User
from lims.recalls import queries
from lims.recalls.service import close_recall, open_recall

router = APIRouter(include_in_schema=False)
SIGN_MEANING = "approved"


@router.get("/qa/recalls", response_class=HTMLResponse)
def recalls(
    request: Request, engine: EngineDep, user: WebUser, status: str = "", cursor: str = ""
) -> Response:
    require_role(user, Role.QA, Role.ADMIN)
    status = status if status in ("OPEN", "CLOSED") else ""
    with read_session(engine) as session:
        listing = queries.recalls_listed(
            session, actor=user, status=status or None, limit=PAGE_ROWS, cursor=web_cursor(cursor)
        )
        rows = [
            (r, session.get(Material, r.lot_id), queries.unacknowledged(session, recall=r))
            for r in listing
        ]
    pages = id_pager("/qa/recalls", {"status": status}, listing, cursor)
    return page(request, "qa_recalls.html", user=user, rows=rows, status=status, pages=pages)


def _new(
    request: Request,
    engine: EngineDep,
    user: WebUser,
    material_id: str,
    problems: Problems | None = None,
    form: dict[str, str] | None = None,
    status_code: int = 200,
) -> Response:
    with read_session(engine) as session:
        material = get_material(session, material_id)
        existing = queries.open_recall_of_lot(session, lot=material)
    return page(
        request,
        "qa_recall_new.html",
        status_code=status_code,
        user=user,
        material=material,
        existing=existing,
        problems=problems or Problems(),
        form=form or {},
    )


@router.get("/qa/lots/{material_id}/recall", response_class=HTMLResponse)
def new_recall(request: Request, engine: EngineDep, user: WebUser, material_id: str) -> Response:
    require_role(user, Role.QA)
    return _new(request, engine, user, material_id)


@router.post("/qa/lots/{material_id}/recall", response_class=HTMLResponse)
def open_(
    request: Request,
    engine: EngineDep,
    user: WebUser,
    material_id: str,
    csrf: Annotated[str, Form()],
    reason: Annotated[str, Form(max_length=2000)] = "",
    meaning: Annotated[str, Form(max_length=16)] = "",
    password: Annotated[str, Form(max_length=256)] = "",
) -> Response:
    require_role(user, Role.QA)
    check_csrf(request, csrf)
    form = {"reason": reason, "meaning": meaning}
    problems = Problems()
    if not reason.strip():
        problems.add("Say why the lot is recalled", "reason")
    if meaning != SIGN_MEANING:
        problems.add("Confirm that you sign the recall with the meaning 'approved'", "meaning")
    if not password:
        problems.add("Enter your password to sign", "password")
    if problems:
        return _new(request, engine, user, material_id, problems, form, 422)
    try:
        with write_session(engine) as session:
            recall = open_recall(
                session, lot_material_id=material_id, reason=reason, password=password, actor=user
            )
            number = recall.number
    except LimsError as exc:
        problems.add(exc.message, "password" if exc.http_status == 401 else None)
        return _new(request, engine, user, material_id, problems, form, exc.http_status)
    return redirect_with(f"/qa/recalls/{number}", message=f"Recall {number} opened")


def _show(
    request: Request,
    engine: EngineDep,
    user: WebUser,
    number: str,
    problems: Problems | None = None,
    form: dict[str, str] | None = None,
    status_code: int = 200,
) -> Response:
    with read_session(engine) as session:
        recall = queries.get_recall(session, number=number, actor=user)
        lot = session.get(Material, recall.lot_id)
        opener = session.get(User, recall.opened_by_id)
        items = queries.affected_items(session, recall=recall)
        notices = queries.clinic_notices(session, recall=recall)
        pending = queries.unacknowledged(session, recall=recall)
    return page(
        request,
        "qa_recall.html",
        status_code=status_code,
        user=user,
        recall=recall,
        lot=lot,
        opener=opener,
        items=items,
        notices=notices,
        pending=pending,
        problems=problems or Problems(),
        form=form or {},
    )


@router.get("/qa/recalls/{number}", response_class=HTMLResponse)
def show(request: Request, engine: EngineDep, user: WebUser, number: str) -> Response:
    require_role(user, Role.QA, Role.ADMIN)
    return _show(request, engine, user, number)


@router.post("/qa/recalls/{number}/close", response_class=HTMLResponse)
def close(
    request: Request,
    engine: EngineDep,
    user: WebUser,
    number: str,
    csrf: Annotated[str, Form()],
    override_reason: Annotated[str, Form(max_length=2000)] = "",
    meaning: Annotated[str, Form(max_length=16)] = "",
    password: Annotated[str, Form(max_length=256)] = "",
) -> Response:
    require_role(user, Role.QA)
    check_csrf(request, csrf)
    form = {"override_reason": override_reason, "meaning": meaning}
    problems = Problems()
    if meaning != SIGN_MEANING:
        problems.add("Confirm that you sign the closing with the meaning 'approved'", "meaning")
    if not password:
        problems.add("Enter your password to sign", "password")
    if problems:
        return _show(request, engine, user, number, problems, form, 422)
    try:
        with write_session(engine) as session:
            close_recall(
                session,
                number=number,
                actor=user,
                password=password,
                override_reason=override_reason or None,
            )
    except LimsError as exc:
        field = {401: "password", 409: "override_reason"}.get(exc.http_status)
        if exc.code == "recall_closed":
            field = None
        problems.add(exc.message, field)
        return _show(request, engine, user, number, problems, form, exc.http_status)
    return redirect_with(f"/qa/recalls/{number}", message=f"Recall {number} closed")
