"""The clinic's end of custody on the portal's order page: receipt (the temperature and the
shipment's logger file, uploaded), reconstitution (diluent lot, volume, time; the in-use
clock shown), administration at the bedside (the dose label and the patient's
chain-of-identity id scanned; a mismatch is refused), return and discard.

Each form is refused in the GOV.UK error pattern (every problem in the summary and by its
field, the values kept, status 422); the rules are lims.orders.service.confirm_receipt and
lims.doses.clinic, the same ones the API calls.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Request, UploadFile
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import Engine
from sqlmodel import Session

from api.downloads import logger_file_response
from api.security import EngineDep
from api.web.forms import Problems
from api.web.i18n import N_
from api.web.i18n import gettext as _
from api.web.logger_chart import LOGGER_WORDS, chart_for
from api.web.portal import STATUS_NAMES
from api.web.portal_form import clinic_zone
from api.web.render import page
from api.web.session import WebUser, check_csrf, require_role
from lims.db import read_session, utcnow, write_session
from lims.doses.clinic import administer, at_clinic, dose_for, end_at_clinic, reconstitute
from lims.doses.logger import logger_file, logger_trace
from lims.errors import LimsError, NotFound
from lims.materials.models import Material
from lims.orders.course import course_warning
from lims.orders.models import DoseOrder
from lims.orders.service import confirm_receipt, order_for
from lims.orders.timeline import timeline_of
from lims.parties.models import Patient, Role, User

router = APIRouter(include_in_schema=False)
# Each form's fields, in the order shown (the summary lists them in this order), and what
# to say when one is left empty.
FORMS: dict[str, dict[str, str]] = {
    "receipt": {
        "temperature": N_("Enter the temperature on arrival, for example 4.5 degC"),
        "received_by": N_("Enter who received the dose"),
        "logger": "",
    },
    "reconstitution": {
        "diluent_lot": N_("Enter the diluent's lot number"),
        "volume": N_("Enter the reconstitution volume, for example 4 mL"),
        "reconstituted_at": "",
    },
    "administration": {
        "scanned_label": N_("Scan the dose label"),
        "scanned_patient": N_("Scan the patient's chain-of-identity id"),
        "administered_by": N_("Enter who gave the dose"),
        "volume_given": "",
    },
    "end": {"end_reason": N_("Enter the reason")},
}
# The service's field names for the form's.
SERVICE_FIELDS = {"logger_csv": "logger", "at": "reconstituted_at"}
MAX_LOGGER = 1_000_000


def show_order(
    request: Request,
    engine: Engine,
    user: User,
    number: str,
    *,
    problems: Problems | None = None,
    form: dict[str, str] | None = None,
    status_code: int = 200,
) -> Response:
    """The order page: its facts, timeline, and the form for what the dose is ready for."""
    zone = clinic_zone(request, user)
    with read_session(engine) as session:
        the_order = order_for(session, actor=user, number=number)
        dose = (
            session.get(Material, the_order.dose_material_id)
            if the_order.dose_material_id
            else None
        )
        record = at_clinic(session, dose=dose) if dose is not None else None
        trace = (
            logger_trace(session, dose=dose, product=the_order.product)
            if dose is not None
            else None
        )
        timeline = timeline_of(session, order=the_order)
        patient = session.get(Patient, the_order.patient_id)
        interval_warning = course_warning(session, order=the_order)
    in_use_left = None
    reconstituted = dose is not None and dose.state == "RECONSTITUTED"
    if reconstituted and record is not None and record.in_use_until is not None:
        # The in-use clock: whole minutes left (0 once the limit has passed).
        in_use_left = max(0, int((record.in_use_until - utcnow()).total_seconds() // 60))
    return page(
        request,
        "portal_order.html",
        status_code=status_code,
        user=user,
        order=the_order,
        dose=dose,
        record=record,
        trace=trace,
        chart=chart_for(trace, zone=zone, words=_(LOGGER_WORDS)),
        in_use_left=in_use_left,
        timeline=timeline,
        patient=patient,
        interval_warning=interval_warning,
        zone=zone,
        status_names=STATUS_NAMES,
        problems=problems or Problems(),
        form=form or {},
        now_local=datetime.now(zone).strftime("%Y-%m-%dT%H:%M"),
    )


@router.get("/portal/orders/{number}", response_class=HTMLResponse)
def order_page(request: Request, engine: EngineDep, user: WebUser, number: str) -> Response:
    require_role(user, Role.CLINIC)
    return show_order(request, engine, user, number)


@router.get("/portal/orders/{number}/logger.csv")
def logger_download(engine: EngineDep, user: WebUser, number: str) -> Response:
    """The shipment's logger file as the clinic uploaded it (its own orders only)."""
    require_role(user, Role.CLINIC)
    with read_session(engine) as session:
        the_order = order_for(session, actor=user, number=number)
        if the_order.dose_material_id is None:
            raise NotFound(f"order {the_order.number} has no dose yet", field="number")
        dose = session.get(Material, the_order.dose_material_id)
        assert dose is not None
        row = logger_file(session, dose=dose)
    return logger_file_response(row, material_id=dose.material_id)


def _missing(name: str, form: dict[str, str]) -> Problems:
    problems = Problems()
    for field, message in FORMS[name].items():
        if message and not form.get(field, "").strip():
            problems.add(_(message), field)
    return problems


def _local_time(raw: str, zone: ZoneInfo, field: str, problems: Problems) -> datetime | None:
    """A local date and time from the form (empty: now), in the clinic's zone."""
    if not raw.strip():
        return None
    try:
        local = datetime.fromisoformat(raw)
    except ValueError:
        problems.add(
            _("Enter the date and time as on a calendar, for example 2026-12-24 10:00"), field
        )
        return None
    return local if local.tzinfo else local.replace(tzinfo=zone)


def _words(name: str, exc: LimsError) -> tuple[str, str | None]:
    """A refusal in the portal's words, by its field."""
    field = SERVICE_FIELDS.get(exc.field or "", exc.field or "")
    field_or_none = field if field in FORMS[name] else None
    if field == "scanned_patient" and exc.http_status == 409:
        return _("Do not administer: this is not the dose's patient") + f" ({exc.message})", field
    if field == "scanned_label" and exc.http_status == 409:
        return _("Do not administer: this is not the dose's label") + f" ({exc.message})", field
    return exc.message, field_or_none


def _act(
    request: Request,
    engine: Engine,
    user: User,
    number: str,
    name: str,
    form: dict[str, str],
    act: Callable[[Session, DoseOrder, Material | None, Problems], None],
    pre: Problems | None = None,
) -> Response:
    """Check the form, act in one transaction, and show the page again on any problem
    (``pre``: what was found wrong before, e.g. with an uploaded file)."""
    problems = _missing(name, form)
    for field, message in pre.fields.items() if pre else ():
        problems.add(message, field)
    try:
        with write_session(engine) as session:
            the_order = order_for(session, actor=user, number=number, lock=True)
            dose = None
            if the_order.dose_material_id is not None:
                found = session.get(Material, the_order.dose_material_id)
                assert found is not None
                dose, _order = dose_for(session, actor=user, material_id=found.material_id)
            if not problems:
                act(session, the_order, dose, problems)
    except LimsError as exc:
        words, where = _words(name, exc)
        problems.add(words, where)
    if problems:
        problems.fields = {k: problems.fields[k] for k in FORMS[name] if k in problems.fields}
        form["form"] = name
        return show_order(
            request, engine, user, number, problems=problems, form=form, status_code=422
        )
    return RedirectResponse(f"/portal/orders/{number}", status_code=303)


async def _form(request: Request) -> tuple[dict[str, str], dict[str, Any]]:
    """The posted form's text fields (CSRF checked) and its files."""
    raw = await request.form()
    text = {k: v for k, v in raw.items() if isinstance(v, str)}
    files = {k: v for k, v in raw.items() if not isinstance(v, str)}
    check_csrf(request, text.pop("csrf", None))
    return text, files


@router.post("/portal/orders/{number}/receipt", response_class=HTMLResponse)
async def receipt(request: Request, engine: EngineDep, user: WebUser, number: str) -> Response:
    """Confirm receipt: the temperature on arrival and the logger's CSV file (optional)."""
    require_role(user, Role.CLINIC)
    form, files = await _form(request)
    upload: UploadFile | None = files.get("logger")
    logger_csv = None
    pre = Problems()
    if upload is not None and upload.filename:
        data = await upload.read(MAX_LOGGER + 1)
        if len(data) > MAX_LOGGER:
            pre.add(_("The logger file must be smaller than 1 MB"), "logger")
        else:
            try:
                logger_csv = data.decode("utf-8-sig")
            except UnicodeDecodeError:
                pre.add(_("The logger file must be a CSV text file (UTF-8)"), "logger")

    def act(session: Session, order: DoseOrder, dose: Material | None, problems: Problems) -> None:
        confirm_receipt(
            session,
            order=order,
            actor=user,
            received_at=utcnow(),
            temperature=form["temperature"],
            received_by=form["received_by"],
            logger_csv=logger_csv,
        )

    return _act(request, engine, user, number, "receipt", form, act, pre)


@router.post("/portal/orders/{number}/reconstitution", response_class=HTMLResponse)
async def reconstitution(
    request: Request, engine: EngineDep, user: WebUser, number: str
) -> Response:
    """Reconstitute the received dose: diluent lot, volume, time (empty: now)."""
    require_role(user, Role.CLINIC)
    form, _files = await _form(request)
    zone = clinic_zone(request, user)

    def act(session: Session, order: DoseOrder, dose: Material | None, problems: Problems) -> None:
        at = _local_time(form.get("reconstituted_at", ""), zone, "reconstituted_at", problems)
        if dose is None:
            problems.add(_("This order has no dose at the clinic yet"), None)
        if problems or dose is None:
            return
        reconstitute(
            session,
            dose=dose,
            product=order.product,
            actor=user,
            diluent_lot=form["diluent_lot"],
            volume=form["volume"],
            at=at,
        )

    return _act(request, engine, user, number, "reconstitution", form, act)


@router.post("/portal/orders/{number}/administration", response_class=HTMLResponse)
async def administration(
    request: Request, engine: EngineDep, user: WebUser, number: str
) -> Response:
    """Give the dose at the bedside: both scans must be this dose's and its patient's."""
    require_role(user, Role.CLINIC)
    form, _files = await _form(request)

    def act(session: Session, order: DoseOrder, dose: Material | None, problems: Problems) -> None:
        if dose is None:
            problems.add(_("This order has no dose at the clinic yet"), None)
            return
        administer(
            session,
            dose=dose,
            actor=user,
            scanned_label=form["scanned_label"],
            scanned_patient=form["scanned_patient"],
            administered_by=form["administered_by"],
            volume_given=form.get("volume_given") or None,
        )

    return _act(request, engine, user, number, "administration", form, act)


@router.post("/portal/orders/{number}/end", response_class=HTMLResponse)
async def end(request: Request, engine: EngineDep, user: WebUser, number: str) -> Response:
    """Return the unused dose to the lab, or discard it at the clinic, with a reason."""
    require_role(user, Role.CLINIC)
    form, _files = await _form(request)
    to_state = {"return": "RETURNED", "discard": "DISCARDED"}.get(form.get("action", ""))

    def act(session: Session, order: DoseOrder, dose: Material | None, problems: Problems) -> None:
        if dose is None or to_state is None:
            problems.add(_("Choose to return or to discard the dose"), None)
            return
        end_at_clinic(session, dose=dose, actor=user, to_state=to_state, reason=form["end_reason"])

    return _act(request, engine, user, number, "end", form, act)
