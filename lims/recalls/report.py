"""The recall report, as CSV and PDF: every affected item (lot, derived lot, dose, with its
order, patient and clinic and what the recall did to it) and who was told, how and when,
and when each clinic acknowledged; the signatures that opened and closed it."""

from __future__ import annotations

import csv
import io
from datetime import datetime

from reportlab.lib.styles import getSampleStyleSheet
from reportlab.lib.units import mm
from reportlab.platypus import Spacer
from sqlmodel import Session

from lims.custody.ledger import format_time
from lims.documents.markup import paragraph
from lims.documents.reports import Document, _build, _table
from lims.identity.codes import format_material_id
from lims.materials.models import Material
from lims.parties.models import User
from lims.recalls.models import Recall
from lims.recalls.queries import AffectedItem, ClinicNotice, affected_items, clinic_notices
from lims.settings import get_settings
from lims.signatures.models import Signature
from lims.signatures.records import record_digest

COLUMNS = [
    "record",
    "recall",
    "material_id",
    "kind",
    "depth",
    "state_before",
    "state_now",
    "action",
    "order",
    "patient",
    "clinic",
    "channel",
    "address",
    "delivery_status",
    "told_at",
    "acknowledged_at",
    "acknowledged_by",
]


def _t(at: datetime | None) -> str:
    return format_time(at) if at else ""


def _item_row(recall: Recall, a: AffectedItem) -> dict[str, object]:
    return {
        "record": "item",
        "recall": recall.number,
        "material_id": format_material_id(a.material.material_id),
        "kind": a.material.kind,
        "depth": a.item.depth,
        "state_before": a.item.state_before,
        "state_now": a.material.state,
        "action": a.item.action,
        "order": a.order.number if a.order else "",
        "patient": a.patient.coi_id if a.patient else "",
        "clinic": a.clinic.code if a.clinic else "",
    }


def _notice_rows(recall: Recall, n: ClinicNotice) -> list[dict[str, object]]:
    ack = {
        "acknowledged_at": _t(n.row.acknowledged_at),
        "acknowledged_by": n.acknowledged_by.printed_name if n.acknowledged_by else "",
    }
    base = {"record": "notice", "recall": recall.number, "clinic": n.clinic.code, **ack}
    if not n.deliveries:  # nobody registered to be told: the report says so
        return [{**base, "channel": "none", "delivery_status": "no endpoint or contact"}]
    return [
        {
            **base,
            "channel": d.channel,
            "address": d.address,
            "delivery_status": d.status,
            "told_at": _t(d.delivered_at),
        }
        for d in n.deliveries
    ]


def recall_csv(session: Session, *, recall: Recall) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    for a in affected_items(session, recall=recall):
        writer.writerow(_item_row(recall, a))
    for n in clinic_notices(session, recall=recall):
        writer.writerows(_notice_rows(recall, n))
    return out.getvalue()


def _signed(session: Session, signature_id: int | None) -> str:
    s = session.get(Signature, signature_id) if signature_id else None
    if s is None:
        return "—"
    return f"{s.printed_name} ({s.role}), {s.meaning}, {format_time(s.signed_at)}: {s.comment}"


def recall_pdf(session: Session, *, recall: Recall) -> Document:
    lot = session.get(Material, recall.lot_id)
    opener = session.get(User, recall.opened_by_id)
    assert lot is not None and opener is not None
    digest = record_digest(session, record_type="recall", record_id=recall.number)
    styles = getSampleStyleSheet()
    settings = get_settings()
    items = [["Material", "Kind", "Before → now", "Action", "Order", "Patient", "Clinic"]]
    for a in affected_items(session, recall=recall):
        row = _item_row(recall, a)
        items.append(
            [
                str(row["material_id"]),
                a.material.kind,
                f"{a.item.state_before} → {a.material.state}",
                a.item.action,
                str(row["order"]),
                str(row["patient"]),
                str(row["clinic"]),
            ]
        )
    notices = [["Clinic", "Channel", "Address", "Status", "Told at", "Acknowledged"]]
    for n in clinic_notices(session, recall=recall):
        for r in _notice_rows(recall, n):
            ack = f"{r['acknowledged_at']} {r['acknowledged_by']}".strip() or "NOT YET"
            notices.append(
                [
                    f"{n.clinic.name} ({n.clinic.code})",
                    str(r.get("channel", "")),
                    str(r.get("address", "")),
                    str(r.get("delivery_status", "")),
                    str(r.get("told_at", "")),
                    ack,
                ]
            )
    story: list[object] = [
        paragraph(f"Recall report {recall.number}", styles["Title"]),
        paragraph(f"{settings.facility_name} ({settings.facility_code})", styles["Normal"]),
        paragraph(
            f"Lot {format_material_id(lot.material_id)} ({lot.kind}, now {lot.state}); "
            f"status {recall.status}; opened {format_time(recall.opened_at)} by "
            f"{opener.printed_name}",
            styles["Normal"],
        ),
        paragraph(f"Reason: {recall.reason}", styles["Normal"]),
        Spacer(1, 3 * mm),
        paragraph("Affected items", styles["Heading3"]),
        _table(items, [32, 22, 38, 22, 22, 28, 16]),
        Spacer(1, 3 * mm),
        paragraph("Who was told, and their acknowledgement", styles["Heading3"]),
        _table(notices, [32, 16, 48, 22, 32, 30]),
        Spacer(1, 3 * mm),
        paragraph(f"Opened: {_signed(session, recall.open_signature_id)}", styles["Normal"]),
        paragraph(f"Closed: {_signed(session, recall.close_signature_id)}", styles["Normal"]),
        paragraph(f"Override reason: {recall.override_reason or '—'}", styles["Normal"]),
        paragraph(f"SHA-256 of the signed recall record: {digest}", styles["Code"]),
    ]
    return Document(pdf=_build(f"Recall {recall.number}", story), records_sha256=digest)
