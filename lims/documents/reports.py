"""Certificate of analysis per lot, and custody report per dose, as PDF.

Each document prints the SHA-256 of the records it shows, so a reader can tell whether
the records have changed since it was made: the COA shows the batch-record digest that a
release signature binds; the custody report shows a digest over the hashes of the custody
events it lists (each of which the ledger's own chain protects).
"""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from reportlab.lib import colors
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import getSampleStyleSheet
from reportlab.lib.units import mm
from reportlab.platypus import SimpleDocTemplate, Spacer, Table, TableStyle
from sqlmodel import Session

from lims.amounts import meaningful
from lims.custody.ledger import format_time, history, verify_chain
from lims.custody.models import CustodyEvent
from lims.documents.labels import PRODUCTS
from lims.documents.markup import paragraph
from lims.errors import RuleViolation
from lims.identity.codes import format_material_id
from lims.materials.models import Material
from lims.materials.service import ancestors
from lims.parties.models import Patient
from lims.qc.service import current_results, deviations_of, specification_of
from lims.qc.specs import limit_text
from lims.settings import get_settings
from lims.signatures.models import Meaning
from lims.signatures.records import record_digest
from lims.signatures.service import signatures_for


@dataclass(frozen=True)
class Document:
    pdf: bytes
    records_sha256: str


def _build(title: str, story: list[object]) -> bytes:
    buffer = io.BytesIO()
    doc = SimpleDocTemplate(
        buffer,
        pagesize=A4,
        title=title,
        leftMargin=15 * mm,
        rightMargin=15 * mm,
        topMargin=15 * mm,
        bottomMargin=15 * mm,
        invariant=1,
    )
    doc.build(story)
    return buffer.getvalue()


def _table(rows: list[list[str]], widths: list[float]) -> Table:
    style = getSampleStyleSheet()["BodyText"]
    style.fontSize = 8
    style.leading = 10
    cells = [[paragraph(c, style) for c in row] for row in rows]
    table = Table(cells, colWidths=[w * mm for w in widths], repeatRows=1)
    table.setStyle(
        TableStyle(
            [
                ("GRID", (0, 0), (-1, -1), 0.3, colors.grey),
                ("BACKGROUND", (0, 0), (-1, 0), colors.whitesmoke),
                ("VALIGN", (0, 0), (-1, -1), "TOP"),
            ]
        )
    )
    return table


def certificate_of_analysis(session: Session, *, material: Material) -> Document:
    """Results against specification, methods, and the release signature, for one lot."""
    spec = specification_of(session, material=material)
    results = {r.test_code: r for r in current_results(session, material=material)}
    patient = session.get(Patient, material.patient_id)
    digest = record_digest(session, record_type="batch_record", record_id=material.material_id)
    styles = getSampleStyleSheet()
    settings = get_settings()
    rows = [["Test", "Method", "Specification", "Result", "Verdict"]]
    for test in spec.tests:
        r = results.get(test.code)
        value = f"{r.value_text} {r.unit or ''}".strip() if r else "not tested"
        verdict = (
            "—" if r is None else "reported" if r.passed is None else "PASS" if r.passed else "FAIL"
        )
        rows.append([test.name, test.method, limit_text(test), value, verdict])
    releases = signatures_for(
        session,
        record_type="batch_record",
        record_id=material.material_id,
        meaning=Meaning.RELEASED,
    )
    release_text = "; ".join(c.describe() for c in releases) or "NOT RELEASED"
    deviations = deviations_of(session, material=material)
    story: list[object] = [
        paragraph("Certificate of analysis", styles["Title"]),
        paragraph(f"{settings.facility_name} ({settings.facility_code})", styles["Normal"]),
        Spacer(1, 4 * mm),
        _table(
            [
                ["Lot", "Product", "Patient / donor", "State", "Expiry"],
                [
                    format_material_id(material.material_id),
                    PRODUCTS.get(material.kind, material.kind),
                    patient.coi_id if patient else "?",
                    material.state,
                    f"{material.expires_at:%Y-%m-%d}" if material.expires_at else "—",
                ],
            ],
            [35, 55, 40, 25, 25],
        ),
        Spacer(1, 4 * mm),
        paragraph(f"Specification {spec.code} v{spec.version}", styles["Heading3"]),
        _table(rows, [35, 50, 35, 35, 25]),
        Spacer(1, 4 * mm),
        paragraph(
            "Deviations: "
            + (
                ", ".join(
                    f"{d.number} ({'closed: ' + (d.resolution or '') if d.closed_at else 'OPEN'})"
                    for d in deviations
                )
                or "none"
            ),
            styles["Normal"],
        ),
        paragraph(f"Release: {release_text}", styles["Normal"]),
        Spacer(1, 4 * mm),
        paragraph(f"SHA-256 of the batch record shown: {digest}", styles["Code"]),
    ]
    return Document(pdf=_build(f"COA {material.material_id}", story), records_sha256=digest)


def _readable(value: object) -> str:
    """A recorded value as printed: numbers to their meaningful precision."""
    if isinstance(value, str | int | float | Decimal) and not isinstance(value, bool):
        try:
            return meaningful(Decimal(str(value)))
        except (InvalidOperation, ValueError):
            pass
    return str(value)


def custody_report(session: Session, *, dose: Material) -> Document:
    """From the donor's tissue to the clinic's receipt: every custody event on the way."""
    if dose.kind != "dose":
        raise RuleViolation("a custody report is made for a dose")
    above = ancestors(session, material=dose)
    chain = [r.material_id for r in reversed(above)]
    chain.append(dose.material_id)
    # Materials at the same distance are siblings (e.g. cultures pooled into one batch):
    # printed side by side, never as if one came from the other.
    generations: dict[int, list[str]] = {}
    for row in above:
        generations.setdefault(row.depth, []).append(format_material_id(row.material_id))
    lineage = [" + ".join(generations[d]) for d in sorted(generations, reverse=True)]
    lineage.append(format_material_id(dose.material_id))
    seen: dict[int, CustodyEvent] = {}
    for material_id in chain:
        for event in history(session, material_id=material_id):
            seen[event.seq] = event
    events = [seen[k] for k in sorted(seen)]
    digest = hashlib.sha256("".join(e.hash for e in events).encode()).hexdigest()
    verdict = verify_chain(session)
    recipient = session.get(Patient, dose.recipient_id) if dose.recipient_id else None
    styles = getSampleStyleSheet()
    rows = [["#", "Time (UTC)", "Who", "What", "Material(s)", "From → to / detail"]]
    for e in events:
        detail = " → ".join(x for x in (e.from_, e.to) if x) or (
            ", ".join(
                f"{k}: {_readable(v)}"
                for k, v in (e.new or {}).items()
                if k in ("state", "remaining", "outcome", "meaning")
            )
        )
        rows.append(
            [
                str(e.seq),
                format_time(e.occurred_at)[:19].replace("T", " "),
                f"{e.actor} ({e.actor_role})",
                e.action,
                ", ".join(format_material_id(m) for m in e.materials if len(m) == 14),
                detail or "",
            ]
        )
    story: list[object] = [
        paragraph("Chain of custody report", styles["Title"]),
        paragraph(
            f"Dose {format_material_id(dose.material_id)} for "
            f"{recipient.coi_id if recipient else '?'}; lineage " + " → ".join(lineage),
            styles["Normal"],
        ),
        Spacer(1, 3 * mm),
        _table(rows, [10, 30, 30, 35, 40, 35]),
        Spacer(1, 3 * mm),
        paragraph(f"Ledger verification when printed: {verdict.summary()}", styles["Normal"]),
        paragraph(f"SHA-256 over the {len(events)} event hashes shown: {digest}", styles["Code"]),
    ]
    return Document(pdf=_build(f"Custody {dose.material_id}", story), records_sha256=digest)
