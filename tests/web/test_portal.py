"""The clinic portal and the layout over HTTP (SQLite and PostgreSQL): error pages inside
the layout, lists paged and filtered by the database, the order form's error pattern,
Japanese, and search tenancy. The browser walks are in test_walks.py."""

from __future__ import annotations

import html
import re
from datetime import timedelta
from zoneinfo import ZoneInfo

from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlmodel import select

from lims.db import read_session, utcnow, write_session
from lims.orders.models import DoseOrder
from lims.orders.service import patient_for, place_order
from lims.parties.models import Clinic, Patient
from lims.parties.service import register_patient
from tests.api.conftest import Api
from tests.builders import PASSWORD, Lab
from tests.conftest import World


def _signed_in(api: Api, username: str) -> TestClient:
    client = api.client
    client.cookies.clear()
    form = client.get("/login").text
    token = re.search(r'name="login_csrf" value="([^"]+)"', form)
    assert token, form
    done = client.post(
        "/login",
        data={"username": username, "password": PASSWORD, "login_csrf": token.group(1)},
        follow_redirects=False,
    )
    assert done.status_code == 303, done.text
    return client


def _csrf(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found
    return found.group(1)


HTML = {"Accept": "text/html,application/xhtml+xml"}


def test_error_pages_are_inside_the_layout_and_api_clients_keep_problem_json(
    api: Api,
) -> None:
    client = api.client
    # Signed out: a page that does not exist, in HTML, offering to sign in.
    missing = client.get("/no-such-page", headers=HTML)
    assert missing.status_code == 404 and missing.headers["content-type"].startswith("text/html")
    assert "Page not found" in missing.text and 'href="/login"' in missing.text
    assert 'name="viewport"' in missing.text and 'class="skip"' in missing.text
    # An API client (no HTML in Accept), and any /api/ path, still get problem+json.
    assert client.get("/no-such-page").headers["content-type"] == "application/problem+json"
    api_missing = client.get("/api/v1/nothing", headers=HTML)
    assert api_missing.headers["content-type"] == "application/problem+json"
    icon = client.get("/favicon.ico", headers={"Accept": "image/avif,image/webp,*/*"})
    assert icon.status_code == 200 and icon.headers["content-type"].startswith("image/svg+xml")
    # Signed in: the menu is kept, no "Sign in" is offered, one h1.
    desk = _signed_in(api, "ginza-desk")
    for path, status in (("/no-such-page", 404), ("/bench", 403), ("/audit", 403)):
        shown = desk.get(path, headers=HTML)
        assert shown.status_code == status, path
        assert '<nav aria-label="Main menu">' in shown.text
        assert 'href="/portal/orders/new"' in shown.text
        assert 'href="/login"' not in shown.text and "Sign out" in shown.text
        assert shown.text.count("<h1") == 1


def test_lists_are_paged_filtered_and_sorted_by_the_database(
    engine: Engine, world: World, api: Api
) -> None:
    with write_session(engine) as s:
        clinic = s.get(Clinic, world.clinic_id)
        assert clinic is not None
        for n in range(60):
            register_patient(s, clinic=clinic, identifier_1="1970-01-01", identifier_2=f"P-{n:03d}")
        desk = Lab.start(engine, world).user(s, world.clinic_user_id)
        patient = patient_for(s, actor=desk, coi_id=world.patient_coi)
        for n in range(1, 4):
            place_order(
                s,
                actor=desk,
                patient=patient,
                product="aape",
                dose="1 vial",
                session_number=n,
                sessions_total=6,
                planned_use_at=utcnow() + timedelta(days=10 - n),
                ship_to="Ginza",
                prescriber="Dr. F",
                consent_ref="C-1",
                # Planned in the reverse of session order, to see the sort: out of interval.
                interval_reason="a list test: sessions planned in reverse",
            )
    client = _signed_in(api, "ginza-desk")
    first = client.get("/portal")
    assert first.text.count("<tr><td>COI-") == 50 and "Next page" in first.text
    assert world.other_patient_coi not in first.text
    next_link = re.search(r'href="(/portal\?[^"]*after=[^"]+)" rel="next"', first.text)
    assert next_link, first.text
    second = client.get(html.unescape(next_link.group(1)))
    with read_session(engine) as s:
        total = len(s.exec(select(Patient).where(Patient.clinic_id == world.clinic_id)).all())
    assert second.text.count("<tr><td>COI-") == total - 50 and "Previous page" in second.text
    back = re.search(r'href="(/portal\?[^"]*before=[^"]+)" rel="prev"', second.text)
    assert back
    cois = re.compile(r"<tr><td>(COI-[^<]+)<")
    assert cois.findall(client.get(html.unescape(back.group(1))).text) == cois.findall(first.text)
    found = client.get("/portal?q=P-042")
    assert found.text.count("<tr><td>COI-") == 1 and "P-042" in found.text
    by_ref = client.get("/portal?sort=identifier_2&desc=1")
    refs = re.findall(r"<td>(P-\d{3}|GHC-\d+|DONOR-\d+)</td>", by_ref.text)
    assert refs[0] == "P-059" and refs == sorted(refs, reverse=True)
    orders = client.get("/portal/orders?sort=planned")
    numbers = re.findall(r">(ORD-\d{6})</a>", orders.text)
    assert len(numbers) == 3
    with read_session(engine) as s:
        planned = {o.number: o.planned_use_at for o in s.exec(select(DoseOrder))}
    assert [planned[n] for n in numbers] == sorted(planned[n] for n in numbers)
    assert "+0900" in orders.text  # the clinic's zone, with its offset
    assert client.get("/portal/orders?status=CANCELLED").text.count(">ORD-") == 0
    assert client.get(f"/portal/orders?patient={world.patient_coi}").text.count(">ORD-") == 3
    # A hand-edited cursor or sort is ignored: the first page, not an error.
    assert client.get("/portal?after=bm9wZQ&sort=<script>").text.count("<tr><td>COI-") == 50


def test_order_form_reports_every_problem_at_once_and_keeps_the_values(
    engine: Engine, world: World, api: Api
) -> None:
    client = _signed_in(api, "ginza-desk")
    form = client.get("/portal/orders/new?coi_id=" + world.patient_coi)
    assert form.status_code == 200
    assert 'aria-required="true"' in form.text and "(required)" in form.text
    sent = {
        "csrf": _csrf(form.text),
        "coi_id": world.patient_coi,
        "dose": "3 kg",
        "session_number": "7",
        "sessions_total": "",
        "planned_use_at": "yesterday",
        "ship_to": "Ginza <b>Hair</b> Clinic",
        "prescriber": "",
        "consent_ref": "C-1",
    }
    refused = client.post("/portal/orders", data=sent)
    assert refused.status_code == 422
    summary = refused.text.split('id="error-summary"')[1].split("</div>")[0]
    for field in ("dose", "sessions_total", "planned_use_at", "prescriber"):
        assert f'href="#{field}"' in summary, field
        assert re.search(rf'id="{field}"[^>]*aria-invalid="true"', refused.text), field
    assert "Enter the prescriber&#39;s name" in summary
    assert "[" not in summary  # no citation markers
    assert 'value="Ginza &lt;b&gt;Hair&lt;/b&gt; Clinic"' in refused.text  # kept, escaped
    assert 'value="3 kg"' in refused.text
    with read_session(engine) as s:
        assert s.exec(select(DoseOrder)).all() == []
    # Another clinic's patient is "not found" in people's words.
    refused = client.post(
        "/portal/orders",
        data={
            **sent,
            "coi_id": world.other_patient_coi,
            "dose": "1 vial",
            "sessions_total": "7",
            "prescriber": "Dr. F",
            "planned_use_at": "2099-01-01T10:00",
        },
    )
    assert refused.status_code == 422
    assert "No patient of your clinic has this chain-of-identity id" in refused.text
    # Corrected: placed, with the planned time read in the clinic's zone.
    local = (utcnow() + timedelta(days=4)).astimezone(ZoneInfo("Asia/Tokyo"))
    placed = client.post(
        "/portal/orders",
        data={
            **sent,
            "dose": "4 mL",
            "sessions_total": "7",
            "prescriber": "Dr. F",
            "planned_use_at": local.strftime("%Y-%m-%dT%H:%M"),
        },
        follow_redirects=False,
    )
    assert placed.status_code == 303, placed.text
    shown = client.get(placed.headers["location"])
    assert "Order placed" in shown.text and 'id="dose">4 mL' in shown.text
    assert local.strftime("%Y-%m-%d %H:%M (UTC+0900)") in shown.text


def test_the_portal_speaks_japanese_when_asked(api: Api) -> None:
    client = _signed_in(api, "ginza-desk")
    by_browser = client.get("/portal", headers={"Accept-Language": "ja-JP,ja;q=0.9,en;q=0.5"})
    assert '<html lang="ja">' in by_browser.text
    assert "<h1>患者</h1>" in by_browser.text and "製剤を注文" in by_browser.text
    english = client.get("/portal", headers={"Accept-Language": "en-GB,en;q=0.8"})
    assert "<h1>Patients</h1>" in english.text
    # The person's own choice wins over the browser's.
    chosen = client.post(
        "/language", data={"language": "ja", "next": "/portal/orders/new"}, follow_redirects=False
    )
    assert chosen.status_code == 303 and chosen.headers["location"] == "/portal/orders/new"
    form = client.get("/portal/orders/new", headers={"Accept-Language": "en"})
    assert "（必須）" in form.text and "注文する" in form.text
    elsewhere = client.post(
        "/language", data={"language": "ja", "next": "//evil.example"}, follow_redirects=False
    )
    assert elsewhere.headers["location"] == "/"


def test_search_finds_only_the_clinics_own(engine: Engine, world: World, api: Api) -> None:
    lab = Lab.start(engine, world)
    lipo = lab.lipoaspirate()
    with write_session(engine) as s:
        tech = lab.user(s, world.tech_id)
        theirs = place_order(
            s,
            actor=tech,
            patient=patient_for(s, actor=tech, coi_id=world.other_patient_coi),
            product="aape",
            dose="1 vial",
            session_number=1,
            sessions_total=1,
            planned_use_at=utcnow() + timedelta(days=2),
            ship_to="Osaka",
            prescriber="Dr. O",
            consent_ref="C-9",
        ).number
    desk = _signed_in(api, "ginza-desk")
    assert (
        f"/portal/orders?patient={world.patient_coi}"
        in desk.get(f"/search?q={world.patient_coi.replace('-', '')}").text
    )
    assert "Nothing found" in desk.get(f"/search?q={theirs}").text
    assert "Nothing found" in desk.get(f"/search?q={world.other_patient_coi}").text
    osaka = _signed_in(api, "osaka-desk")
    assert f'href="/portal/orders/{theirs}"' in osaka.get(f"/search?q={theirs}").text
    auditor = _signed_in(api, "audit")
    assert f'href="/audit/materials/{lipo}"' in auditor.get(f"/search?q={lipo[:-1]}").text
    assert "&lt;script&gt;" in auditor.get("/search?q=<script>").text
