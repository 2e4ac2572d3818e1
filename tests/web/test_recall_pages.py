"""Recalls and a clinic's integrations in a real browser, with no API call by hand: QA
recalls a lot from its page (signature refused, then given), reads who was told, fetches
the report, is refused closing without acknowledgements; the clinic sees the banner (in
Japanese), reads its doses and acknowledges; QA closes by signed override. The clinic
registers a webhook endpoint, pings it, reads the delivery log, redelivers, rotates the
secret, disables it, and adds an e-mail contact. axe-core runs on every page."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import Engine
from sqlmodel import select
from standardwebhooks import Webhook

from lims.db import read_session
from lims.notifications import delivery
from lims.recalls.models import Recall, RecallStatus
from lims.settings import NotificationSettings, get_notification_settings
from tests.builders import PASSWORD, Lab
from tests.conftest import World
from tests.notifications.receivers import WebhookReceiver
from tests.recalls.helpers import reached
from tests.web.conftest import sign_in


def _sign_out(page: Page) -> None:
    page.click("header form[action='/logout'] button")


def test_qa_recalls_a_lot_and_the_clinic_acknowledges_in_the_browser(
    page: Page, site: str, engine: Engine, world: World
) -> None:
    lab = Lab.start(engine, world)
    r = reached(lab)
    sign_in(page, site, "sato")
    page.goto(f"{site}/qa/lots/{r.lot}")
    page.click("#recall-link")
    page.click("#sign-recall")  # nothing filled in: every problem at once
    summary = page.locator("#error-summary")
    expect(summary).to_be_focused()
    expect(summary.locator("a[href='#reason']")).to_have_text("Say why the lot is recalled")
    expect(summary.locator("a[href='#password']")).to_be_visible()
    page.fill("#reason", "endotoxin retest out of specification")
    page.check("#recall-form input[value=approved]")
    page.fill("#password", "not my password")
    page.click("#sign-recall")
    expect(page.locator("#password")).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#reason")).to_have_value("endotoxin retest out of specification")
    with read_session(engine) as s:
        assert s.exec(select(Recall)).all() == []  # a refused signature writes no recall
    page.check("#recall-form input[value=approved]")
    page.fill("#password", PASSWORD)
    page.click("#sign-recall")
    expect(page.locator("#message")).to_contain_text("Recall RC-")
    number = page.locator("h1").inner_text().split()[1]
    expect(page.locator(f"#items tr[data-material='{r.ginza_dose}']")).to_have_attribute(
        "data-action", "recalled"
    )
    expect(page.locator(f"#items tr[data-material='{r.osaka_dose}']")).to_have_attribute(
        "data-action", "blocked"
    )
    expect(page.locator("#notices tr[data-clinic=GINZA] .ack")).to_contain_text("not yet")
    pdf = page.request.get(site + str(page.locator("#report-pdf").get_attribute("href")))
    assert pdf.status == 200 and pdf.body().startswith(b"%PDF")
    csv_ = page.request.get(site + str(page.locator("#report-csv").get_attribute("href")))
    assert csv_.status == 200 and "GINZA" in csv_.text()
    # Closing without the acknowledgements: an override needs its reason.
    expect(page.locator("#pending")).to_contain_text("Ginza")
    page.check("#close-form input[value=approved]")
    page.fill("#password", PASSWORD)
    page.click("#sign-close")
    expect(page.locator("#error-summary a[href='#override_reason']")).to_contain_text(
        "not acknowledged by"
    )
    _sign_out(page)

    # The clinic, in Japanese: the banner, its doses, the acknowledgement.
    page.set_extra_http_headers({"Accept-Language": "ja"})
    sign_in(page, site, "ginza-desk")
    page.goto(f"{site}/portal")
    banner = page.locator("#recall-banner")
    expect(banner).to_contain_text("回収")
    banner.locator(f"a[href='/portal/recalls/{number}']").click()
    row = page.locator(f"#doses tr[data-material='{r.ginza_dose}']")
    expect(row).to_contain_text("使用しないでください")
    expect(page.locator(f"#doses tr[data-material='{r.osaka_dose}']")).to_have_count(0)
    row.locator("a").click()  # the order's page says so too
    expect(page.locator("#dose-recalled")).to_contain_text("製剤は回収されました")
    page.go_back()
    page.fill("#note", "製剤を隔離しました")
    page.click("#acknowledge")
    expect(page.locator("#acknowledged")).to_be_visible()
    page.goto(f"{site}/portal")
    expect(page.locator("#recall-banner")).to_have_count(0)
    page.goto(f"{site}/portal/recalls")
    expect(page.locator(f"#recalls tr[data-recall='{number}']")).not_to_contain_text("未")
    _sign_out(page)
    page.set_extra_http_headers({})

    # QA: Ginza acknowledged, Osaka not: close by signed override.
    sign_in(page, site, "sato")
    page.goto(f"{site}/qa/recalls/{number}")
    expect(page.locator("#notices tr[data-clinic=GINZA] .ack")).to_contain_text(
        "製剤を隔離しました"
    )
    page.fill("#override_reason", "Osaka confirmed by telephone; its dose never left the lab")
    page.check("#close-form input[value=approved]")
    page.fill("#password", PASSWORD)
    page.click("#sign-close")
    expect(page.locator("#message")).to_have_text(f"Recall {number} closed")
    expect(page.locator("#closed")).to_contain_text("by override")
    with read_session(engine) as s:
        assert s.exec(select(Recall)).one().status == RecallStatus.CLOSED


@pytest.fixture
def loopback_allowed(monkeypatch: pytest.MonkeyPatch) -> Iterator[WebhookReceiver]:
    monkeypatch.setenv("LIMS_WEBHOOK_ALLOW_PRIVATE_TARGETS", "true")
    get_notification_settings.cache_clear()
    receiver = WebhookReceiver().start()
    yield receiver
    receiver.stop()
    get_notification_settings.cache_clear()


def test_the_clinic_manages_its_webhooks_and_contacts_in_the_browser(
    page: Page, site: str, engine: Engine, world: World, loopback_allowed: WebhookReceiver
) -> None:
    receiver = loopback_allowed
    fast = NotificationSettings(webhook_allow_private_targets=True)
    sign_in(page, site, "ginza-desk")
    page.click("nav a[href='/portal/webhooks']")
    page.click("#register")
    expect(page.locator("#error-summary a[href='#url']")).to_be_visible()
    page.fill("#url", receiver.url)
    page.fill("#description", "our EHR")
    page.check("#events input[value='recall.opened']")
    page.click("#register")
    secret = page.locator("#secret").inner_text()
    assert secret.startswith("whsec_")
    page.click("#endpoints a")
    page.click("#ping")
    expect(page.locator("#message")).to_contain_text("ping")
    end = time.monotonic() + 10
    while not receiver.received and time.monotonic() < end:
        delivery.drain(engine, settings=fast)
        time.sleep(0.05)
    (got,) = receiver.received
    assert Webhook(secret).verify(got.body, got.headers)["type"] == "webhook.ping"
    page.reload()
    expect(page.locator("#deliveries tr[data-status=DELIVERED]")).to_have_count(1)
    page.locator("#deliveries tr[data-status=DELIVERED] button").click()
    expect(page.locator("#message")).to_contain_text("sent again")
    delivery.drain(engine, settings=fast)
    assert len(receiver.received) == 2  # redelivered: the same message id again
    assert receiver.received[0].headers["webhook-id"] == receiver.received[1].headers["webhook-id"]
    page.click("#rotate")
    rotated = page.locator("#secret").inner_text()
    assert rotated.startswith("whsec_") and rotated != secret
    page.click("#toggle")
    expect(page.locator("#endpoint-state")).to_contain_text("Disabled")
    page.click("#ping")
    expect(page.locator("#errors")).to_contain_text("disabled")
    page.click("#toggle")
    expect(page.locator("#endpoint-state")).to_contain_text("Enabled")

    page.click("nav a[href='/portal/contacts']")
    page.fill("#email", "not an address")
    page.check("#contact-form input[value=ja]")
    page.click("#add-contact")
    expect(page.locator("#error-summary a[href='#email']")).to_contain_text("Not an e-mail address")
    page.fill("#email", "desk@ginza.example")
    page.click("#add-contact")
    expect(page.locator("#message")).to_have_text("Contact added")
    expect(page.locator("#contacts")).to_contain_text("desk@ginza.example (日本語)")
