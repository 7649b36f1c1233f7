"""Organisers in Chromium: create and move a session, hear about a conflict, publish, announce.

An attendee keeps the public agenda open the whole time: the release appears on it without a reload (the live
layer pushes `agenda:changed`, the page swaps its `data-live-refresh` regions) and the announcement appears as a
banner. Once in German and once in English.
"""

from __future__ import annotations

import re
import uuid

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import EVENT, LOCALES, MANAGE, assert_language, login_in_browser, shot

pytestmark = pytest.mark.browser

DAY = "2027-03-18"
# Free evening times of the demo day, different per language so the two runs never collide.
FREE = {"de": [("19:00", "19:20"), ("19:30", "19:50")], "en": [("20:00", "20:20"), ("20:30", "20:50")]}


def occupied_slot(page, base_url: str) -> dict[str, str]:
    """Room and time of an existing talk, read from its editor form (machine values, any language)."""
    page.goto(f"{base_url}{MANAGE}/agenda")
    for href in page.locator("table.manage-sessions a").evaluate_all("els => els.map(e => e.href)"):
        page.goto(href)
        form = page.locator("form.slot-form[action*='/agenda/slots/']")
        if form.count() == 1 and page.locator("#kind").input_value() == "talk":
            return {"room_id": form.locator("select[name=room_id]").input_value(),
                    "day": form.locator("select[name=day]").input_value(),
                    "start": form.locator("input[name=start]").input_value(),
                    "end": form.locator("input[name=end]").input_value()}
    raise AssertionError("the demo has no scheduled talk")


def fill_slot(form, *, room_id: str, day: str, start: str, end: str) -> None:
    form.locator("select[name=room_id]").select_option(room_id)
    form.locator("select[name=day]").select_option(day)
    form.locator("input[name=start]").fill(start)
    form.locator("input[name=end]").fill(end)


@pytest.mark.parametrize("locale", LOCALES)
def test_organiser_edits_publishes_and_announces(new_page, live_server, screenshot_dir, locale) -> None:
    base = live_server.url
    lang = locale[:2]
    token = uuid.uuid4().hex[:6]
    title = f"Browser-Sitzung {lang} {token}"

    # An attendee has the public agenda of the day open.
    attendee = new_page(locale=locale)
    login_in_browser(attendee, base, f"teilnehmer0000{4 if lang == 'de' else 5}@demo.invalid")
    attendee.goto(f"{base}{EVENT}/agenda?day={DAY}")
    expect(attendee.locator("table.agenda-grid")).to_be_visible()
    expect(attendee.get_by_role("link", name=title)).to_have_count(0)
    version_before = attendee.locator(".agenda-version").inner_text()
    attendee.evaluate("() => { window.notReloaded = true; }")

    organiser = new_page(locale=locale)
    login_in_browser(organiser, base, "orga@demo.invalid")
    busy = occupied_slot(organiser, base)

    # Create a session in the editor.
    organiser.goto(f"{base}{MANAGE}/agenda")
    assert_language(organiser, locale)
    create = organiser.locator(f"form[action$='{MANAGE}/agenda/sessions']")
    create.locator("#title").fill(title)
    create.locator("#abstract").fill("Entsteht im **Browsertest**.")
    create.locator("#kind").select_option("talk")
    create.locator("#language").select_option(lang)
    with organiser.expect_navigation():
        create.locator("button[type=submit]").click()
    expect(organiser).to_have_url(re.compile(rf"{MANAGE}/agenda/sessions/\d+$"))
    expect(organiser.locator("h1")).to_have_text(title)

    # Give it a free slot.
    (start, end), (later_start, later_end) = FREE[lang]
    add = organiser.locator("form.slot-form[action$='/slots']")
    fill_slot(add, room_id=busy["room_id"], day=DAY, start=start, end=end)
    with organiser.expect_navigation():
        add.locator("button[type=submit]").click()
    expect(organiser.locator(".flash-success")).to_be_visible()
    move = organiser.locator("form.slot-form[action*='/agenda/slots/']")
    expect(move.locator("input[name=start]")).to_have_value(start)

    # Moving it onto another talk is refused, with the reason on the page; nothing moves.
    fill_slot(move, **busy)
    with organiser.expect_navigation():
        move.locator("button[type=submit]").click()
    conflict = organiser.locator(".flash-error")
    expect(conflict).to_be_visible()
    expect(conflict).to_have_attribute("role", "alert")
    expect(move.locator("input[name=start]")).to_have_value(start)
    shot(organiser, screenshot_dir, f"journey-organiser-conflict-{lang}")

    # Moving it to another free time works.
    fill_slot(move, room_id=busy["room_id"], day=DAY, start=later_start, end=later_end)
    with organiser.expect_navigation():
        move.locator("button[type=submit]").click()
    expect(organiser.locator(".flash-success")).to_be_visible()
    expect(move.locator("input[name=start]")).to_have_value(later_start)

    # Publish a release: the attendee's open page shows the session without a reload.
    organiser.goto(f"{base}{MANAGE}/agenda")
    publish = organiser.locator(f"form[action$='{MANAGE}/agenda/releases']")
    with organiser.expect_navigation():
        publish.locator("button[type=submit]").click()
    expect(organiser.locator(".flash-success")).to_be_visible()
    new_link = attendee.locator("table.agenda-grid").get_by_role("link", name=title)
    expect(new_link).to_be_visible()
    expect(attendee.locator(".agenda-version")).not_to_have_text(version_before)
    assert attendee.evaluate("() => window.notReloaded === true")
    shot(attendee, screenshot_dir, f"journey-agenda-after-release-{lang}")

    # An announcement appears as a banner on the attendee's page.
    announcement = f"Raumwechsel um 14 Uhr ({token})"
    organiser.goto(f"{base}{MANAGE}/live")
    organiser.fill("#announce-text", announcement)
    with organiser.expect_navigation():
        organiser.locator(f"form[action$='{MANAGE}/live/announcements'] button[type=submit]").click()
    banner = attendee.locator("#announcement-banner")
    expect(banner).to_be_visible()
    expect(banner.locator(".announcement-text")).to_have_text(announcement)
    assert attendee.evaluate("() => window.notReloaded === true")

    # The attendee can dismiss it; the keyboard focus goes on to the page's content.
    banner.locator("button.announcement-dismiss").click()
    expect(banner).to_be_hidden()
    expect(attendee.locator("#main")).to_be_focused()

    # The new session's page shows what the organiser entered.
    new_link.click()
    expect(attendee.locator("h1")).to_have_text(title)
    expect(attendee.locator("main strong", has_text="Browsertest")).to_be_visible()
