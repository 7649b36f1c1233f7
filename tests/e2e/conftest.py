"""Browser tests: Debian's Chromium driven by Playwright against the real server process."""

from __future__ import annotations

import os
import shutil
import uuid
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
VIEWPORTS = {"desktop": DESKTOP, "phone": PHONE}
SLUG = "digitalkonferenz-2027"
EVENT = f"/events/{SLUG}"
MANAGE = f"/manage/events/{SLUG}"
DEMO_PASSWORD = "demo-passwort-2027"
#: One journey per language; tests check `<html lang>` and use roles, labels and ids, not translated wording.
LOCALES = [pytest.param("de-DE", id="de"), pytest.param("en-GB", id="en")]


@pytest.fixture(scope="session")
def screenshot_dir() -> Path:
    folder = ARTIFACTS / "screenshots"
    folder.mkdir(parents=True, exist_ok=True)
    print(f"\nScreenshots for review: {folder}")  # noqa: T201 - the folder is meant to be read by people
    return folder


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """One Chromium per test module. Playwright's sync API keeps an asyncio loop running while it is open,
    so it must not outlive the browser tests (later tests use asyncio.run)."""
    require_service("Chromium", Path(CHROMIUM).exists() and shutil.which("chromium") is not None,
                    "Debian package chromium not installed")
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=10_000)  # bounded waits for live updates; no fixed sleeps anywhere
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


WATCHES: dict[int, PageWatch] = {}


def serve_external(page: Any, prefix: str, body: str, content_type: str = "text/html") -> None:
    """Answer requests to a third party (e.g. a video player after consent) inside the browser, and accept them
    in the watch: the test proves the page asks for them, without leaving the machine."""
    WATCHES[id(page)].allowed_external.append(prefix)
    page.route(f"{prefix}**", lambda route: route.fulfill(status=200, content_type=content_type, body=body))


def expect_http_error(page: Any, url_part: str, status: int) -> None:
    """Declare that the test provokes this error answer (e.g. a refused upload), so the watch accepts it."""
    WATCHES[id(page)].expected_failures.append((url_part, status))


class PageWatch:
    """Collects console errors, failed responses and requests that leave the server (front-end quality checks).

    A main-frame document answered with 4xx is the server's normal answer to a bad form or a missing page (the
    tests assert its content), so Chromium's "Failed to load resource" line for it is not counted; a failed
    style sheet, script, image or fetch is.
    """

    def __init__(self, page: Any, base_url: str) -> None:
        self.console_errors: list[str] = []
        self.external_requests: list[str] = []
        self.failed_resources: list[str] = []
        self.expected_failures: list[tuple[str, int]] = []
        self.allowed_external: list[str] = []
        self._failed_documents: set[str] = set()
        self.page_id = id(page)
        page.on("console", self._on_console)
        page.on("pageerror", lambda exc: self.console_errors.append(str(exc)))
        page.on("response", self._on_response)
        WATCHES[id(page)] = self

        def on_request(request: Any) -> None:
            url = request.url
            if not (url.startswith(base_url) or url.startswith("data:") or url.startswith("blob:")
                    or any(url.startswith(prefix) for prefix in self.allowed_external)):
                self.external_requests.append(url)

        page.on("request", on_request)

    def _on_response(self, response: Any) -> None:
        if response.status < 400:
            return
        expected = any(part in response.url and status == response.status
                       for part, status in self.expected_failures)
        if expected or (response.request.resource_type == "document" and response.status < 500):
            self._failed_documents.add(response.url)
        else:
            self.failed_resources.append(f"{response.status} {response.request.resource_type} {response.url}")

    def _on_console(self, msg: Any) -> None:
        if msg.type == "error":
            self.console_errors.append(f"{msg.text} [{msg.location.get('url', '')}]")

    def problems(self) -> dict[str, list[str]]:
        console = [line for line in self.console_errors
                   if not (line.startswith("Failed to load resource")
                           and line.rsplit("[", 1)[-1].rstrip("]") in self._failed_documents)]
        return {key: value for key, value in (("console errors", console), ("failed resources", self.failed_resources),
                                              ("external requests", self.external_requests)) if value}


@pytest.fixture
def new_page(browser: Any, live_server: RunningServer) -> Iterator[Any]:
    """Factory for pages in fresh browser contexts (separate people); checks console and requests at the end."""
    contexts: list[Any] = []
    watches: list[PageWatch] = []

    def _new_page(*, locale: str = "de-DE", viewport: dict[str, int] | None = None, bypass_csp: bool = False,
                  javascript: bool = True) -> Any:
        context = browser.new_context(locale=locale, viewport=viewport or DESKTOP, bypass_csp=bypass_csp,
                                      java_script_enabled=javascript,
                                      extra_http_headers={"Accept-Language": locale.split("-")[0]})
        context.set_default_timeout(10_000)
        contexts.append(context)
        page = context.new_page()
        watches.append(PageWatch(page, live_server.url))
        return page

    yield _new_page
    for context in contexts:
        context.close()
    for watch in watches:
        WATCHES.pop(watch.page_id, None)
    problems: dict[str, list[str]] = {}
    for watch in watches:
        for key, lines in watch.problems().items():
            problems.setdefault(key, []).extend(lines)
    assert problems == {}, problems


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


def register_in_browser(page: Any, base_url: str, *, name: str, next_path: str | None = None,
                        email: str | None = None) -> str:
    """Create an account through the registration form and log in with it; returns the e-mail address.

    Registration does not log in (it answers alike for addresses that have an account): its page says "check
    your mailbox" and links to the login, which keeps `next_path`. The account's address is unconfirmed."""
    email = email or f"e2e-{uuid.uuid4().hex[:10]}@example.org"
    page.goto(base_url + "/register" + (f"?next={next_path}" if next_path else ""))
    page.fill("#name", name)
    page.fill("#email", email)
    page.fill("#password", "browser-password-1")
    page.check("#privacy_consent")  # the demo publishes a privacy notice
    with page.expect_navigation():
        page.click("main button[type=submit]")
    with page.expect_navigation():
        page.click("main a[href*='/login']")
    page.fill("input[name=email]", email)
    page.fill("input[name=password]", "browser-password-1")
    with page.expect_navigation():
        page.click("main button[type=submit]")
    return email


def confirm_in_browser(page: Any, base_url: str, email: str) -> None:
    """Open the confirmation link of `email` from the site outbox (no mail server in the demo) in `page`.

    The demo's site administrator reads the outbox in a browser context of its own (own cookies); `page` must
    be logged in as `email`."""
    context = page.context.browser.new_context()
    admin = context.new_page()
    login_in_browser(admin, base_url, "admin@demo.invalid")
    admin.goto(f"{base_url}/manage/outbox")
    link = admin.locator("article.mail", has_text=email).first.locator("a[href*='/account/confirm/']")
    href = link.evaluate("a => a.href")
    context.close()
    page.goto(href)
    with page.expect_navigation():
        page.locator("main form button[type=submit]").first.click()


def join_event(page: Any, base_url: str) -> None:
    """Register the logged-in person for the demo event on its overview page."""
    page.goto(f"{base_url}{EVENT}/")
    with page.expect_navigation():
        page.click(f"main form[action$='{EVENT}/register'] button[type=submit]")


def assert_language(page: Any, locale: str) -> None:
    """The page is rendered in the browser's language (the `lang` attribute, not the wording)."""
    assert page.get_attribute("html", "lang") == locale.split("-")[0]


def shot(page: Any, folder: Path, name: str) -> Path:
    """Full-page screenshot for people to review; returns the file."""
    path = folder / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def session_ids(scope: Any) -> list[int]:
    """Ids of the sessions linked from a page or a locator's element, in page order."""
    hrefs = scope.locator(f"a[href*='{EVENT}/sessions/']").evaluate_all("els => els.map(e => e.getAttribute('href'))")
    ids: list[int] = []
    for href in hrefs:
        tail = href.split("/sessions/", 1)[1].split("/")[0].split("?")[0]
        if tail.isdigit() and int(tail) not in ids:
            ids.append(int(tail))
    return ids
