"""The clinic portal: the clinic's own patients and orders only, as pages of 50 with
filters and sort done by the database (lims queries); another clinic's pages answer
'not found'. The order form is in portal_form.py, the order page and the dose's forms
in portal_doses.py."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, Response

from api.security import EngineDep
from api.web.i18n import N_
from api.web.portal_form import clinic_zone
from api.web.portal_recalls import waiting_recalls
from api.web.render import page
from api.web.session import WebUser, require_role
from lims.db import read_session
from lims.orders.models import OrderStatus
from lims.orders.queries import ORDER_SORTS, orders_listed
from lims.paging import MAX_CURSOR, Listing
from lims.parties.models import Role
from lims.parties.queries import PATIENT_SORTS, patients_listed

router = APIRouter(include_in_schema=False)
PAGE = 50
# A page link's position (lims.paging); one that does not decode starts at the first page.
Cursor = Annotated[str, Query(max_length=MAX_CURSOR)]
STATUS_NAMES = {
    OrderStatus.PLACED: N_("Placed"),
    OrderStatus.ALLOCATED: N_("Allocated"),
    OrderStatus.DISPATCHED: N_("Dispatched"),
    OrderStatus.RECEIVED: N_("Received"),
    OrderStatus.CANCELLED: N_("Cancelled"),
}


def _pager(path: str, params: dict[str, str], listing: Listing[Any]) -> dict:
    """Links to the previous and next page (by key: lims.paging), keeping filters and sort."""
    kept = {k: v for k, v in params.items() if v}

    def link(**cursor: str) -> str:
        return f"{path}?{urlencode({**kept, **cursor})}"

    return {
        "previous": link(before=listing.previous_cursor) if listing.previous_cursor else None,
        "next": link(after=listing.next_cursor) if listing.next_cursor else None,
    }


@router.get("/portal", response_class=HTMLResponse)
def patients(
    request: Request,
    engine: EngineDep,
    user: WebUser,
    q: str = "",
    sort: str = "registered",
    desc: str = "",
    after: Cursor = "",
    before: Cursor = "",
) -> Response:
    require_role(user, Role.CLINIC)
    sort = sort if sort in PATIENT_SORTS else "registered"
    with read_session(engine) as session:
        listing = patients_listed(
            session,
            actor=user,
            search=q,
            sort=sort,
            descending=desc == "1",
            limit=PAGE,
            after=after,
            before=before,
        )
    params = {"q": q, "sort": sort, "desc": "1" if desc == "1" else ""}
    return page(
        request,
        "portal.html",
        user=user,
        waiting=waiting_recalls(engine, user),
        patients=listing,
        q=q,
        sort=sort,
        desc=desc == "1",
        pages=_pager("/portal", params, listing),
    )


@router.get("/portal/orders", response_class=HTMLResponse)
def orders(
    request: Request,
    engine: EngineDep,
    user: WebUser,
    status: str = "",
    patient: str = "",
    sort: str = "planned",
    desc: str = "",
    after: Cursor = "",
    before: Cursor = "",
) -> Response:
    require_role(user, Role.CLINIC)
    sort = sort if sort in ORDER_SORTS else "planned"
    status = status if status in {s.value for s in OrderStatus} else ""
    with read_session(engine) as session:
        listing = orders_listed(
            session,
            actor=user,
            status=status or None,
            coi_id=patient or None,
            sort=sort,
            descending=desc == "1",
            limit=PAGE,
            after=after,
            before=before,
        )
    params = {
        "status": status,
        "patient": patient,
        "sort": sort,
        "desc": "1" if desc == "1" else "",
    }
    return page(
        request,
        "portal_orders.html",
        user=user,
        waiting=waiting_recalls(engine, user),
        orders=listing,
        statuses=[s.value for s in OrderStatus],
        status_names=STATUS_NAMES,
        status=status,
        patient=patient,
        sort=sort,
        desc=desc == "1",
        zone=clinic_zone(request, user),
        pages=_pager("/portal/orders", params, listing),
    )
