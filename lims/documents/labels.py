"""Print-on-demand labels (21 CFR 1271.370, 1271.90(c); FACT-JACIE D7).

A label carries the material id as text, as a DataMatrix and as Code 128 (both encode the
stored id with its check character, so a scan comes back through ``parse_material_id``),
the product, the patient's chain-of-identity id, expiry, storage temperature, the
releasing establishment and "FOR AUTOLOGOUS USE ONLY" where it applies. The template
has a version; printing appends a custody event with the PDF's SHA-256.
"""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass

from reportlab.graphics import renderPDF
from reportlab.graphics.barcode import createBarcodeDrawing
from reportlab.lib.units import mm
from reportlab.pdfbase.pdfmetrics import stringWidth
from reportlab.pdfgen import canvas
from sqlmodel import Session

from lims.custody import ledger
from lims.errors import InvalidInput, RuleViolation
from lims.identity.codes import format_material_id
from lims.materials.models import Material, StorageLocation
from lims.materials.workflow import machine_for
from lims.parties.models import Patient, User
from lims.settings import get_settings

TEMPLATE_VERSION = "LBL-1"
PRODUCTS = {
    "aape_lot": "AAPE lyophilised ADSC protein extract",
    "dose": "AAPE dose",
    "svf": "Stromal vascular fraction (cells)",
    "dp_culture": "Dermal papilla cells",
    "cm_batch": "ADSC conditioned medium",
    "lipoaspirate": "Lipoaspirate",
    "scalp_biopsy": "Scalp biopsy",
    "adsc_culture": "ADSC culture",
    "nanofat": "Nanofat",
}
# Default storage when no position says otherwise: lyophilised secretome at -80 degC [21].
DEFAULT_STORAGE = "Store at -80 °C"


@dataclass(frozen=True)
class LabelSize:
    name: str
    width_mm: float
    height_mm: float


SIZES = {"vial": LabelSize("vial", 50, 25), "bag": LabelSize("bag", 100, 60)}


@dataclass(frozen=True)
class Label:
    pdf: bytes
    sha256: str
    lines: list[str]


@dataclass(frozen=True)
class LabelText:
    """What a label says, field by field; ``lines`` is the printed text, in order."""

    printed_id: str
    product: str
    patient_coi: str | None
    expiry: str
    storage: str
    released_by: str
    statement: str | None

    @property
    def lines(self) -> list[str]:
        lines = [
            self.printed_id,
            self.product,
            f"Patient {self.patient_coi or '?'}",
            self.expiry,
            self.storage,
            self.released_by,
        ]
        if self.statement:
            lines.append(self.statement)
        lines.append(TEMPLATE_VERSION)
        return lines


def label_text(session: Session, *, material: Material) -> LabelText:
    """What a material's label says (the printed label, the web preview, the API)."""
    patient = session.get(Patient, material.recipient_id or material.patient_id)
    location = session.get(StorageLocation, material.location_id) if material.location_id else None
    storage = (
        f"Store at {location.temperature_c.normalize():f} °C"
        if location is not None and location.temperature_c is not None
        else DEFAULT_STORAGE
    )
    expiry = (
        f"EXP {material.expires_at:%Y-%m-%d %H:%M} UTC" if material.expires_at else "EXP not set"
    )
    settings = get_settings()
    return LabelText(
        printed_id=format_material_id(material.material_id),
        product=PRODUCTS.get(material.kind, material.kind),
        patient_coi=patient.coi_id if patient else None,
        expiry=expiry,
        storage=storage,
        released_by=f"Released by {settings.facility_name} ({settings.facility_code})",
        statement="FOR AUTOLOGOUS USE ONLY" if material.use == "autologous" else None,
    )


def label_lines(session: Session, *, material: Material) -> list[str]:
    """The text a label shows, in order (also what the web page previews)."""
    return label_text(session, material=material).lines


def render_label(session: Session, *, material: Material, size: str, actor: User) -> Label:
    """Render a label and record its printing in the custody ledger."""
    spec = SIZES.get(size)
    if spec is None:
        raise InvalidInput(f"label size is one of {', '.join(SIZES)}", field="size")
    if material.state in machine_for(material.kind).terminal:
        raise RuleViolation(
            f"{material.kind} {format_material_id(material.material_id)} is "
            f"{material.state}; no label is printed for it"
        )
    lines = label_lines(session, material=material)
    buffer = io.BytesIO()
    # invariant=1: the same label renders to the same bytes, so its hash means something.
    width, height = spec.width_mm * mm, spec.height_mm * mm
    pdf = canvas.Canvas(buffer, pagesize=(width, height), invariant=1)
    pdf.setTitle(f"Label {material.material_id}")
    unit = spec.height_mm / 25 * mm  # the vial label is the unit; a bag label scales up
    margin = 1.5 * unit
    # The linear code gets its own band along the bottom, as wide as it needs to scan.
    bar_width = 0.2 * unit
    linear = createBarcodeDrawing(
        "Code128",
        value=material.material_id,
        humanReadable=False,
        barHeight=4 * unit,
        barWidth=bar_width,
    )
    if linear.width > width - 2 * margin:
        bar_width *= (width - 2 * margin) / linear.width
        linear = createBarcodeDrawing(
            "Code128",
            value=material.material_id,
            humanReadable=False,
            barHeight=4 * unit,
            barWidth=bar_width,
        )
    renderPDF.draw(linear, pdf, margin, margin)
    band_top = margin + 4 * unit + 1.2 * unit
    side = 11 * unit
    matrix = createBarcodeDrawing(
        "ECC200DataMatrix", value=material.material_id, width=side, height=side
    )
    renderPDF.draw(matrix, pdf, margin, height - margin - side)
    x = margin + side + 1.5 * unit
    column = width - x - margin
    step = (height - margin - band_top) / len(lines)
    y = height - margin - step * 0.8
    for n, line in enumerate(lines):
        font = "Helvetica-Bold" if n == 0 or line == "FOR AUTOLOGOUS USE ONLY" else "Helvetica"
        size = min(step * 0.85, column / max(stringWidth(line, font, 1), 1))
        pdf.setFont(font, size)
        pdf.drawString(x, y, line)
        y -= step
    pdf.showPage()
    pdf.save()
    data = buffer.getvalue()
    digest = hashlib.sha256(data).hexdigest()
    ledger.append(
        session,
        actor=actor,
        action="label.printed",
        entity="material",
        entity_id=material.material_id,
        materials=[material.material_id],
        new={"size": size, "template": TEMPLATE_VERSION, "pdf_sha256": digest, "lines": lines},
    )
    return Label(pdf=data, sha256=digest, lines=lines)
