"""The organiser's attendance dashboard during a simulated event day, with a crowd of 130 people connected now
(light socket clients in a process of their own, chatting, asking and reacting in the live session), against
the real server (eventlet): figures, who is where, charts with tables, the CSV of one session checked against an
independent count of the raw presence records; all certificates generated as a job and checked in the ZIP; and
an attendee downloading their own certificate."""

from __future__ import annotations

import csv
import io
import json
import re
import subprocess
import sys
import time
import zipfile
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import SLUG, login_in_browser, run_axe
from tests.support.live_crowd import Crowd, live_crowd
from tests.support.pdfs import pdf_text
from tests.support.server import PROJECT_ROOT, RunningServer, run_cli, running_server, server_env

pytestmark = pytest.mark.browser

ORGANISER = "orga@demo.invalid"
ATTENDEE = "teilnehmer00001@demo.invalid"
PEOPLE = 130
#: Minutes the crowd can add to a person's total between the CSV the certificate count comes from and the job
#: reading the records (the job is waited for at most a minute: two minute boundaries at most).
MARGIN = 5
SETTINGS = {"CONFERENCE_ATTENDANCE_SAMPLE_SECONDS": "1", "CONFERENCE_ATTENDANCE_POLL_SECONDS": "2"}
ARRANGED: dict[str, Any] = {}


def simulate_day() -> None:
    """Run in a process of its own against the test instance: presence records of a day that began 8 hours
    ago (the released sessions but the last, half an hour each, the lobby between them) for the demo's attendees;
    the last session is left for the live clients; prints JSON."""
    import random
    import time

    from sqlalchemy import select

    from conference import create_app
    from conference.agenda.public import released_session
    from conference.attendance.collector import minute_of, record_presence
    from conference.attendance.services import event_sessions
    from conference.auth.models import User
    from conference.events.models import Event
    from conference.extensions import db

    app = create_app()
    rng = random.Random(2027)
    with app.app_context():
        event = db.session.scalar(select(Event).where(Event.slug == SLUG))
        sessions = [s for s in event_sessions(event) if released_session(event, s.id) is not None][:16]
        people = db.session.scalars(select(User).where(User.email.like("teilnehmer%@demo.invalid"))
                                    .order_by(User.email)).all()
        start = minute_of(time.time()) - 8 * 60
        by_minute: dict[int, list[tuple[int, str, int]]] = {}
        for index, session in enumerate(sessions[:-1]):
            first = start + 30 * index
            for person in people:
                if person.email == "teilnehmer00001@demo.invalid" or rng.random() < 0.55:
                    arrive, leave = first + rng.randint(0, 8), first + rng.randint(18, 30)
                    for minute in range(arrive, leave):
                        by_minute.setdefault(minute, []).append((person.id, f"session:{session.id}", event.id))
                    for minute in range(leave, leave + rng.randint(0, 3)):
                        by_minute.setdefault(minute, []).append((person.id, f"lobby:{event.slug}", event.id))
        for minute, pairs in by_minute.items():  # one statement per minute, as the collector writes
            record_presence(minute, pairs)
        db.session.commit()
        print(json.dumps({"sessions": [s.id for s in sessions], "titles": [s.title for s in sessions],
                          "attendee": next(p.name for p in people if p.email == ATTENDEE)}))


@pytest.fixture(scope="module")
def live_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    instance = tmp_path_factory.mktemp("attendance") / "instance"
    instance.mkdir(parents=True)
    env = server_env(instance, "eventlet", **SETTINGS)
    run_cli(["demo", "--attendees", str(PEOPLE), "--token-file", str(instance / "tokens.txt")], env, timeout=300)
    arranged = subprocess.run(
        [sys.executable, "-c", "from tests.e2e.test_attendance_dashboard import simulate_day as s; s()"],
        env=env, cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=120, check=True)
    ARRANGED.update(json.loads(arranged.stdout.strip().splitlines()[-1]))
    with running_server(instance, "eventlet", demo_attendees=None, **SETTINGS) as running:
        running.tokens[:] = (instance / "tokens.txt").read_text().split()
        yield running


@pytest.fixture(scope="module")
def crowd(live_server: RunningServer) -> Iterator[Crowd]:
    """130 people online: all in the lobby, every second one also in the last session (no simulated presence
    there, so only they count); a trickle of chat, questions and reactions in it. They stay for the module."""
    with live_crowd(live_server.ports[0], live_server.instance / "tokens.txt", lobby=f"lobby:{SLUG}",
                    session=ARRANGED["sessions"][-1], people=PEOPLE) as running:
        yield running


def independent_figures(rows: list[dict[str, str]], session_id: int) -> tuple[int, int, float]:
    """Unique people, peak per minute and average minutes of one session, straight from the raw minutes."""
    mine = [(row["user_id"], row["minute_utc"]) for row in rows if row["session_id"] == str(session_id)]
    per_minute: dict[str, set[str]] = {}
    for user, minute in mine:
        per_minute.setdefault(minute, set()).add(user)
    people = {user for user, _minute in mine}
    return len(people), max(len(v) for v in per_minute.values()), round(len(mine) / len(people), 1)


def test_dashboard_during_a_simulated_day_with_a_live_crowd(new_page: Any, live_server: RunningServer, crowd: Crowd,
                                                            screenshot_dir: Path) -> None:
    live_session = ARRANGED["sessions"][-1]
    assert crowd.ready == {"connected": PEOPLE, "lobby": PEOPLE, "session": PEOPLE // 2}
    page = new_page(locale="de-DE")
    login_in_browser(page, live_server.url, ORGANISER)
    page.goto(f"{live_server.url}/manage/events/{SLUG}/attendance")
    expect(page.locator("html")).to_have_attribute("lang", "de")
    expect(page.locator("#figure-online")).to_have_text(str(PEOPLE))  # in the lobby and a session: once
    live_online = page.locator(f'#live-rooms tr[data-room="session:{live_session}"] .online')
    lobby_online = page.locator(f'#live-rooms tr[data-room="lobby:{SLUG}"] .online')
    expect(live_online).to_have_text(str(PEOPLE // 2))
    expect(lobby_online).to_have_text(str(PEOPLE))
    # The live minute reaches the figures through the sampler (every second here) and the poll (2 s); the open
    # page updates itself, no reload.
    live_row = page.locator(f'#table-sessions tr[data-session="{live_session}"]')
    expect(live_row.locator(".peak")).to_have_text(str(PEOPLE // 2), timeout=30_000)
    expect(live_row.locator(".unique")).to_have_text(str(PEOPLE // 2))
    counts = crowd.report()
    assert counts["acked"] == counts["sent"], counts  # a trickle within the rate limits is taken in full
    acked = counts["acked"]
    # Reactions reach the counters through the live layer's aggregation and the sampler; chat and questions
    # are rows. Chat in the lobby belongs to no session.
    expect(live_row.locator(".chat")).to_have_text(str(acked["chat"]), timeout=30_000)
    expect(live_row.locator(".questions")).to_have_text(str(acked["questions"]), timeout=30_000)
    expect(live_row.locator(".reactions")).to_have_text(str(acked["reactions"]), timeout=30_000)
    expect(page.locator("#chart-timeline")).to_be_visible()
    assert page.evaluate("() => !!window.Chart && Object.keys(window.Chart.instances).length") == 2
    assert page.locator("#table-timeline tbody tr").count() >= 6 * 12  # a day in 5-minute rows

    response = page.request.get(f"{live_server.url}/manage/events/{SLUG}/attendance/presence.csv")
    assert response.ok
    rows = list(csv.DictReader(io.StringIO(response.text())))
    checked = ARRANGED["sessions"][3]
    unique, peak, average = independent_figures(rows, checked)
    row = page.locator(f'#table-sessions tr[data-session="{checked}"]')
    assert (row.locator(".unique").inner_text(), row.locator(".peak").inner_text()) == (str(unique), str(peak))
    assert float(row.locator(".average").inner_text()) == average
    sessions_csv = page.request.get(f"{live_server.url}/manage/events/{SLUG}/attendance/sessions.csv").text()
    by_id = {r["session_id"]: r for r in csv.DictReader(io.StringIO(sessions_csv))}
    assert (int(by_id[str(checked)]["unique_attendees"]), int(by_id[str(checked)]["peak_concurrent"]),
            float(by_id[str(checked)]["average_minutes"])) == (unique, peak, average)
    assert independent_figures(rows, live_session)[:2] == (PEOPLE // 2, PEOPLE // 2)  # the crowd's minutes
    live_csv = by_id[str(live_session)]
    assert (int(live_csv["chat_messages"]), int(live_csv["questions"]), int(live_csv["reactions"])) == (
        acked["chat"], acked["questions"], acked["reactions"])
    print(f"\nsession {checked} from presence.csv: {unique} attendees, peak {peak}, "  # noqa: T201
          f"{average} min on average")
    print(f"online now: {page.locator('#figure-online').inner_text()} (lobby {lobby_online.inner_text()}, "  # noqa: T201
          f"live session {live_online.inner_text()}); live session: peak {live_row.locator('.peak').inner_text()}, "
          f"unique {live_row.locator('.unique').inner_text()}; crowd sent {counts['sent']}, acked {acked}")
    page.set_viewport_size({"width": 1280, "height": 900})
    page.screenshot(path=str(screenshot_dir / "attendance-dashboard.png"), full_page=True)
    checked_page = new_page(locale="de-DE", bypass_csp=True)  # axe is injected as a script
    login_in_browser(checked_page, live_server.url, ORGANISER)
    checked_page.goto(f"{live_server.url}/manage/events/{SLUG}/attendance")
    checked_page.locator("details summary").first.click()  # the chart's table too
    assert run_axe(checked_page) == []


def test_organiser_generates_all_certificates(new_page: Any, live_server: RunningServer, crowd: Crowd) -> None:
    page = new_page(locale="de-DE")
    login_in_browser(page, live_server.url, ORGANISER)
    dashboard = f"{live_server.url}/manage/events/{SLUG}/attendance"
    page.goto(dashboard)
    threshold = int(page.locator("#certificate_min_minutes").input_value())
    # Who qualifies, independently: distinct minutes per person in any room (lobby and session at once count
    # once), from the raw records fetched right before generating. The crowd is still online and adds a minute
    # to everyone's total each minute; nobody is within MARGIN minutes below the threshold (asserted), so those
    # minutes cannot tip anyone over before the job reads the records.
    rows = list(csv.DictReader(io.StringIO(page.request.get(f"{dashboard}/presence.csv").text())))
    minutes: dict[str, set[str]] = {}
    names = {row["user_id"]: row["name"] for row in rows}
    for row in rows:
        minutes.setdefault(row["user_id"], set()).add(row["minute_utc"])
    totals = {user: len(seen) for user, seen in minutes.items()}
    assert not [t for t in totals.values() if threshold - MARGIN <= t < threshold], threshold
    qualifying = Counter(names[user] for user, total in totals.items() if total >= max(threshold, 1))

    with page.expect_navigation():
        page.click("main form[action$='/attendance/certificates'] button[type=submit]")
    link = page.locator(f"main a[href$='/manage/events/{SLUG}/attendance/certificates.zip']")
    deadline = time.monotonic() + 60
    while not link.count() and time.monotonic() < deadline:  # the page asks to reload it in a moment
        page.wait_for_timeout(1000)
        page.reload()
    expect(link).to_be_visible()
    shown = re.search(r"(\d+) Bescheinigungen in ([\d.,]+) Sekunden", link.locator("xpath=..").inner_text())
    assert shown is not None
    with page.expect_download() as info:
        link.click()
    with zipfile.ZipFile(info.value.path()) as archive:
        files = archive.namelist()
        assert all(name.endswith(".pdf") for name in files), files
        texts = [pdf_text(archive.read(name)) for name in files]
    assert len(files) == int(shown.group(1)) == sum(qualifying.values())
    named = [(text.splitlines()[1].strip(), text) for text in texts]  # the title, then the name
    assert Counter(name for name, _text in named) == qualifying
    mine = [text for name, text in named if name == ARRANGED["attendee"]]
    assert len(mine) == 1
    assert "Teilnahmebescheinigung" in mine[0]
    assert ARRANGED["titles"][0][:30] in mine[0].replace("\r\n", " ").replace("\n", " ")
    print(f"\ncertificates: {len(files)} of {len(totals)} people present (threshold {threshold} min, fewest "  # noqa: T201
          f"minutes {min(totals.values())}); the dashboard says: {shown.group(0)}")


def test_attendee_downloads_own_certificate(new_page: Any, live_server: RunningServer) -> None:
    page = new_page(locale="de-DE")
    login_in_browser(page, live_server.url, ATTENDEE)
    page.goto(f"{live_server.url}/account")
    page.locator("main a[href='/account/attendance']").click()
    link = page.locator(f"main a[href='/account/attendance/{SLUG}/certificate.pdf']")
    expect(link).to_be_visible()
    with page.expect_download() as info:
        link.click()
    text = pdf_text(Path(info.value.path()).read_bytes())
    assert "Teilnahmebescheinigung" in text
    assert ARRANGED["attendee"] in text
    assert ARRANGED["titles"][0][:30] in text.replace("\r\n", " ").replace("\n", " ")
