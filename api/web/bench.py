"""The bench: today's work queue, a form per SOP generated from its typed parameters,
scanning an id, and a storage box map."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from sqlmodel import Session

from api.security import EngineDep
from api.web.render import page, redirect_with
from api.web.session import WebUser, check_csrf, require_role
from lims.db import read_session, write_session
from lims.errors import LimsError, NotFound, StepRefused
from lims.materials.queries import box_map, storage_boxes
from lims.materials.service import get_material, remaining
from lims.parties.models import LAB_STAFF
from lims.parties.queries import active_instruments, reagent_lots_of
from lims.qc.queries import awaiting_results
from lims.sops.service import definition_of, sop_in_force
from lims.sops.spec import InputMode, ParamType, SopDefinition
from lims.steps.queries import work_queue
from lims.steps.service import InputBooking, LossBooking, OutputRequest, record_step
from lims.units import KINDS

router = APIRouter(include_in_schema=False)
STAFF = sorted(LAB_STAFF)


@router.get("/bench", response_class=HTMLResponse)
def bench(request: Request, engine: EngineDep, user: WebUser) -> Response:
    require_role(user, *STAFF)
    with read_session(engine) as session:
        queue = work_queue(session)
        qc = awaiting_results(session)
    return page(request, "bench.html", user=user, queue=queue, qc=qc)


def _sop(session: Session, code: str) -> SopDefinition:
    return definition_of(sop_in_force(session, code=code.upper()))


def _choices(session: Session, sop: SopDefinition) -> dict[str, Any]:
    instruments = {t: active_instruments(session, instrument_type=t) for t in sop.instrument_types}
    reagents = {t: reagent_lots_of(session, reagent_type=t) for t in sop.reagent_types}
    return {"instruments": instruments, "reagents": reagents}


def _unit_hint(spec: Any) -> str:
    if spec.type is not ParamType.QUANTITY:
        return ""
    unit = KINDS[spec.quantity_kind].canonical_unit
    bounds = " to ".join(b for b in (spec.min, spec.max) if b)
    return f"a number and unit, e.g. in {unit}" + (f"; range {bounds}" if bounds else "")


@router.get("/bench/step/{code}", response_class=HTMLResponse)
def step_form(
    request: Request,
    engine: EngineDep,
    user: WebUser,
    code: str,
    material: str = "",
    outputs: int = 1,
) -> Response:
    require_role(user, *STAFF)
    with read_session(engine) as session:
        sop = _sop(session, code)
        return page(
            request,
            "step.html",
            user=user,
            sop=sop,
            form={"input_material_0": material},
            outputs=max(1, min(outputs, 20)),
            field_errors={},
            hints={p.name: _unit_hint(p) for p in sop.parameters},
            ParamType=ParamType,
            InputMode=InputMode,
            **_choices(session, sop),
        )


@router.post("/bench/step/{code}", response_class=HTMLResponse)
async def record(request: Request, engine: EngineDep, user: WebUser, code: str) -> Response:
    require_role(user, *STAFF)
    form = {k: str(v) for k, v in (await request.form()).items()}
    check_csrf(request, form.get("csrf"))
    with read_session(engine) as session:
        sop = _sop(session, code)
        choices = _choices(session, sop)
    params: dict[str, object] = {
        p.name: form[f"param_{p.name}"]
        for p in sop.parameters
        if not p.derived and form.get(f"param_{p.name}", "") != ""
    }
    for p in sop.parameters:
        if p.type is ParamType.BOOLEAN and p.name in params:
            params[p.name] = params[p.name] == "yes"
    inputs = [
        InputBooking(form[k], form.get(k.replace("material", "quantity")) or None)
        for k in sorted(form)
        if k.startswith("input_material_") and form[k].strip()
    ]
    outs = [
        OutputRequest(form[k])
        for k in sorted(form)
        if k.startswith("output_quantity_") and form[k].strip()
    ]
    losses = (
        [LossBooking(form["loss_material"], form["loss_quantity"], form.get("loss_reason", ""))]
        if form.get("loss_quantity", "").strip()
        else []
    )
    field_errors: dict[str, str] = {}
    errors: list[str] = []
    try:
        with write_session(engine) as session:
            result = record_step(
                session,
                sop_code=sop.code,
                actor=user,
                inputs=inputs,
                outputs=outs,
                losses=losses,
                parameters=params,
                instrument_ids=[
                    int(form[k]) for k in form if k.startswith("instrument_") and form[k].isdigit()
                ],
                reagent_lot_ids=[
                    int(form[k]) for k in form if k.startswith("reagent_") and form[k].isdigit()
                ],
            )
            made = ", ".join(m.material_id for m in result.outputs)
    except StepRefused as exc:
        for problem in exc.problems:
            name, _, text = problem.partition(": ")
            if any(p.name == name for p in sop.parameters) and name not in field_errors:
                field_errors[name] = text
            else:
                errors.append(problem)
    except LimsError as exc:
        if exc.field and any(p.name == exc.field for p in sop.parameters):
            field_errors[exc.field] = exc.message
        else:
            errors.append(str(exc))
    if field_errors or errors:
        return page(
            request,
            "step.html",
            status_code=422,
            user=user,
            sop=sop,
            form=form,
            outputs=max(1, len(outs)),
            field_errors=field_errors,
            errors=errors,
            hints={p.name: _unit_hint(p) for p in sop.parameters},
            ParamType=ParamType,
            InputMode=InputMode,
            **choices,
        )
    note = f"{sop.code} recorded ({result.step.outcome})" + (f"; made {made}" if made else "")
    return redirect_with("/bench", message=note)


@router.get("/bench/scan", response_class=HTMLResponse)
def scan(request: Request, engine: EngineDep, user: WebUser, id: str = "") -> Response:
    require_role(user, *STAFF)
    found, errors = None, []
    if id:
        try:
            with read_session(engine) as session:
                found = get_material(session, id)
                left = remaining(found)
        except LimsError as exc:
            errors.append(str(exc))
    return page(
        request,
        "scan.html",
        user=user,
        found=found,
        errors=errors,
        id=id,
        left=left if found else None,
    )


@router.get("/bench/storage", response_class=HTMLResponse)
def storage(
    request: Request,
    engine: EngineDep,
    user: WebUser,
    site: str = "",
    freezer: str = "",
    rack: str = "",
    box: str = "",
) -> Response:
    require_role(user, *STAFF)
    with read_session(engine) as session:
        boxes = storage_boxes(session)
        here = box_map(session, site=site, freezer=freezer, rack=rack, box=box)
    positions, held = here.positions, here.held
    if site and not positions:
        raise NotFound(f"no box {site}/{freezer}/{rack}/{box}")
    return page(
        request,
        "storage.html",
        user=user,
        boxes=boxes,
        positions=positions,
        held=held,
        here=(site, freezer, rack, box),
    )
