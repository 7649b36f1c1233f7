"""A newcomer registers, joins the demo event and switches language; accessibility of the basic pages."""

from __future__ import annotations

import uuid

import pytest

from tests.e2e.conftest import PHONE, login_in_browser, run_axe

pytestmark = pytest.mark.browser


@pytest.mark.parametrize(("locale", "texts"), [
    ("de-DE", {"register": "Registrieren", "join": "Für diese Veranstaltung anmelden", "as": "Sie nehmen teil als"}),
    ("en-GB", {"register": "Register", "join": "Register for this event", "as": "You take part as"}),
])
def test_register_and_join_event(new_page, live_server, screenshot_dir, locale, texts) -> None:
    page = new_page(locale=locale)
    page.goto(live_server.url + "/")
    assert page.url.endswith("/events/digitalkonferenz-2027/")
    page.get_by_role("link", name=texts["register"]).first.click()
    email = f"e2e-{uuid.uuid4().hex[:8]}@example.org"
    page.fill("input[name=name]", "Browser Person")
    page.fill("input[name=email]", email)
    page.fill("input[name=password]", "browser-password-1")
    page.check("input[name=privacy_consent]")  # the demo publishes a privacy notice
    page.click("main button[type=submit]")
    # Registering does not log in (it answers alike for taken addresses): "check your mailbox", then log in.
    page.wait_for_url("**/register/sent*")
    page.click("main a[href*='/login']")
    page.fill("input[name=email]", email)
    page.fill("input[name=password]", "browser-password-1")
    page.click("main button[type=submit]")
    page.wait_for_url("**/events/digitalkonferenz-2027/")
    page.get_by_role("button", name=texts["join"]).click()
    page.wait_for_load_state("networkidle")
    assert texts["as"] in page.inner_text("main")
    page.screenshot(path=str(screenshot_dir / f"event-{locale}.png"), full_page=True)


def test_language_switch_keeps_page(new_page, live_server) -> None:
    page = new_page(locale="de-DE")
    page.goto(live_server.url + "/login")
    assert page.get_by_role("heading", name="Anmelden").is_visible()
    page.get_by_role("button", name="English").click()
    page.wait_for_url("**/login*")
    assert page.get_by_role("heading", name="Log in").is_visible()


def test_login_error_is_announced(new_page, live_server) -> None:
    page = new_page(locale="en-GB")
    login_in_browser(page, live_server.url, "orga@demo.invalid", "wrong-password-here")
    error = page.locator(".error").first
    assert error.inner_text() == "E-mail or password is not correct."
    assert page.locator("#password").get_attribute("aria-invalid") == "true"


@pytest.mark.parametrize("path", ["/login", "/login/forgot", "/register", "/events/digitalkonferenz-2027/"])
def test_basic_pages_have_no_serious_accessibility_violations(new_page, live_server, screenshot_dir, path) -> None:
    for viewport_name, viewport in (("desktop", None), ("phone", PHONE)):
        page = new_page(locale="de-DE", viewport=viewport, bypass_csp=True)
        page.goto(live_server.url + path)
        assert run_axe(page) == [], path
        name = path.strip("/").replace("/", "_") or "home"
        page.screenshot(path=str(screenshot_dir / f"{name}-{viewport_name}.png"), full_page=True)


def test_organiser_pages_accessible(new_page, live_server) -> None:
    page = new_page(locale="de-DE", bypass_csp=True)
    login_in_browser(page, live_server.url, "orga@demo.invalid")
    for path in ("/manage/events/digitalkonferenz-2027/", "/manage/events/digitalkonferenz-2027/people",
                 "/account"):
        page.goto(live_server.url + path)
        assert run_axe(page) == [], path
