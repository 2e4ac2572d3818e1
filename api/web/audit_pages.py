"""The auditor: find any material, see its lineage as a picture, its custody timeline, its
signatures and their verification; verify the whole chain; export."""

from __future__ import annotations

from html import escape
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlmodel import Session

from api.security import EngineDep
from api.web.forms import human
from api.web.render import page
from api.web.session import WebUser, check_csrf, require_role
from lims.amounts import meaningful
from lims.custody.ledger import history, verify_chain
from lims.db import read_session
from lims.errors import LimsError
from lims.identity.codes import format_material_id
from lims.materials.kinds import MaterialKind
from lims.materials.lineage import lineage_graph
from lims.materials.models import Material
from lims.materials.service import get_material, remaining
from lims.parties.models import Role
from lims.qc.evidence import specification_of
from lims.signatures.service import signatures_for

router = APIRouter(include_in_schema=False)
AUDITORS = (Role.AUDITOR, Role.QA, Role.ADMIN)
# Boxes big enough for 14 px text (readable without zooming); the picture scrolls
# sideways in its frame rather than shrinking its text.
BOX_W, BOX_H, GAP_X, GAP_Y = 250, 72, 48, 16


def lineage_svg(session: Session, material: Material) -> str:
    """The lineage as an SVG picture drawn from the recorded edges (siblings side by side,
    never chained): donor tissue on the left, every dose on the right; each box links to
    its material's page."""
    graph = lineage_graph(session, material=material)
    by_id = graph.nodes
    by_mid = {m.material_id: m for m in by_id.values()}
    levels = {by_id[i].material_id: level for i, level in graph.levels.items()}
    columns: dict[int, list[str]] = {}
    for mid in sorted(levels, key=lambda k: (levels[k], by_mid[k].id or 0)):
        columns.setdefault(levels[mid], []).append(mid)
    low = min(columns)
    place: dict[str, tuple[int, int]] = {}
    for level, mids in columns.items():
        for n, mid in enumerate(mids):
            place[mid] = (20 + (level - low) * (BOX_W + GAP_X), 20 + n * (BOX_H + GAP_Y))
    width = 40 + len(columns) * (BOX_W + GAP_X) - GAP_X
    height = 40 + max(len(v) for v in columns.values()) * (BOX_H + GAP_Y) - GAP_Y
    title = f"Lineage of {format_material_id(material.material_id)}"
    parts = [
        f'<svg id="lineage" xmlns="http://www.w3.org/2000/svg" width="{width}" '
        f'height="{height}" viewBox="0 0 {width} {height}" role="group" '
        f'aria-label="{escape(title)}" font-family="system-ui, sans-serif" font-size="14">'
        f"<title>{escape(title)}</title>"
        '<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" '
        'markerHeight="7" orient="auto"><path d="M0 0L10 5L0 10z" fill="#445"/></marker></defs>'
    ]
    for edge in graph.edges:
        parent, child = by_id[edge.parent_id], by_id[edge.child_id]
        (x1, y1), (x2, y2) = place[parent.material_id], place[child.material_id]
        parts.append(
            f'<line class="edge" data-parent="{parent.material_id}" '
            f'data-child="{child.material_id}" x1="{x1 + BOX_W}" y1="{y1 + BOX_H // 2}" '
            f'x2="{x2}" y2="{y2 + BOX_H // 2}" stroke="#445" stroke-width="1.5" '
            'marker-end="url(#arrow)"/>'
        )
    for mid, (x, y) in place.items():
        m = by_mid[mid]
        here = mid == material.material_id
        left = remaining(m)
        kind, state = human(m.kind), human(m.state)
        parts.append(
            # The link's name is its visible text (the id, kind, state and what is left).
            f'<a href="/audit/materials/{mid}"'
            + (' aria-current="page"' if here else "")
            + f'><g class="node" data-material-id="{mid}">'
            f'<rect x="{x}" y="{y}" width="{BOX_W}" height="{BOX_H}" rx="6" '
            f'fill="{"#fff3c4" if here else "#ffffff"}" stroke="#16324f" '
            f'stroke-width="{3 if here else 1.5}"/>'
            f'<text x="{x + 10}" y="{y + 22}" font-weight="bold" fill="#1d4f91" '
            f'text-decoration="underline">{escape(format_material_id(mid))}</text>'
            f'<text x="{x + 10}" y="{y + 42}" fill="#1b1f24">{escape(kind)} · '
            f"{escape(state)}</text>"
            f'<text x="{x + 10}" y="{y + 61}" fill="#1b1f24">'
            f"{escape(meaningful(left.canonical))} {escape(left.canonical_unit)} left</text>"
            "</g></a>"
        )
    parts.append("</svg>")
    return "".join(parts)


def documents_for(session: Session, material: Material) -> dict[str, bool]:
    """Which PDFs apply to this material: a custody report for a dose, a certificate of
    analysis for a kind with a release specification."""
    try:
        specification_of(session, material=material)
        has_spec = True
    except LimsError:
        has_spec = False
    return {"custody_report": material.kind == MaterialKind.DOSE, "coa": has_spec}


@router.get("/audit", response_class=HTMLResponse)
def audit_home(request: Request, engine: EngineDep, user: WebUser, q: str = "") -> Response:
    require_role(user, *AUDITORS)
    if q:
        try:
            with read_session(engine) as session:
                found = get_material(session, q)
            return RedirectResponse(f"/audit/materials/{found.material_id}", status_code=303)
        except LimsError as exc:
            return page(
                request,
                "audit.html",
                status_code=exc.http_status,
                user=user,
                errors=[str(exc)],
                q=q,
            )
    return page(request, "audit.html", user=user, q=q)


@router.post("/audit/verify", response_class=HTMLResponse)
def verify(
    request: Request, engine: EngineDep, user: WebUser, csrf: Annotated[str, Form()]
) -> Response:
    require_role(user, *AUDITORS)
    check_csrf(request, csrf)
    with read_session(engine) as session:
        result = verify_chain(session)
    return page(request, "audit.html", user=user, q="", verdict=result)


@router.get("/audit/materials/{material_id}", response_class=HTMLResponse)
def material_page(request: Request, engine: EngineDep, user: WebUser, material_id: str) -> Response:
    require_role(user, *AUDITORS)
    with read_session(engine) as session:
        material = get_material(session, material_id)
        svg = lineage_svg(session, material)
        documents = documents_for(session, material)
        left = remaining(material)
        events = history(session, material_id=material.material_id)
        checks = [
            *signatures_for(session, record_type="material", record_id=material.material_id),
            *signatures_for(session, record_type="batch_record", record_id=material.material_id),
        ]
    return page(
        request,
        "audit_material.html",
        user=user,
        material=material,
        svg=svg,
        events=events,
        checks=checks,
        documents=documents,
        left=left,
    )
