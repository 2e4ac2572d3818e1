"""Read-only HTML views of materials and lineage (the web-pages issue replaces these with
the bench, clinic portal and auditor pages)."""

from html import escape

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse
from sqlmodel import col, select

from lims.db import read_session
from lims.errors import LimsError
from lims.identity.codes import format_material_id
from lims.materials.models import Material
from lims.materials.service import (
    LineageRow,
    ancestors,
    descendants,
    get_material,
    remaining,
)

router = APIRouter(include_in_schema=False)


@router.get("/", response_class=HTMLResponse)
def index(request: Request) -> str:
    with read_session(request.app.state.engine) as s:
        rows = s.exec(select(Material).order_by(col(Material.id)).limit(500)).all()
        items = "".join(
            f"<tr><td><a href='/materials/{m.material_id}'>"
            f"{escape(format_material_id(m.material_id))}</a></td><td>{escape(m.kind)}</td>"
            f"<td>{escape(m.state)}</td><td>{escape(remaining(m).canonical_str())}</td></tr>"
            for m in rows
        )
    return (
        "<!doctype html><title>LIMS materials</title><h1>Materials</h1>"
        f"<p>Read-only view. {len(rows)} materials. API: <a href='/docs'>/docs</a>.</p>"
        "<table><tr><th>id</th><th>kind</th><th>state</th><th>remaining</th></tr>"
        f"{items}</table>"
    )


def _table(rows: list[LineageRow]) -> str:
    return (
        "<table>"
        + "".join(
            f"<tr><td>{r.depth}</td><td><a href='/materials/{r.material_id}'>"
            f"{escape(format_material_id(r.material_id))}</a></td><td>{escape(r.kind)}</td>"
            f"<td>{escape(r.state)}</td><td>{escape(r.remaining.canonical_str())}</td></tr>"
            for r in rows
        )
        + "</table>"
    )


@router.get("/materials/{material_id}", response_class=HTMLResponse)
def material_page(request: Request, material_id: str) -> str:
    with read_session(request.app.state.engine) as s:
        try:
            m = get_material(s, material_id)
        except LimsError as exc:
            raise HTTPException(status_code=exc.http_status, detail=str(exc)) from None
        up = ancestors(s, material=m)
        down = descendants(s, material=m)
        return (
            f"<!doctype html><title>{escape(m.material_id)}</title>"
            f"<h1>{escape(format_material_id(m.material_id))} {escape(m.kind)}</h1>"
            f"<p>State {escape(m.state)}, remaining {escape(remaining(m).canonical_str())}"
            f"</p><h2>Ancestors</h2>{_table(up)}<h2>Descendants</h2>{_table(down)}"
        )
