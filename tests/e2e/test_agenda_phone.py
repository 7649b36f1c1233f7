"""The agenda on a phone lists a break that runs in every room once (naming the rooms), the grid on a laptop keeps
one card per room; English pages keep the 24-hour clock, also in the editor's time fields."""

from __future__ import annotations

import re
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import EVENT, MANAGE, login_in_browser, session_ids

pytestmark = pytest.mark.browser

PHONE = {"width": 390, "height": 844}
LAPTOP = {"width": 1366, "height": 900}


def test_breaks_listed_once_on_a_phone(new_page: Any, live_server: Any) -> None:
    page = new_page(viewport=PHONE)
    page.goto(f"{live_server.url}{EVENT}/agenda")
    breaks = page.locator(".agenda-grid .session-card.kind-break", has_text="Mittagspause")
    assert breaks.count() == 3  # one per room in the page
    visible = page.locator(".agenda-grid .session-card.kind-break:visible", has_text="Mittagspause")
    expect(visible).to_have_count(1)
    expect(visible.locator(".session-room")).to_contain_text("Hauptbühne, Raum A, Raum B")
    page.set_viewport_size(LAPTOP)
    expect(page.locator(".agenda-grid .session-card.kind-break:visible", has_text="Mittagspause")).to_have_count(3)


CLOCK_12 = r"\b\d{1,2}:\d{2}\s?(AM|PM|am|pm)\b"


def test_english_pages_use_one_24_hour_clock_even_in_an_american_browser(new_page: Any, live_server: Any) -> None:
    page = new_page(locale="en-US", viewport=LAPTOP)  # Accept-Language: en
    login_in_browser(page, live_server.url, "orga@demo.invalid")
    page.goto(f"{live_server.url}{EVENT}/agenda")
    assert page.locator("html").get_attribute("lang") == "en"
    assert re.search(CLOCK_12, page.locator("body").inner_text()) is None
    assert re.search(r"\b1[3-7]:\d{2}\b", page.locator("main").inner_text())  # afternoon in 24-hour form
    session = session_ids(page)[1]
    page.goto(f"{live_server.url}{MANAGE}/agenda/sessions/{session}")
    inputs = page.locator("input[name=start], input[name=end]")
    assert inputs.count() >= 2  # the slot's move form
    assert set(inputs.evaluate_all("els => els.map(e => e.type)")) == {"text"}  # not the browser's 12-hour field
    values = [v for v in inputs.evaluate_all("els => els.map(e => e.value)") if v]
    assert values and all(re.fullmatch(r"([01][0-9]|2[0-3]):[0-5][0-9]", v) for v in values), values
    # A move typed as 24-hour time is stored as such.
    form = page.locator("form.slot-form").first
    form.locator("input[name=start]").fill("16:05")
    form.locator("input[name=end]").fill("16:35")
    with page.expect_navigation():
        form.locator("button[type=submit]").click()
    expect(page.locator("form.slot-form").first.locator("input[name=start]")).to_have_value("16:05")


def test_anonymous_visitor_learns_of_a_new_agenda_release(new_page: Any, live_server: Any) -> None:
    visitor = new_page(viewport=PHONE)
    visitor.clock.install()
    with visitor.expect_response(lambda r: r.url.endswith("/agenda/version")):
        visitor.goto(f"{live_server.url}{EVENT}/agenda")
    notice = visitor.locator("#agenda-changed-notice")
    with visitor.expect_response(lambda r: r.url.endswith("/agenda/version")) as unchanged:
        visitor.clock.fast_forward("01:01")
    assert unchanged.value.status in (200, 304)
    expect(notice).to_have_count(0)

    organiser = new_page()
    login_in_browser(organiser, live_server.url, "orga@demo.invalid")
    organiser.goto(f"{live_server.url}{EVENT}/agenda")
    session = session_ids(organiser)[3]
    organiser.goto(f"{live_server.url}{MANAGE}/agenda/sessions/{session}")
    with organiser.expect_navigation():
        organiser.locator("form[action$='/cancel'] button[type=submit]").click()
    organiser.goto(f"{live_server.url}{MANAGE}/agenda")
    form = organiser.locator(f"form[action$='{MANAGE}/agenda/releases']")
    form.locator("input[name=name]").fill("Browsertest")
    with organiser.expect_navigation():
        form.locator("button[type=submit]").click()

    expect(organiser.locator(".flash-success")).to_be_visible()
    with visitor.expect_response(lambda r: r.url.endswith("/agenda/version")) as changed:
        visitor.clock.fast_forward("01:01")
    assert changed.value.status == 200, changed.value.status
    expect(notice).to_be_visible()
    with visitor.expect_navigation():
        notice.locator("button").click()
    expect(visitor.locator("main")).to_contain_text("Browsertest")
