"""One chosen file and one press of Upload store exactly one new version (choosing used to start an upload too,
so the press stored a second one)."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import expect

from conference.presentations.demo import make_pdf
from tests.e2e.conftest import EVENT, login_in_browser

pytestmark = pytest.mark.browser


def test_one_choice_and_one_press_make_one_version(new_page: Any, live_server: Any) -> None:
    page = new_page()
    login_in_browser(page, live_server.url, "sprecher.becker@demo.invalid")
    page.goto(f"{live_server.url}{EVENT}/speakers/me")
    page.locator("#my-sessions-heading + ul a[href*='/slides']").first.click()
    form = page.locator("form.upload-form")
    expect(form).to_be_visible()
    before = page.locator(".slide-item").count()
    posts: list[str] = []
    page.on("request", lambda r: posts.append(r.url) if r.method == "POST" and "/presentations" in r.url else None)
    page.set_input_files("form.upload-form input[type=file]", files=[
        {"name": "einmal.pdf", "mimeType": "application/pdf", "buffer": make_pdf("Einmal", pages=1)}])
    expect(form.locator(".upload-status")).to_contain_text("einmal.pdf")  # selected, not yet sent
    assert posts == []
    with page.expect_navigation(timeout=20_000):  # the page reloads after the upload
        form.locator("button[type=submit]").click()
    expect(page.locator(".slide-item")).to_have_count(before + 1)
    expect(page.locator(".slide-item", has_text="einmal.pdf")).to_have_count(1)
    assert len(posts) == 1, posts
