"""The dose's last steps walked in Chromium (axe-core on every page, the tab fixtures): the
clinic desk on a phone uploads the logger file at receipt, reconstitutes, is refused a
wrong patient's wristband at the bedside and gives the dose; QA on a desktop releases a
dose quarantined after an excursion."""

from __future__ import annotations

from pathlib import Path

from playwright.sync_api import Page, expect
from sqlalchemy import Engine

from tests.builders import PASSWORD, Lab
from tests.conftest import World
from tests.doses.helpers import allocate, dispatch, order
from tests.web.conftest import sign_in
from tests.web.test_walks import _fits_a_phone

LOGGER_OK = "time,temperature\n2026-12-01T10:00:00+09:00,-78.5\n2026-12-01T11:00:00+09:00,-76\n"
LOGGER_WARM = LOGGER_OK + "2026-12-01T12:00:00+09:00,25.5\n"


def _shipped(lab: Lab, session_number: int) -> tuple[str, str]:
    number = order(lab, session_number=session_number)
    dose = allocate(lab, number)
    dispatch(lab, number, dose)
    return number, dose


def test_the_bedside_on_a_phone(
    phone: Page, site: str, engine: Engine, world: World, tmp_path: Path
) -> None:
    lab = Lab.start(engine, world)
    lab.lot()
    number, dose = _shipped(lab, 1)
    logger = tmp_path / "TL-1.csv"
    logger.write_text(LOGGER_OK)
    sign_in(phone, site, "ginza-desk")
    phone.goto(f"{site}/portal/orders/{number}")
    _fits_a_phone(phone)
    phone.fill("#temperature", "-75 degC")
    phone.fill("#received_by", "Nurse K. Ito")
    phone.set_input_files("#logger", str(logger))
    phone.click("#confirm-receipt")
    expect(phone.locator("#dose-state")).to_have_attribute("data-state", "RECEIVED_AT_CLINIC")
    expect(phone.locator("#logger")).to_contain_text("2 readings")
    _fits_a_phone(phone)
    phone.fill("#diluent_lot", "WFI-7")
    phone.click("#reconstitute")
    expect(phone.locator("#in-use-left")).to_contain_text("left")
    _fits_a_phone(phone)
    # The wrong wristband: refused, the summary takes the focus, the values are kept.
    phone.fill("#scanned_label", dose)
    phone.fill("#scanned_patient", world.donor_coi)
    phone.fill("#administered_by", "Dr. H. Fukuoka")
    phone.fill("#volume_given", "4 mL")
    phone.click("#administer")
    summary = phone.locator("#error-summary")
    expect(summary).to_be_focused()
    expect(summary).to_contain_text("Do not administer: this is not the dose's patient")
    expect(phone.locator("#scanned_patient")).to_have_attribute("aria-invalid", "true")
    expect(phone.locator("#scanned_label")).to_have_value(dose)
    expect(phone.locator("#dose-state")).to_have_attribute("data-state", "RECONSTITUTED")
    _fits_a_phone(phone)
    summary.locator("a[href='#scanned_patient']").click()
    expect(phone.locator("#scanned_patient")).to_be_focused()
    phone.fill("#scanned_patient", world.patient_coi)
    phone.click("#administer")
    expect(phone.locator("#dose-state")).to_have_attribute("data-state", "ADMINISTERED")
    expect(phone.locator("#administered")).to_contain_text("4 mL given, 0 mL discarded")
    expect(phone.locator("#timeline")).to_contain_text("Nurse K. Ito")
    _fits_a_phone(phone)


def test_qa_releases_a_quarantined_dose(
    page: Page, phone: Page, site: str, engine: Engine, world: World, tmp_path: Path
) -> None:
    lab = Lab.start(engine, world)
    lab.lot()
    number, dose = _shipped(lab, 1)
    logger = tmp_path / "TL-2.csv"
    logger.write_text(LOGGER_WARM)
    sign_in(phone, site, "ginza-desk")
    phone.goto(f"{site}/portal/orders/{number}")
    phone.fill("#temperature", "-75 degC")
    phone.fill("#received_by", "Nurse K. Ito")
    phone.set_input_files("#logger", str(logger))
    phone.click("#confirm-receipt")
    expect(phone.locator("#quarantine")).to_be_visible()
    expect(phone.locator("#reconstitute")).to_have_count(0)
    lab.ensure_password(world.qa_id)
    sign_in(page, site, "sato")
    page.goto(f"{site}/home")
    page.click(f"a[href='/qa/doses/{dose}']")
    expect(page.locator("#excursion")).to_contain_text("25.5 degC")
    page.click("#sign-quarantine")
    expect(page.locator("#error-summary")).to_be_focused()
    page.locator("label[for='decision-1']").click()
    page.fill("#reason", "stability data cover 2 h at 25 degC")

    page.fill("#password", PASSWORD)
    page.click("#sign-quarantine")
    expect(page.locator("#dose-state")).to_have_attribute("data-state", "RECEIVED_AT_CLINIC")
    phone.reload()
    expect(phone.locator("#reconstitute")).to_be_visible()
