"""Real headless Chromium (Debian's /usr/bin/chromium) driven by Playwright against a
server started by the test. A failing test leaves a screenshot in its tmp_path."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, sync_playwright
from sqlalchemy import Engine

from tests.api.conftest import Api, api  # noqa: F401  (the accounts fixture, shared)
from tests.builders import PASSWORD
from tests.live_server import live_server

CHROMIUM = os.environ.get("LIMS_CHROMIUM", "/usr/bin/chromium")
# Quiet, offline Chromium: no background calls to hosts this machine cannot reach.
FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()  # type: ignore[attr-defined]
    if report.when == "call":
        item.stash[FAILED] = report.failed


FAILED = pytest.StashKey[bool]()


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    if not shutil.which(CHROMIUM) and not Path(CHROMIUM).exists():
        pytest.fail(
            f"Chromium not found at {CHROMIUM}: run `make install` (it installs "
            "Debian's chromium package)",
            pytrace=False,
        )
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=FLAGS)
        yield chromium
        chromium.close()


@pytest.fixture
def site(engine: Engine, api: Api) -> Iterator[str]:  # noqa: F811  (uses the shared fixture)
    with live_server(engine) as url:
        yield url


@pytest.fixture
def page(browser: Browser, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    tab = context.new_page()
    tab.set_default_timeout(15000)
    yield tab
    if request.node.stash.get(FAILED, False):
        shot = tmp_path / "failure.png"
        tab.screenshot(path=str(shot), full_page=True)
        print(f"\nscreenshot of the failing page: {shot}")
    context.close()


def sign_in(page: Page, site: str, username: str, password: str = PASSWORD) -> None:
    page.goto(f"{site}/login")
    page.fill("#username", username)
    page.fill("#password", password)
    page.click("button[type=submit]")
    page.wait_for_load_state("networkidle")
