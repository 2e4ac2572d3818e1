"""A lot recall as a flow: it follows a recall QA opened and signed (on the recall page or
``POST /api/v1/qa/recalls``; a signature is a person's act with their password, never a
flow parameter, which Prefect stores and shows): the look-forward trace it recorded, the
clinics' notices sent (the outbox drained), who was told when and who acknowledged, and the
report as a table artifact. Run it again to see the acknowledgements come in; it says when
the recall can be closed (every clinic acknowledged), which again is QA's signature.
"""

from __future__ import annotations

from prefect import flow
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from pydantic import Field

from flows.common import LabModel, Username, engine_for, lab_task, user
from lims.custody.ledger import format_time
from lims.db import read_session
from lims.identity.codes import format_material_id
from lims.materials.models import Material
from lims.notifications import delivery
from lims.recalls.models import ItemAction
from lims.recalls.queries import affected_items, clinic_notices, get_recall
from lims.recalls.report import recall_csv
from lims.settings import get_notification_settings


class RecallFollowUp(LabModel):
    recall: str = Field(min_length=4, max_length=16, examples=["RC-000001"])
    followed_by: Username
    # Send the outbox's pending notices now (the delivery worker does it too, at least once).
    deliver: bool = True


class ClinicTold(LabModel):
    clinic: str
    told_at: str | None
    channels: list[str]
    acknowledged_at: str | None


class RecallProgress(LabModel):
    recall: str
    lot: str
    status: str
    recalled: list[str]  # do not use
    blocked: list[str]  # in the lab: refused at the dispatch gate
    administered: list[str]  # given already: the clinic follows the patient up
    clinics: list[ClinicTold]
    pending_acknowledgement: list[str]
    closable: bool


@lab_task(name="send recall notices", run_name="send notices · {recall}")
def send_notices(database_url: str | None, recall: str) -> int:
    """Deliver what the outbox holds (the recall's notices among it); the number sent."""
    settings = get_notification_settings()
    return delivery.drain(engine_for(database_url), settings=settings).delivered


@lab_task(name="recall progress", run_name="progress · {recall}")
def progress(database_url: str | None, recall: str, followed_by: str) -> RecallProgress:
    with read_session(engine_for(database_url)) as session:
        row = get_recall(session, number=recall, actor=user(session, followed_by))
        lot = session.get(Material, row.lot_id)
        assert lot is not None
        items = affected_items(session, recall=row)
        notices = clinic_notices(session, recall=row)
        csv_text = recall_csv(session, recall=row)

    def ids(action: str) -> list[str]:
        return [
            format_material_id(a.material.material_id)
            for a in items
            if a.item.action == action and a.material.kind == "dose"
        ]

    told = [
        ClinicTold(
            clinic=n.clinic.code,
            told_at=format_time(n.first_told_at) if n.first_told_at else None,
            channels=sorted({d.channel for d in n.deliveries if d.delivered_at is not None}),
            acknowledged_at=format_time(n.row.acknowledged_at) if n.row.acknowledged_at else None,
        )
        for n in notices
    ]
    pending = [n.clinic.code for n in notices if not n.acknowledged]
    result = RecallProgress(
        recall=row.number,
        lot=format_material_id(lot.material_id),
        status=row.status,
        recalled=ids(ItemAction.RECALLED),
        blocked=ids(ItemAction.BLOCKED),
        administered=ids(ItemAction.ADMINISTERED),
        clinics=told,
        pending_acknowledgement=pending,
        closable=row.status == "OPEN" and not pending,
    )
    lines = csv_text.splitlines()
    header = lines[0].split(",")
    create_table_artifact(
        key=f"recall-{row.number.lower()}",
        table=[dict(zip(header, line.split(","), strict=False)) for line in lines[1:]],
        description=f"Recall {row.number} of lot {result.lot}: every affected item and notice",
    )
    create_markdown_artifact(
        key=f"recall-{row.number.lower()}-status",
        markdown=f"**{row.number}** ({row.status}): waiting for "
        f"{', '.join(pending) or 'nobody'}; closable: {result.closable}",
    )
    return result


@flow(name="lot-recall", flow_run_name="lot-recall · {request.recall}", log_prints=False)
def lot_recall(request: RecallFollowUp, database_url: str | None = None) -> RecallProgress:
    if request.deliver:
        send_notices(database_url, request.recall)
    return progress(database_url, request.recall, request.followed_by)
