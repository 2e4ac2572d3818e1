"""Lot recalls (lims.recalls): QA opens, lists, reads, reports and closes them; a clinic
lists and reads the recalls that reached it and acknowledges them. A recall that did not
reach the caller's clinic is answered with 404."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel
from sqlmodel import Session

from api import idempotency
from api.downloads import content_disposition
from api.enums import MaterialKindName, MaterialStateName
from api.idempotency import IdempotencyKey
from api.schemas import Page, Paging, file_response, page
from api.security import ClinicUser, EngineDep, QaUser
from lims.db import read_session
from lims.identity.codes import format_material_id
from lims.materials.models import Material
from lims.parties.models import User
from lims.recalls import queries, report, service
from lims.recalls.models import Recall
from lims.recalls.schemas import AcknowledgementIn, RecallCloseIn, RecallOpenIn

qa_router = APIRouter(prefix="/qa/recalls", tags=["recalls"])
clinic_router = APIRouter(prefix="/clinic/recalls", tags=["recalls"])
Number = Annotated[str, Path(max_length=16, pattern=r"^[A-Za-z]{2}-\d{1,9}$")]


class ItemOut(BaseModel):
    material_id: str
    kind: MaterialKindName
    depth: int
    state_before: MaterialStateName
    state: MaterialStateName
    action: str
    order: str | None
    patient_coi: str | None
    clinic: str | None


class RecallDeliveryOut(BaseModel):
    channel: str
    address: str
    status: str
    delivered_at: datetime | None


class NoticeOut(BaseModel):
    clinic: str
    clinic_name: str
    told: list[RecallDeliveryOut]
    acknowledged_at: datetime | None
    acknowledged_by: str | None
    note: str | None


class RecallOut(BaseModel):
    number: str
    lot: str
    reason: str
    status: str
    opened_at: datetime
    opened_by: str
    closed_at: datetime | None
    override_reason: str | None
    items: list[ItemOut]
    clinics: list[NoticeOut]


def recall_out(session: Session, recall: Recall, *, clinic_id: int | None = None) -> RecallOut:
    lot = session.get(Material, recall.lot_id)
    opener = session.get(User, recall.opened_by_id)
    assert lot is not None and opener is not None
    items = queries.affected_items(session, recall=recall, clinic_id=clinic_id)
    notices = queries.clinic_notices(session, recall=recall, clinic_id=clinic_id)
    return RecallOut(
        number=recall.number,
        lot=format_material_id(lot.material_id),
        reason=recall.reason,
        status=recall.status,
        opened_at=recall.opened_at,
        opened_by=opener.printed_name,
        closed_at=recall.closed_at,
        override_reason=recall.override_reason,
        items=[
            ItemOut(
                material_id=format_material_id(a.material.material_id),
                kind=a.material.kind,
                depth=a.item.depth,
                state_before=a.item.state_before,
                state=a.material.state,
                action=a.item.action,
                order=a.order.number if a.order else None,
                patient_coi=a.patient.coi_id if a.patient else None,
                clinic=a.clinic.code if a.clinic else None,
            )
            for a in items
        ],
        clinics=[
            NoticeOut(
                clinic=n.clinic.code,
                clinic_name=n.clinic.name,
                told=[
                    RecallDeliveryOut(
                        channel=d.channel,
                        address=d.address,
                        status=d.status,
                        delivered_at=d.delivered_at,
                    )
                    for d in n.deliveries
                ],
                acknowledged_at=n.row.acknowledged_at,
                acknowledged_by=n.acknowledged_by.printed_name if n.acknowledged_by else None,
                note=n.row.acknowledgement_note,
            )
            for n in notices
        ],
    )


Status = Annotated[Literal["OPEN", "CLOSED"] | None, Query()]


@qa_router.post("", status_code=201, response_model=RecallOut)
def open_recall(
    request: Request,
    engine: EngineDep,
    user: QaUser,
    body: RecallOpenIn,
    key: IdempotencyKey = None,
) -> JSONResponse:
    """Recall a released lot: signed (password, meaning 'approved') with a reason; every
    derived lot and dose is traced, blocked or made do-not-use, and each clinic is told."""

    def handle(session: Session, actor: User) -> object:
        recall = service.open_recall(
            session,
            lot_material_id=body.material_id,
            reason=body.reason,
            password=body.password,
            actor=user,
        )
        return recall_out(session, recall)

    return idempotency.respond(
        request, engine, user=user, key=key, body=body, status_code=201, handler=handle
    )


@qa_router.get("", response_model=Page[RecallOut])
def list_recalls(
    engine: EngineDep,
    user: QaUser,
    paging: Paging,
    status: Status = None,
) -> dict[str, object]:
    """Lot recalls, newest first, optionally open or closed, a page at a time."""
    with read_session(engine) as session:
        listing = queries.recalls_listed(session, actor=user, status=status, **paging.window())
        return page(listing, lambda r: recall_out(session, r))


@qa_router.get("/{number}", response_model=RecallOut)
def get_recall(engine: EngineDep, user: QaUser, number: Number) -> RecallOut:
    """One recall: the lot, every affected item and the notices sent to clinics."""
    with read_session(engine) as session:
        return recall_out(session, queries.get_recall(session, number=number, actor=user))


@qa_router.get(
    "/{number}/report.pdf",
    response_class=Response,
    responses=file_response("application/pdf", "the recall report (PDF)"),
)
def recall_report_pdf(engine: EngineDep, user: QaUser, number: Number) -> Response:
    """The recall's report as a PDF: lot, reach, actions, notices."""
    with read_session(engine) as session:
        recall = queries.get_recall(session, number=number, actor=user)
        document = report.recall_pdf(session, recall=recall)
        return Response(
            document.pdf,
            media_type="application/pdf",
            headers={
                "Content-Disposition": content_disposition(f"recall-{recall.number}.pdf"),
                "X-Records-SHA256": document.records_sha256,
            },
        )


@qa_router.get(
    "/{number}/report.csv",
    response_class=Response,
    responses=file_response("text/csv", "every affected item and notice, a header row first"),
)
def recall_report_csv(engine: EngineDep, user: QaUser, number: Number) -> Response:
    """The recall's affected items and notices as CSV, a header row first."""
    with read_session(engine) as session:
        recall = queries.get_recall(session, number=number, actor=user)
        return Response(
            report.recall_csv(session, recall=recall),
            media_type="text/csv",
            headers={
                "Content-Disposition": content_disposition(
                    f"recall-{recall.number}.csv", disposition="attachment"
                )
            },
        )


@qa_router.post("/{number}/close", response_model=RecallOut)
def close_recall(
    request: Request,
    engine: EngineDep,
    user: QaUser,
    number: Number,
    body: RecallCloseIn,
    key: IdempotencyKey = None,
) -> JSONResponse:
    """Close once every clinic acknowledged; otherwise only with a signed override reason."""

    def handle(session: Session, actor: User) -> object:
        recall = service.close_recall(
            session,
            number=number,
            actor=user,
            password=body.password,
            override_reason=body.override_reason,
        )
        return recall_out(session, recall)

    return idempotency.respond(
        request, engine, user=user, key=key, body=body, status_code=200, handler=handle
    )


@clinic_router.get("", response_model=Page[RecallOut])
def list_clinic_recalls(
    engine: EngineDep,
    user: ClinicUser,
    paging: Paging,
    status: Status = None,
) -> dict[str, object]:
    """The recalls that reached this clinic (its own items and notices only), newest
    first, a page at a time."""
    with read_session(engine) as session:
        listing = queries.recalls_listed(session, actor=user, status=status, **paging.window())
        return page(listing, lambda r: recall_out(session, r, clinic_id=user.clinic_id))


@clinic_router.get("/{number}", response_model=RecallOut)
def get_clinic_recall(engine: EngineDep, user: ClinicUser, number: Number) -> RecallOut:
    """A recall that reached the clinic: its doses affected and what to do."""
    with read_session(engine) as session:
        recall = queries.get_recall(session, number=number, actor=user)
        return recall_out(session, recall, clinic_id=user.clinic_id)


@clinic_router.post("/{number}/acknowledgement", response_model=RecallOut)
def acknowledge_recall(
    request: Request,
    engine: EngineDep,
    user: ClinicUser,
    number: Number,
    body: AcknowledgementIn,
    key: IdempotencyKey = None,
) -> JSONResponse:
    """The clinic has acted on the recall (doses set aside, patients followed up)."""

    def handle(session: Session, actor: User) -> object:
        recall = service.acknowledge(session, number=number, actor=user, note=body.note)
        return recall_out(session, recall, clinic_id=user.clinic_id)

    return idempotency.respond(
        request, engine, user=user, key=key, body=body, status_code=200, handler=handle
    )
