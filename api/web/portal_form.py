"""The clinic's order form, on its own page, in the GOV.UK error pattern: every problem at
once in a summary at the top and by its field, in people's words, the values kept.

The planned use is entered as the clinic's own local date and time (its time zone is
known), so nobody has to type an offset.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError

from api.security import EngineDep
from api.web.forms import Problems
from api.web.i18n import N_
from api.web.i18n import gettext as _
from api.web.render import page
from api.web.session import WebUser, check_csrf, require_role
from lims.db import read_session, utcnow, write_session
from lims.errors import LimsError
from lims.orders.schemas import MAX_SESSIONS, OrderDetails
from lims.orders.service import patient_for, place
from lims.parties.models import Clinic, Role, User

router = APIRouter(include_in_schema=False)
# The form's fields, in the order they are shown (and listed in the error summary).
FIELDS = (
    "coi_id",
    "dose",
    "session_number",
    "sessions_total",
    "planned_use_at",
    "ship_to",
    "prescriber",
    "consent_ref",
    "interval_reason",
)
# Fields that may be left empty (the reason is asked only for a session out of interval).
OPTIONAL = {"interval_reason"}
# What to say when a field is left empty.
MISSING = {
    "coi_id": N_("Enter the patient's chain-of-identity id"),
    "dose": N_("Enter the dose, for example 1 vial or 4 mL"),
    "session_number": N_("Enter which session this dose is for"),
    "sessions_total": N_("Enter how many sessions the course has"),
    "planned_use_at": N_("Enter the date and time the dose will be used"),
    "ship_to": N_("Enter where the dose is to be sent"),
    "prescriber": N_("Enter the prescriber's name"),
    "consent_ref": N_("Enter the patient's consent reference"),
}
SESSIONS = N_("Enter a whole number from 1 to %(most)s")


def clinic_zone(request: Request, user: User) -> ZoneInfo:
    """The signed-in clinic's time zone (UTC for an account without a clinic)."""
    with read_session(request.app.state.engine) as session:
        clinic = session.get(Clinic, user.clinic_id) if user.clinic_id else None
        return ZoneInfo(clinic.time_zone if clinic else "UTC")


def _whole(form: dict[str, str], name: str, problems: Problems) -> int | None:
    try:
        number = int(form[name])
    except ValueError:
        problems.add(_(SESSIONS) % {"most": MAX_SESSIONS}, name)
        return None
    if not 1 <= number <= MAX_SESSIONS:
        problems.add(_(SESSIONS) % {"most": MAX_SESSIONS}, name)
        return None
    return number


def _when(form: dict[str, str], zone: ZoneInfo, problems: Problems) -> datetime | None:
    try:
        local = datetime.fromisoformat(form["planned_use_at"])
    except ValueError:
        problems.add(
            _("Enter the date and time as on a calendar, for example 2026-12-24 10:00"),
            "planned_use_at",
        )
        return None
    when = local if local.tzinfo else local.replace(tzinfo=zone)
    if when <= utcnow():
        problems.add(_("The planned use must be in the future"), "planned_use_at")
        return None
    return when


def check_order(form: dict[str, str], zone: ZoneInfo) -> tuple[Problems, dict[str, Any]]:
    """Every problem with the form at once, and the values OrderDetails accepts."""
    problems = Problems()
    for name in FIELDS:
        if name not in OPTIONAL and not form.get(name, "").strip():
            problems.add(_(MISSING[name]), name)
    values: dict[str, Any] = {
        "product": "aape",
        **{k: form[k] for k in ("dose", "ship_to", "prescriber", "consent_ref") if k in form},
    }
    if form.get("interval_reason", "").strip():
        values["interval_reason"] = form["interval_reason"]
    for name in ("session_number", "sessions_total"):
        if name not in problems.fields:
            values[name] = _whole(form, name, problems)
    if "planned_use_at" not in problems.fields:
        values["planned_use_at"] = _when(form, zone, problems)
    if problems.fields:
        # Check what can be checked of the rest, so the person sees it all in one go.
        values = {k: v for k, v in values.items() if v is not None and k not in problems.fields}
    try:
        OrderDetails.model_validate(values)
    except ValidationError as exc:
        for error in exc.errors():
            name = str(error.get("loc", ("",))[0])
            if error.get("type") == "missing" or name in problems.fields:
                continue
            message = str(error.get("msg", "")).removeprefix("Value error, ")
            problems.add(message, name if name in FIELDS else None)
    # The summary lists the problems in the order of the form's fields.
    problems.fields = {k: problems.fields[k] for k in FIELDS if k in problems.fields}
    return problems, values


def _show(
    request: Request, user: User, form: dict[str, str], problems: Problems | None = None
) -> Response:
    zone = clinic_zone(request, user)
    return page(
        request,
        "portal_order_form.html",
        status_code=422 if problems else 200,
        user=user,
        form=form,
        problems=problems or Problems(),
        summary=True,
        zone=zone.key,
        offset=datetime.now(zone).strftime("%z"),
        max_sessions=MAX_SESSIONS,
    )


@router.get("/portal/orders/new", response_class=HTMLResponse)
def order_form(request: Request, user: WebUser, coi_id: str = "") -> Response:
    require_role(user, Role.CLINIC)
    return _show(request, user, {"coi_id": coi_id})


@router.post("/portal/orders", response_class=HTMLResponse)
async def place_from_form(request: Request, engine: EngineDep, user: WebUser) -> Response:
    require_role(user, Role.CLINIC)
    form = {k: str(v) for k, v in (await request.form()).items()}
    check_csrf(request, form.pop("csrf", None))
    problems, values = check_order(form, clinic_zone(request, user))
    try:
        with write_session(engine) as session:
            patient = None
            if "coi_id" not in problems.fields:
                patient = patient_for(session, actor=user, coi_id=form["coi_id"])
            if problems or patient is None:
                return _show(request, user, form, problems)
            made = place(
                session, actor=user, patient=patient, details=OrderDetails.model_validate(values)
            )
            number = made.number
    except LimsError as exc:
        field = exc.field if exc.field in FIELDS else None
        if field == "coi_id" and exc.http_status == 404:
            message = _("No patient of your clinic has this chain-of-identity id")
        elif field == "coi_id":
            message = _("Enter a chain-of-identity id like COI-ABCD-EFGH-J")
        elif field == "interval_reason":
            # The course's schedule (lims.orders.course) in the rule's words, then what to do.
            message = (
                exc.message.split(". To order it anyway")[0]
                + ". "
                + _("To order it anyway, give the prescriber's reason")
            )
        elif field == "session_number" and exc.http_status == 409:
            message = _(
                "This session of the patient's course is already ordered (%(number)s); "
                "a session is ordered once unless its order is cancelled"
            ) % {"number": exc.message.split("(")[1].split(",")[0]}
        else:
            message = exc.message
        problems.add(message, field)
        return _show(request, user, form, problems)
    return RedirectResponse(f"/portal/orders/{number}", status_code=303)
