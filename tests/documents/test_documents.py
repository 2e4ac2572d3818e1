"""Labels scan back to their id; COA and custody report show what they should, by hash."""

import hashlib

import pypdfium2 as pdfium
import pytest
import zxingcpp
from sqlalchemy import Engine

from lims.custody.ledger import history
from lims.db import read_session, write_session
from lims.documents.labels import render_label
from lims.documents.reports import certificate_of_analysis, custody_report
from lims.errors import InvalidInput, RuleViolation
from lims.identity.codes import parse_material_id
from lims.materials.service import get_material
from lims.signatures.records import record_digest
from tests.builders import Lab
from tests.conftest import World


def _text(pdf: bytes) -> str:
    doc = pdfium.PdfDocument(pdf)
    return "\n".join(page.get_textpage().get_text_range() for page in doc)


def _barcodes(pdf: bytes) -> list[tuple[str, str]]:
    image = pdfium.PdfDocument(pdf)[0].render(scale=10).to_pil()
    return sorted((str(r.format).split(".")[-1], r.text) for r in zxingcpp.read_barcodes(image))


@pytest.mark.parametrize("size", ["vial", "bag"])
def test_label_barcodes_scan_back_and_printing_is_audited(
    engine: Engine, world: World, size: str
) -> None:
    lab = Lab.start(engine, world)
    lot = lab.lot()
    dose = lab.allocate(lot, world.patient_coi).outputs[0].material_id
    with write_session(engine) as s:
        label = render_label(
            s, material=get_material(s, dose), size=size, actor=lab.user(s, world.tech_id)
        )
    codes = _barcodes(label.pdf)
    assert codes == [("Code 128", dose), ("Data Matrix", dose)]
    assert all(parse_material_id(text) == dose for _, text in codes)
    text = _text(label.pdf)
    for expected in (
        "FOR AUTOLOGOUS USE ONLY",
        world.patient_coi,
        "EXP ",
        "Store at",
        "Released by Demo Cell Processing Facility (X0001)",
        "LBL-1",
        "AAPE dose",
    ):
        assert expected in text, (expected, text)
    assert hashlib.sha256(label.pdf).hexdigest() == label.sha256
    with read_session(engine) as s:
        printed = [e for e in history(s, material_id=dose) if e.action == "label.printed"]
    assert printed and printed[-1].new is not None
    assert printed[-1].new["pdf_sha256"] == label.sha256


def test_label_refusals(engine: Engine, world: World) -> None:
    lab = Lab.start(engine, world)
    lipo = lab.lipoaspirate()
    with write_session(engine) as s, pytest.raises(InvalidInput, match="vial, bag"):
        render_label(
            s, material=get_material(s, lipo), size="poster", actor=lab.user(s, world.tech_id)
        )
    lab.move(lipo, "REJECTED", reason="leaking container")
    lab.move(lipo, "DESTROYED", reason="witnessed")
    with write_session(engine) as s, pytest.raises(RuleViolation, match="no label"):
        render_label(
            s, material=get_material(s, lipo), size="vial", actor=lab.user(s, world.tech_id)
        )


def test_certificate_of_analysis(engine: Engine, world: World) -> None:
    lab = Lab.start(engine, world)
    lot = lab.lot()
    with read_session(engine) as s:
        coa = certificate_of_analysis(s, material=get_material(s, lot))
        digest = record_digest(s, record_type="batch_record", record_id=lot)
    text = _text(coa.pdf)
    assert coa.records_sha256 == digest and digest in text.replace("\n", "")
    for expected in (
        "Certificate of analysis",
        "AAPE-LOT-SPEC v1",
        "Sterility",
        "USP <71>",
        "no growth",
        "PASS",
        "<= 87.5 EU/mL",
        "released by Kenji Sato",
        "record unchanged since signing",
    ):
        assert expected in text, (expected, text)


def test_custody_report_from_tissue_to_dose(engine: Engine, world: World) -> None:
    lab = Lab.start(engine, world)
    lot = lab.lot()
    dose = lab.allocate(lot, world.patient_coi).outputs[0].material_id
    with read_session(engine) as s:
        report = custody_report(s, dose=get_material(s, dose))
        with pytest.raises(RuleViolation):
            custody_report(s, dose=get_material(s, lot))
    text = _text(report.pdf)
    assert "Chain of custody report" in text and world.patient_coi in text
    assert "material.registered" in text and "material.created" in text
    assert "Ledger verification when printed: OK" in text
    assert report.records_sha256 in text.replace("\n", "")
