"""The bench: today's work queue, a form per SOP generated from its typed parameters,
scanning an id, and a storage box map."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from sqlmodel import Session

from api.security import EngineDep
from api.web.forms import Problems, human
from api.web.render import page, redirect_with
from api.web.session import WebUser, check_csrf, require_role
from lims.db import read_session, write_session
from lims.errors import LimsError, StepRefused
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


def _is_param(sop: SopDefinition, name: str) -> bool:
    return any(p.name == name and not p.derived for p in sop.parameters)


def _placed(sop: SopDefinition, problem: str) -> tuple[str, str | None]:
    """A refusal's message and the field it belongs by (None: about the whole form)."""
    name, _, text = problem.partition(": ")
    if text and _is_param(sop, name):
        return text, f"param_{name}"
    for t in sop.instrument_types:
        if problem.endswith(f" needs a {t}; none recorded"):
            return f"Choose the {human(t).lower()} you used", f"instrument_{t}"
        if f"({t}) was due for calibration" in problem or f"({t}) is out of service" in problem:
            return problem, f"instrument_{t}"
    for t in sop.reagent_types:
        if problem.endswith(f" needs a {t} lot; none recorded"):
            return f"Choose the {human(t).lower()} lot you used", f"reagent_{t}"
        if problem.startswith(f"{t} lot "):
            return problem, f"reagent_{t}"
    return problem, None


def _step_page(
    request: Request,
    engine: EngineDep,
    user: WebUser,
    sop: SopDefinition,
    form: dict[str, str],
    outputs: int,
    problems: Problems,
) -> Response:
    with read_session(engine) as session:
        choices = _choices(session, sop)
    return page(
        request,
        "step.html",
        status_code=422 if problems else 200,
        user=user,
        sop=sop,
        form=form,
        outputs=max(1, min(outputs, 20)),
        problems=problems,
        hints={p.name: _unit_hint(p) for p in sop.parameters},
        ParamType=ParamType,
        InputMode=InputMode,
        **choices,
    )


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
    form = {"input_material_0": material}
    return _step_page(request, engine, user, sop, form, outputs, Problems())


@router.post("/bench/step/{code}", response_class=HTMLResponse)
async def record(request: Request, engine: EngineDep, user: WebUser, code: str) -> Response:
    require_role(user, *STAFF)
    form = {k: str(v) for k, v in (await request.form()).items()}
    check_csrf(request, form.get("csrf"))
    with read_session(engine) as session:
        sop = _sop(session, code)
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
    form.pop("csrf", None)
    problems = Problems()
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
            problems.add(*_placed(sop, problem))
    except LimsError as exc:
        field = f"param_{exc.field}" if exc.field and _is_param(sop, exc.field) else None
        if exc.field in ("input", "material", "material_id"):
            field = "input_material_0"
        problems.add(exc.message if field else str(exc), field)
    if problems:
        return _step_page(request, engine, user, sop, form, len(outs), problems)
    note = f"{sop.code} recorded ({result.step.outcome})" + (f"; made {made}" if made else "")
    return redirect_with("/bench", message=note)
