"""Text people typed prints literally in every PDF: no markup, no image, no link.

reportlab reads a Paragraph's text as markup; these documents once failed for ever on an
unclosed ``<b>`` in a deviation's resolution (the certificate of analysis) or in a storage
site's name (every custody report of a dose from that lot), and an ``<img>`` made the
library open a local file. The PDFs are rendered and their text read back.
"""

from __future__ import annotations

from pathlib import Path

import pypdfium2 as pdfium
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from reportlab.lib.styles import getSampleStyleSheet
from sqlalchemy import Engine

from lims.db import read_session, write_session
from lims.documents.markup import paragraph, plain
from lims.documents.reports import _build, certificate_of_analysis, custody_report
from lims.materials.service import add_storage_location, get_material, move_material
from lims.qc.service import close_deviation, open_deviation
from tests.builders import Lab
from tests.conftest import World

IMAGE = '<img src="/etc/hostname" width="50" height="50"/>'
LINK = '<a href="file:///etc/passwd">click</a>'
RESOLUTIONS = [
    "fixed <b>by probe",
    "retested: <0.5 EU/mL, passed",
    IMAGE,
    LINK + " & <font size=90>big</font> &amp; &#x41;",
]


def _text(pdf: bytes) -> str:
    doc = pdfium.PdfDocument(pdf)
    return "\n".join(page.get_textpage().get_text_range() for page in doc)


def flat(pdf: bytes) -> str:
    # Table cells wrap; the words are what matter.
    return " ".join(_text(pdf).split())


def _has_image(pdf: bytes) -> bool:
    doc = pdfium.PdfDocument(pdf)
    return any(
        obj.type == pdfium.raw.FPDF_PAGEOBJ_IMAGE for page in doc for obj in page.get_objects()
    )


def lot_with_deviations(engine: Engine, world: World, lab: Lab) -> str:
    lot = lab.lot(released=False)
    with write_session(engine) as s:
        material = get_material(s, lot)
        for resolution in RESOLUTIONS:
            deviation = open_deviation(
                s,
                material=material,
                description="odd text <i>in a description",
                actor=lab.user(s, world.tech_id),
            )
            close_deviation(
                s, deviation=deviation, resolution=resolution, actor=lab.user(s, world.qa_id)
            )
    return lot


def test_certificate_prints_resolutions_literally(engine: Engine, world: World) -> None:
    lab = Lab.start(engine, world)
    lot = lot_with_deviations(engine, world, lab)
    with read_session(engine) as s:
        coa = certificate_of_analysis(s, material=get_material(s, lot))
    text = flat(coa.pdf)
    for resolution in RESOLUTIONS:
        assert " ".join(resolution.split()) in text, (resolution, text)
    assert "Certificate of analysis" in text
    assert not _has_image(coa.pdf)
    assert b"/URI" not in coa.pdf and b"/Link" not in coa.pdf
    hostname = Path("/etc/hostname")
    if hostname.exists() and hostname.read_text().strip():
        assert hostname.read_text().strip() not in text


def test_custody_report_prints_a_marked_up_site_literally(engine: Engine, world: World) -> None:
    lab = Lab.start(engine, world)
    lot = lab.lot()
    with write_session(engine) as s:
        tech = lab.user(s, world.tech_id)
        place = add_storage_location(
            s,
            site="Lab <b>1",
            freezer="F<1>",
            rack="R&D",
            box="<img src=x>",
            position="A1",
            actor=tech,
        )
        move_material(s, material=get_material(s, lot), location=place, actor=tech)
    dose = lab.allocate(lot, world.patient_coi).outputs[0].material_id
    with read_session(engine) as s:
        report = custody_report(s, dose=get_material(s, dose))
    text = flat(report.pdf)
    assert "Lab <b>1/F<1>/R&D/<img src=x>/A1" in text, text
    assert "material.moved" in text
    assert not _has_image(report.pdf)


@given(text=st.text(st.characters(exclude_categories=["Cs"]), max_size=200))
@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
def test_any_text_renders_and_printable_text_reads_back(text: str) -> None:
    style = getSampleStyleSheet()["Normal"]
    pdf = _build("fuzz", [paragraph(text, style)])
    assert pdf.startswith(b"%PDF")
    assert "<" not in plain(text) and ">" not in plain(text)
    printable = "".join(c for c in text if c.isascii() and c.isprintable())
    if printable.strip() and printable == text:
        assert " ".join(printable.split()) in flat(pdf)
