"""The clinic portal: the clinic's own patients and orders only; another clinic's pages
answer 'not found'."""

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from api.security import EngineDep
from api.web.render import page, redirect_with
from api.web.session import WebUser, check_csrf, require_role
from lims.custody.ledger import history
from lims.db import read_session, utcnow, write_session
from lims.errors import LimsError
from lims.materials.models import Material
from lims.orders.queries import order_timeline, orders_visible_to
from lims.orders.service import confirm_receipt, order_for, patient_for, place_order
from lims.paging import MAX_PAGE
from lims.parties.models import Patient, Role
from lims.parties.queries import patients_visible_to

router = APIRouter(include_in_schema=False)


def _home(
    request: Request,
    engine: EngineDep,
    user: WebUser,
    errors: list[str] | None = None,
    message: str = "",
    status_code: int = 200,
    form: dict[str, str] | None = None,
) -> Response:
    with read_session(engine) as session:
        patients = patients_visible_to(session, actor=user, limit=MAX_PAGE)
        orders = orders_visible_to(session, actor=user, limit=MAX_PAGE)
    return page(
        request,
        "portal.html",
        status_code=status_code,
        user=user,
        patients=patients,
        orders=orders,
        errors=errors or [],
        message=message,
        form=form or {},
    )


@router.get("/portal", response_class=HTMLResponse)
def portal(request: Request, engine: EngineDep, user: WebUser) -> Response:
    require_role(user, Role.CLINIC)
    return _home(request, engine, user)


@router.post("/portal/orders", response_class=HTMLResponse)
async def order(request: Request, engine: EngineDep, user: WebUser) -> Response:
    require_role(user, Role.CLINIC)
    form = {k: str(v) for k, v in (await request.form()).items()}
    check_csrf(request, form.get("csrf"))
    try:
        planned = datetime.fromisoformat(form.get("planned_use_at", ""))
        with write_session(engine) as session:
            made = place_order(
                session,
                actor=user,
                patient=patient_for(session, actor=user, coi_id=form.get("coi_id", "")),
                product="aape",
                dose=form.get("dose", ""),
                session_number=int(form.get("session_number") or 0),
                sessions_total=int(form.get("sessions_total") or 0),
                planned_use_at=planned,
                ship_to=form.get("ship_to", ""),
                prescriber=form.get("prescriber", ""),
                consent_ref=form.get("consent_ref", ""),
            )
            number = made.number
    except (LimsError, ValueError) as exc:
        message = str(exc) if isinstance(exc, LimsError) else f"not a valid value: {exc}"
        return _home(request, engine, user, errors=[message], status_code=422, form=form)
    return RedirectResponse(f"/portal/orders/{number}", status_code=303)


@router.get("/portal/orders/{number}", response_class=HTMLResponse)
def order_page(request: Request, engine: EngineDep, user: WebUser, number: str) -> Response:
    require_role(user, Role.CLINIC)
    with read_session(engine) as session:
        the_order = order_for(session, actor=user, number=number)
        dose = (
            session.get(Material, the_order.dose_material_id)
            if the_order.dose_material_id
            else None
        )
        timeline = order_timeline(session, order=the_order)
        dose_events = history(session, material_id=dose.material_id) if dose else []
        patient = session.get(Patient, the_order.patient_id)
    return page(
        request,
        "portal_order.html",
        user=user,
        order=the_order,
        dose=dose,
        timeline=timeline,
        dose_events=dose_events,
        patient=patient,
        now=utcnow().isoformat(timespec="minutes"),
    )


@router.post("/portal/orders/{number}/receipt", response_class=HTMLResponse)
def receipt(
    request: Request,
    engine: EngineDep,
    user: WebUser,
    number: str,
    temperature: Annotated[str, Form()],
    received_by: Annotated[str, Form()],
    csrf: Annotated[str, Form()],
) -> Response:
    require_role(user, Role.CLINIC)
    check_csrf(request, csrf)
    try:
        with write_session(engine) as session:
            the_order = order_for(session, actor=user, number=number, lock=True)
            confirm_receipt(
                session,
                order=the_order,
                actor=user,
                received_at=utcnow(),
                temperature=temperature,
                received_by=received_by,
            )
    except LimsError as exc:
        return redirect_with(f"/portal/orders/{number}", errors=[str(exc)])
    return RedirectResponse(f"/portal/orders/{number}", status_code=303)
