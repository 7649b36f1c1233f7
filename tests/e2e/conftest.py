"""Browser tests: Debian's Chromium driven by Playwright against the real server process."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import require_service
from tests.support.server import RunningServer, running_server

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
AXE_SCRIPT = Path(__file__).resolve().parent / "node_modules" / "axe-core" / "axe.min.js"
ARTIFACTS = Path(os.environ.get("CONFERENCE_TEST_ARTIFACTS", Path(__file__).resolve().parents[2] / "test-artifacts"))
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}


@pytest.fixture(scope="session")
def screenshot_dir() -> Path:
    folder = ARTIFACTS / "screenshots"
    folder.mkdir(parents=True, exist_ok=True)
    print(f"\nScreenshots for review: {folder}")  # noqa: T201 - the folder is meant to be read by people
    return folder


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    require_service("Chromium", Path(CHROMIUM).exists() and shutil.which("chromium") is not None,
                    "Debian package chromium not installed")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield chromium
        chromium.close()


@pytest.fixture(scope="module")
def live_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """The demo conference served by `conference run` (eventlet) for a module of browser tests."""
    instance = tmp_path_factory.mktemp("e2e") / "instance"
    with running_server(instance, "eventlet", demo_attendees=20) as server:
        yield server


class PageWatch:
    """Collects console errors and requests that leave the server, for the front-end quality checks."""

    def __init__(self, page: Any, base_url: str) -> None:
        self.console_errors: list[str] = []
        self.external_requests: list[str] = []
        page.on("console", lambda msg: self.console_errors.append(msg.text) if msg.type == "error" else None)
        page.on("pageerror", lambda exc: self.console_errors.append(str(exc)))

        def on_request(request: Any) -> None:
            url = request.url
            if not (url.startswith(base_url) or url.startswith("data:") or url.startswith("blob:")):
                self.external_requests.append(url)

        page.on("request", on_request)


@pytest.fixture
def new_page(browser: Any, live_server: RunningServer) -> Iterator[Any]:
    """Factory for pages in fresh browser contexts (separate people); checks console and requests at the end."""
    contexts: list[Any] = []
    watches: list[PageWatch] = []

    def _new_page(*, locale: str = "de-DE", viewport: dict[str, int] | None = None, bypass_csp: bool = False) -> Any:
        context = browser.new_context(locale=locale, viewport=viewport or DESKTOP, bypass_csp=bypass_csp,
                                      extra_http_headers={"Accept-Language": locale.split("-")[0]})
        contexts.append(context)
        page = context.new_page()
        page.set_default_timeout(10_000)
        watches.append(PageWatch(page, live_server.url))
        return page

    yield _new_page
    for context in contexts:
        context.close()
    for watch in watches:
        assert watch.console_errors == [], watch.console_errors
        assert watch.external_requests == [], watch.external_requests


def run_axe(page: Any) -> list[dict[str, Any]]:
    """Serious and critical accessibility violations on the current page (page needs bypass_csp)."""
    assert AXE_SCRIPT.exists(), "run `npm install --prefix tests/e2e` (make test does)"
    page.add_script_tag(path=str(AXE_SCRIPT))
    result = page.evaluate("""async () => {
        const r = await axe.run(document, {runOnly: {type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa']}});
        return r.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,
                                       nodes: v.nodes.slice(0, 3).map(n => n.target.join(' '))}));
    }""")
    return [v for v in result if v["impact"] in ("serious", "critical")]


def login_in_browser(page: Any, base_url: str, email: str, password: str = "demo-passwort-2027") -> None:
    page.goto(f"{base_url}/login")
    page.fill("input[name=email]", email)
    page.fill("input[name=password]", password)
    page.click("main button[type=submit]")
    page.wait_for_load_state("networkidle")
