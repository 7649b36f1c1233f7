"""Pages that only show information work with JavaScript switched off (and nothing leaves the server)."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import EVENT, LOCALES, assert_language, login_in_browser, session_ids

pytestmark = pytest.mark.browser


@pytest.mark.parametrize("locale", LOCALES)
def test_information_pages_without_javascript(new_page, live_server, locale) -> None:
    base = live_server.url
    page = new_page(locale=locale, javascript=False)

    # Agenda: the grid is server-rendered; filtering is a plain GET form.
    page.goto(f"{base}{EVENT}/agenda")
    assert_language(page, locale)
    expect(page.locator("table.agenda-grid")).to_be_visible()
    ids = session_ids(page.locator("table.agenda-grid"))
    assert len(ids) >= 10
    page.fill("#filter-q", "Podium")
    with page.expect_navigation():
        page.locator("form.agenda-filters button[type=submit]").click()
    titles = page.locator(".session-card .session-title").all_inner_texts()
    assert titles and all("Podium" in t for t in titles), titles

    # Session page: title, time, room, speakers and abstract; the stream needs consent (a plain link).
    page.goto(f"{base}{EVENT}/sessions/{ids[1]}")
    expect(page.locator("h1")).not_to_be_empty()
    expect(page.locator("dl.session-facts time")).not_to_have_count(0)
    expect(page.locator(".stream-consent-button")).to_be_hidden()  # only works with JavaScript
    expect(page.locator("iframe")).to_have_count(0)

    # Speakers and one speaker's page.
    page.goto(f"{base}{EVENT}/speakers")
    speakers = page.locator(f"main a[href*='{EVENT}/speakers/']")
    assert speakers.count() >= 10
    name = speakers.first.inner_text().strip()
    speakers.first.click()
    expect(page.locator("h1")).to_contain_text(name)

    # Presentations page: the demo's published deck with its preview and a plain download link.
    page.goto(f"{base}{EVENT}/presentations")
    deck = page.locator(".deck-card").first
    expect(deck).to_be_visible()
    download = deck.locator("a[href*='/download']")
    expect(download).to_have_text(re.compile(r"\.pdf$"))
    response = page.request.get(download.evaluate("a => a.href"))
    assert response.status == 200 and response.body().startswith(b"%PDF")


def test_star_without_javascript(new_page, live_server) -> None:
    """Keeping one's agenda is a plain form too."""
    base = live_server.url
    page = new_page(locale="de-DE", javascript=False)
    login_in_browser(page, base, "teilnehmer00011@demo.invalid")
    page.goto(f"{base}{EVENT}/agenda")
    session_id = session_ids(page.locator("table.agenda-grid"))[2]
    with page.expect_navigation():
        page.locator(f"form[action$='/sessions/{session_id}/star'] button").click()
    expect(page).to_have_url(re.compile(rf"{EVENT}/agenda"))
    expect(page.locator(f"form[action$='/sessions/{session_id}/star'] button")).to_have_attribute(
        "aria-pressed", "true")
    page.goto(f"{base}{EVENT}/my-agenda")
    assert session_ids(page.locator("main .session-list")) == [session_id]
