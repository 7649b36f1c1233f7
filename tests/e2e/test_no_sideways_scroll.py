"""Every main page, as the person who sees it, fits a 390 px phone without sideways scrolling; screenshots of each
page at 390 and 1366 px go to test-artifacts/screenshots for review."""

from __future__ import annotations

from typing import Any

import pytest

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
