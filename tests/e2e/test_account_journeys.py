"""Accounts in the browser: a role waits for the confirmed address, and an account deletes itself."""

from __future__ import annotations

import pytest

from tests.e2e.conftest import (
    EVENT,
    LOCALES,
    MANAGE,
    assert_language,
    confirm_in_browser,
    login_in_browser,
    register_in_browser,
    shot,
)

pytestmark = pytest.mark.browser

PASSWORD = "browser-password-1"  # what register_in_browser types


def _grant_role(organiser, base: str, email: str, role: str) -> None:  # type: ignore[no-untyped-def]
    organiser.goto(f"{base}{MANAGE}/people")
    organiser.fill("#email", email)
    organiser.select_option("#role", role)
    with organiser.expect_navigation():
        organiser.click("main form.card button[type=submit]")


@pytest.mark.parametrize("locale", LOCALES)
def test_register_confirm_then_the_role_applies(browser, new_page, live_server, screenshot_dir, locale) -> None:
    """The organiser gives a freshly registered address a role: it waits until the owner confirms the address."""
    base = live_server.url
    person = new_page(locale=locale)
    email = register_in_browser(person, base, name="Neue Moderatorin")
    assert_language(person, locale)

    organiser = new_page(locale=locale)
    login_in_browser(organiser, base, "orga@demo.invalid")
    _grant_role(organiser, base, email, "moderator")
    assert organiser.locator("table.pending-roles tr", has_text=email).count() == 1  # shown as waiting
    shot(organiser, screenshot_dir, f"people-role-waits-{locale}")

    waiting = person.goto(f"{base}{MANAGE}/live")
    assert waiting is not None and waiting.status == 403  # not yet: the address is unconfirmed

    confirm_in_browser(person, base, email)
    confirmed = person.goto(f"{base}{MANAGE}/live")
    assert confirmed is not None and confirmed.status == 200  # the waiting role applied at the confirmation
    organiser.goto(f"{base}{MANAGE}/people")
    assert organiser.locator("table.pending-roles tr", has_text=email).count() == 0
    assert_language(person, locale)
    shot(person, screenshot_dir, f"moderation-after-confirming-{locale}")


@pytest.mark.parametrize("locale", LOCALES)
def test_delete_my_account(new_page, live_server, screenshot_dir, locale) -> None:
    base = live_server.url
    person = new_page(locale=locale)
    email = register_in_browser(person, base, name="Kurzbesuch")
    person.goto(f"{base}{EVENT}/")
    person.goto(f"{base}/account")
    assert_language(person, locale)
    person.fill("#delete_password", "wrong-password-123")
    with person.expect_navigation():
        person.click("form[action$='/account/delete'] button[type=submit]")
    assert person.url.endswith("/account/delete") or person.url.endswith("/account")  # refused, still here
    assert person.locator("#delete_password").count() == 1

    person.fill("#delete_password", PASSWORD)
    shot(person, screenshot_dir, f"account-delete-{locale}")
    with person.expect_navigation():
        person.click("form[action$='/account/delete'] button[type=submit]")
    assert not person.url.endswith("/account")
    person.goto(f"{base}/account")
    assert "/login" in person.url  # logged out

    person.goto(f"{base}/login")
    person.fill("input[name=email]", email)
    person.fill("input[name=password]", PASSWORD)
    with person.expect_navigation():
        person.click("main button[type=submit]")
    assert "/login" in person.url  # the account is gone
