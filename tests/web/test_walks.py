"""Each role's day, walked in Chromium with screenshots (printed paths): the clinic desk
on a phone (390 px) from finding a patient to confirming receipt, and the auditor from a
search to the lineage, the documents and the chain verification. axe-core runs on every
page (the tab fixtures)."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from playwright.sync_api import Page, expect
from sqlalchemy import Engine

from lims.db import utcnow, write_session
from lims.orders.service import allocate_order, dispatch_order, order_for
from lims.signatures.models import Meaning
from lims.signatures.service import sign
from tests.builders import PASSWORD, Lab
from tests.conftest import World
from tests.web.conftest import sign_in

# Controls smaller than this fail (WCAG 2.5.5); links inside a sentence of the error
# summary are the pattern's own exception.
TAP = 44
SMALL_TARGETS = """() => [...document.querySelectorAll('a, button, input, select, textarea')]
  .filter(e => e.offsetParent !== null && !e.closest('.error-summary'))
  .map(e => [e, e.getBoundingClientRect()])
  .filter(([e, r]) => r.height < 44 || r.width < 44)
  .map(([e, r]) => `${e.tagName.toLowerCase()}#${e.id || e.textContent.trim().slice(0, 20)}`
       + ` ${Math.round(r.width)}x${Math.round(r.height)}`)"""


class Shots:
    def __init__(self, tab: Page, folder: Path) -> None:
        self.tab, self.folder, self.n = tab, folder, 0
        folder.mkdir(parents=True, exist_ok=True)

    def __call__(self, name: str) -> None:
        self.n += 1
        path = self.folder / f"{self.n:02d}-{name}.png"
        self.tab.screenshot(path=str(path), full_page=True)
        print(f"screenshot: {path}")


def _fits_a_phone(tab: Page) -> None:
    """No sideways scrolling of the page, and every control big enough to tap."""
    assert tab.evaluate("document.documentElement.scrollWidth") <= 390, tab.url
    assert tab.evaluate(SMALL_TARGETS) == [], tab.url
    assert tab.locator("h1").count() == 1, tab.url


def _lab_fulfils(lab: Lab, world: World, number: str) -> str:
    with write_session(lab.engine) as s:
        tech = lab.user(s, world.tech_id)
        dose = allocate_order(s, order=order_for(s, actor=tech, number=number), actor=tech)
        dose_id = dose.material_id
    lab.move(dose_id, "LABELED")
    for user_id, meaning in (
        (world.tech_id, Meaning.PERFORMED),
        (world.tech2_id, Meaning.VERIFIED),
    ):
        lab.ensure_password(user_id)
        with write_session(lab.engine) as s:
            sign(
                s,
                user=lab.user(s, user_id),
                password=PASSWORD,
                meaning=meaning,
                record_type="material",
                record_id=dose_id,
            )
    with write_session(lab.engine) as s:
        tech = lab.user(s, world.tech_id)
        dispatch_order(
            s,
            order=order_for(s, actor=tech, number=number),
            actor=tech,
            scanned_label=dose_id,
            shipper="ColdChain",
            temperature_logger="TL-1",
            transit="18 h",
        )
    return dose_id


def test_the_clinic_desks_day_on_a_phone(
    phone: Page, site: str, engine: Engine, world: World, tmp_path: Path
) -> None:
    lab = Lab.start(engine, world)
    lab.lot()  # the patient's own released lot
    shot = Shots(phone, tmp_path / "clinic")
    sign_in(phone, site, "ginza-desk")
    expect(phone.locator("h1")).to_have_text("Patients")
    _fits_a_phone(phone)
    shot("patients")
    phone.fill("#q", "GHC-000123")
    phone.click("form[role=search] button")
    expect(phone.locator("#patients tbody tr")).to_have_count(1)
    phone.click(f"a[href='/portal/orders/new?coi_id={world.patient_coi}']")
    expect(phone.locator("#coi_id")).to_have_value(world.patient_coi)
    _fits_a_phone(phone)
    phone.fill("#dose", "3 kg")
    phone.click("#place-order")
    summary = phone.locator("#error-summary")
    expect(summary).to_be_focused()
    for field in ("dose", "session_number", "sessions_total", "planned_use_at", "ship_to"):
        expect(summary.locator(f"a[href='#{field}']")).to_be_visible()
    expect(phone.locator("#dose")).to_have_value("3 kg")
    expect(phone.locator("#dose")).to_have_attribute("aria-invalid", "true")
    _fits_a_phone(phone)
    shot("order-form-refused")
    summary.locator("a[href='#dose']").click()
    expect(phone.locator("#dose")).to_be_focused()
    phone.fill("#dose", "4 mL")
    phone.fill("#session_number", "2")
    phone.fill("#sessions_total", "6")
    local = utcnow().astimezone(ZoneInfo("Asia/Tokyo")) + timedelta(days=3)
    phone.fill("#planned_use_at", local.strftime("%Y-%m-%dT%H:%M"))
    phone.fill("#ship_to", "Ginza Hair Clinic, Tokyo")
    phone.fill("#prescriber", "Dr. H. Fukuoka")
    phone.fill("#consent_ref", "CONSENT-2026-0042")
    phone.click("#place-order")
    expect(phone.locator("#status")).to_have_text("Placed")
    number = phone.url.rsplit("/", 1)[-1]
    shot("order-placed")
    dose = _lab_fulfils(lab, world, number)
    phone.reload()
    expect(phone.locator("#status")).to_have_text("Dispatched")
    timeline = phone.locator("#timeline li")
    expect(phone.locator("#timeline")).to_contain_text("Dose dispatched")
    times = [
        datetime.fromisoformat(t)
        for t in phone.locator("#timeline time").evaluate_all("ts => ts.map(t => t.dateTime)")
    ]
    assert times == sorted(times) and all(t.utcoffset() == timedelta(hours=9) for t in times)
    assert timeline.count() >= 3
    expect(phone.locator("#timeline")).to_contain_text("(UTC+0900)")
    expect(phone.locator("main")).to_contain_text(dose[:5])
    _fits_a_phone(phone)
    shot("order-dispatched")
    phone.fill("#temperature", "4.5 degC")
    phone.fill("#received_by", "Nurse K. Ito")
    phone.click("form[action$='/receipt'] button")
    expect(phone.locator("#status")).to_have_text("Received")
    expect(phone.locator("#timeline")).to_contain_text("Dose received at the clinic")
    phone.goto(f"{site}/portal/orders")
    expect(phone.locator("#orders")).to_contain_text(number)
    _fits_a_phone(phone)
    shot("orders")
    phone.select_option("#language", "ja")
    phone.click("form.lang button")
    expect(phone.locator("h1")).to_have_text("注文")
    expect(phone.locator("html")).to_have_attribute("lang", "ja")
    _fits_a_phone(phone)
    shot("orders-ja")


def test_the_auditors_day(
    page: Page, site: str, engine: Engine, world: World, tmp_path: Path
) -> None:
    lab = Lab.start(engine, world)
    lot = lab.lot()
    dose = lab.allocate(lot, world.patient_coi).outputs[0].material_id
    shot = Shots(page, tmp_path / "auditor")
    sign_in(page, site, "audit")
    page.goto(f"{site}/search")
    page.fill("#q", dose[:-1])  # typed without the check character
    page.click("#search-button")
    page.click(f"#results a[href='/audit/materials/{dose}']")
    expect(page.locator("h1")).to_have_text(f"{dose[:5]} {dose[5:7]} {dose[7:13]} {dose[13]}")
    expect(page.locator("#custody-report")).to_be_visible()
    expect(page.locator("#coa")).to_have_count(0)  # a dose has no certificate of its own
    nodes = page.locator("#lineage g.node")
    assert nodes.count() == 6
    assert page.locator("#lineage line.edge").count() == 5  # one per recorded edge
    size = page.locator(f"#lineage g.node[data-material-id='{dose}'] text").first.evaluate(
        "t => parseFloat(getComputedStyle(t).fontSize)"
    )
    assert size >= 14
    shot("dose")
    report = page.request.get(f"{site}/api/v1/audit/materials/{dose}/custody-report.pdf")
    assert report.status == 200 and report.headers["content-type"] == "application/pdf"
    page.click(f"#lineage a[href='/audit/materials/{lot}']")  # a box is a link
    expect(page).to_have_url(f"{site}/audit/materials/{lot}")
    expect(page.locator("#coa")).to_be_visible()
    expect(page.locator("#custody-report")).to_have_count(0)
    expect(page.locator("#signatures")).to_contain_text("record unchanged since signing")
    shot("lot")
    page.goto(f"{site}/audit")
    page.click("#verify-chain")
    expect(page.locator("#verdict")).to_contain_text("OK:")
    shot("chain-verified")
    missing = page.goto(f"{site}/audit/materials/X0001 26 999999 A")
    assert missing is not None and missing.status in (404, 422)
    expect(page.locator("nav[aria-label='Main menu']")).to_be_visible()
    expect(page.locator("main")).not_to_contain_text("Sign in")
