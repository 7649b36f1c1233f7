"""The live stage in Chromium: with the player loaded, the chat input is on screen and the player keeps 16:9, on a
laptop (1366×900) and a phone (390×844); tabs for chat, questions and slides; axe clean."""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import login_in_browser, run_axe, serve_external, shot
from tests.support.server import PROJECT_ROOT, RunningServer, run_cli, running_server, server_env

pytestmark = pytest.mark.browser

SLUG = "buehne-heute"
LAPTOP = {"width": 1366, "height": 900}
PHONE = {"width": 390, "height": 844}
ATTENDEE = "teilnehmer00001@demo.invalid"
PLAYER = "https://www.youtube-nocookie.com/embed/"


def arrange_live_session() -> None:
    """Run in a process of its own against the test instance: an event of today with a session that is live now,
    released, and the demo attendee registered (real services, real database)."""
    from sqlalchemy import select

    from conference import create_app
    from conference.agenda import services as agenda
    from conference.agenda.releases import publish_release
    from conference.agenda.rooms import create_room
    from conference.auth.models import User
    from conference.core.db import utcnow
    from conference.events import services as events
    from conference.extensions import db

    app = create_app()
    with app.app_context():
        now = utcnow().replace(second=0, microsecond=0)
        event = events.create_event(slug=SLUG, title="Bühne heute", start_date=(now - timedelta(days=1)).date(),
                                    end_date=(now + timedelta(days=1)).date(), timezone="UTC", is_published=True)
        room = create_room(event, name="Hauptbühne", stream_kind="youtube",
                           stream_url="https://www.youtube.com/live/demoBuehne1", actor=None)
        session = agenda.create_session(event, title="Die Region im Jahr 2040: eine Bühne für alle",
                                        abstract="Ein **Ausblick** mit Fragen aus dem Publikum.", actor=None)
        agenda.schedule_session(session, room=room, start_at=now - timedelta(minutes=10),
                                end_at=now + timedelta(minutes=50), actor=None)
        publish_release(event, name="Stand heute", actor=None)
        user = db.session.scalar(select(User).where(User.email == ATTENDEE))
        assert user is not None
        events.register_attendee(event, user=user)
        db.session.commit()
        print(session.id)  # noqa: T201 - read by the fixture


@pytest.fixture(scope="module")
def live_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """The demo plus an event whose session is live now, served by `conference run` (eventlet)."""
    instance = tmp_path_factory.mktemp("stage") / "instance"
    instance.mkdir(parents=True)
    env = server_env(instance, "eventlet")
    run_cli(["demo", "--attendees", "3"], env)
    arranged = subprocess.run([sys.executable, "-c", "from tests.e2e.test_stage import arrange_live_session as a; a()"],
                              env=env, cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=120, check=True)
    STAGE["session"] = int(arranged.stdout.split()[-1])
    with running_server(instance, "eventlet", demo_attendees=None) as running:
        yield running


STAGE: dict[str, int] = {}


def stage_url(server: RunningServer) -> str:
    return f"{server.url}/events/{SLUG}/sessions/{STAGE['session']}"


def load_player(page: Any) -> None:
    serve_external(page, PLAYER, "<!doctype html><title>Player</title><body>Stream</body>")
    page.locator(".stream-consent-button").click()
    frame = page.locator("iframe.stream-frame")
    expect(frame).to_have_attribute("src", f"{PLAYER}demoBuehne1")
    expect(frame).to_be_visible()


def box(page: Any, selector: str) -> dict[str, float]:
    found = page.locator(selector).first.bounding_box()
    assert found is not None, selector
    return dict(found)


def assert_inside_viewport(page: Any, selector: str, viewport: dict[str, int]) -> None:
    rect = box(page, selector)
    assert rect["y"] >= 0 and rect["y"] + rect["height"] <= viewport["height"], (selector, rect, viewport)
    assert rect["x"] >= 0 and rect["x"] + rect["width"] <= viewport["width"], (selector, rect, viewport)


@pytest.mark.parametrize(("viewport", "locale", "name"), [(LAPTOP, "de-DE", "laptop"), (PHONE, "de-DE", "phone"),
                                                          (PHONE, "en-GB", "phone-en")])
def test_stage_chat_input_on_screen_with_player_loaded(new_page, live_server, screenshot_dir, viewport, locale,
                                                       name) -> None:
    page = new_page(locale=locale, viewport=viewport, bypass_csp=True)
    login_in_browser(page, live_server.url, ATTENDEE)
    page.goto(stage_url(live_server))
    expect(page.locator("[data-live-status]")).to_have_class("live-status live-status-ok")
    load_player(page)
    assert page.evaluate("() => window.scrollY") == 0

    # The player keeps 16:9; the chat input is fully inside the window, next to it or under it.
    player = box(page, "iframe.stream-frame")
    assert abs(player["width"] / player["height"] - 16 / 9) < 0.02, player
    assert_inside_viewport(page, "textarea[id^=chat-text-]", viewport)
    assert_inside_viewport(page, ".chat-form button[type=submit]", viewport)
    assert page.evaluate("() => document.documentElement.scrollWidth <= window.innerWidth")
    if viewport is LAPTOP:
        assert box(page, ".stage-side")["x"] > player["x"] + player["width"]  # beside the player
    else:
        assert box(page, ".stage-side")["y"] >= player["y"] + player["height"]  # under it

    # A message appears in the list, which scrolls inside the panel; the input stays where it was.
    before = box(page, "textarea[id^=chat-text-]")
    for text in (f"Guten Morgen aus Halle ({name})!", f"Ton und Bild sind gut ({name})."):
        page.fill("textarea[id^=chat-text-]", text)
        page.keyboard.press("Enter")
        expect(page.locator(".chat-messages .chat-text", has_text=text)).to_be_visible()
    assert box(page, "textarea[id^=chat-text-]") == before
    clock = page.locator(".chat-messages .chat-message time").last.inner_text()
    assert len(clock) == 5 and clock[2] == ":", clock  # 24-hour clock in both languages, as the server writes
    assert page.locator(".chat-messages").evaluate("el => getComputedStyle(el).overflowY") == "auto"
    assert page.locator(".chat-messages").get_attribute("aria-live") is None  # not every message read out
    expect(page.locator("[data-live-announce]")).to_have_attribute("aria-live", "polite")

    shot(page, screenshot_dir, f"stage-{name}")
    page.screenshot(path=str(screenshot_dir / f"stage-{name}-viewport.png"))
    assert run_axe(page) == []


def test_stage_tabs_are_an_aria_tablist_driven_by_keyboard(new_page, live_server) -> None:
    page = new_page(viewport=PHONE, bypass_csp=True)
    login_in_browser(page, live_server.url, ATTENDEE)
    page.goto(stage_url(live_server))
    tabs = page.get_by_role("tablist").get_by_role("tab")
    expect(tabs).to_have_text(["Chat", "Fragen", "Folien"])
    expect(tabs.nth(0)).to_have_attribute("aria-selected", "true")
    expect(page.locator("[data-stage-tab=chat]")).to_be_visible()
    expect(page.locator("[data-stage-tab=questions]")).to_be_hidden()

    tabs.nth(0).focus()
    page.keyboard.press("ArrowRight")
    expect(tabs.nth(1)).to_be_focused()
    expect(tabs.nth(1)).to_have_attribute("aria-selected", "true")
    expect(tabs.nth(0)).to_have_attribute("tabindex", "-1")
    questions = page.get_by_role("tabpanel")
    expect(questions).to_have_count(1)
    expect(questions).to_have_attribute("aria-labelledby", "stage-tab-questions")
    assert_inside_viewport(page, "textarea[id^=qa-text-]", PHONE)
    page.keyboard.press("End")
    expect(tabs.nth(2)).to_have_attribute("aria-selected", "true")
    expect(page.locator("[data-stage-tab=slides]")).to_be_visible()
    expect(page.locator("[data-stage-tab=chat]")).to_be_hidden()
    page.keyboard.press("Home")
    expect(page.locator("[data-stage-tab=chat]")).to_be_visible()
    assert run_axe(page) == []


def test_stage_for_anonymous_visitor_player_and_details(new_page, live_server, screenshot_dir) -> None:
    page = new_page(viewport=LAPTOP, bypass_csp=True)
    page.goto(stage_url(live_server))
    load_player(page)
    expect(page.locator(".live-hint")).to_be_visible()  # log in to chat
    expect(page.locator("article.session-page h2", has_text="Kurzbeschreibung")).to_have_count(1)
    assert page.locator("h1").count() == 1
    shot(page, screenshot_dir, "stage-visitor-laptop")
    assert run_axe(page) == []

    # Theatre mode: the site's header and navigation give their room to the player; a second press undoes it.
    theatre = page.locator("[data-stage-theatre]")
    expect(theatre).to_be_visible()
    expect(page.locator("[data-stage-pip]")).to_be_hidden()  # no picture-in-picture for an iframe player
    theatre.click()
    expect(theatre).to_have_attribute("aria-pressed", "true")
    expect(page.locator(".site-header")).to_be_hidden()
    player = box(page, "iframe.stream-frame")
    assert abs(player["width"] / player["height"] - 16 / 9) < 0.02, player
    assert box(page, ".stage-side")["y"] + box(page, ".stage-side")["height"] <= LAPTOP["height"]
    theatre.click()
    expect(page.locator(".site-header")).to_be_visible()


DEMO_MANAGE = "/manage/events/digitalkonferenz-2027"


def test_branding_applied_and_low_contrast_refused(new_page, live_server, screenshot_dir) -> None:
    import io

    from PIL import Image, ImageDraw

    organiser = new_page(viewport=LAPTOP, bypass_csp=True)
    login_in_browser(organiser, live_server.url, "orga@demo.invalid")
    organiser.goto(f"{live_server.url}{DEMO_MANAGE}/branding")

    # A light accent would make white text on it unreadable: refused, with the reason at the field.
    organiser.fill("#accent_color", "#f0a500")
    with organiser.expect_navigation():
        organiser.click("main button[type=submit]")
    error = organiser.locator("#accent_color-error")
    expect(error).to_contain_text(re.compile(r"2[.,]08:1.*WCAG AA"))  # the measured contrast, in the page's language
    expect(organiser.locator("#accent_color")).to_have_attribute("aria-invalid", "true")

    logo = io.BytesIO()
    image = Image.new("RGBA", (320, 80), (0, 0, 0, 0))
    ImageDraw.Draw(image).rectangle((8, 8, 312, 72), fill=(106, 27, 77, 255))
    image.save(logo, format="PNG")
    organiser.fill("#accent_color", "#6a1b4d")
    organiser.fill("#imprint_url", "https://verein.example/impressum")
    organiser.set_input_files("#logo", files=[{"name": "logo.png", "mimeType": "image/png", "buffer": logo.getvalue()}])
    with organiser.expect_navigation():
        organiser.click("main button[type=submit]")
    expect(organiser.locator(".flash-success")).to_be_visible()

    visitor = new_page(viewport=PHONE, bypass_csp=True)
    visitor.goto(f"{live_server.url}/events/digitalkonferenz-2027/agenda")
    header = visitor.locator(".site-header")
    assert header.evaluate("el => getComputedStyle(el).backgroundColor") == "rgb(106, 27, 77)"
    expect(visitor.locator(".site-header .brand")).to_contain_text("Digitalkonferenz")
    expect(visitor.locator(".site-header img.brand-logo")).to_be_visible()
    assert visitor.locator("img.brand-logo").evaluate("img => img.naturalWidth") == 320
    expect(visitor.locator(".site-footer a[href='https://verein.example/impressum']")).to_be_visible()
    assert visitor.evaluate("() => document.documentElement.scrollWidth <= window.innerWidth")
    shot(visitor, screenshot_dir, "branding-agenda-phone")
    assert run_axe(visitor) == []
    visitor.set_viewport_size(LAPTOP)
    visitor.goto(f"{live_server.url}/events/digitalkonferenz-2027/")
    shot(visitor, screenshot_dir, "branding-event-laptop")
    assert run_axe(visitor) == []
