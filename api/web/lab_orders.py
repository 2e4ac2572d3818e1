"""The lab's side of a clinic order: the queue (filters, sort, pages), and one order's work
in the order it is done -- allocate (FEFO suggested), print and apply the label, the
packer's and the verifier's signatures (what is signed shown first), dispatch by scanning
the label, with every refusal of the dispatch gate explained."""

from __future__ import annotations

from datetime import UTC, datetime, time
from typing import Annotated, Any

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, Response

from api.security import EngineDep
from api.web.forms import Problems, human
from api.web.render import page, redirect_with
from api.web.session import WebUser, check_csrf, require_role
from lims.db import read_session, write_session
from lims.dispatch.gate import DispatchRefused
from lims.errors import LimsError, RuleViolation
from lims.identity.codes import format_material_id
from lims.lifecycle import transition
from lims.materials.service import get_material
from lims.orders.models import OrderStatus, Product
from lims.orders.queries import QUEUE_SORTS, dispatch_preview, order_queue
from lims.orders.service import allocate_order, dispatch_order, dose_of, order_for
from lims.orders.stock import qualifying_lots
from lims.paging import MAX_CURSOR
from lims.parties.models import LAB_STAFF, Clinic, Patient, User
from lims.parties.queries import all_clinics
from lims.signatures.models import Meaning
from lims.signatures.records import material_record
from lims.signatures.service import sign, signatures_for

router = APIRouter(include_in_schema=False)
STAFF = sorted(LAB_STAFF)
PAGE_ROWS = 50
# The two signatures the dispatch gate asks for, in the lab's words.
ROLES_IN_PACKING = {Meaning.PERFORMED: "Packer", Meaning.VERIFIED: "Second verifier"}


def _due(text: str) -> datetime | None:
    try:
        return datetime.combine(datetime.fromisoformat(text).date(), time.max, tzinfo=UTC)
    except ValueError:
        return None


@router.get("/lab/orders", response_class=HTMLResponse)
def queue(
    request: Request,
    engine: EngineDep,
    user: WebUser,
    status: Annotated[str, Query(max_length=16)] = "",
    clinic: Annotated[str, Query(max_length=16)] = "",
    product: Annotated[str, Query(max_length=16)] = "",
    due: Annotated[str, Query(max_length=10)] = "",
    sort: Annotated[str, Query(max_length=8)] = "due",
    after: Annotated[str, Query(max_length=MAX_CURSOR)] = "",
    before: Annotated[str, Query(max_length=MAX_CURSOR)] = "",
) -> Response:
    require_role(user, *STAFF)
    problems = Problems()
    due_before = _due(due) if due else None
    if due and due_before is None:
        problems.add("Enter the date as year-month-day, for example 2026-12-31", "due")
    with read_session(engine) as session:
        rows = order_queue(
            session,
            actor=user,
            status=status or None,
            clinic=clinic or None,
            product=product or None,
            due_before=due_before,
            sort=sort,
            limit=PAGE_ROWS,
            after=after,
            before=before,
        )
        clinics = [(c.code, f"{c.name} ({c.code})") for c in all_clinics(session)]
    filters = {"status": status, "clinic": clinic, "product": product, "due": due, "sort": sort}
    return page(
        request,
        "lab_orders.html",
        user=user,
        rows=rows,
        filters=filters,
        problems=problems,
        statuses=[(s.value, human(s.value)) for s in OrderStatus],
        products=[(p.value, human(p.value)) for p in Product],
        clinics=clinics,
        sorts=list(QUEUE_SORTS),
    )


def _signed_rows(record: dict[str, Any]) -> list[tuple[str, str]]:
    """The material record a signature binds, as the page shows it before signing."""
    rows = []
    for key, value in record.items():
        if isinstance(value, dict):
            value = " ".join(str(v) for v in value.values() if v is not None)
        if key == "material_id":
            value = format_material_id(str(value))
        rows.append((human(key), "—" if value in (None, "") else str(value)))
    return rows


def _order_page(
    request: Request,
    engine: EngineDep,
    user: User,
    number: str,
    problems: Problems | None = None,
    form: dict[str, str] | None = None,
    status_code: int = 200,
) -> Response:
    with read_session(engine) as session:
        order = order_for(session, actor=user, number=number)
        patient = session.get(Patient, order.patient_id)
        clinic = session.get(Clinic, order.clinic_id)
        dose = dose_of(session, order=order)
        lots = qualifying_lots(session, order=order) if order.status == OrderStatus.PLACED else []
        signatures = (
            signatures_for(session, record_type="material", record_id=dose.material_id)
            if dose
            else []
        )
        signed_rows = _signed_rows(material_record(session, dose.material_id)) if dose else []
        standing = dispatch_preview(session, order=order) if dose else []
    return page(
        request,
        "lab_order.html",
        status_code=status_code,
        user=user,
        order=order,
        patient=patient,
        clinic=clinic,
        dose=dose,
        lots=lots,
        signatures=signatures,
        signed_rows=signed_rows,
        standing=standing,
        meanings=[(m.value, text) for m, text in ROLES_IN_PACKING.items()],
        problems=problems or Problems(),
        form=form or {},
    )


@router.get("/lab/orders/{number}", response_class=HTMLResponse)
def order_page(request: Request, engine: EngineDep, user: WebUser, number: str) -> Response:
    require_role(user, *STAFF)
    return _order_page(request, engine, user, number)


def _refused(
    request: Request,
    engine: EngineDep,
    user: User,
    number: str,
    exc: LimsError,
    form: dict[str, str],
    field: str | None = None,
) -> Response:
    problems = Problems()
    problems.add(exc.message, field or None)
    return _order_page(request, engine, user, number, problems, form, exc.http_status)


@router.post("/lab/orders/{number}/allocate", response_class=HTMLResponse)
def allocate(
    request: Request,
    engine: EngineDep,
    user: WebUser,
    number: str,
    csrf: Annotated[str, Form()],
    lot: Annotated[str, Form(max_length=40)] = "",
) -> Response:
    require_role(user, *STAFF)
    check_csrf(request, csrf)
    if not lot.strip():
        problems = Problems()
        problems.add("Choose the lot to take the dose from", "lot")
        return _order_page(request, engine, user, number, problems, {}, 422)
    try:
        with write_session(engine) as session:
            order = order_for(session, actor=user, number=number, lock=True)
            chosen = get_material(session, lot)
            qualifying = {m.material_id for m, _ in qualifying_lots(session, order=order)}
            if chosen.material_id not in qualifying:
                raise RuleViolation(
                    f"{format_material_id(chosen.material_id)} does not qualify for this "
                    "order: it must be released, unexpired, this patient's and hold enough"
                )
            dose = allocate_order(session, order=order, actor=user, lot=chosen)
            made = format_material_id(dose.material_id)
    except LimsError as exc:
        return _refused(request, engine, user, number, exc, {"lot": lot}, "lot")
    return redirect_with(f"/lab/orders/{number}", message=f"Allocated: dose {made}")


@router.post("/lab/orders/{number}/labelled", response_class=HTMLResponse)
def labelled(
    request: Request, engine: EngineDep, user: WebUser, number: str, csrf: Annotated[str, Form()]
) -> Response:
    """The printed label is on the dose's container (the state the gate asks for)."""
    require_role(user, *STAFF)
    check_csrf(request, csrf)
    try:
        with write_session(engine) as session:
            order = order_for(session, actor=user, number=number)
            dose = dose_of(session, order=order)
            if dose is None:
                raise RuleViolation(f"order {order.number} has no dose yet; allocate first")
            transition(session, material=dose, to_state="LABELED", actor=user)
    except LimsError as exc:
        return _refused(request, engine, user, number, exc, {})
    return redirect_with(f"/lab/orders/{number}", message="Label applied")


@router.post("/lab/orders/{number}/sign", response_class=HTMLResponse)
def sign_dose(
    request: Request,
    engine: EngineDep,
    user: WebUser,
    number: str,
    csrf: Annotated[str, Form()],
    meaning: Annotated[str, Form(max_length=16)] = "",
    password: Annotated[str, Form(max_length=256)] = "",
) -> Response:
    require_role(user, *STAFF)
    check_csrf(request, csrf)
    problems = Problems()
    if meaning not in {m.value for m in ROLES_IN_PACKING}:
        problems.add("Choose whether you sign as the packer or as the second verifier", "meaning")
    if not password:
        problems.add("Enter your password to sign", "password")
    if problems:
        return _order_page(request, engine, user, number, problems, {"meaning": meaning}, 422)
    try:
        with write_session(engine) as session:
            order = order_for(session, actor=user, number=number)
            dose = dose_of(session, order=order)
            if dose is None:
                raise RuleViolation(f"order {order.number} has no dose yet; allocate first")
            sign(
                session,
                user=user,
                password=password,
                meaning=Meaning(meaning),
                record_type="material",
                record_id=dose.material_id,
            )
    except LimsError as exc:
        field = "password" if exc.http_status == 401 else None
        return _refused(request, engine, user, number, exc, {"meaning": meaning}, field)
    who = ROLES_IN_PACKING[Meaning(meaning)].lower()
    return redirect_with(f"/lab/orders/{number}", message=f"Signed as {who}")


@router.post("/lab/orders/{number}/dispatch", response_class=HTMLResponse)
def dispatch(
    request: Request,
    engine: EngineDep,
    user: WebUser,
    number: str,
    csrf: Annotated[str, Form()],
    scanned_label: Annotated[str, Form(max_length=40)] = "",
    shipper: Annotated[str, Form(max_length=100)] = "",
    temperature_logger: Annotated[str, Form(max_length=64)] = "",
    transit: Annotated[str, Form(max_length=32)] = "",
) -> Response:
    require_role(user, *STAFF)
    check_csrf(request, csrf)
    form = {
        "scanned_label": scanned_label,
        "shipper": shipper,
        "temperature_logger": temperature_logger,
        "transit": transit,
    }
    problems = Problems()
    if not scanned_label.strip():
        problems.add("Scan the label on the dose", "scanned_label")
    if not transit.strip():
        problems.add("Enter the transit time, for example 18 h", "transit")
    if not problems:
        try:
            with write_session(engine) as session:
                order = order_for(session, actor=user, number=number, lock=True)
                dispatch_order(
                    session,
                    order=order,
                    actor=user,
                    scanned_label=scanned_label,
                    shipper=shipper,
                    temperature_logger=temperature_logger,
                    transit=transit,
                )
        except DispatchRefused as exc:
            for reason in exc.reasons:
                problems.add(f"{human(reason.check)}: {reason.message}", reason.field)
        except LimsError as exc:
            problems.add(exc.message)
    if problems:
        return _order_page(request, engine, user, number, problems, form, 409)
    return redirect_with(f"/lab/orders/{number}", message=f"Dispatched with {shipper}")
