"""The organiser's attendance dashboard during a simulated event day, with 20 real socket clients present now,
against the real server (eventlet): figures, who is where, charts with tables, the CSV of one session checked
against an independent count of the raw presence records; and an attendee downloading their own certificate."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pypdfium2 as pdfium
import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import SLUG, login_in_browser, run_axe
from tests.support.server import PROJECT_ROOT, RunningServer, run_cli, running_server, server_env
from tests.support.sockets import live_clients

pytestmark = pytest.mark.browser

ORGANISER = "orga@demo.invalid"
ATTENDEE = "teilnehmer00001@demo.invalid"
PEOPLE = 20
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
        for index, session in enumerate(sessions[:-1]):
            first = start + 30 * index
            for person in people:
                if person.email == "teilnehmer00001@demo.invalid" or rng.random() < 0.55:
                    arrive, leave = first + rng.randint(0, 8), first + rng.randint(18, 30)
                    for minute in range(arrive, leave):
                        record_presence(minute, [(person.id, f"session:{session.id}", event.id)])
                    for minute in range(leave, leave + rng.randint(0, 3)):
                        record_presence(minute, [(person.id, f"lobby:{event.slug}", event.id)])
        db.session.commit()
        print(json.dumps({"sessions": [s.id for s in sessions], "titles": [s.title for s in sessions],
                          "attendee": next(p.name for p in people if p.email == ATTENDEE)}))


@pytest.fixture(scope="module")
def live_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    instance = tmp_path_factory.mktemp("attendance") / "instance"
    instance.mkdir(parents=True)
    env = server_env(instance, "eventlet", **SETTINGS)
    run_cli(["demo", "--attendees", str(PEOPLE), "--token-file", str(instance / "tokens.txt")], env)
    arranged = subprocess.run(
        [sys.executable, "-c", "from tests.e2e.test_attendance_dashboard import simulate_day as s; s()"],
        env=env, cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=120, check=True)
    ARRANGED.update(json.loads(arranged.stdout.strip().splitlines()[-1]))
    with running_server(instance, "eventlet", demo_attendees=None, **SETTINGS) as running:
        running.tokens[:] = (instance / "tokens.txt").read_text().split()
        yield running


def independent_figures(rows: list[dict[str, str]], session_id: int) -> tuple[int, int, float]:
    """Unique people, peak per minute and average minutes of one session, straight from the raw minutes."""
    mine = [(row["user_id"], row["minute_utc"]) for row in rows if row["session_id"] == str(session_id)]
    per_minute: dict[str, set[str]] = {}
    for user, minute in mine:
        per_minute.setdefault(minute, set()).add(user)
    people = {user for user, _minute in mine}
    return len(people), max(len(v) for v in per_minute.values()), round(len(mine) / len(people), 1)


def test_dashboard_during_a_simulated_day_with_live_clients(new_page: Any, live_server: RunningServer,
                                                            screenshot_dir: Path) -> None:
    live_session = ARRANGED["sessions"][-1]  # no simulated presence: only the live clients count
    with live_clients() as open_client:
        clients = [open_client(live_server.url, token) for token in live_server.tokens[:PEOPLE]]
        for number, client in enumerate(clients):
            answer = client.call("join", {"room": f"lobby:{SLUG}"})
            assert answer["ok"] is True, answer
            if number % 2 == 0:  # half of them are in the last session now, the others stay in the lobby
                answer = client.call("join", {"room": f"session:{live_session}"})
                assert answer["ok"] is True, answer
        page = new_page(locale="de-DE")
        login_in_browser(page, live_server.url, ORGANISER)
        page.goto(f"{live_server.url}/manage/events/{SLUG}/attendance")
        expect(page.locator("html")).to_have_attribute("lang", "de")
        expect(page.locator("#figure-online")).to_have_text(str(PEOPLE))  # in the lobby and a session: once
        expect(page.locator(f'#live-rooms tr[data-room="session:{live_session}"] .online')).to_have_text(
            str(PEOPLE // 2))
        expect(page.locator(f'#live-rooms tr[data-room="lobby:{SLUG}"] .online')).to_have_text(str(PEOPLE))
        # The live minute reaches the figures through the sampler (every second here) and the poll (2 s).
        live_row = page.locator(f'#table-sessions tr[data-session="{live_session}"]')
        expect(live_row.locator(".peak")).to_have_text(str(PEOPLE // 2), timeout=15_000)
        expect(live_row.locator(".unique")).to_have_text(str(PEOPLE // 2))
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
        print(f"\nsession {checked}: {unique} attendees, peak {peak}, {average} min on average")  # noqa: T201
        page.set_viewport_size({"width": 1280, "height": 900})
        page.screenshot(path=str(screenshot_dir / "attendance-dashboard.png"), full_page=True)
        checked_page = new_page(locale="de-DE", bypass_csp=True)  # axe is injected as a script
        login_in_browser(checked_page, live_server.url, ORGANISER)
        checked_page.goto(f"{live_server.url}/manage/events/{SLUG}/attendance")
        checked_page.locator("details summary").first.click()  # the chart's table too
        assert run_axe(checked_page) == []


def test_attendee_downloads_own_certificate(new_page: Any, live_server: RunningServer) -> None:
    page = new_page(locale="de-DE")
    login_in_browser(page, live_server.url, ATTENDEE)
    page.goto(f"{live_server.url}/account")
    page.locator("main a[href='/account/attendance']").click()
    link = page.locator(f"main a[href='/account/attendance/{SLUG}/certificate.pdf']")
    expect(link).to_be_visible()
    with page.expect_download() as info:
        link.click()
    data = Path(info.value.path()).read_bytes()
    document = pdfium.PdfDocument(data)
    text = "\n".join(document[i].get_textpage().get_text_range() for i in range(len(document)))
    document.close()
    assert "Teilnahmebescheinigung" in text
    assert ARRANGED["attendee"] in text
    assert ARRANGED["titles"][0][:30] in text.replace("\r\n", " ").replace("\n", " ")
