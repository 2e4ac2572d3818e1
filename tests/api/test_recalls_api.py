"""The recall API: QA opens (signature, reason), lists, reads, reports and closes; each
clinic sees only its own part and acknowledges; the refusals as problem+json."""

from __future__ import annotations

from sqlalchemy import Engine

from lims.db import write_session
from lims.parties.models import Role
from lims.parties.service import create_clinic, create_user
from lims.signatures.passwords import set_password
from tests.api.conftest import Api
from tests.builders import PASSWORD, Lab
from tests.conftest import World
from tests.recalls.helpers import reached


def test_recall_over_the_api(engine: Engine, world: World, api: Api) -> None:
    lab = Lab.start(engine, world)
    r = reached(lab)
    unreleased = lab.filled_lot()
    c = api.client
    body = {"material_id": r.lot, "reason": "sterility failure on retained sample"}

    wrong = c.post("/api/v1/qa/recalls", json={**body, "password": "nope"}, headers=api.as_("qa"))
    assert wrong.status_code == 401
    assert (
        c.post(
            "/api/v1/qa/recalls", json={**body, "password": PASSWORD}, headers=api.as_("technician")
        ).status_code
        == 403
    )
    unknown = c.post(
        "/api/v1/qa/recalls",
        json={**body, "material_id": "X0001 26 999999 L", "password": PASSWORD},
        headers=api.as_("qa"),
    )
    assert unknown.status_code == 404
    not_released = c.post(
        "/api/v1/qa/recalls",
        json={**body, "material_id": unreleased, "password": PASSWORD},
        headers=api.as_("qa"),
    )
    assert not_released.status_code == 409
    assert not_released.json()["type"] == "/problems/recall_lot_not_released"
    assert c.get("/api/v1/qa/recalls", headers=api.as_("qa")).json()["items"] == []  # none written

    opened = c.post(
        "/api/v1/qa/recalls", json={**body, "password": PASSWORD}, headers=api.as_("qa")
    )
    assert opened.status_code == 201, opened.text
    number = opened.json()["number"]
    assert {i["action"] for i in opened.json()["items"]} == {"recalled", "blocked"}
    assert {n["clinic"] for n in opened.json()["clinics"]} == {"GINZA", "OSAKA"}
    again = c.post("/api/v1/qa/recalls", json={**body, "password": PASSWORD}, headers=api.as_("qa"))
    assert again.status_code == 409 and again.json()["type"] == "/problems/recall_already_open"

    # Each clinic sees its own items only.
    ginza = c.get("/api/v1/clinic/recalls", headers=api.as_("clinic")).json()["items"]
    assert [x["number"] for x in ginza] == [number]
    doses = [i["material_id"].replace(" ", "") for i in ginza[0]["items"]]
    assert doses == [r.ginza_dose]
    assert [n["clinic"] for n in ginza[0]["clinics"]] == ["GINZA"]
    one = c.get(f"/api/v1/clinic/recalls/{number}", headers=api.as_("clinic"))
    assert one.status_code == 200 and one.json() == ginza[0]
    qa_view = c.get(f"/api/v1/qa/recalls/{number}", headers=api.as_("qa"))
    assert qa_view.status_code == 200 and qa_view.json()["number"] == number
    assert {n["clinic"] for n in qa_view.json()["clinics"]} >= {"GINZA"}

    # A clinic the recall did not reach: 404, for reading and for acknowledging.
    with write_session(engine) as s:
        kyoto = create_user(
            s,
            username="kyoto-desk",
            printed_name="Kyoto desk",
            role=Role.CLINIC,
            clinic=create_clinic(s, code="KYOTO", name="Kyoto Clinic"),
        )
        set_password(s, user=kyoto, password=PASSWORD, actor=None)
    token = c.post("/api/v1/auth/token", data={"username": "kyoto-desk", "password": PASSWORD})
    kyoto_h = {"Authorization": f"Bearer {token.json()['access_token']}"}
    assert c.get(f"/api/v1/clinic/recalls/{number}", headers=kyoto_h).status_code == 404
    ack = f"/api/v1/clinic/recalls/{number}/acknowledgement"
    assert c.post(ack, json={}, headers=kyoto_h).status_code == 404

    close = f"/api/v1/qa/recalls/{number}/close"
    refused = c.post(close, json={"password": PASSWORD}, headers=api.as_("qa"))
    assert refused.status_code == 409
    assert refused.json()["type"] == "/problems/recall_not_acknowledged"
    assert refused.json()["clinics"] == ["GINZA", "OSAKA"]

    done = c.post(ack, json={"note": "dose set aside"}, headers=api.as_("clinic"))
    assert done.status_code == 200 and done.json()["clinics"][0]["acknowledged_by"]
    assert c.post(ack, json={}, headers=api.as_("other_clinic")).status_code == 200

    pdf = c.get(f"/api/v1/qa/recalls/{number}/report.pdf", headers=api.as_("qa"))
    assert pdf.headers["content-type"] == "application/pdf" and pdf.content[:4] == b"%PDF"
    csv_ = c.get(f"/api/v1/qa/recalls/{number}/report.csv", headers=api.as_("qa"))
    assert csv_.headers["content-type"].startswith("text/csv")
    assert csv_.text.splitlines()[0].startswith("record,recall,material_id")

    closed = c.post(close, json={"password": PASSWORD}, headers=api.as_("qa"))
    assert closed.status_code == 200 and closed.json()["status"] == "CLOSED"
    assert c.post(close, json={"password": PASSWORD}, headers=api.as_("qa")).json()["type"] == (
        "/problems/recall_closed"
    )
    listed = c.get("/api/v1/qa/recalls?status=CLOSED", headers=api.as_("qa")).json()["items"]
    assert [x["number"] for x in listed] == [number]
