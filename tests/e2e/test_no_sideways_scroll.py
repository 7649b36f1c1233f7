"""Every main page, as the person who sees it, fits a 390 px phone without sideways scrolling; screenshots of each
page at 390 and 1366 px go to test-artifacts/screenshots for review."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import EVENT, MANAGE, login_in_browser, session_ids, shot

pytestmark = pytest.mark.browser

PHONE = {"width": 390, "height": 844}
LAPTOP = {"width": 1366, "height": 900}
ORGANISER = "orga@demo.invalid"
ATTENDEE = "teilnehmer00001@demo.invalid"
SPEAKER = "sprecher.schubert@demo.invalid"

PUBLIC = {"home": "/", "event": f"{EVENT}/", "agenda": f"{EVENT}/agenda", "session": "SESSION",
          "speakers": f"{EVENT}/speakers", "speaker": "SPEAKER", "presentations": f"{EVENT}/presentations",
          "impressum": "/impressum", "datenschutz": "/datenschutz", "event-impressum": f"{EVENT}/impressum",
          "event-datenschutz": f"{EVENT}/datenschutz"}
ATTENDEE_PAGES = {"account": "/account", "my-agenda": f"{EVENT}/my-agenda", "session-attendee": "SESSION"}
SPEAKER_PAGES = {"speaker-me": f"{EVENT}/speakers/me"}
ORGANISER_PAGES = {"manage-event": f"{MANAGE}/", "manage-agenda": f"{MANAGE}/agenda",
                   "manage-people": f"{MANAGE}/people", "manage-slides": f"{MANAGE}/presentations",
                   "manage-speakers": f"{MANAGE}/speakers", "manage-moderation": f"{MANAGE}/live",
                   "manage-outbox": f"{MANAGE}/outbox", "manage-branding": f"{MANAGE}/branding",
                   "session-organiser": "SESSION"}
PEOPLE = [pytest.param(None, PUBLIC, id="public"), pytest.param(ATTENDEE, ATTENDEE_PAGES, id="attendee"),
          pytest.param(SPEAKER, SPEAKER_PAGES, id="speaker"),
          pytest.param(ORGANISER, ORGANISER_PAGES, id="organiser")]


def resolve(page: Any, base: str, path: str) -> str:
    if path == "SESSION":
        page.goto(f"{base}{EVENT}/agenda")
        return f"{EVENT}/sessions/{session_ids(page)[1]}"
    if path == "SPEAKER":
        page.goto(f"{base}{EVENT}/speakers")
        href = page.locator(f"main a[href*='{EVENT}/speakers/']").first.get_attribute("href")
        assert href is not None
        return href
    return path


def overflow(page: Any) -> dict[str, Any]:
    """The page's width beyond the viewport, and the widest elements that stick out (to name the culprit)."""
    return page.evaluate("""() => {
        const w = window.innerWidth, sw = document.documentElement.scrollWidth;
        const wide = [...document.querySelectorAll('body *')].filter(el => {
            const r = el.getBoundingClientRect(); return r.right > w + 1 && r.width > 0 && !el.closest('.table-scroll');
        }).slice(0, 5).map(el => el.tagName + '.' + el.className + ' ' + Math.round(el.getBoundingClientRect().right));
        return {scrollWidth: sw, innerWidth: w, wide};
    }""")


@pytest.mark.parametrize(("email", "pages"), PEOPLE)
def test_main_pages_do_not_scroll_sideways_on_a_phone(new_page: Any, live_server: Any, screenshot_dir: Any,
                                                      email: str | None, pages: dict[str, str]) -> None:
    page = new_page(viewport=PHONE)
    if email:
        login_in_browser(page, live_server.url, email)
    failures = {}
    for name, raw in pages.items():
        path = resolve(page, live_server.url, raw)
        page.set_viewport_size(PHONE)
        response = page.goto(live_server.url + path)
        assert response is not None and response.status == 200, (name, path)
        page.wait_for_load_state("networkidle")
        measured = overflow(page)
        if measured["scrollWidth"] > measured["innerWidth"]:
            failures[name] = measured
        shot(page, screenshot_dir, f"page-{name}-390")
        page.set_viewport_size(LAPTOP)
        shot(page, screenshot_dir, f"page-{name}-1366")
    assert failures == {}


def test_organiser_navigation_fits_one_line_and_opens_without_javascript(new_page: Any, live_server: Any) -> None:
    page = new_page(viewport=LAPTOP, javascript=False)
    login_in_browser(page, live_server.url, ORGANISER)
    page.goto(f"{live_server.url}{EVENT}/agenda")
    tops = page.locator("nav.event-nav > ul > li").evaluate_all("els => els.map(e => e.offsetTop)")
    assert len(set(tops)) == 1, tops
    menu = page.locator("nav.event-nav details.nav-menu")
    expect(menu.locator(f"a[href$='{MANAGE}/outbox']")).to_be_hidden()
    menu.locator("summary").click()
    hrefs = menu.locator("a").evaluate_all("els => els.map(e => new URL(e.href).pathname)")
    assert hrefs == [f"{MANAGE}/", f"{MANAGE}/agenda", f"{MANAGE}/agenda/import", f"{MANAGE}/people",
                     f"{MANAGE}/attendees", f"{MANAGE}/registration-questions", f"{MANAGE}/feedback",
                     f"{MANAGE}/documentation", f"{MANAGE}/speakers", f"{MANAGE}/presentations", f"{MANAGE}/live",
                     f"{MANAGE}/outbox", f"{MANAGE}/branding"]
    menu.locator(f"a[href$='{MANAGE}/outbox']").click()
    assert page.url.endswith(f"{MANAGE}/outbox")


@pytest.mark.parametrize(("email", "has_link"), [(SPEAKER, True), (ATTENDEE, False)])
def test_speaker_navigation_links_to_own_sessions_and_slides(new_page: Any, live_server: Any, email: str,
                                                             has_link: bool) -> None:
    page = new_page(viewport=LAPTOP)
    login_in_browser(page, live_server.url, email)
    page.goto(f"{live_server.url}{EVENT}/agenda")
    link = page.locator(f"nav.event-nav a[href$='{EVENT}/speakers/me']")
    expect(link).to_have_count(1 if has_link else 0)
    expect(page.locator("nav.event-nav details.nav-menu")).to_have_count(0)
    if has_link:
        link.click()
        slides = page.locator("#my-sessions-heading + ul a[href*='/slides']")
        expect(slides.first).to_be_visible()
        assert slides.count() >= 1
