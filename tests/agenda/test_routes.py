"""Public agenda pages, the personal agenda with its calendar feed, and the organiser editor."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import icalendar
import pytest
from sqlalchemy import event as sa_event

from conference.agenda.models import CalendarFeed, ConferenceSession, SessionKind, StarredSession, TimetableSlot
from conference.core.permissions import Role
from conference.extensions import db
from tests.fixtures.accounts import csrf_token, login


@pytest.fixture
def published(agenda_world, create_agenda_session, publish):
    w = agenda_world
    keynote = create_agenda_session(w.event, "Keynote <script>alert(1)</script>", room=w.rooms[0], start="09:00",
                                    end="10:00", speakers=[w.speakers[0]], track=w.track,
                                    abstract="**Fett** <img src=x onerror=alert(1)> [link](javascript:alert(2))")
    english = create_agenda_session(w.event, "Cloud talk", room=w.rooms[1], start="09:00", end="09:30",
                                    language="en", kind=SessionKind.WORKSHOP, speakers=[w.speakers[1]])
    pause = create_agenda_session(w.event, "Kaffeepause", room=w.rooms[0], start="10:00", end="10:15",
                                  kind=SessionKind.BREAK)
    publish(w.event, "1.0")
    return w, keynote, english, pause


def test_schedule_grid_time_by_rooms(client, published) -> None:
    w, keynote, english, _pause = published
    html = client.get("/events/agenda-test/agenda").get_data(as_text=True)
    assert "Version 1.0" in html
    assert re.search(r'<th scope="col">Hauptbühne</th>\s*<th scope="col">Raum A</th>', html)
    assert 'rowspan="2"' in html  # the keynote spans 09:00-09:30 and 09:30-10:00
    assert "Keynote &lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<script>alert(1)" not in html
    assert 'data-event-slug="agenda-test"' in html
    assert f'href="/events/agenda-test/sessions/{english.id}"' in html


@pytest.mark.parametrize(("query", "present", "absent"), [
    ("language=en", "Cloud talk", "Keynote &lt;"),
    ("kind=workshop", "Cloud talk", "Keynote &lt;"),
    ("q=bernd", "Cloud talk", "Keynote &lt;"),
    ("q=fett", "Keynote", "Cloud talk"),
    ("track={track}", "Keynote", "Cloud talk"),
    ("track=abc&language=xx&kind=party&day=kaputt", "Keynote", "no-such-text"),
])
def test_schedule_filters(client, published, query, present, absent) -> None:
    w = published[0]
    html = client.get(f"/events/agenda-test/agenda?{query.format(track=w.track.id)}").get_data(as_text=True)
    assert present in html
    assert absent not in html


def test_schedule_before_release(client, agenda_world) -> None:
    response = client.get("/events/agenda-test/agenda")
    assert response.status_code == 200
    assert "The programme has not been published yet." in response.get_data(as_text=True)


def test_session_page_contract_and_sanitised_abstract(client, published) -> None:
    w, keynote, _english, _pause = published
    response = client.get(f"/events/agenda-test/sessions/{keynote.id}")
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert f'data-session-id="{keynote.id}"' in html and 'data-event-slug="agenda-test"' in html
    assert "<strong>Fett</strong>" in html
    assert "onerror" not in html and "javascript:" not in html
    assert "<script>alert" not in html
    assert "Anna Alt" in html
    assert 'datetime="2027-03-18T08:00:00+00:00"' in html  # event zone shown, UTC in the attribute for JS


def test_session_page_stream_needs_consent(client, agenda_world, create_room, create_agenda_session,
                                           publish) -> None:
    w = agenda_world
    tube = create_room(w.event, "Bühne 2", stream_kind="youtube",
                       stream_url="https://www.youtube.com/watch?v=abcDEF12_-x")
    meet = create_room(w.event, "Breakout", stream_kind="jitsi", stream_url="https://meet.example.org/raum")
    on_tube = create_agenda_session(w.event, "Gestreamt", room=tube)
    in_meet = create_agenda_session(w.event, "Gespräch", room=meet)
    publish(w.event)
    html = client.get(f"/events/agenda-test/sessions/{on_tube.id}").get_data(as_text=True)
    assert "<iframe" not in html
    assert 'data-embed-url="https://www.youtube-nocookie.com/embed/abcDEF12_-x"' in html  # no tracking cookies
    assert "stream-consent-button" in html
    assert 'href="https://www.youtube.com/watch?v=abcDEF12_-x"' in html  # without JavaScript: a plain link
    html = client.get(f"/events/agenda-test/sessions/{in_meet.id}").get_data(as_text=True)
    assert 'href="https://meet.example.org/raum" rel="noopener noreferrer" target="_blank"' in html
    assert "<iframe" not in html


def test_session_page_not_in_release_is_404(client, published, create_agenda_session) -> None:
    w = published[0]
    draft = create_agenda_session(w.event, "Entwurf", room=w.rooms[1], start="14:00", end="15:00")
    assert client.get(f"/events/agenda-test/sessions/{draft.id}").status_code == 404
    assert client.get("/events/agenda-test/sessions/999").status_code == 404


def test_now_and_next(client, create_event, create_room, create_agenda_session, publish) -> None:
    now = datetime.now(UTC)
    event = create_event("today-event", start=now.astimezone().date() - timedelta(days=1),
                         end=now.astimezone().date() + timedelta(days=1))
    room = create_room(event, "Saal")
    from conference.agenda import services
    from conference.core.after_commit import commit

    running = services.create_session(event, title="Läuft gerade", actor=None)
    services.schedule_session(running, room=room, start_at=now - timedelta(minutes=10),
                              end_at=now + timedelta(minutes=20), actor=None)
    upcoming = services.create_session(event, title="Kommt danach", actor=None)
    services.schedule_session(upcoming, room=room, start_at=now + timedelta(minutes=30),
                              end_at=now + timedelta(minutes=60), actor=None)
    commit()
    publish(event)
    html = client.get("/events/today-event/agenda/now").get_data(as_text=True)
    assert html.index("Läuft gerade") < html.index("Kommt danach")


def _count_queries(app, client, path: str) -> int:
    statements: list[str] = []

    def count(conn, cursor, statement, *args):
        statements.append(statement)

    with app.app_context():
        engine = db.engine
    sa_event.listen(engine, "before_cursor_execute", count)
    try:
        assert client.get(path).status_code == 200
    finally:
        sa_event.remove(engine, "before_cursor_execute", count)
    return len(statements)


def test_queries_per_page_do_not_grow_with_sessions(app, client, agenda_world, create_agenda_session,
                                                    publish) -> None:
    w = agenda_world
    first = create_agenda_session(w.event, "S0", room=w.rooms[0], start="08:00", end="08:10",
                                  speakers=[w.speakers[0]])
    publish(w.event, "small")
    paths = ["/events/agenda-test/agenda", f"/events/agenda-test/sessions/{first.id}",
             "/events/agenda-test/schedule.xml", "/api/v1/events/agenda-test/sessions"]
    for path in paths:
        client.get(path)  # warm the release cache
    small = {path: _count_queries(app, client, path) for path in paths}
    for i in range(1, 30):
        create_agenda_session(w.event, f"S{i}", room=w.rooms[i % 2], start=f"{8 + i // 2:02d}:{20 if i % 2 else 30}",
                              end=f"{8 + i // 2:02d}:{25 if i % 2 else 40}", speakers=[w.speakers[i % 3]])
    publish(w.event, "large")
    for path in paths:
        client.get(path)
    large = {path: _count_queries(app, client, path) for path in paths}
    assert large == small
    assert max(small.values()) <= 10  # the session page also runs the slides and live includes


# --- personal agenda ----------------------------------------------------------------------------


def test_star_form_and_my_agenda(client, published, person) -> None:
    w, keynote, _english, _pause = published
    attendee = person(w.event, Role.ATTENDEE, email="gast@example.org")
    login(client, attendee.email)
    token = csrf_token(client, f"/events/agenda-test/sessions/{keynote.id}")
    response = client.post(f"/events/agenda-test/sessions/{keynote.id}/star",
                           data={"csrf_token": token, "next": "/events/agenda-test/agenda"})
    assert (response.status_code, response.headers["Location"]) == (303, "/events/agenda-test/agenda")
    html = client.get("/events/agenda-test/my-agenda").get_data(as_text=True)
    assert "Keynote &lt;script&gt;" in html and "Cloud talk" not in html
    client.post(f"/events/agenda-test/sessions/{keynote.id}/star", data={"csrf_token": token, "action": "unstar"})
    assert db.session.query(StarredSession).count() == 0


def test_star_without_csrf_or_login_refused(client, published, person) -> None:
    w, keynote, _english, _pause = published
    assert client.post(f"/events/agenda-test/sessions/{keynote.id}/star").status_code in (400, 302)
    login(client, person(w.event, Role.ATTENDEE, email="gast@example.org").email)
    assert client.post(f"/events/agenda-test/sessions/{keynote.id}/star").status_code == 400
    assert db.session.query(StarredSession).count() == 0


def test_calendar_feed_create_use_regenerate_revoke(client, published, person) -> None:
    w, keynote, english, _pause = published
    login(client, person(w.event, Role.ATTENDEE, email="gast@example.org").email)
    token = csrf_token(client, "/events/agenda-test/my-agenda")
    client.post(f"/events/agenda-test/sessions/{english.id}/star", data={"csrf_token": token})
    client.post("/events/agenda-test/my-agenda/feed", data={"csrf_token": token})
    html = client.get("/events/agenda-test/my-agenda").get_data(as_text=True)
    feed_url = re.search(r'value="(http://localhost/events/agenda-test/calendar/[^"]+\.ics)"', html).group(1)
    qr = client.get("/events/agenda-test/my-agenda/feed.svg")
    assert qr.mimetype == "image/svg+xml" and b"<svg" in qr.data

    anonymous = client.application.test_client()
    path = feed_url.removeprefix("http://localhost")
    calendar = icalendar.Calendar.from_ical(anonymous.get(path).data)
    assert [str(e["SUMMARY"]) for e in calendar.walk("VEVENT")] == ["Cloud talk"]
    assert calendar.walk("VTIMEZONE")

    client.post("/events/agenda-test/my-agenda/feed", data={"csrf_token": token})
    assert anonymous.get(path).status_code == 404
    assert db.session.query(CalendarFeed).filter(CalendarFeed.revoked_at.is_(None)).count() == 1
    client.post("/events/agenda-test/my-agenda/feed/revoke", data={"csrf_token": token})
    assert db.session.query(CalendarFeed).filter(CalendarFeed.revoked_at.is_(None)).count() == 0
    assert anonymous.get("/events/agenda-test/calendar/1-forged.ics").status_code == 404


# --- organiser editor ---------------------------------------------------------------------------


@pytest.mark.parametrize(("role", "status"), [(Role.ATTENDEE, 403), (Role.SPEAKER, 403), (Role.MODERATOR, 403)])
def test_editor_refused_for_non_organisers(client, agenda_world, person, role, status) -> None:
    login(client, person(agenda_world.event, role, email="x@example.org").email)
    assert client.get("/manage/events/agenda-test/agenda").status_code == status


def test_editor_anonymous_redirected_to_login(client, agenda_world) -> None:
    response = client.get("/manage/events/agenda-test/agenda")
    assert response.status_code == 302 and "/login" in response.headers["Location"]


def test_editor_create_schedule_conflict_and_publish(client, agenda_world, person, create_agenda_session) -> None:
    w = agenda_world
    create_agenda_session(w.event, "Belegt", room=w.rooms[0], start="09:00", end="10:00")
    login(client, person(w.event, Role.ORGANISER, email="orga@example.org").email)
    page = client.get("/manage/events/agenda-test/agenda")
    assert page.status_code == 200
    token = csrf_token(client, "/manage/events/agenda-test/agenda")
    created = client.post("/manage/events/agenda-test/agenda/sessions", data={
        "csrf_token": token, "title": "Per Formular", "abstract": "", "kind": "talk", "language": "de",
        "track_id": str(w.track.id), "speakers-0-speaker": str(w.speakers[1].id), "speakers-0-role": "speaker"})
    assert created.status_code == 303
    session = db.session.query(ConferenceSession).filter_by(title="Per Formular").one()
    assert [link.speaker_id for link in session.speakers] == [w.speakers[1].id]

    clash = client.post(f"/manage/events/agenda-test/agenda/sessions/{session.id}/slots", data={
        "csrf_token": token, "room_id": str(w.rooms[0].id), "day": "2027-03-18", "start": "09:30",
        "end": "10:30"}, follow_redirects=True)
    assert "Hauptbühne is already taken by »Belegt«" in clash.get_data(as_text=True)
    assert db.session.query(TimetableSlot).filter_by(session_id=session.id).count() == 0

    client.post(f"/manage/events/agenda-test/agenda/sessions/{session.id}/slots", data={
        "csrf_token": token, "room_id": str(w.rooms[1].id), "day": "2027-03-18", "start": "09:30", "end": "10:30"})
    assert db.session.query(TimetableSlot).filter_by(session_id=session.id).count() == 1

    published = client.post("/manage/events/agenda-test/agenda/releases", data={"csrf_token": token,
                                                                                "name": "1.0"},
                            follow_redirects=True)
    assert "Version 1.0 is published." in published.get_data(as_text=True)
    assert "Per Formular" in client.get("/events/agenda-test/agenda").get_data(as_text=True)


def test_editor_post_without_csrf_refused(client, agenda_world, person) -> None:
    login(client, person(agenda_world.event, Role.ORGANISER, email="orga@example.org").email)
    response = client.post("/manage/events/agenda-test/agenda/sessions", data={"title": "x", "kind": "talk",
                                                                               "language": "de"})
    assert response.status_code == 400
    assert db.session.query(ConferenceSession).count() == 0


def test_editor_rooms_and_tracks(client, agenda_world, person) -> None:
    login(client, person(agenda_world.event, Role.ORGANISER, email="orga@example.org").email)
    token = csrf_token(client, "/manage/events/agenda-test/agenda/rooms")
    bad = client.post("/manage/events/agenda-test/agenda/rooms", data={
        "csrf_token": token, "form": "room", "room-name": "Stream", "room-stream_kind": "youtube",
        "room-stream_url": "http://unsicher.example"})
    assert bad.status_code == 400
    good = client.post("/manage/events/agenda-test/agenda/rooms", data={
        "csrf_token": token, "form": "track", "track-name": "Politik", "track-color": "#aa0000"})
    assert good.status_code == 303
    css = client.get("/events/agenda-test/agenda/tracks.css?state=working").get_data(as_text=True)
    assert "--track-color:#aa0000" in css
    # The public pages know the new track only from the next release.
    assert "--track-color:#aa0000" not in client.get("/events/agenda-test/agenda/tracks.css").get_data(as_text=True)
