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


# axe-core from the npm registry (`make web-tools`, pinned by package-lock.json).
AXE = Path(__file__).resolve().parents[2] / "node_modules" / "axe-core" / "axe.min.js"
# Impacts that fail a test; "minor" and "moderate" findings are printed only.
BLOCKING = ("serious", "critical")
RUN_AXE = """async () => {
  if (!window.axe) return null;
  const result = await window.axe.run(document, {resultTypes: ["violations"]});
  return result.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,
    nodes: v.nodes.slice(0, 3).map(n => n.target.join(" "))}));
}"""


class Axe:
    """axe-core on every page a tab loads: injected before the page's own scripts (an init
    script, which the pages' CSP does not block), run when the page has loaded."""

    def __init__(self, tab: Page) -> None:
        self.tab = tab
        self.found: list[tuple[str, dict[str, object]]] = []
        self.checked: list[str] = []
        tab.on("load", lambda _: self.check())

    def check(self) -> None:
        """Run axe on the page as it is now (also after a script changed it)."""
        try:
            violations = self.tab.evaluate(RUN_AXE)
        except Exception as exc:  # the test moved on to the next page first
            if "context was destroyed" in str(exc) or "navigat" in str(exc):
                return
            raise
        if violations is None:
            return
        self.checked.append(self.tab.url)
        self.found += [(self.tab.url, v) for v in violations]

    def blocking(self) -> list[tuple[str, dict[str, object]]]:
        return [(url, v) for url, v in self.found if v.get("impact") in BLOCKING]


def _tab(
    browser: Browser, request: pytest.FixtureRequest, tmp_path: Path, **device: object
) -> Iterator[Page]:
    if not AXE.exists():
        pytest.fail(f"axe-core not found at {AXE}: run `make web-tools`", pytrace=False)
    context = browser.new_context(**device)  # type: ignore[arg-type]
    context.add_init_script(path=str(AXE))
    tab = context.new_page()
    tab.set_default_timeout(15000)
    axe = Axe(tab)
    request.node.stash[AXE_KEY] = axe
    yield tab
    if request.node.stash.get(FAILED, False):
        shot = tmp_path / "failure.png"
        tab.screenshot(path=str(shot), full_page=True)
        print(f"\nscreenshot of the failing page: {shot}")
    context.close()
    for url, violation in axe.found:
        print(f"axe {violation['impact']}: {violation['id']} on {url}: {violation['nodes']}")
    assert axe.checked, "axe-core ran on no page (was it injected?)"
    print(f"axe-core checked {len(axe.checked)} page loads")
    blocking = axe.blocking()
    assert not blocking, f"axe-core: serious or critical violations: {blocking}"


AXE_KEY = pytest.StashKey[Axe]()


@pytest.fixture
def page(browser: Browser, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Page]:
    """A desktop tab (1280 x 900); axe-core runs on every page it loads."""
    yield from _tab(browser, request, tmp_path, viewport={"width": 1280, "height": 900})


@pytest.fixture
def phone(browser: Browser, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Page]:
    """A phone-sized tab (390 x 844, touch); axe-core runs on every page it loads."""
    yield from _tab(
        browser,
        request,
        tmp_path,
        viewport={"width": 390, "height": 844},
        device_scale_factor=2,
        is_mobile=True,
        has_touch=True,
    )


def axe_of(request: pytest.FixtureRequest) -> Axe:
    """The axe runner of this test's tab (to check a page again after a script ran)."""
    return request.node.stash[AXE_KEY]


def sign_in(page: Page, site: str, username: str, password: str = PASSWORD) -> None:
    page.goto(f"{site}/login")
    page.fill("#username", username)
    page.fill("#password", password)
    page.click("button[type=submit]")
    page.wait_for_load_state("networkidle")
