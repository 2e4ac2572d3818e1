"""Lists over HTTP (tenancy, pages, filters) and the label data the API returns, which is
the printed label's text (SQLite and PostgreSQL)."""

from datetime import timedelta
from typing import Any

from sqlalchemy import Engine
from sqlmodel import col, select

from lims.custody.models import CustodyEvent
from lims.db import read_session, utcnow, write_session
from lims.documents.labels import label_lines
from lims.materials.service import get_material
from lims.sops.catalog import SOPS
from lims.sops.service import sync_catalog
from tests.api.conftest import Api
from tests.builders import Lab
from tests.conftest import World


def _order(api: Api, coi: str, who: str = "clinic", session_number: int = 1) -> dict[str, Any]:
    r = api.client.post(
        "/api/v1/clinic/orders",
        headers=api.as_(who),
        json={
            "coi_id": coi,
            "dose": "1 vial",
            "session_number": session_number,
            "sessions_total": 6,
            "planned_use_at": (
                utcnow() + timedelta(days=3, weeks=4 * (session_number - 1))
            ).isoformat(),
            "ship_to": "  Ginza Hair Clinic  ",
            "prescriber": "Dr. F",
            "consent_ref": "C-1",
        },
    )
    assert r.status_code == 201, r.text
    return dict(r.json())


def test_clinic_lists_hold_only_the_clinics_own_rows(api: Api, world: World) -> None:
    mine = [_order(api, world.patient_coi, session_number=n)["number"] for n in (1, 2, 3)]
    theirs = _order(api, world.other_patient_coi, who="other_clinic")["number"]
    extra = _order(api, world.patient_coi, session_number=4)
    assert extra["ship_to"] == "Ginza Hair Clinic"  # stripped, once, by the order model

    def get(who: str, path: str) -> dict[str, Any]:
        r = api.client.get(f"/api/v1{path}", headers=api.as_(who))
        assert r.status_code == 200, r.text
        return dict(r.json())

    first = get("clinic", "/clinic/orders?limit=2")
    rest = get("clinic", f"/clinic/orders?limit=2&offset={first['next_offset']}")
    assert [o["number"] for o in first["items"]] == mine[:2] and first["next_offset"] == 2
    assert [o["number"] for o in rest["items"]] == [mine[2], extra["number"]]
    assert rest["next_offset"] is None
    assert theirs not in {o["number"] for o in first["items"] + rest["items"]}
    osaka = get("other_clinic", "/clinic/orders")
    assert [o["number"] for o in osaka["items"]] == [theirs]
    assert get("other_clinic", "/clinic/orders?status=cancelled")["items"] == []
    patients = get("clinic", "/clinic/patients?limit=1")
    assert [p["coi_id"] for p in patients["items"]] == [world.patient_coi]
    assert patients["next_offset"] == 1
    more = get("clinic", "/clinic/patients?limit=1&offset=1")
    assert [p["coi_id"] for p in more["items"]] == [world.donor_coi]
    assert more["next_offset"] is None
    assert [p["coi_id"] for p in get("other_clinic", "/clinic/patients")["items"]] == [
        world.other_patient_coi
    ]
    lab = get("technician", "/lab/orders?status=placed")
    assert {o["number"] for o in lab["items"]} >= {*mine, theirs}


def test_the_lab_lists_the_sop_versions_in_force(api: Api, engine: Engine, world: World) -> None:
    v1 = next(s for s in SOPS if s.code == "LIPO-INTAKE" and s.version == 1)
    v2 = v1.model_copy(update={"version": 2, "effective_from": (utcnow() - timedelta(1)).date()})
    with write_session(engine) as s:
        sync_catalog(s, sops=[v2])
    r = api.client.get("/api/v1/lab/sops", headers=api.as_("technician"))
    assert r.status_code == 200
    versions = {sop["code"]: sop["version"] for sop in r.json()}
    assert versions["LIPO-INTAKE"] == 2 and len(versions) == len(r.json())


def test_the_api_label_is_the_printed_label(api: Api, engine: Engine, world: World) -> None:
    Lab.start(engine, world).lot()
    number = _order(api, world.patient_coi)["number"]
    r = api.client.post(
        f"/api/v1/lab/orders/{number}/allocation", headers=api.as_("technician"), json={}
    )
    assert r.status_code == 200, r.text
    label = r.json()["label"]
    dose = label["material_id"]
    printed = api.client.post(
        f"/api/v1/lab/materials/{dose}/label.pdf", headers=api.as_("technician")
    )
    assert printed.status_code == 200
    with read_session(engine) as s:
        expected = label_lines(s, material=get_material(s, dose))
        event = s.exec(
            select(CustodyEvent).where(
                col(CustodyEvent.action) == "label.printed", col(CustodyEvent.entity_id) == dose
            )
        ).one()
    assert event.new is not None
    assert label["lines"] == expected == event.new["lines"]
    # Every field the API gives is a line of the printed label.
    assert label["printed_id"] == expected[0]
    assert label["product"] == expected[1]
    assert f"Patient {label['patient_coi']}" == expected[2]
    assert label["storage"] == expected[4]
    assert label["statement"] == "FOR AUTOLOGOUS USE ONLY" and label["statement"] in expected
    clinic_view = api.client.get(f"/api/v1/clinic/orders/{number}", headers=api.as_("clinic"))
    assert clinic_view.json()["label"] == label
