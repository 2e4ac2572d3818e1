"""Doses after dispatch (the clinic's end of custody) and QA's decisions on doses.

Clinic accounts act only on their own clinic's doses (another clinic's is 404); QA
decides a cancelled dose's disposition and a quarantined dose's release, with a password.
"""

from collections.abc import Callable
from datetime import datetime
from decimal import Decimal
from typing import Literal

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field
from sqlalchemy import Engine
from sqlmodel import Session

from api import idempotency
from api.downloads import logger_file_response
from api.idempotency import IdempotencyKey
from api.schemas import MaterialOut, file_response, material_out
from api.security import ClinicUser, EngineDep, QaUser
from lims.amounts import amount_text
from lims.db import read_session
from lims.doses.clinic import (
    administer,
    at_clinic,
    decide_quarantine,
    dose_for,
    end_at_clinic,
    reconstitute,
)
from lims.doses.disposition import ReturnChecks, dispose
from lims.doses.logger import logger_file, logger_sha256
from lims.doses.spec import temperature_text
from lims.materials.models import Material
from lims.orders.models import DoseOrder
from lims.parties.models import User
from lims.schemas import Strict

router = APIRouter(tags=["doses"])

Text = Field(min_length=1, max_length=2000)


class DoseOut(BaseModel):
    dose: MaterialOut
    order: str
    recipient_coi: str | None
    donor_coi: str | None
    excursion: str | None
    reconstituted_at: datetime | None
    diluent_lot: str | None
    reconstitution_volume: str | None
    in_use_until: datetime | None
    administered_at: datetime | None
    administered_by: str | None
    volume_given: str | None
    remainder_discarded: str | None
    logger_readings: int = Field(description="readings in the shipment's logger file")
    logger_min: str | None
    logger_max: str | None
    logger_sha256: str | None = Field(
        description="SHA-256 (hex) of the logger file as uploaded; in the receipt's custody "
        "event, and the Repr-Digest of its download"
    )


def _ml(value: Decimal | None) -> str | None:
    return amount_text(value, "mL") if value is not None else None


def dose_out(session: Session, dose: Material, order_number: str) -> DoseOut:
    out = material_out(session, dose)
    row = at_clinic(session, dose=dose)
    return DoseOut(
        dose=out,
        order=order_number,
        recipient_coi=out.recipient_coi,
        donor_coi=out.donor_coi,
        excursion=row.excursion,
        reconstituted_at=row.reconstituted_at,
        diluent_lot=row.diluent_lot,
        reconstitution_volume=_ml(row.reconstitution_volume),
        in_use_until=row.in_use_until,
        administered_at=row.administered_at,
        administered_by=row.administered_by,
        volume_given=_ml(row.volume_given),
        remainder_discarded=_ml(row.remainder_discarded),
        logger_readings=row.logger_readings,
        logger_min=temperature_text(row.logger_min) if row.logger_min is not None else None,
        logger_max=temperature_text(row.logger_max) if row.logger_max is not None else None,
        logger_sha256=logger_sha256(session, dose=dose),
    )


class ReconstitutionIn(Strict):
    diluent_lot: str = Field(min_length=1, max_length=64)
    volume: str = Field(min_length=1, max_length=64, examples=["4 mL"])
    at: datetime | None = None


class AdministrationIn(Strict):
    scanned_label: str = Field(min_length=1, max_length=64, description="the dose label scan")
    scanned_patient: str = Field(
        min_length=1, max_length=64, description="the patient's chain-of-identity id scan"
    )
    administered_by: str = Field(min_length=1, max_length=200)
    volume_given: str | None = Field(default=None, max_length=64, examples=["3.5 mL"])
    at: datetime | None = None


class EndIn(Strict):
    reason: str = Text


class DispositionIn(Strict):
    decision: Literal["return", "destroy"]
    reason: str = Text
    password: str = Field(min_length=1, max_length=1000)
    seal_intact: bool = False
    never_left_lab: bool = False
    stored_in_range: bool = False


class QuarantineDecisionIn(Strict):
    release: bool
    reason: str = Text
    password: str = Field(min_length=1, max_length=1000)


def _act(
    request: Request,
    key: str | None,
    body: BaseModel,
    engine: Engine,
    user: User,
    material_id: str,
    act: Callable[[Session, Material, DoseOrder], object],
) -> JSONResponse:
    """Find the actor's dose, act on it, answer with the dose as it is now (one transaction,
    once per Idempotency-Key)."""

    def handle(session: Session, actor: User) -> object:
        dose, order = dose_for(session, actor=actor, material_id=material_id)
        act(session, dose, order)
        return dose_out(session, dose, order.number)

    return idempotency.respond(
        request, engine, user=user, key=key, body=body, status_code=200, handler=handle
    )


@router.get("/clinic/doses/{material_id}", response_model=DoseOut)
def get_dose(engine: EngineDep, user: ClinicUser, material_id: str) -> DoseOut:
    """A dose of the clinic's: whose it is, its cold chain, reconstitution, administration."""
    with read_session(engine) as session:
        dose, order = dose_for(session, actor=user, material_id=material_id)
        return dose_out(session, dose, order.number)


LOGGER_FILE = file_response(
    "text/csv", "the logger file byte for byte as uploaded at receipt (Repr-Digest: its SHA-256)"
)


@router.get(
    "/clinic/doses/{material_id}/logger.csv", response_class=Response, responses=LOGGER_FILE
)
def get_logger_file(engine: EngineDep, user: ClinicUser, material_id: str) -> Response:
    """The shipment's temperature-logger file the clinic uploaded with this dose."""
    with read_session(engine) as session:
        dose, _order = dose_for(session, actor=user, material_id=material_id)
        row = logger_file(session, dose=dose)
    return logger_file_response(row, material_id=dose.material_id)


@router.get("/qa/doses/{material_id}/logger.csv", response_class=Response, responses=LOGGER_FILE)
def get_logger_file_for_qa(engine: EngineDep, user: QaUser, material_id: str) -> Response:
    """A dose's temperature-logger file, for QA reviewing an excursion."""
    with read_session(engine) as session:
        dose, _order = dose_for(session, actor=user, material_id=material_id)
        row = logger_file(session, dose=dose)
    return logger_file_response(row, material_id=dose.material_id)


@router.post("/clinic/doses/{material_id}/reconstitution", response_model=DoseOut)
def post_reconstitution(
    request: Request,
    engine: EngineDep,
    user: ClinicUser,
    material_id: str,
    body: ReconstitutionIn,
    key: IdempotencyKey = None,
) -> JSONResponse:
    """Reconstitute a received dose (diluent lot, volume, time); starts the in-use clock."""
    return _act(
        request,
        key,
        body,
        engine,
        user,
        material_id,
        lambda s, dose, order: reconstitute(
            s,
            dose=dose,
            product=order.product,
            actor=user,
            diluent_lot=body.diluent_lot,
            volume=body.volume,
            at=body.at,
        ),
    )


@router.post("/clinic/doses/{material_id}/administration", response_model=DoseOut)
def post_administration(
    request: Request,
    engine: EngineDep,
    user: ClinicUser,
    material_id: str,
    body: AdministrationIn,
    key: IdempotencyKey = None,
) -> JSONResponse:
    """Give the dose at the bedside: both scans must be this dose's and its patient's."""
    return _act(
        request,
        key,
        body,
        engine,
        user,
        material_id,
        lambda s, dose, order: administer(
            s,
            dose=dose,
            actor=user,
            scanned_label=body.scanned_label,
            scanned_patient=body.scanned_patient,
            administered_by=body.administered_by,
            volume_given=body.volume_given,
            at=body.at,
        ),
    )


@router.post("/clinic/doses/{material_id}/return", response_model=DoseOut)
def post_return(
    request: Request,
    engine: EngineDep,
    user: ClinicUser,
    material_id: str,
    body: EndIn,
    key: IdempotencyKey = None,
) -> JSONResponse:
    """Send an unused dose back to the lab (with a reason)."""
    return _act(
        request,
        key,
        body,
        engine,
        user,
        material_id,
        lambda s, dose, order: end_at_clinic(
            s, dose=dose, actor=user, to_state="RETURNED", reason=body.reason
        ),
    )


@router.post("/clinic/doses/{material_id}/discard", response_model=DoseOut)
def post_discard(
    request: Request,
    engine: EngineDep,
    user: ClinicUser,
    material_id: str,
    body: EndIn,
    key: IdempotencyKey = None,
) -> JSONResponse:
    """Discard a dose at the clinic (with a reason)."""
    return _act(
        request,
        key,
        body,
        engine,
        user,
        material_id,
        lambda s, dose, order: end_at_clinic(
            s, dose=dose, actor=user, to_state="DISCARDED", reason=body.reason
        ),
    )


@router.post("/qa/doses/{material_id}/disposition", response_model=DoseOut)
def post_disposition(
    request: Request,
    engine: EngineDep,
    user: QaUser,
    material_id: str,
    body: DispositionIn,
    key: IdempotencyKey = None,
) -> JSONResponse:
    """QA's signed decision on a cancelled dose: back to its lot, or destroyed."""
    checks = ReturnChecks(body.seal_intact, body.never_left_lab, body.stored_in_range)
    return _act(
        request,
        key,
        body,
        engine,
        user,
        material_id,
        lambda s, dose, order: dispose(
            s,
            dose=dose,
            actor=user,
            password=body.password,
            decision=body.decision,
            reason=body.reason,
            checks=checks,
        ),
    )


@router.post("/qa/doses/{material_id}/quarantine-decision", response_model=DoseOut)
def post_quarantine_decision(
    request: Request,
    engine: EngineDep,
    user: QaUser,
    material_id: str,
    body: QuarantineDecisionIn,
    key: IdempotencyKey = None,
) -> JSONResponse:
    """QA releases a dose quarantined at the clinic (excursion) for use, or rejects it."""
    return _act(
        request,
        key,
        body,
        engine,
        user,
        material_id,
        lambda s, dose, order: decide_quarantine(
            s,
            dose=dose,
            actor=user,
            password=body.password,
            release=body.release,
            reason=body.reason,
        ),
    )
