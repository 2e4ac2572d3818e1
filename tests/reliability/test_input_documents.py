"""Documents through the real server: odd text in records, odd ids in paths.

A path id with a newline, vertical tab or CR LF once went raw into Content-Disposition
(uvicorn dropped the connection, after the "label printed" custody event had been
committed for a label nobody got); an em space answered 500. File names are now built
from the canonical id (RFC 6266, with filename*), and the event is committed only with a
label that was produced.
"""

from __future__ import annotations

import re

import httpx
from sqlalchemy import Engine

from lims.custody.ledger import history
from lims.db import read_session, write_session
from lims.materials.service import add_storage_location, get_material, move_material
from tests.api.conftest import Api
from tests.builders import Lab
from tests.conftest import World
from tests.documents.test_untrusted_text import flat, lot_with_deviations
from tests.live_server import live_server
from tests.reliability.conftest import PROBLEM

DISPOSITION = re.compile(
    r"^(inline|attachment); filename=\"[A-Za-z0-9._-]+\"; filename\*=UTF-8''\S+$"
)


def _printed(engine: Engine, material_id: str) -> int:
    with read_session(engine) as s:
        return sum(1 for e in history(s, material_id=material_id) if e.action == "label.printed")


def _spelled(material_id: str) -> dict[str, str]:
    """The same id as a person or a scanner might send it, percent-encoded for the path."""
    head, tail = material_id[:5], material_id[5:]
    return {
        "newline": f"{head}%0A{tail}",
        "vertical tab": f"{head}%0B{tail}",
        "CR LF": f"{head}%0D%0A{tail}",
        "em space": f"{head}%E2%80%83{tail}",
        "printed form": f"{head}%20{tail[:2]}%20{tail[2:8]}%20{tail[8:]}",
    }


def test_label_and_report_names_come_from_the_canonical_id(
    engine: Engine, world: World, api: Api
) -> None:
    lab = Lab.start(engine, world)
    lot = lab.lot()
    dose = lab.allocate(lot, world.patient_coi).outputs[0].material_id
    tech, auditor = api.as_("technician"), api.as_("auditor")
    failures = []
    with live_server(engine) as url, httpx.Client(base_url=url, timeout=60) as client:
        for name, spelled in _spelled(dose).items():
            before = _printed(engine, dose)
            for method, path, who, filename in (
                ("POST", f"/api/v1/lab/materials/{spelled}/label.pdf", tech, f"label-{dose}.pdf"),
                (
                    "POST",
                    f"/api/v1/lab/materials/{spelled}/label.pdf?size=bag",
                    tech,
                    f"label-{dose}.pdf",
                ),
                ("GET", f"/api/v1/audit/materials/{spelled}/custody-report.pdf", auditor, None),
            ):
                try:
                    r = client.request(method, path, headers=who)
                except httpx.HTTPError as exc:  # the old failure: connection dropped
                    failures.append(f"{name} {path}: {type(exc).__name__}")
                    continue
                header = r.headers.get("content-disposition", "")
                ok = (
                    r.status_code == 200
                    and r.content.startswith(b"%PDF")
                    and DISPOSITION.match(header) is not None
                    and dose in header
                    and (filename is None or f'filename="{filename}"' in header)
                )
                if not ok:
                    failures.append(f"{name} {path}: {r.status_code} {header!r} {r.text[:200]}")
            # Two labels answered, two events; none without a label.
            if _printed(engine, dose) != before + 2:
                failures.append(f"{name}: {_printed(engine, dose) - before} label events")
        coa = client.get(f"/api/v1/audit/materials/{lot[:5]}%0A{lot[5:]}/coa.pdf", headers=auditor)
        assert coa.status_code == 200 and DISPOSITION.match(coa.headers["content-disposition"])
        assert f'filename="coa-{lot}.pdf"' in coa.headers["content-disposition"]
        for export in ("custody.jsonl", "custody.csv"):
            r = client.get(f"/api/v1/audit/exports/{export}", headers=auditor)
            assert r.status_code == 200
            assert r.headers["content-disposition"] == (
                f"attachment; filename=\"{export}\"; filename*=UTF-8''{export}"
            )
    assert failures == []


def test_unreadable_ids_and_refused_labels_write_nothing(
    engine: Engine, world: World, api: Api
) -> None:
    lab = Lab.start(engine, world)
    lipo = lab.lipoaspirate()
    lab.move(lipo, "REJECTED", reason="leaking container")
    lab.move(lipo, "DESTROYED", reason="witnessed")
    lot = lab.lot()
    tech, auditor = api.as_("technician"), api.as_("auditor")
    wrong_check = lot[:-1] + ("A" if lot[-1] != "A" else "B")
    with live_server(engine) as url, httpx.Client(base_url=url, timeout=60) as client:
        answers = {
            "not an id": client.post("/api/v1/lab/materials/%0Aabc%0D%0A/label.pdf", headers=tech),
            "wrong check": client.post(
                f"/api/v1/lab/materials/{wrong_check}/label.pdf", headers=tech
            ),
            "fullwidth": client.post(
                "/api/v1/lab/materials/%EF%BC%B8%EF%BC%90/label.pdf", headers=tech
            ),
            "destroyed": client.post(f"/api/v1/lab/materials/{lipo}/label.pdf", headers=tech),
            "poster size": client.post(
                f"/api/v1/lab/materials/{lot}/label.pdf?size=poster", headers=tech
            ),
            "coa of junk": client.get("/api/v1/audit/materials/%0B%0B/coa.pdf", headers=auditor),
            "report of a lot": client.get(
                f"/api/v1/audit/materials/{lot}/custody-report.pdf", headers=auditor
            ),
        }
    expected = {
        "not an id": 422,
        "wrong check": 422,
        "fullwidth": 422,
        "destroyed": 409,
        "poster size": 422,
        "coa of junk": 422,
        "report of a lot": 409,
    }
    got = {name: r.status_code for name, r in answers.items()}
    assert got == expected, {n: r.text[:200] for n, r in answers.items()}
    for name, r in answers.items():
        assert r.headers["content-type"].startswith(PROBLEM), name
        assert r.json()["detail"].strip(), name
    assert _printed(engine, lipo) == 0 and _printed(engine, lot) == 0


def test_marked_up_records_print_over_http(engine: Engine, world: World, api: Api) -> None:
    """The certificate and custody report of records holding markup: 200 and the text."""
    lab = Lab.start(engine, world)
    lot = lot_with_deviations(engine, world, lab)
    with write_session(engine) as s:
        tech = lab.user(s, world.tech_id)
        place = add_storage_location(
            s, site="Lab <b>1", freezer="F", rack="R", box="B", position="P", actor=tech
        )
        move_material(s, material=get_material(s, lot), location=place, actor=tech)
    lab.move(lot, "QC_TESTING")
    lab.pass_qc(lot)
    lab.release(lot)
    dose = lab.allocate(lot, world.patient_coi).outputs[0].material_id
    with live_server(engine) as url, httpx.Client(base_url=url, timeout=60) as client:
        coa = client.get(f"/api/v1/audit/materials/{lot}/coa.pdf", headers=api.as_("auditor"))
        report = client.get(
            f"/api/v1/audit/materials/{dose}/custody-report.pdf", headers=api.as_("auditor")
        )
        label = client.post(
            f"/api/v1/lab/materials/{dose}/label.pdf", headers=api.as_("technician")
        )
    assert coa.status_code == 200, coa.text
    assert report.status_code == 200, report.text
    assert label.status_code == 200, label.text
    assert "fixed <b>by probe" in flat(coa.content)
    assert "retested: <0.5 EU/mL, passed" in flat(coa.content)
    assert "Lab <b>1/F/R/B/P" in flat(report.content)
