"""QA: lots awaiting review with results against specification, deviations, and the
sign-and-release form (password again, signature meaning)."""

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, Response

from api.security import EngineDep
from api.web.forms import Problems, human
from api.web.render import page, redirect_with
from api.web.session import WebUser, check_csrf, require_role
from lims.db import read_session, write_session
from lims.errors import LimsError
from lims.lifecycle import transition
from lims.materials.models import Material
from lims.materials.service import get_material
from lims.materials.workflow import RELEASED, machine_for
from lims.parties.models import Role
from lims.qc.deviations import close_deviation, get_deviation
from lims.qc.queries import qa_queue
from lims.qc.readiness import readiness
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
    problems: Problems | None = None,
    form: dict[str, str] | None = None,
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
        ready = readiness(session, material=material, actor=user)
        machine = machine_for(material.kind)
        moves = [
            (state, human(state))
            for state in sorted(machine.targets(material.state, material.held_from_state))
            if state != RELEASED
        ]
    return page(
        request,
        "qa_lot.html",
        status_code=status_code,
        user=user,
        material=material,
        spec=spec,
        rows=rows,
        deviations=deviations,
        ready=ready,
        moves=moves,
        problems=problems or Problems(),
        form=form or {},
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
    csrf: Annotated[str, Form()],
    password: Annotated[str, Form(max_length=256)] = "",
    meaning: Annotated[str, Form(max_length=16)] = "",
    comment: Annotated[str, Form(max_length=2000)] = "",
) -> Response:
    require_role(user, Role.QA)
    check_csrf(request, csrf)
    problems = Problems()
    if meaning != "released":
        problems.add("Confirm that you sign with the meaning 'released'", "meaning")
    if not password:
        problems.add("Enter your password to sign", "password")
    if problems:
        return _review(
            request,
            engine,
            user,
            material_id,
            problems,
            {"comment": comment, "meaning": meaning},
            422,
        )
    try:
        with write_session(engine) as session:
            material = get_material(session, material_id, lock=True)
            release_service(
                session, material=material, actor=user, password=password, comment=comment or None
            )
    except LimsError as exc:
        problems.add(exc.message, "password" if exc.http_status == 401 else None)
        form = {"comment": comment, "meaning": meaning}
        return _review(request, engine, user, material_id, problems, form, exc.http_status)
    return redirect_with("/qa", message=f"released {material_id}")


@router.post("/qa/lots/{material_id}/state", response_class=HTMLResponse)
def move(
    request: Request,
    engine: EngineDep,
    user: WebUser,
    material_id: str,
    csrf: Annotated[str, Form()],
    to_state: Annotated[str, Form(max_length=32)] = "",
    reason: Annotated[str, Form(max_length=2000)] = "",
) -> Response:
    """Hold, reject, or end a hold: the kind's machine says which; a reason is asked."""
    require_role(user, Role.QA)
    check_csrf(request, csrf)
    problems = Problems()
    form = {"to_state": to_state, "reason": reason}
    if not to_state:
        problems.add("Choose what happens to the lot", "to_state")
    if not reason.strip():
        problems.add("Say why, for the record", "reason")
    if problems:
        return _review(request, engine, user, material_id, problems, form, 422)
    try:
        with write_session(engine) as session:
            material = get_material(session, material_id, lock=True)
            transition(session, material=material, to_state=to_state, actor=user, reason=reason)
    except LimsError as exc:
        problems.add(exc.message)
        return _review(request, engine, user, material_id, problems, form, exc.http_status)
    return redirect_with(f"/qa/lots/{material_id}", message=f"{human(to_state)}: {material_id}")


@router.post("/qa/deviations/{number}/close", response_class=HTMLResponse)
def close(
    request: Request,
    engine: EngineDep,
    user: WebUser,
    number: str,
    csrf: Annotated[str, Form()],
    resolution: Annotated[str, Form(max_length=2000)] = "",
) -> Response:
    require_role(user, Role.QA)
    check_csrf(request, csrf)
    with read_session(engine) as session:
        deviation = get_deviation(session, number=number)
        material = session.get(Material, deviation.material_id)
        assert material is not None
        material_id = material.material_id
    field = f"resolution-{number}"
    problems = Problems()
    if not resolution.strip():
        problems.add(f"Write how {number} was resolved", field)
        return _review(request, engine, user, material_id, problems, {}, 422)
    try:
        with write_session(engine) as session:
            deviation = get_deviation(session, number=number)
            close_deviation(session, deviation=deviation, resolution=resolution, actor=user)
    except LimsError as exc:
        problems.add(exc.message, field)
        form = {field: resolution}
        return _review(request, engine, user, material_id, problems, form, exc.http_status)
    return redirect_with(f"/qa/lots/{material_id}", message=f"{number} closed")
