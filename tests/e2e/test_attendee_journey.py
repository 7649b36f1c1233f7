"""Attendees in Chromium: register, browse and filter the day grid, star sessions, chat and ask live.

A second attendee in another browser context sees the chat and the questions arrive without reloading, and a
moderator's deletion (and hidden question) disappears from both pages. Once in German and once in English.
"""

from __future__ import annotations

import re
import uuid

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import (
    DESKTOP,
    EVENT,
    LOCALES,
    PHONE,
    assert_language,
    join_event,
    login_in_browser,
    register_in_browser,
    session_ids,
    shot,
)

pytestmark = pytest.mark.browser


def open_live_session(page, base_url: str, session_id: int):
    """Open a session page and wait until its live panel has joined the room; returns the panel."""
    page.goto(f"{base_url}{EVENT}/sessions/{session_id}")
    panel = page.locator(f"[data-live-room='session:{session_id}']")
    expect(panel.locator("[data-live-status]")).to_have_class(re.compile(r"live-status-ok"))
    return panel


@pytest.mark.parametrize("locale", LOCALES)
def test_attendee_browses_stars_chats_and_asks(new_page, live_server, screenshot_dir, locale) -> None:
    base = live_server.url
    lang = locale[:2]
    page = new_page(locale=locale)

    # Register and join the event.
    register_in_browser(page, base, name=f"Ada Browser {lang}")
    assert_language(page, locale)
    join_event(page, base)
    expect(page.locator(f"main form[action$='{EVENT}/register']")).to_have_count(0)
    expect(page.locator("nav.event-nav a[href$='/my-agenda']")).to_be_visible()

    # The day grid on a desktop: rooms as columns.
    page.locator(f"nav.event-nav a[href$='{EVENT}/agenda']").click()
    grid = page.locator("table.agenda-grid")
    expect(grid).to_be_visible()
    assert_language(page, locale)
    room_headers = grid.locator("thead th[scope=col]")
    expect(room_headers).to_have_count(4)  # time + three rooms
    expect(page.locator(".session-room").first).to_be_hidden()
    shot(page, screenshot_dir, f"journey-agenda-desktop-{lang}")

    # On a phone the grid becomes a list: no column headers, each card names its room, no sideways scrolling.
    page.set_viewport_size(PHONE)
    expect(grid.locator("thead")).to_be_hidden()
    expect(page.locator(".session-room").first).to_be_visible()
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    shot(page, screenshot_dir, f"journey-agenda-phone-{lang}")
    page.set_viewport_size(DESKTOP)

    # Filter by a track: only sessions of that track remain.
    all_cards = page.locator(".session-card").count()
    track_option = page.locator("#filter-track option").nth(1)
    track_name = track_option.inner_text().strip()
    page.select_option("#filter-track", track_option.get_attribute("value"))
    with page.expect_navigation():
        page.locator("form.agenda-filters button[type=submit]").click()
    assert "track=" in page.url
    cards = page.locator(".session-card")
    assert 0 < cards.count() < all_cards
    for index in range(cards.count()):
        expect(cards.nth(index).locator(".track-badge")).to_have_text(track_name)
    starred = session_ids(page)[:2]
    assert len(starred) == 2

    # Star two sessions; the buttons say so (aria-pressed) and "My agenda" lists exactly them.
    for session_id in starred:
        button = page.locator(f"form[action$='/sessions/{session_id}/star'] button")
        expect(button).to_have_attribute("aria-pressed", "false")
        with page.expect_response(lambda r, sid=session_id: r.url.endswith(f"/sessions/{sid}/star")):
            button.click()  # in place (agenda.js), no reload
        expect(page.locator(f"form[action$='/sessions/{session_id}/star'] button")).to_have_attribute(
            "aria-pressed", "true")
    page.locator("nav.event-nav a[href$='/my-agenda']").click()
    expect(page).to_have_url(re.compile(r"/my-agenda$"))
    assert sorted(session_ids(page.locator("main"))) == sorted(starred)
    shot(page, screenshot_dir, f"journey-my-agenda-{lang}")

    # Open a starred session and take part live, watched by a second attendee in another browser.
    session_id = starred[0]
    page.locator(f"main a[href$='/sessions/{session_id}']").first.click()
    expect(page).to_have_url(re.compile(rf"/sessions/{session_id}$"))
    panel = open_live_session(page, base, session_id)
    other = new_page(locale="en-GB" if lang == "de" else "de-DE")
    login_in_browser(other, base, f"teilnehmer0000{2 if lang == 'de' else 3}@demo.invalid")
    other_panel = open_live_session(other, base, session_id)

    token = uuid.uuid4().hex[:8]
    chat_text = f"Hallo aus dem Browser {token}"
    page.fill(f"#chat-text-session-{session_id}", chat_text)
    page.press(f"#chat-text-session-{session_id}", "Enter")
    mine = panel.locator("[data-live-messages] li", has_text=chat_text)
    expect(mine).to_have_count(1)
    expect(page.locator(f"#chat-text-session-{session_id}")).to_have_value("")
    seen = other_panel.locator("[data-live-messages] li", has_text=chat_text)
    expect(seen).to_have_count(1)
    expect(seen.locator(".chat-author")).to_have_text(f"Ada Browser {lang}")

    question = f"Wie geht es weiter? {token}"
    page.fill(f"#qa-text-session-{session_id}", question)
    panel.locator("[data-live-qa-form] button[type=submit]").click()
    expect(panel.locator("[data-live-questions] li", has_text=question)).to_have_count(1)
    expect(other_panel.locator("[data-live-questions] li", has_text=question)).to_have_count(1)

    # The other attendee asks; the first one upvotes it and both see the new count.
    their_question = f"Gibt es die Folien? {token}"
    other.fill(f"#qa-text-session-{session_id}", their_question)
    other_panel.locator("[data-live-qa-form] button[type=submit]").click()
    theirs = panel.locator("[data-live-questions] li", has_text=their_question)
    expect(theirs.locator(".qa-meta")).to_have_text(re.compile(r"^0 "))
    expect(panel.locator("[data-live-questions] li", has_text=question).locator("button")).to_have_count(0)
    theirs.locator("[data-action=vote]").click()
    expect(theirs.locator(".qa-meta")).to_have_text(re.compile(r"^1 "))
    expect(theirs.locator("[data-action=vote]")).to_have_count(0)  # one vote per person
    expect(other_panel.locator("[data-live-questions] li", has_text=their_question).locator(".qa-meta")
           ).to_have_text(re.compile(r"^1 "))
    shot(page, screenshot_dir, f"journey-session-live-{lang}")

    # A moderator deletes the message: it disappears live from both attendees' pages.
    moderator = new_page(locale=locale)
    login_in_browser(moderator, base, "moderation@demo.invalid")
    moderator_panel = open_live_session(moderator, base, session_id)
    target = moderator_panel.locator("[data-live-messages] li", has_text=chat_text)
    expect(target).to_have_count(1)
    moderator.once("dialog", lambda dialog: dialog.accept())  # delete asks first
    target.locator("[data-action=delete]").click()
    expect(target).to_have_count(0)
    expect(mine).to_have_count(0)
    expect(seen).to_have_count(0)

    # The moderator hides the other attendee's question: it disappears live from both attendees' lists (its
    # author's too) and stays on the moderator's, marked; showing it again brings it back with its vote.
    their_own = other_panel.locator("[data-live-questions] li", has_text=their_question)
    on_moderator = moderator_panel.locator("[data-live-questions] li", has_text=their_question)
    on_moderator.locator("[data-action=hide]").click()
    expect(theirs).to_have_count(0)
    expect(their_own).to_have_count(0)
    expect(on_moderator).to_have_class(re.compile(r"is-hidden"))
    on_moderator.locator("[data-action=unhide]").click()
    expect(theirs.locator(".qa-meta")).to_have_text(re.compile(r"^1 "))
    expect(their_own).to_have_count(1)
    expect(theirs.locator("[data-action=vote]")).to_have_count(0)  # still counted as voted
    expect(on_moderator).not_to_have_class(re.compile(r"is-hidden"))
