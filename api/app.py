"""The web app. For now a read-only view of materials and lineage; the API issue (#5) adds
the authenticated /api/v1 routers, and the web-pages issue (#6) the bench, portal and
auditor pages."""

from html import escape

from fastapi import FastAPI, HTTPException
from fastapi.responses import HTMLResponse
from sqlmodel import col, select

from lims.db import make_engine, read_session
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


def create_app() -> FastAPI:
    engine = make_engine()
    app = FastAPI(title="LIMS", version="0.1.0")

    @app.get("/health")
    def health() -> dict[str, str]:
        from lims.migrate import current_revision

        return {"status": "ok", "database_revision": current_revision(engine) or "none"}

    @app.get("/", response_class=HTMLResponse)
    def index() -> str:
        with read_session(engine) as s:
            rows = s.exec(select(Material).order_by(col(Material.id))).all()
            items = "".join(
                f"<tr><td><a href='/materials/{m.material_id}'>"
                f"{escape(format_material_id(m.material_id))}</a></td><td>{escape(m.kind)}</td>"
                f"<td>{escape(m.state)}</td><td>{escape(remaining(m).canonical_str())}</td></tr>"
                for m in rows
            )
        return (
            f"<!doctype html><title>LIMS materials</title><h1>Materials</h1>"
            f"<p>Read-only view. {len(rows)} materials.</p><table><tr><th>id</th>"
            f"<th>kind</th><th>state</th><th>remaining</th></tr>{items}</table>"
        )

    @app.get("/materials/{material_id}", response_class=HTMLResponse)
    def material_page(material_id: str) -> str:
        with read_session(engine) as s:
            try:
                m = get_material(s, material_id)
            except LimsError as exc:
                raise HTTPException(status_code=exc.http_status, detail=str(exc)) from None
            up = ancestors(s, material=m)
            down = descendants(s, material=m)

        def table(rows: list[LineageRow]) -> str:
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

        return (
            f"<!doctype html><title>{escape(m.material_id)}</title>"
            f"<h1>{escape(format_material_id(m.material_id))} {escape(m.kind)}</h1>"
            f"<p>State {escape(m.state)}, remaining {escape(remaining(m).canonical_str())}"
            f"</p><h2>Ancestors</h2>{table(up)}<h2>Descendants</h2>{table(down)}"
        )

    return app
