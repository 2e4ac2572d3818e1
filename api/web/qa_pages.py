"""QA: lots awaiting review with results against specification, deviations, and the
sign-and-release form (password again, signature meaning)."""

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, Response

from api.security import EngineDep
from api.web.render import page, redirect_with
from api.web.session import WebUser, check_csrf, require_role
from lims.db import read_session, write_session
from lims.errors import LimsError
from lims.materials.service import get_material
from lims.parties.models import Role
from lims.qc.queries import qa_queue
from lims.qc.service import current_results, deviations_of, specification_of
from lims.qc.service import release as release_service
from lims.qc.specs import limit_text

router = APIRouter(include_in_schema=False)


@router.get("/qa", response_class=HTMLResponse)
def qa_home(request: Request, engine: EngineDep, user: WebUser) -> Response:
    require_role(user, Role.QA, Role.ADMIN)
    with read_session(engine) as session:
        waiting = qa_queue(session)
    return page(request, "qa.html", user=user, waiting=waiting)


def _review(
    request: Request,
    engine: EngineDep,
    user: WebUser,
    material_id: str,
    errors: list[str] | None = None,
    status_code: int = 200,
) -> Response:
    with read_session(engine) as session:
        material = get_material(session, material_id)
        spec = specification_of(session, material=material)
        results = {r.test_code: r for r in current_results(session, material=material)}
        rows = [
            {"test": t, "limit": limit_text(t), "result": results.get(t.code)} for t in spec.tests
        ]
        deviations = deviations_of(session, material=material)
    return page(
        request,
        "qa_lot.html",
        status_code=status_code,
        user=user,
        material=material,
        spec=spec,
        rows=rows,
        deviations=deviations,
        errors=errors or [],
    )


@router.get("/qa/lots/{material_id}", response_class=HTMLResponse)
def review(request: Request, engine: EngineDep, user: WebUser, material_id: str) -> Response:
    require_role(user, Role.QA, Role.ADMIN)
    return _review(request, engine, user, material_id)


@router.post("/qa/lots/{material_id}/release", response_class=HTMLResponse)
def release(
    request: Request,
    engine: EngineDep,
    user: WebUser,
    material_id: str,
    password: Annotated[str, Form()],
    meaning: Annotated[str, Form()],
    csrf: Annotated[str, Form()],
    comment: Annotated[str, Form()] = "",
) -> Response:
    require_role(user, Role.QA)
    check_csrf(request, csrf)
    if meaning != "released":
        return _review(
            request,
            engine,
            user,
            material_id,
            status_code=422,
            errors=["release needs a signature with the meaning 'released'"],
        )
    try:
        with write_session(engine) as session:
            material = get_material(session, material_id, lock=True)
            release_service(
                session, material=material, actor=user, password=password, comment=comment or None
            )
    except LimsError as exc:
        return _review(
            request, engine, user, material_id, errors=[str(exc)], status_code=exc.http_status
        )
    return redirect_with("/qa", message=f"released {material_id}")
