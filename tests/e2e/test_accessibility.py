"""Accessibility in Chromium: axe-core on every main page (desktop and phone), keyboard-only chat and Q&A,
visible focus; screenshots of every main page for review.
"""

from __future__ import annotations

import re
import uuid

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import EVENT, MANAGE, VIEWPORTS, login_in_browser, run_axe, shot

pytestmark = pytest.mark.browser

SESSION = f"{EVENT}/sessions/3"
PUBLIC_PAGES = {"home": "/", "login": "/login", "agenda": f"{EVENT}/agenda", "now-next": f"{EVENT}/agenda/now",
                "session": SESSION, "speakers": f"{EVENT}/speakers", "speaker": f"{EVENT}/speakers/1",
                "presentations": f"{EVENT}/presentations"}
ATTENDEE_PAGES = {"attendee-session": SESSION, "my-agenda": f"{EVENT}/my-agenda", "lobby": f"{EVENT}/lobby",
                  "attendee-agenda": f"{EVENT}/agenda"}
ORGANISER_PAGES = {"manage-event": f"{MANAGE}/", "manage-people": f"{MANAGE}/people",
                   "agenda-editor": f"{MANAGE}/agenda", "session-editor": f"{MANAGE}/agenda/sessions/3",
                   "rooms": f"{MANAGE}/agenda/rooms", "manage-speakers": f"{MANAGE}/speakers",
                   "outbox": f"{MANAGE}/outbox", "slides-dashboard": f"{MANAGE}/presentations",
                   "live-moderation": f"{MANAGE}/live", "organiser-session": SESSION}
GROUPS = {"public": (None, PUBLIC_PAGES), "attendee": ("teilnehmer00008@demo.invalid", ATTENDEE_PAGES),
          "organiser": ("orga@demo.invalid", ORGANISER_PAGES)}

# True when the focused element shows a focus indicator (outline or a box shadow ring).
FOCUS_VISIBLE = """() => {
    const el = document.activeElement;
    if (!el || el === document.body) return false;
    const style = getComputedStyle(el);
    const outline = style.outlineStyle !== "none" && parseFloat(style.outlineWidth) >= 2;
    return outline || (style.boxShadow && style.boxShadow !== "none");
}"""


@pytest.mark.parametrize("viewport", ["desktop", "phone"])
@pytest.mark.parametrize("group", list(GROUPS))
def test_main_pages_have_no_serious_violations(new_page, live_server, screenshot_dir, group, viewport) -> None:
    """axe-core (WCAG 2.1 A/AA incl. colour contrast): nothing serious or critical; each page photographed."""
    email, pages = GROUPS[group]
    page = new_page(locale="de-DE", viewport=VIEWPORTS[viewport], bypass_csp=True)
    if email:
        login_in_browser(page, live_server.url, email)
    violations = {}
    for name, path in pages.items():
        page.goto(live_server.url + path)
        if page.locator("[data-live-room]").count():  # the live panel is part of what people see
            expect(page.locator("[data-live-status]").first).to_have_class(re.compile("live-status-ok"))
        found = run_axe(page)
        if found:
            violations[name] = found
        shot(page, screenshot_dir, f"{name}-{viewport}")
    assert violations == {}


def test_english_pages_have_no_serious_violations(new_page, live_server) -> None:
    page = new_page(locale="en-GB", bypass_csp=True)
    violations = {}
    for name, path in PUBLIC_PAGES.items():
        page.goto(live_server.url + path)
        assert page.get_attribute("html", "lang") == "en"
        found = run_axe(page)
        if found:
            violations[name] = found
    assert violations == {}


def tab_to(page, selector: str, *, limit: int = 150) -> list[str]:
    """Press Tab (only) until `selector` has the focus; every stop on the way must show its focus."""
    stops: list[str] = []
    for _ in range(limit):
        page.keyboard.press("Tab")
        described = page.evaluate("() => { const e = document.activeElement;"
                                  " return e.tagName + (e.id ? '#' + e.id : '') + '.' + e.className; }")
        stops.append(described)
        assert page.evaluate(FOCUS_VISIBLE), f"no visible focus on {described}"
        if page.evaluate("sel => document.activeElement.matches(sel)", selector):
            return stops
    raise AssertionError(f"{selector} not reached with Tab: {stops[-10:]}")


def test_chat_and_questions_with_the_keyboard_alone(new_page, live_server) -> None:
    base = live_server.url
    token = uuid.uuid4().hex[:6]
    session_id = 4
    room = f"session-{session_id}"

    # Someone else asks a question (with the mouse), so there is one to upvote.
    other = new_page(locale="de-DE")
    login_in_browser(other, base, "teilnehmer00009@demo.invalid")
    other.goto(f"{base}{EVENT}/sessions/{session_id}")
    expect(other.locator("[data-live-status]")).to_have_class(re.compile("live-status-ok"))
    their_question = f"Frage der anderen Person {token}"
    other.fill(f"#qa-text-{room}", their_question)
    other.locator("[data-live-qa-form] button[type=submit]").click()
    expect(other.locator("[data-live-questions] li", has_text=their_question)).to_have_count(1)

    page = new_page(locale="de-DE")
    login_in_browser(page, base, "teilnehmer00010@demo.invalid")
    page.goto(f"{base}{EVENT}/sessions/{session_id}")
    panel = page.locator(f"[data-live-room='session:{session_id}']")
    expect(panel.locator("[data-live-status]")).to_have_class(re.compile("live-status-ok"))
    expect(panel.locator("[data-live-questions] li", has_text=their_question)).to_have_count(1)

    # The skip link comes first and moves the focus to the main content.
    page.keyboard.press("Tab")
    assert page.evaluate("() => document.activeElement.classList.contains('skip-link')")
    assert page.evaluate(FOCUS_VISIBLE)
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile("#main$"))

    # Chat: Tab to the message box, type, Enter sends.
    tab_to(page, f"#chat-text-{room}")
    page.keyboard.type(f"Mit der Tastatur geschrieben {token}")
    page.keyboard.press("Enter")
    expect(panel.locator("[data-live-messages] li", has_text=f"Mit der Tastatur geschrieben {token}")).to_have_count(1)
    assert page.evaluate("() => document.activeElement.id") == f"chat-text-{room}"  # focus stays for the next one

    # Q&A: Tab to the question box, type, Tab to "Ask", Enter.
    tab_to(page, f"#qa-text-{room}")
    page.keyboard.type(f"Eine Frage per Tastatur {token}")
    tab_to(page, "[data-live-qa-form] button[type=submit]", limit=3)
    page.keyboard.press("Enter")
    expect(panel.locator("[data-live-questions] li", has_text=f"Eine Frage per Tastatur {token}")).to_have_count(1)

    # Upvote the other person's question: Tab to its button, Enter. (The list is rebuilt when any question
    # changes, so the button is named by its question's id, which the rebuilt list keeps.)
    theirs = panel.locator("[data-live-questions] li", has_text=their_question)
    their_id = theirs.get_attribute("data-question-id")
    vote = f'[data-live-questions] li[data-question-id="{their_id}"] [data-action=vote]'
    tab_to(page, vote, limit=60)
    # Another question arrives meanwhile and the list is rebuilt: the focus stays on the same button.
    other.fill(f"#qa-text-{room}", f"Noch eine Frage {token}")
    other.locator("[data-live-qa-form] button[type=submit]").click()
    expect(panel.locator("[data-live-questions] li", has_text=f"Noch eine Frage {token}")).to_have_count(1)
    assert page.evaluate("sel => document.activeElement.matches(sel)", vote)
    page.keyboard.press("Enter")
    expect(theirs.locator(".qa-meta")).to_have_text(re.compile(r"^1 "))
    expect(other.locator("[data-live-questions] li", has_text=their_question).locator(".qa-meta")
           ).to_have_text(re.compile(r"^1 "))


def test_axe_check_can_fail(new_page) -> None:
    """Guard against a silently passing audit: a page with known faults is reported."""
    page = new_page(locale="de-DE", bypass_csp=True)
    page.set_content('<html><body><main><img src="data:,"><p style="color:#bbb;background:#fff">blass</p>'
                     '<button></button></main></body></html>')
    found = {v["id"] for v in run_axe(page)}
    assert {"image-alt", "color-contrast", "button-name", "html-has-lang"} <= found, found
