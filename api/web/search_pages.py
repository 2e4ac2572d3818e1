"""One search box for every role (lims.search): each hit links to the page the person's
role opens it on; a clinic finds only its own records."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from api.security import EngineDep
from api.web.i18n import N_
from api.web.render import page
from api.web.session import WebUser
from lims.db import read_session
from lims.identity.codes import format_material_id
from lims.parties.models import LAB_STAFF, Role, User
from lims.search.queries import Hit, search

router = APIRouter(include_in_schema=False)
AUDITORS = {Role.AUDITOR, Role.QA, Role.ADMIN}
KIND_NAMES = {
    "material": N_("Material"),
    "order": N_("Order"),
    "patient": N_("Patient"),
    "reagent_lot": N_("Reagent lot"),
    "deviation": N_("Deviation"),
}


def link(user: User, hit: Hit) -> str | None:
    """Where the person's role opens this hit (None: no page of theirs shows it)."""
    role = Role(user.role)
    if hit.kind == "material":
        if role in AUDITORS:
            return f"/audit/materials/{hit.key}"
        if role is Role.TECHNICIAN:
            return f"/bench/scan?id={hit.key}"
    if role is Role.CLINIC and hit.kind == "order":
        return f"/portal/orders/{hit.key}"
    if role is Role.CLINIC and hit.kind == "patient":
        return f"/portal/orders?patient={hit.key}"
    if role in {Role.QA, Role.ADMIN} and hit.kind == "deviation" and hit.about:
        return f"/qa/lots/{hit.about}#deviations"  # the material's QA page lists its deviations
    if role in LAB_STAFF and hit.kind == "order":
        return f"/lab/orders/{hit.key}"
    return None


@router.get("/search", response_class=HTMLResponse)
def search_page(request: Request, engine: EngineDep, user: WebUser, q: str = "") -> Response:
    with read_session(engine) as session:
        hits = search(session, actor=user, text=q)
    rows = [
        {
            "kind": KIND_NAMES.get(h.kind, h.kind),
            "key": format_material_id(h.key) if h.kind == "material" else h.key,
            "detail": h.detail,
            "href": link(user, h),
        }
        for h in hits
    ]
    return page(request, "search.html", user=user, q=q, rows=rows)
