"""For the lab: QC results (judged against the specification), corrections, deviations.
Mounted under /lab by ``api.routers.lab``."""

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Path, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlmodel import Session

from api import idempotency
from api.idempotency import IdempotencyKey
from api.security import EngineDep, LabUser
from lims.errors import NotFound
from lims.materials.models import Material
from lims.materials.service import get_material
from lims.parties.models import User
from lims.qc.models import QcResult
from lims.qc.schemas import CloseIn, CorrectionIn, DeviationIn, QcResultIn
from lims.qc.service import close_deviation, correct_result, enter_result, get_deviation
from lims.qc.service import open_deviation as open_deviation_service

router = APIRouter()


class QcOut(BaseModel):
    id: int
    material_id: str
    test: str
    value: str
    unit: str | None
    passed: bool | None
    specification: str
    corrects: int | None
    reason: str | None


def _qc_out(material_id: str, r: QcResult) -> QcOut:
    return QcOut(
        id=r.id or 0,
        material_id=material_id,
        test=r.test_code,
        value=r.value_text,
        unit=r.unit,
        passed=r.passed,
        specification=f"{r.spec_code} v{r.spec_version}",
        corrects=r.corrects_id,
        reason=r.reason,
    )


@router.post("/qc-results", status_code=201, response_model=QcOut)
def new_result(
    request: Request, engine: EngineDep, user: LabUser, body: QcResultIn, key: IdempotencyKey = None
) -> JSONResponse:
    """Enter a QC result; an out-of-spec result holds the material and opens a deviation."""

    def handle(session: Session, actor: User) -> object:
        material = get_material(session, body.material_id, lock=True)
        result = enter_result(
            session,
            material=material,
            test_code=body.test_code,
            value=body.value,
            actor=actor,
            tested_at=body.tested_at,
            method=body.method,
        )
        return _qc_out(material.material_id, result)

    return idempotency.respond(
        request, engine, user=user, key=key, body=body, status_code=201, handler=handle
    )


@router.post("/qc-results/{result_id}/corrections", status_code=201, response_model=QcOut)
def correct(
    request: Request,
    engine: EngineDep,
    user: LabUser,
    result_id: Annotated[int, Path(ge=1, le=2_147_483_647)],
    body: CorrectionIn,
    key: IdempotencyKey = None,
) -> JSONResponse:
    """A corrected or retested value, referencing the result it replaces."""

    def handle(session: Session, actor: User) -> object:
        original = session.get(QcResult, result_id)
        if original is None:
            raise NotFound(f"no QC result {result_id}")
        material = session.get(Material, original.material_id)
        assert material is not None
        fixed = correct_result(
            session, result=original, value=body.value, reason=body.reason, actor=user
        )
        return _qc_out(material.material_id, fixed)

    return idempotency.respond(
        request, engine, user=user, key=key, body=body, status_code=201, handler=handle
    )


class DeviationOut(BaseModel):
    number: str
    material_id: str
    description: str
    opened_at: datetime
    closed_at: datetime | None
    resolution: str | None


@router.post("/deviations", status_code=201, response_model=DeviationOut)
def open_deviation(
    request: Request,
    engine: EngineDep,
    user: LabUser,
    body: DeviationIn,
    key: IdempotencyKey = None,
) -> JSONResponse:
    """Open a deviation against a material (QA closes it with a resolution)."""

    def handle(session: Session, actor: User) -> object:
        material = get_material(session, body.material_id)
        d = open_deviation_service(
            session, material=material, description=body.description, actor=user
        )
        return DeviationOut(
            number=d.number,
            material_id=material.material_id,
            description=d.description,
            opened_at=d.opened_at,
            closed_at=None,
            resolution=None,
        )

    return idempotency.respond(
        request, engine, user=user, key=key, body=body, status_code=201, handler=handle
    )


@router.post("/deviations/{number}/close", response_model=DeviationOut)
def close(
    request: Request,
    engine: EngineDep,
    user: LabUser,
    number: str,
    body: CloseIn,
    key: IdempotencyKey = None,
) -> JSONResponse:
    """QA closes a deviation with its resolution."""

    def handle(session: Session, actor: User) -> object:
        d = close_deviation(
            session,
            deviation=get_deviation(session, number=number),
            resolution=body.resolution,
            actor=user,
        )
        material = session.get(Material, d.material_id)
        assert material is not None
        return DeviationOut(
            number=d.number,
            material_id=material.material_id,
            description=d.description,
            opened_at=d.opened_at,
            closed_at=d.closed_at,
            resolution=d.resolution,
        )

    return idempotency.respond(
        request, engine, user=user, key=key, body=body, status_code=200, handler=handle
    )
