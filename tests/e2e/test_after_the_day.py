"""After the day in Chromium: the organiser filters and exports the attendee list (CSV read with the csv module,
XLSX with openpyxl, formulas neutralised), an attendee rates a session, the speaker sees it without names, the
documentation page is published; axe-clean, and no sideways scroll at 390 px on every new page."""

from __future__ import annotations

import csv
import io
import subprocess
import sys
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from openpyxl import load_workbook
from playwright.sync_api import expect

from tests.e2e.conftest import login_in_browser, run_axe, shot
from tests.e2e.test_no_sideways_scroll import overflow
from tests.support.server import PROJECT_ROOT, RunningServer, run_cli, running_server, server_env

pytestmark = pytest.mark.browser

SLUG = "fachtag-gestern"
PHONE = {"width": 390, "height": 844}
ORGANISER = "orga@demo.invalid"
ATTENDEE = "teilnehmer00001@demo.invalid"
ATTENDEE2 = "teilnehmer00002@demo.invalid"
SPEAKER = "sprecher.schubert@demo.invalid"
STATE: dict[str, int] = {}


def arrange_after_the_day() -> None:
    """In a process of its own against the test instance: an event of yesterday and today with a session that
    has started, registration questions, two registered attendees (one with a formula as organisation)."""
    from sqlalchemy import select

    from conference import create_app
    from conference.agenda import services as agenda
    from conference.agenda.models import SessionSpeaker
    from conference.agenda.releases import publish_release
    from conference.agenda.rooms import create_room
    from conference.auth.models import User
    from conference.core.db import utcnow
    from conference.core.permissions import Role
    from conference.events import services as events
    from conference.extensions import db
    from conference.people import services as people
    from conference.speakers.models import SpeakerProfile

    app = create_app()
    with app.app_context():
        now = utcnow().replace(second=0, microsecond=0)
        event = events.create_event(slug=SLUG, title="Fachtag Daten", start_date=(now - timedelta(days=1)).date(),
                                    end_date=(now + timedelta(days=1)).date(), timezone="UTC", is_published=True)
        user = {email: db.session.scalar(select(User).where(User.email == email))
                for email in (ORGANISER, ATTENDEE, ATTENDEE2, SPEAKER)}
        events.set_role(event, user=user[ORGANISER], role=Role.ORGANISER)
        events.set_role(event, user=user[SPEAKER], role=Role.SPEAKER)
        room = create_room(event, name="Saal", actor=None)
        session = agenda.create_session(event, title="Offene Daten in der Verwaltung", actor=None)
        agenda.schedule_session(session, room=room, start_at=now - timedelta(minutes=30),
                                end_at=now + timedelta(minutes=30), actor=None)
        profile = SpeakerProfile(event_id=event.id, user_id=user[SPEAKER].id, name="Sabine Schubert")
        db.session.add(profile)
        db.session.flush()
        session.speakers.append(SessionSpeaker(speaker_id=profile.id))
        db.session.flush()
        publish_release(event, name="Stand heute", actor=None)
        people.update_settings(event, asks_organisation=True, asks_sector=True,
                               sectors="Wirtschaft\nWissenschaft\nPolitik und Verwaltung\nSonstiges",
                               asks_listing_consent=True, has_public_list=True)
        people.register_with_answers(event, user=user[ATTENDEE], code=None, organisation="=HYPERLINK(\"x\")",
                                     sector="Wirtschaft", is_listed=True)
        people.register_with_answers(event, user=user[ATTENDEE2], code=None, organisation="Landesamt",
                                     sector="Politik und Verwaltung", is_listed=False)
        db.session.commit()
        print(session.id)  # noqa: T201 - read by the fixture


@pytest.fixture(scope="module")
def live_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    instance = tmp_path_factory.mktemp("after") / "instance"
    instance.mkdir(parents=True)
    env = server_env(instance, "eventlet")
    run_cli(["demo", "--attendees", "3"], env)
    arranged = subprocess.run(
        [sys.executable, "-c", "from tests.e2e.test_after_the_day import arrange_after_the_day as a; a()"],
        env=env, cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=120, check=True)
    STATE["session"] = int(arranged.stdout.split()[-1])
    with running_server(instance, "eventlet", demo_attendees=None) as running:
        yield running


def _download(page: Any, link_name: str) -> bytes:
    with page.expect_download() as info:
        page.get_by_role("link", name=link_name).click()
    path = info.value.path()
    assert path is not None
    with open(path, "rb") as handle:
        return handle.read()


def test_organiser_filters_and_exports_the_attendee_list(new_page, live_server, screenshot_dir) -> None:
    page = new_page(locale="en-GB", bypass_csp=True)
    login_in_browser(page, live_server.url, ORGANISER)
    page.goto(f"{live_server.url}/manage/events/{SLUG}/attendees")
    rows = page.locator("table.attendee-list tbody tr")
    expect(rows).to_have_count(4)  # two attendees, the organiser and the speaker
    assert run_axe(page) == []
    shot(page, screenshot_dir, "attendee-list-desktop")
    page.select_option("#filter-sector", "Politik und Verwaltung")
    page.get_by_role("button", name="Filter").click()
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("Landesamt")
    page.fill("#filter-q", "")
    page.select_option("#filter-sector", "")
    page.get_by_role("button", name="Filter").click()
    expect(rows).to_have_count(4)
    body = _download(page, "Download as CSV").decode("utf-8-sig")
    table = list(csv.reader(io.StringIO(body)))
    assert table[0][:4] == ["Name", "E-mail", "Organisation", "Sector"]
    organisations = {row[1]: row[2] for row in table[1:]}
    assert organisations[ATTENDEE] == "'=HYPERLINK(\"x\")" and organisations[ATTENDEE2] == "Landesamt"
    sheet = load_workbook(io.BytesIO(_download(page, "Download as Excel (XLSX)"))).active
    cells = [cell for row in sheet.iter_rows() for cell in row if cell.value is not None]
    assert "'=HYPERLINK(\"x\")" in [cell.value for cell in cells]
    assert all(cell.data_type == "s" for cell in cells)


def test_attendee_gives_feedback_and_speaker_sees_it_without_names(new_page, live_server, screenshot_dir) -> None:
    page = new_page(locale="en-GB", bypass_csp=True)
    login_in_browser(page, live_server.url, ATTENDEE)
    page.goto(f"{live_server.url}/events/{SLUG}/sessions/{STATE['session']}")
    page.get_by_role("link", name="Rate this session").click()
    assert run_axe(page) == []
    page.get_by_label("4", exact=True).check()
    page.get_by_label("Comment (optional, at most 1000 characters)").fill("Sehr anschaulich <b>danke</b>")
    page.get_by_role("button", name="Send feedback").click()
    expect(page.locator("main")).to_contain_text("Thank you for your feedback.")
    speaker = new_page(locale="en-GB", bypass_csp=True)
    login_in_browser(speaker, live_server.url, SPEAKER)
    speaker.goto(f"{live_server.url}/events/{SLUG}/speakers/me/feedback")
    main = speaker.locator("main")
    expect(main).to_contain_text("Sehr anschaulich <b>danke</b>")  # shown as text, not markup
    expect(main).to_contain_text("4.0")
    assert "Teilnehmer" not in main.inner_text() and ATTENDEE not in speaker.content()
    assert run_axe(speaker) == []
    shot(speaker, screenshot_dir, "speaker-figures")


def test_documentation_published_and_axe_clean(new_page, live_server, screenshot_dir) -> None:
    anonymous = new_page(locale="en-GB", bypass_csp=True)
    response = anonymous.goto(f"{live_server.url}/events/{SLUG}/documentation")
    assert response is not None and response.status == 404
    page = new_page(locale="en-GB", bypass_csp=True)
    login_in_browser(page, live_server.url, ORGANISER)
    page.goto(f"{live_server.url}/manage/events/{SLUG}/documentation")
    assert run_axe(page) == []
    page.get_by_label("Publish the documentation page").check()
    page.get_by_label("Show the number of registered participants").check()
    page.get_by_role("button", name="Save", exact=True).click()
    page.get_by_label("Summary of “Offene Daten in der Verwaltung” (Markdown)").fill("Ein **klarer** Überblick.")
    page.get_by_role("button", name="Save summary").click()
    anonymous.goto(f"{live_server.url}/events/{SLUG}/documentation")
    main = anonymous.locator("main")
    expect(main.locator("strong", has_text="klarer")).to_be_visible()
    expect(main).to_contain_text("4 participants registered")
    assert run_axe(anonymous) == []
    shot(anonymous, screenshot_dir, "documentation-page")


@pytest.mark.parametrize(("who", "paths"), [
    (None, ["/events/{slug}/participants", "/events/{slug}/documentation"]),
    (ATTENDEE, ["/events/{slug}/registration", "/events/{slug}/sessions/{session}/feedback"]),
    (SPEAKER, ["/events/{slug}/speakers/me/feedback"]),
    (ORGANISER, ["/manage/events/{slug}/attendees", "/manage/events/{slug}/registration-questions",
                 "/manage/events/{slug}/feedback", "/manage/events/{slug}/documentation"]),
])
def test_new_pages_fit_a_phone(new_page, live_server, screenshot_dir, who, paths) -> None:
    page = new_page(locale="de-DE", viewport=PHONE, bypass_csp=True)
    if who:
        login_in_browser(page, live_server.url, who)
    for path in paths:
        url = path.format(slug=SLUG, session=STATE["session"])
        response = page.goto(live_server.url + url)
        assert response is not None and response.status in (200, 404), url
        if response.status == 404:
            continue  # the documentation before an organiser publishes it (the order of the tests may vary)
        found = overflow(page)
        assert found["scrollWidth"] <= found["innerWidth"], (url, found)
        assert run_axe(page) == [], url
        shot(page, screenshot_dir, "phone" + url.replace("/", "-"))
