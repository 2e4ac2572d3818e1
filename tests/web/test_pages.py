"""The four journeys the web-pages issue names, in a real browser."""

import re
from zoneinfo import ZoneInfo

from playwright.sync_api import Page, expect
from sqlalchemy import Engine

from lims.db import read_session
from lims.materials.service import get_material
from lims.orders.service import patient_for, place_order
from tests.builders import Lab
from tests.conftest import World
from tests.web.conftest import sign_in


def test_technician_sees_unit_message_then_records_the_step(
    page: Page, site: str, engine: Engine, world: World
) -> None:
    lab = Lab.start(engine, world)
    lipo = lab.lipoaspirate(collected_hours=6 * 24 - 5)  # harvested five hours ago
    sign_in(page, site, "tanaka")
    page.goto(f"{site}/bench")
    expect(page.locator("#queue")).to_contain_text("LIPO-INTAKE")
    page.click(f"a[href='/bench/step/LIPO-INTAKE?material={lipo}']")
    expect(page.locator("#input_material_0")).to_have_value(lipo)
    page.fill("#param_transport_temperature", "6 mL")  # the wrong unit
    page.select_option("#param_temperature_excursion", "no")
    page.fill("#param_received_volume", "120 mL")
    page.select_option("#param_donor_site", "abdomen")
    page.select_option("#param_identity_verified", "yes")
    page.select_option("#param_container_intact", "yes")
    page.click("#record")
    expect(page.locator("#param_transport_temperature-error")).to_have_text(
        "Error: Expected a temperature, got 6 mL"
    )
    expect(page.locator("#param_received_volume")).to_have_value("120 mL")  # kept
    page.fill("#param_transport_temperature", "6 degC")
    page.click("#record")
    expect(page.locator("#message")).to_contain_text("LIPO-INTAKE recorded (accepted)")
    with read_session(engine) as s:
        assert get_material(s, lipo).state == "ACCEPTED"
    # A mistyped id is flagged as it is typed, before anything is sent.
    page.goto(f"{site}/bench/scan")
    page.fill("input[name=id]", lipo[:-1] + ("A" if lipo[-1] != "A" else "B"))
    expect(page.locator("#scan-form span.error").last).to_have_text(
        "check character does not match: re-scan or re-type"
    )
    page.fill("input[name=id]", lipo)
    expect(page.locator("#scan-form span.error").last).to_have_text("")
    page.click("#lookup")
    expect(page.locator("#found")).to_contain_text("ACCEPTED")


def test_qa_signs_and_releases_a_lot(page: Page, site: str, engine: Engine, world: World) -> None:
    lab = Lab.start(engine, world)
    lot = lab.lot(released=False)
    lab.move(lot, "QC_TESTING")
    lab.pass_qc(lot)
    sign_in(page, site, "sato")
    page.goto(f"{site}/qa")
    page.click(f"a[href='/qa/lots/{lot}']")
    expect(page.locator("#results")).to_contain_text("PASS")
    page.check("#meaning-1")
    page.fill("#password", "not my password")
    page.click("#sign-release")
    expect(page.locator("#error-summary")).to_contain_text("User name or password is wrong")
    with read_session(engine) as s:
        assert get_material(s, lot).state == "QC_TESTING"
    page.fill("#password", "correct horse battery staple")
    page.click("#sign-release")
    expect(page.locator("#message")).to_contain_text(f"released {lot}")
    with read_session(engine) as s:
        assert get_material(s, lot).state == "RELEASED"


def test_clinic_orders_and_cannot_reach_another_clinic(
    page: Page, site: str, engine: Engine, world: World
) -> None:
    from datetime import timedelta

    from lims.db import utcnow, write_session

    with write_session(engine) as s:
        tech = Lab.start(engine, world).user(s, world.tech_id)
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
    sign_in(page, site, "ginza-desk")
    expect(page.locator("#patients")).to_contain_text(world.patient_coi)
    expect(page.locator("#patients")).not_to_contain_text(world.other_patient_coi)
    page.click(f"a[href='/portal/orders/new?coi_id={world.patient_coi}']")
    expect(page.locator("#coi_id")).to_have_value(world.patient_coi)
    page.fill("#dose", "4 mL")
    page.fill("#session_number", "1")
    page.fill("#sessions_total", "6")
    # The clinic's own local time (its zone is Asia/Tokyo): no offset to type.
    local = utcnow().astimezone(ZoneInfo("Asia/Tokyo")) + timedelta(days=5)
    page.fill("#planned_use_at", local.strftime("%Y-%m-%dT%H:%M"))
    page.fill("#ship_to", "Ginza Hair Clinic, Tokyo")
    page.fill("#prescriber", "Dr. H. Fukuoka")
    page.fill("#consent_ref", "CONSENT-7")
    page.click("#place-order")
    expect(page.locator("#status")).to_have_text("Placed")
    expect(page.locator("#timeline")).to_contain_text("Order placed")
    assert re.search(r"/portal/orders/ORD-\d{6}$", page.url)
    response = page.goto(f"{site}/portal/orders/{theirs}")  # editing the URL
    assert response is not None and response.status == 404
    expect(page.locator("#errors")).to_contain_text(f"no order {theirs}")


def test_auditor_sees_the_lineage_picture_and_a_passing_chain(
    page: Page, site: str, engine: Engine, world: World
) -> None:
    lab = Lab.start(engine, world)
    lot = lab.lot()
    dose = lab.allocate(lot, world.patient_coi).outputs[0].material_id
    sign_in(page, site, "audit")
    page.fill("#q", dose)
    page.click("form[action='/audit'] button")
    expect(page.locator("#lineage")).to_be_visible()
    nodes = page.locator("#lineage g.node")
    assert nodes.count() == 6  # lipoaspirate, SVF, culture, CM batch, lot, dose
    expect(page.locator(f"#lineage g.node[data-material-id='{dose}']")).to_contain_text("Dose")
    expect(page.locator("#custody")).to_contain_text("material.created")
    expect(page.locator("#signatures")).to_have_text("none")  # a fresh dose is unsigned
    page.goto(f"{site}/audit?q={lot}")
    expect(page.locator("#signatures")).to_contain_text("record unchanged since signing")
    page.goto(f"{site}/audit")
    page.click("#verify-chain")
    expect(page.locator("#verdict")).to_contain_text("OK:")
    download = page.request.get(f"{site}/api/v1/audit/exports/custody.jsonl")
    assert download.status == 200 and download.text().count("\n") > 50
