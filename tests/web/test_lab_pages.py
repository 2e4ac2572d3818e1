"""The lab's pages in a real browser: homes per role, and a clinic's order fulfilled with
no API call (allocate -> label -> two signatures -> dispatch by scanning the label)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from playwright.sync_api import Page, expect
from sqlalchemy import Engine

from lims.db import read_session, utcnow, write_session
from lims.materials.models import Material
from lims.materials.service import get_material
from lims.orders.queries import find_order
from lims.orders.service import patient_for, place_order
from tests.builders import Lab
from tests.conftest import World
from tests.web.conftest import sign_in


def _order(lab: Lab, coi: str) -> str:
    with write_session(lab.engine) as s:
        desk = lab.user(s, lab.world.clinic_user_id)
        return place_order(
            s,
            actor=desk,
            patient=patient_for(s, actor=desk, coi_id=coi),
            product="aape",
            dose="1 vial",
            session_number=1,
            sessions_total=6,
            planned_use_at=utcnow() + timedelta(days=3),
            ship_to="Ginza Hair Clinic, Tokyo",
            prescriber="Dr. H. Fukuoka",
            consent_ref="CONSENT-42",
        ).number


def _sign_out(page: Page) -> None:
    page.click("header form[action='/logout'] button")


def test_the_lab_fulfils_a_clinic_order_in_the_browser(
    page: Page, site: str, engine: Engine, world: World, tmp_path: Path
) -> None:
    lab = Lab.start(engine, world)
    first, second = lab.lot(), lab.lot()
    number = _order(lab, world.patient_coi)
    sign_in(page, site, "tanaka")
    assert page.url.endswith("/home")  # "/" leads a technician to the lab's home
    expect(page.locator("#orders-placed .count")).to_have_text("1")
    page.click(f"#orders-placed a[href='/lab/orders/{number}']")
    page.screenshot(path=str(tmp_path / "1-order.png"), full_page=True)
    # Two lots qualify: nothing is chosen for the person, the first to expire is suggested.
    expect(page.locator("#allocate-form input[name=lot]")).to_have_count(2)
    expect(page.locator("#allocate-form input[name=lot]:checked")).to_have_count(0)
    expect(page.locator("#allocate-form")).to_contain_text("suggested: first to expire")
    page.click("#allocate")
    summary = page.locator("#error-summary")
    expect(summary).to_be_focused()
    expect(summary.locator("a[href='#lot']")).to_have_text("Choose the lot to take the dose from")
    page.check(f"#allocate-form input[value='{second}']")
    page.click("#allocate")
    expect(page.locator("#message")).to_contain_text("Allocated: dose")
    with read_session(engine) as s:
        order = find_order(s, number=number)
        dose = s.get(Material, order.dose_material_id)
        assert dose is not None and order.status == "ALLOCATED"
        dose_id = dose.material_id
        assert get_material(s, second).remaining_canonical == 14
        assert get_material(s, first).remaining_canonical == 15
    # Label: the PDF is printed (a real request), then the label is confirmed on the dose.
    # Printing is a form (POST, CSRF-checked): the button's own form, as the browser sends it.
    expect(page.locator("#label-bag")).to_be_visible()
    csrf = page.locator("#label-bag-form input[name=csrf]").get_attribute("value")
    label = page.request.post(
        f"{site}/lab/materials/{dose_id}/label", form={"csrf": csrf or "", "size": "bag"}
    )
    assert label.status == 200 and label.body().startswith(b"%PDF")
    forged = page.request.post(f"{site}/lab/materials/{dose_id}/label", form={"size": "bag"})
    assert forged.status == 403  # without the page's CSRF token nothing is printed
    page.click("#labelled")
    expect(page.locator("#message")).to_have_text("Label applied")
    # The gate already says what stands in the way: both signatures.
    expect(page.locator("#gate-standing li")).to_have_count(2)
    expect(page.locator("#gate-standing [data-code=no_packer]")).to_be_visible()
    # What is signed is on the page before signing.
    expect(page.locator(".signing dl")).to_contain_text("Material id")
    page.check("#sign-form input[value=performed]")
    page.fill("#password", "not my password")
    page.click("#sign")
    expect(page.locator("#error-summary")).to_be_focused()
    expect(page.locator("#password")).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#sign-form input[value=performed]")).to_be_checked()  # kept
    page.fill("#password", "correct horse battery staple")
    page.click("#sign")
    expect(page.locator("#message")).to_have_text("Signed as packer")
    # Scanning before the second signature: the gate's refusal is explained, values kept.
    page.fill("#scanned_label", dose_id)
    page.fill("#shipper", "ColdChain Couriers")
    page.fill("#temperature_logger", "TL-0042")
    page.fill("#transit", "18 h")
    page.click("#dispatch")
    expect(page.locator("#error-summary")).to_contain_text(
        "Signatures: no second verifier (meaning 'verified') other than the packer"
    )
    expect(page.locator("#shipper")).to_have_value("ColdChain Couriers")
    page.screenshot(path=str(tmp_path / "2-refused.png"), full_page=True)
    _sign_out(page)
    sign_in(page, site, "mori")
    page.goto(f"{site}/lab/orders/{number}")
    page.check("#sign-form input[value=verified]")
    page.fill("#password", "correct horse battery staple")
    page.click("#sign")
    expect(page.locator("#gate-clear")).to_be_visible()
    # The wrong label scanned (the other lot): named by the field it concerns.
    page.fill("#scanned_label", first)
    page.fill("#shipper", "ColdChain Couriers")
    page.fill("#temperature_logger", "TL-0042")
    page.fill("#transit", "18 h")
    page.click("#dispatch")
    expect(page.locator("#scanned_label-error")).to_contain_text("Label: scanned")
    expect(page.locator("#scanned_label")).to_have_attribute("aria-invalid", "true")
    page.fill("#scanned_label", dose_id)
    page.click("#dispatch")
    expect(page.locator("#message")).to_have_text("Dispatched with ColdChain Couriers")
    page.screenshot(path=str(tmp_path / "3-dispatched.png"), full_page=True)
    with read_session(engine) as s:
        assert find_order(s, number=number).status == "DISPATCHED"
        assert get_material(s, dose_id).state == "IN_TRANSIT"


def test_the_front_door_leads_each_role_to_its_home(
    page: Page, site: str, engine: Engine, world: World
) -> None:
    lab = Lab.start(engine, world)
    lot = lab.filled_lot()
    lab.move(lot, "QC_TESTING")
    page.goto(f"{site}/")
    assert page.url.endswith("/login")
    for username, home in (("ginza-desk", "/portal"), ("audit", "/audit"), ("sato", "/home")):
        sign_in(page, site, username)
        page.goto(f"{site}/")
        assert page.url.endswith(home), (username, page.url)
        if username != "sato":
            _sign_out(page)
    expect(page.locator("h1")).to_have_text("QA today")
    expect(page.locator("#in-qc .count")).to_have_text("1")
    expect(page.locator(f"#in-qc a[href='/qa/lots/{lot}']")).to_be_visible()
    expect(page.locator("#deviations .count")).to_have_text("0")


def test_qa_sees_what_blocks_a_lot_holds_it_closes_the_deviation_and_releases(
    page: Page, site: str, engine: Engine, world: World, tmp_path: Path
) -> None:
    from lims.qc.deviations import open_deviation

    lab = Lab.start(engine, world)
    lot = lab.filled_lot()
    lab.move(lot, "QC_TESTING")
    sign_in(page, site, "sato")
    page.goto(f"{site}/qa/lots/{lot}")
    # Nothing entered yet: not ready, results missing named, VEGF marked optional.
    expect(page.locator("#readiness h2")).to_contain_text("Not ready: 1 blocking item")
    expect(page.locator("#blockers [data-code=missing]")).to_contain_text("results missing for")
    expect(page.locator("#optional-missing")).to_contain_text("VEGF")
    expect(page.locator("#release-form")).to_have_count(0)  # no sign form while not ready
    expect(page.locator("#certificate-link")).to_be_visible()
    expect(page.locator("#lineage-link")).to_have_attribute("href", f"/audit?q={lot}")
    lab.pass_qc(lot)
    with write_session(engine) as s:
        deviation = open_deviation(
            s,
            material=get_material(s, lot),
            description="Fill room pressure alarm during filling",
            actor=lab.user(s, world.tech_id),
        ).number
    page.reload()
    expect(page.locator("#blockers [data-code=deviation]")).to_contain_text(deviation)
    expect(page.locator("#optional-missing")).to_contain_text("VEGF")  # still shown
    # Hold: a reason is asked; nothing is pre-chosen.
    expect(page.locator("#state-form input[name=to_state]:checked")).to_have_count(0)
    page.check("#state-form input[value=ON_HOLD]")
    page.click("#move")
    expect(page.locator("#error-summary a[href='#reason']")).to_have_text("Say why, for the record")
    expect(page.locator("#state-form input[value=ON_HOLD]")).to_be_checked()  # kept
    page.fill("#reason", f"{deviation} under investigation")
    page.click("#move")
    expect(page.locator("#message")).to_contain_text("On hold")
    expect(page.locator("#readiness h2")).to_contain_text("Not releasable from On hold")
    expect(page.locator("#release-form")).to_have_count(0)
    page.screenshot(path=str(tmp_path / "held.png"), full_page=True)
    # Close the deviation (its resolution required), end the hold, then release.
    page.click(f"#close-button-{deviation}")
    expect(page.locator(f"#resolution-{deviation}")).to_have_attribute("aria-invalid", "true")
    page.fill(f"#resolution-{deviation}", "Alarm was a sensor fault; room within limits")
    page.click(f"#close-button-{deviation}")
    expect(page.locator("#message")).to_have_text(f"{deviation} closed")
    page.check("#state-form input[value=QC_TESTING]")
    page.fill("#reason", f"{deviation} closed")
    page.click("#move")
    expect(page.locator("#readiness h2")).to_have_text("Ready to release")
    expect(page.locator(".signing")).to_contain_text("released")
    page.check("#meaning-1")
    page.fill("#password", "correct horse battery staple")
    page.click("#sign-release")
    expect(page.locator("#message")).to_contain_text(f"released {lot}")
    with read_session(engine) as s:
        assert get_material(s, lot).state == "RELEASED"


def test_a_scan_opens_the_material_with_its_next_steps_and_storage_is_a_grid(
    page: Page, site: str, engine: Engine, world: World
) -> None:
    from lims.identity.codes import format_material_id
    from lims.materials.service import add_storage_location

    lab = Lab.start(engine, world)
    lot = lab.lot()
    with write_session(engine) as s:
        tech = lab.user(s, world.tech_id)
        for row in "AB":
            for column in (1, 2, 3):
                add_storage_location(
                    s,
                    site="Lab 1",
                    freezer="ULT-80-A",
                    rack="R1",
                    box="B1",
                    position=f"{row}{column}",
                    actor=tech,
                )
    sign_in(page, site, "tanaka")
    page.goto(f"{site}/bench/scan")
    page.fill("#id", format_material_id(lot))  # as printed, with spaces
    page.click("#lookup")
    expect(page.locator("#found")).to_contain_text("Released")
    expect(page.locator("#stored-at")).to_have_text("not in storage")
    expect(page.locator("#next-steps")).to_contain_text("DOSE-ALLOCATE")
    expect(page.locator("#events")).to_contain_text("Material.created")
    # Move: nothing pre-chosen; a position the box does not have is named by its field.
    expect(page.locator("#box")).to_have_value("")
    page.select_option("#box", "Lab 1 / ULT-80-A / R1 / B1")
    page.fill("#position", "C9")
    page.click("#move")
    expect(page.locator("#position-error")).to_contain_text("has no position C9")
    expect(page.locator("#box")).to_have_value("Lab 1 / ULT-80-A / R1 / B1")  # kept
    page.fill("#position", "b2")
    page.click("#move")
    expect(page.locator("#message")).to_contain_text("moved to Lab 1/ULT-80-A/R1/B1/B2")
    expect(page.locator("#stored-at")).to_have_text("Lab 1/ULT-80-A/R1/B1/B2")
    # Storage is in the menu; a box is a grid; searching an id shows its box, marked.
    page.click("header a[href='/bench/storage']")
    page.fill("#q", lot)
    page.click("#find")
    expect(page.locator("#box tbody tr")).to_have_count(2)
    expect(page.locator("#box thead th")).to_have_count(3)
    expect(page.locator("#box td.here")).to_have_attribute("data-position", "B2")
    expect(page.locator("#box td.full")).to_have_count(1)
    page.fill("#q", "ULT-80")
    page.click("#find")
    expect(page.locator("#tree")).to_contain_text("box B1")


def test_a_refused_bench_form_follows_the_error_pattern(
    page: Page, site: str, engine: Engine, world: World
) -> None:
    lab = Lab.start(engine, world)
    lipo = lab.accepted_lipoaspirate()
    sign_in(page, site, "tanaka")
    page.goto(f"{site}/bench/step/SVF-SEP?material={lipo}")
    # Instruments and reagent lots are the person's to choose; labels are words.
    expect(page.locator("label[for=instrument_shaking_incubator]")).to_contain_text(
        "Shaking incubator (required)"
    )
    for select in (
        "#instrument_centrifuge",
        "#instrument_shaking_incubator",
        "#reagent_collagenase",
    ):
        expect(page.locator(select)).to_have_value("")
    page.fill("#input_quantity_0", "100 mL")
    page.click("#record")
    summary = page.locator("#error-summary")
    expect(summary).to_be_focused()
    expect(summary).to_have_attribute("role", "alert")
    link = summary.locator("a[href='#instrument_centrifuge']")
    expect(link).to_have_text("Choose the centrifuge you used")
    expect(summary.locator("a[href='#reagent_collagenase']")).to_have_text(
        "Choose the collagenase lot you used"
    )
    expect(summary).not_to_contain_text("[")  # no citation markers
    expect(page.locator("#instrument_centrifuge")).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#instrument_centrifuge")).to_have_attribute(
        "aria-describedby", "instrument_centrifuge-error"
    )
    expect(page.locator("#input_quantity_0")).to_have_value("100 mL")  # kept
    link.click()
    expect(page.locator("#instrument_centrifuge")).to_be_focused()
