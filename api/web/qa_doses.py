"""QA's decisions on doses, as pages: a cancelled dose's disposition (back to its lot with
the return checks, or destroyed) and a dose quarantined at a clinic after a cold-chain
excursion (released for use, or rejected). Both signed with the password again; the rules
are lims.doses.disposition.dispose and lims.doses.clinic.decide_quarantine."""

from __future__ import annotations

from collections.abc import Callable

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy import Engine
from sqlmodel import Session

from api.downloads import logger_file_response
from api.security import EngineDep
from api.web.forms import Problems
from api.web.logger_chart import LOGGER_WORDS, chart_for
from api.web.render import page, redirect_with, viewer_zone
from api.web.session import WebUser, check_csrf, require_role
from lims.db import read_session, write_session
from lims.doses.clinic import QUARANTINE, at_clinic, decide_quarantine, dose_for
from lims.doses.disposition import ReturnChecks, dispose
from lims.doses.logger import logger_file, logger_trace
from lims.errors import LimsError
from lims.materials.models import Material
from lims.parties.models import Patient, Role, User

router = APIRouter(include_in_schema=False)
CHECKS = (
    ("seal_intact", "The vial's seal is intact"),
    ("never_left_lab", "The vial never left the lab's control"),
    ("stored_in_range", "The vial was stored in its range throughout"),
)


def _show(
    request: Request,
    engine: Engine,
    user: User,
    material_id: str,
    problems: Problems | None = None,
    form: dict[str, str] | None = None,
    status_code: int = 200,
) -> Response:
    with read_session(engine) as session:
        dose, order = dose_for(session, actor=user, material_id=material_id)
        record = at_clinic(session, dose=dose)
        patient = session.get(Patient, order.patient_id)
        trace = logger_trace(session, dose=dose, product=order.product)
    zone = viewer_zone(request, user)
    return page(
        request,
        "qa_dose.html",
        status_code=status_code,
        user=user,
        dose=dose,
        order=order,
        record=record,
        trace=trace,
        chart=chart_for(trace, zone=zone, words=LOGGER_WORDS),
        zone=zone,
        patient=patient,
        checks=CHECKS,
        quarantine=QUARANTINE,
        problems=problems or Problems(),
        form=form or {},
    )


@router.get("/qa/doses/{material_id}", response_class=HTMLResponse)
def review_dose(request: Request, engine: EngineDep, user: WebUser, material_id: str) -> Response:
    require_role(user, Role.QA, Role.ADMIN)
    return _show(request, engine, user, material_id)


@router.get("/qa/doses/{material_id}/logger.csv")
def logger_download(engine: EngineDep, user: WebUser, material_id: str) -> Response:
    """The shipment's logger file as the clinic uploaded it, for QA's review."""
    require_role(user, Role.QA, Role.ADMIN)
    with read_session(engine) as session:
        dose, _order = dose_for(session, actor=user, material_id=material_id)
        row = logger_file(session, dose=dose)
    return logger_file_response(row, material_id=dose.material_id)


async def _signed_form(
    request: Request, choices: tuple[str, ...]
) -> tuple[dict[str, str], Problems]:
    form = {k: str(v) for k, v in (await request.form()).items()}
    check_csrf(request, form.pop("csrf", None))
    problems = Problems()
    if form.get("decision") not in choices:
        problems.add("Choose a decision", "decision")
    if not form.get("reason", "").strip():
        problems.add("Enter the reason for the decision", "reason")
    if not form.get("password"):
        problems.add("Enter your password to sign", "password")
    return form, problems


def _decide(
    request: Request,
    engine: Engine,
    user: User,
    material_id: str,
    form: dict[str, str],
    problems: Problems,
    decide: Callable[[Session, Material], None],
) -> Response:
    if not problems:
        try:
            with write_session(engine) as session:
                dose, _order = dose_for(session, actor=user, material_id=material_id)
                decide(session, dose)
        except LimsError as exc:
            problems.add(exc.message, "password" if exc.http_status == 401 else None)
    if problems:
        form.pop("password", None)
        return _show(request, engine, user, material_id, problems, form, 422)
    return redirect_with(f"/qa/doses/{material_id}", message=f"decided: {form['decision']}")


@router.post("/qa/doses/{material_id}/disposition", response_class=HTMLResponse)
async def disposition(
    request: Request, engine: EngineDep, user: WebUser, material_id: str
) -> Response:
    """A cancelled dose: back to its lot (the three checks confirmed) or destroyed."""
    require_role(user, Role.QA)
    form, problems = await _signed_form(request, ("return", "destroy"))
    checks = ReturnChecks(*(form.get(name) == "yes" for name, _text in CHECKS))

    def decide(session: Session, dose: Material) -> None:
        dispose(
            session,
            dose=dose,
            actor=user,
            password=form["password"],
            decision=form["decision"],
            reason=form["reason"],
            checks=checks,
        )

    return _decide(request, engine, user, material_id, form, problems, decide)


@router.post("/qa/doses/{material_id}/quarantine", response_class=HTMLResponse)
async def quarantine_decision(
    request: Request, engine: EngineDep, user: WebUser, material_id: str
) -> Response:
    """A dose quarantined at the clinic: released for use, or rejected (discarded)."""
    require_role(user, Role.QA)
    form, problems = await _signed_form(request, ("release", "reject"))

    def decide(session: Session, dose: Material) -> None:
        decide_quarantine(
            session,
            dose=dose,
            actor=user,
            password=form["password"],
            release=form["decision"] == "release",
            reason=form["reason"],
        )

    return _decide(request, engine, user, material_id, form, problems, decide)
