"""Starring a session on the agenda happens in place: no reload, no jump to the top; without JavaScript the form
still works."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import EVENT, login_in_browser

pytestmark = pytest.mark.browser

PHONE = {"width": 390, "height": 844}


@pytest.mark.parametrize("javascript", [True, False], ids=["script", "no-script"])
def test_star_toggles_in_place_and_is_stored(new_page: Any, live_server: Any, javascript: bool) -> None:
    page = new_page(viewport=PHONE, javascript=javascript)
    login_in_browser(page, live_server.url, "teilnehmer00002@demo.invalid" if javascript
                     else "teilnehmer00003@demo.invalid")
    page.goto(f"{live_server.url}{EVENT}/agenda")
    button = page.locator("form.star-form .star-button").nth(6)
    expect(button).to_have_attribute("aria-pressed", "false")
    button.scroll_into_view_if_needed()
    if javascript:
        page.evaluate("window.__samePage = true")
        before = page.evaluate("window.scrollY")
        assert before > 300
        with page.expect_response(lambda r: r.url.endswith("/star")) as answer:
            button.click()
        assert answer.value.status == 200
        expect(button).to_have_attribute("aria-pressed", "true")
        expect(page.locator("#star-status")).not_to_be_empty()
        assert page.evaluate("window.__samePage === true") is True  # no navigation happened
        assert page.evaluate("window.scrollY") == before
        expect(button.locator(".star-state")).to_contain_text(button.get_attribute("title") or "?")
        button.click()  # and back again
        expect(button).to_have_attribute("aria-pressed", "false")
        button.click()
        expect(button).to_have_attribute("aria-pressed", "true")
    else:
        with page.expect_navigation():
            button.click()
    page.reload()
    expect(page.locator("form.star-form .star-button").nth(6)).to_have_attribute("aria-pressed", "true")
