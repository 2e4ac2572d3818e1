"""Sign-in and sign-out in a real browser, under the pages' Content-Security-Policy."""

from playwright.sync_api import ConsoleMessage, Page, expect
from sqlalchemy import Engine

from tests.conftest import World
from tests.web.conftest import sign_in

HOMES = {"tanaka": "/bench/scan", "sato": "/qa", "ginza-desk": "/portal", "audit": "/audit"}


def test_pages_run_under_the_csp_and_sign_out_ends_the_session(
    page: Page, site: str, engine: Engine, world: World
) -> None:
    refused: list[str] = []

    def keep(message: ConsoleMessage) -> None:
        if "Content Security Policy" in message.text:
            refused.append(message.text)

    page.on("console", keep)
    for username, home in HOMES.items():
        sign_in(page, site, username)
        page.goto(f"{site}{home}")
        expect(page.locator("header .who")).to_be_visible()
        page.click("header .who button")
        page.wait_for_url(f"{site}/login")
    assert refused == [], refused
    # The id checker (an inline script, allowed by its nonce) still flags a mistyped id.
    sign_in(page, site, "tanaka")
    page.goto(f"{site}/bench/scan")
    page.fill("input[name=id]", "X0001 26 000001 Z")
    expect(page.locator("#scan-form span.error")).to_have_text(
        "check character does not match: re-scan or re-type"
    )
    assert refused == [], refused
    cookie = next(c for c in page.context.cookies() if c["name"] == "lims_session")
    page.click("header .who button")
    page.wait_for_url(f"{site}/login")
    # A copy kept from before signing out.
    page.context.add_cookies([{"name": cookie["name"], "value": cookie["value"], "url": site}])
    page.goto(f"{site}/bench")
    expect(page).to_have_url(f"{site}/login?next=/bench")
