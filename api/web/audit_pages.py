"""The auditor: find any material, see its lineage as a picture, its custody timeline, its
signatures and their verification; verify the whole chain; export."""

from __future__ import annotations

from html import escape
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlmodel import Session

from api.security import EngineDep
from api.web.render import page
from api.web.session import WebUser, check_csrf, require_role
from lims.custody.ledger import history, verify_chain
from lims.db import read_session
from lims.errors import LimsError
from lims.identity.codes import format_material_id
from lims.materials.lineage import lineage_graph
from lims.materials.models import Material
from lims.materials.service import get_material, remaining
from lims.parties.models import Role
from lims.signatures.service import signatures_for

router = APIRouter(include_in_schema=False)
AUDITORS = (Role.AUDITOR, Role.QA, Role.ADMIN)
BOX_W, BOX_H, GAP_X, GAP_Y = 190, 54, 40, 14


def lineage_svg(session: Session, material: Material) -> str:
    """The lineage as an SVG picture: donor tissue on the left, every dose on the right."""
    graph = lineage_graph(session, material=material)
    by_id = graph.nodes
    by_mid = {m.material_id: m for m in by_id.values()}
    levels = {by_id[i].material_id: level for i, level in graph.levels.items()}
    edges = graph.edges
    columns: dict[int, list[str]] = {}
    for mid in sorted(levels, key=lambda k: (levels[k], by_mid[k].id or 0)):
        columns.setdefault(levels[mid], []).append(mid)
    low = min(columns)
    place: dict[str, tuple[int, int]] = {}
    for level, mids in columns.items():
        for n, mid in enumerate(mids):
            place[mid] = (20 + (level - low) * (BOX_W + GAP_X), 20 + n * (BOX_H + GAP_Y))
    width = 40 + len(columns) * (BOX_W + GAP_X)
    height = 40 + max(len(v) for v in columns.values()) * (BOX_H + GAP_Y)
    parts = [
        # A viewBox lets a long lineage shrink to the page instead of running off its edge.
        f'<svg id="lineage" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" '
        f'style="width:100%;max-width:{width}px;height:auto" font-family="sans-serif" '
        f'font-size="11">'
    ]
    for edge in edges:
        parent, child = by_id[edge.parent_id], by_id[edge.child_id]
        (x1, y1), (x2, y2) = place[parent.material_id], place[child.material_id]
        parts.append(
            f'<line x1="{x1 + BOX_W}" y1="{y1 + BOX_H // 2}" x2="{x2}" '
            f'y2="{y2 + BOX_H // 2}" stroke="#778" />'
        )
    for mid, (x, y) in place.items():
        m = by_mid[mid]
        fill = "#fff3c4" if mid == material.material_id else "#ffffff"
        parts.append(
            f'<g class="node" data-material-id="{mid}"><rect x="{x}" y="{y}" width="{BOX_W}" '
            f'height="{BOX_H}" rx="5" fill="{fill}" stroke="#445"/>'
            f'<text x="{x + 6}" y="{y + 15}" font-weight="bold">'
            f"{escape(format_material_id(mid))}</text>"
            f'<text x="{x + 6}" y="{y + 30}">{escape(m.kind)} · {escape(m.state)}</text>'
            f'<text x="{x + 6}" y="{y + 45}">left {escape(remaining(m).canonical_str())}'
            f"</text></g>"
        )
    parts.append("</svg>")
    return "".join(parts)


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
    )
