"""Forgot password in the browser: the link on the login page, the mail, the new password, the old login gone."""

from __future__ import annotations

import pytest

from tests.e2e.conftest import LOCALES, assert_language, login_in_browser, register_in_browser, shot

pytestmark = pytest.mark.browser

NEW_PASSWORD = "brand-new-password-7"


@pytest.mark.parametrize("locale", LOCALES)
def test_forgot_password_mail_new_password_ends_the_old_login(browser, new_page, live_server, screenshot_dir,
                                                              locale) -> None:
    base = live_server.url
    old_login = new_page(locale=locale)  # e.g. the laptop left logged in at home
    email = register_in_browser(old_login, base, name="Vergessliche Person")
    old_login.goto(f"{base}/account")
    assert old_login.url.endswith("/account")

    page = new_page(locale=locale)
    page.goto(f"{base}/login")
    assert_language(page, locale)
    with page.expect_navigation():
        page.click("main a[href='/login/forgot']")
    page.fill("#email", email)
    with page.expect_navigation():
        page.click("main button[type=submit]")
    assert page.url.endswith("/login/forgot/sent")
    shot(page, screenshot_dir, f"reset-sent-{locale}")

    # No mail server in the demo: the site administrator's outbox holds the mail, with its link.
    context = browser.new_context()
    admin = context.new_page()
    login_in_browser(admin, base, "admin@demo.invalid")
    mail = admin.locator("article.mail", has_text=email).first.locator("a[href*='/account/reset/']")
    for _attempt in range(20):  # the mail is written after the answer, by a background task: a bounded wait
        admin.goto(f"{base}/manage/outbox")
        if mail.count():
            break
    href = mail.evaluate("a => a.href")
    context.close()

    page.goto(href)
    assert_language(page, locale)
    page.fill("#new_password", NEW_PASSWORD)
    shot(page, screenshot_dir, f"reset-form-{locale}")
    with page.expect_navigation():
        page.click("main button[type=submit]")
    assert page.url.endswith("/account")  # logged in with the new password's login
    shot(page, screenshot_dir, f"reset-done-{locale}")

    old_login.goto(f"{base}/account")
    assert "/login" in old_login.url  # the other login has ended
    used = page.goto(href)  # the link works once: a page that says so, no form
    assert used is not None and used.status == 404
    assert page.locator("#new_password").count() == 0

    fresh = new_page(locale=locale)
    login_in_browser(fresh, base, email, NEW_PASSWORD)
    fresh.goto(f"{base}/account")
    assert fresh.url.endswith("/account")
