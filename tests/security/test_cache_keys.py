"""Every cached public output follows every input it shows (issue 14, finding 13).

The matrix: each cached output (the three exports, the sessions API, the agenda page with and without a filter,
a session page with its panels, the slide archive) is fetched twice by an anonymous visitor (so it is served
from its cache), then one input is changed the way an organiser, speaker or attendee changes it, and every
output is fetched again. Exactly the outputs that show the input must have changed, and show the new value;
the others must be byte for byte the same. A change of the programme reaches the public with the next release
(so the outputs that print the release's version change too); everything else (the event's own settings,
slides, questions) at once. A second matrix varies the request (site address, path prefix, language), and a
third lets time pass until a session ends and its slides publish themselves.
"""

from __future__ import annotations

import io
import re
import time
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.datastructures import ResponseCacheControl
from werkzeug.http import parse_cache_control_header

from conference.agenda import services as agenda
from conference.agenda.models import ConferenceSession, Room, Track
from conference.agenda.releases import publish_release
from conference.agenda.rooms import update_room, update_track
from conference.auth.models import User
from conference.core.after_commit import commit
from conference.core.db import utcnow
from conference.core.permissions import Role
from conference.events.models import Event
from conference.extensions import db
from conference.live import qa, rooms
from conference.presentations.models import Presentation
from conference.speakers.models import SpeakerProfile
from conference.speakers.services import store_photo
from tests.fixtures.accounts import api_token_for
from tests.fixtures.agenda import AgendaWorld, at
from tests.fixtures.live import standing
from tests.fixtures.presentations import jpeg_with_exif, pptx_bytes, upload
from tests.security.conftest import World
from tests.security.test_csrf import _get_cells, _url

XML, JSON, ICS, API, GRID, GRID_TRACK, PAGE, ZIP = (
    "schedule.xml", "schedule.json", "schedule.ics", "api sessions", "agenda page", "agenda page (track)",
    "session page", "archive.zip")
OUTPUTS = (XML, JSON, ICS, API, GRID, GRID_TRACK, PAGE, ZIP)
VERSIONED = frozenset({XML, JSON, ICS, API, GRID, GRID_TRACK})  # they print the release's version
CSRF_VALUE = re.compile(r'(name="csrf_token" (?:type="hidden" )?value=")[^"]*"')


@dataclass
class Ctx:
    app: Flask
    event: Event
    rooms: list[Room]
    tracks: list[Track]
    speakers: list[SpeakerProfile]
    s1: ConferenceSession  # the session whose page is watched; its deck is published
    s2: ConferenceSession  # another session; its deck is hidden
    organiser: User
    attendee: User
    decks: dict[str, dict[str, Any]]
    api: FlaskClient
    releases: int = 1
    base_url: str = "http://localhost/"
    headers: dict[str, str] = field(default_factory=dict)

    def url(self, output: str) -> str:
        slug = self.event.slug
        if output == GRID_TRACK:
            return f"/events/{slug}/agenda?track={self.tracks[0].id}"
        if output == PAGE:
            return f"/events/{slug}/sessions/{self.s1.id}"
        return {XML: f"/events/{slug}/schedule.xml", JSON: f"/events/{slug}/schedule.json",
                ICS: f"/events/{slug}/schedule.ics", API: f"/api/v1/events/{slug}/sessions",
                GRID: f"/events/{slug}/agenda", ZIP: f"/events/{slug}/presentations/archive.zip"}[output]

    def release(self) -> None:
        self.releases += 1
        publish_release(self.event, name=f"1.{self.releases}", actor=None)
        commit()

    def bearer(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {api_token_for(self.organiser)}"}

    def add_deck(self, name: str, session: ConferenceSession, filename: str, mode: str) -> None:
        response = upload(self.api, session.id, filename, pptx_bytes(), token=api_token_for(self.organiser))
        assert response.status_code == 201, response.get_json()
        self.decks[name] = response.get_json()
        self.set_mode(name, mode)

    def set_mode(self, name: str, mode: str) -> None:
        deck = self.decks[name]
        response = self.api.patch(f"/api/v1/sessions/{deck['session_id']}/presentations/{deck['id']}",
                                  json={"visibility_mode": mode}, headers=self.bearer())
        assert response.status_code == 200, response.get_json()

    def delete_deck(self, name: str) -> None:
        deck = self.decks[name]
        response = self.api.delete(f"/api/v1/sessions/{deck['session_id']}/presentations/{deck['id']}",
                                   headers=self.bearer())
        assert response.status_code == 204


def fetch(client: FlaskClient, ctx: Ctx, output: str, **request: Any) -> str:
    """What a visitor gets, comparable: the body (per-visitor CSRF tokens blanked), for the archive its status,
    ETag and member names."""
    options = {"base_url": ctx.base_url, "headers": ctx.headers, **request}
    with client.get(ctx.url(output), **options) as response:
        body = response.get_data()
    if output == ZIP:
        if response.status_code != 200:
            return str(response.status_code)
        with zipfile.ZipFile(io.BytesIO(body)) as archive:
            return f"{response.status_code} {response.headers['ETag']} {sorted(archive.namelist())}"
    assert response.status_code == 200, (output, response.status_code)
    return CSRF_VALUE.sub(r'\1"', body.decode())


def fetch_all(client: FlaskClient, ctx: Ctx) -> dict[str, str]:
    return {output: fetch(client, ctx, output) for output in OUTPUTS}


@pytest.fixture
def ctx(app: Flask, agenda_world: AgendaWorld, create_track: Callable[..., Track],
        create_agenda_session: Callable[..., ConferenceSession], person: Callable[..., User]) -> Ctx:
    """Two talks in two rooms, released as 1.1; the first has a published deck, the second a hidden one."""
    event = agenda_world.event
    culture = create_track(event, "Kultur", "#228833")
    first = create_agenda_session(event, "Datenräume", room=agenda_world.rooms[0], start="09:00", end="10:00",
                                  speakers=[agenda_world.speakers[0]], track=agenda_world.track,
                                  abstract="Über Daten.")
    second = create_agenda_session(event, "Offene Netze", room=agenda_world.rooms[1], start="10:00", end="11:00",
                                   speakers=[agenda_world.speakers[1]])
    publish_release(event, name="1.1", actor=None)
    commit()
    result = Ctx(app, event, agenda_world.rooms, [agenda_world.track, culture], agenda_world.speakers, first,
                 second, person(event, Role.ORGANISER, email="orga@example.org"),
                 person(event, Role.ATTENDEE, email="attendee@example.org"), {}, app.test_client())
    result.add_deck("first", first, "erste-folien.pptx", "published")
    result.add_deck("second", second, "zweite-folien.pptx", "hidden")
    return result


# --- the changes --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Change:
    name: str
    apply: Callable[[Ctx], Any]
    shows: frozenset[str]  # the outputs whose content this input is part of
    release: bool = False  # reaches the public with the next release
    appears: str | None = None  # text that only the changed outputs show afterwards ...
    appears_in: frozenset[str] | None = None  # ... (default: all of `shows`)
    disappears: str | None = None  # text that the changed outputs no longer show

    @property
    def expected(self) -> frozenset[str]:
        return self.shows | VERSIONED if self.release else self.shows


def _move(ctx: Ctx, *, room: int = 0, start: str = "09:00", end: str = "10:00") -> None:
    agenda.move_slot(ctx.s1.slots[0], room=ctx.rooms[room], start_at=at(ctx.event, start),
                     end_at=at(ctx.event, end), actor=None)


def _rename_speaker(ctx: Ctx) -> None:
    ctx.speakers[0].name = "Anna Alt-Zettel"


def _add_session(ctx: Ctx) -> None:
    session = agenda.create_session(ctx.event, title="Späte Runde", actor=None)
    agenda.schedule_session(session, room=ctx.rooms[0], start_at=at(ctx.event, "14:00"),
                            end_at=at(ctx.event, "15:00"), actor=None)


def _ask(ctx: Ctx) -> None:
    room = rooms.load_room_info(rooms.room_for(ctx.s1))
    qa.ask_question(room, author=standing(ctx.attendee, ctx.event), text="Wie misst man Datenqualität?", client_id="q-1")


ALL_TEXT = frozenset({XML, JSON, ICS, API, GRID, GRID_TRACK, PAGE})
CHANGES = [
    # The programme: changed in the working agenda, public with the next release.
    Change("session title", lambda c: agenda.update_session(c.s1, title="Datenräume neu gedacht", actor=None),
           frozenset({PAGE, ZIP}), release=True, appears="Datenräume neu gedacht",
           appears_in=ALL_TEXT | {ZIP}),
    Change("session abstract", lambda c: agenda.update_session(c.s1, abstract="Messnetze im Revier.", actor=None),
           frozenset({PAGE}), release=True, appears="Messnetze im Revier.",
           appears_in=frozenset({XML, JSON, ICS, API, PAGE})),
    Change("slot time", lambda c: _move(c, start="11:00", end="12:00"), frozenset({PAGE}), release=True),
    Change("slot room", lambda c: _move(c, room=1), frozenset({PAGE}), release=True),
    Change("speaker name", _rename_speaker, frozenset({PAGE}), release=True, appears="Alt-Zettel",
           appears_in=ALL_TEXT),
    Change("speaker added", lambda c: agenda.update_session(
        c.s1, speakers=[(c.speakers[0], "speaker"), (c.speakers[2], "speaker")], actor=None),
        frozenset({PAGE}), release=True, appears="Clara Cramer", appears_in=ALL_TEXT),
    Change("room name", lambda c: update_room(c.rooms[0], name="Kuppelsaal", actor=None),
           frozenset({PAGE}), release=True, appears="Kuppelsaal", appears_in=ALL_TEXT),
    Change("room stream", lambda c: update_room(c.rooms[0], name=c.rooms[0].name, stream_kind="hls",
                                                stream_url="https://stream.example.org/kuppel.m3u8",
                                                actor=None),
           frozenset({PAGE}), release=True, appears="https://stream.example.org/kuppel.m3u8",
           appears_in=frozenset({PAGE})),
    Change("track name", lambda c: update_track(c.tracks[0], name="Gesellschaft",
                                                color=c.tracks[0].color, actor=None),
           frozenset({PAGE}), release=True, appears="Gesellschaft", appears_in=ALL_TEXT),
    Change("track colour", lambda c: update_track(c.tracks[0], name=c.tracks[0].name, color="#aa3300",
                                                  actor=None),
           frozenset(), release=True, appears="#aa3300", appears_in=frozenset({XML, JSON})),
    Change("session track", lambda c: agenda.update_session(c.s2, track=c.tracks[1], actor=None),
           frozenset(), release=True),
    Change("session language", lambda c: agenda.update_session(c.s1, language="en", actor=None),
           frozenset({PAGE}), release=True),
    Change("cancellation", lambda c: agenda.cancel_session(c.s2, actor=None), frozenset(), release=True),
    Change("new session", _add_session, frozenset(), release=True, appears="Späte Runde",
           appears_in=frozenset({XML, JSON, ICS, API, GRID})),
    # The event's own settings: public at once.
    Change("event title", lambda c: setattr(c.event, "title", "Revierkonferenz Neu"),
           frozenset({XML, JSON, ICS, GRID, GRID_TRACK, PAGE}), appears="Revierkonferenz Neu"),
    Change("event time zone", lambda c: setattr(c.event, "timezone", "Europe/London"),
           frozenset({XML, JSON, ICS, API, GRID, GRID_TRACK, PAGE}), appears="Europe/London",
           appears_in=frozenset({XML, JSON, ICS, GRID, GRID_TRACK, PAGE})),
    Change("event language", lambda c: setattr(c.event, "language", "en"), frozenset({GRID, GRID_TRACK})),
    # Slides: public at once, without a release.
    Change("deck hidden", lambda c: c.set_mode("first", "hidden"), frozenset({XML, JSON, PAGE, ZIP}),
           disappears="erste-folien.pptx"),
    Change("deck published", lambda c: c.set_mode("second", "published"), frozenset({XML, JSON, ZIP}),
           appears="zweite-folien.pptx"),
    Change("deck new version", lambda c: c.add_deck("first-v2", c.s1, "erste-folien-v2.pptx", "published"),
           frozenset({XML, JSON, PAGE, ZIP}), appears="erste-folien-v2.pptx"),
    Change("deck deleted", lambda c: c.delete_deck("first"), frozenset({XML, JSON, PAGE, ZIP}),
           disappears="erste-folien.pptx"),
    # Questions: public at once on the session page.
    Change("question asked", _ask, frozenset({PAGE}), appears="Wie misst man Datenqualität?"),
]


def _shown(ctx: Ctx, output: str, text: str, content: str) -> bool:
    if output == ZIP:
        return text in content  # the member names
    return text in content or text.replace("ä", "\\u00e4") in content


@pytest.mark.parametrize("change", CHANGES, ids=[change.name for change in CHANGES])
def test_cached_outputs_follow_each_input(ctx: Ctx, change: Change) -> None:
    visitor = ctx.app.test_client()
    before = fetch_all(visitor, ctx)
    assert fetch_all(visitor, ctx) == before  # served again, from the caches

    change.apply(ctx)
    commit()
    if change.release:
        ctx.release()
    after = fetch_all(visitor, ctx)

    changed = {output for output in OUTPUTS if after[output] != before[output]}
    assert changed == set(change.expected), (
        f"{change.name}: stale {sorted(change.expected - changed)}, changed without showing it "
        f"{sorted(changed - change.expected)}")
    if change.appears:
        for output in change.appears_in or change.shows:
            assert not _shown(ctx, output, change.appears, before[output]), (output, "before")
            assert _shown(ctx, output, change.appears, after[output]), (output, change.appears)
    if change.disappears:
        for output in change.shows:
            assert change.disappears in before[output] or before[output] == "404", output
            assert change.disappears not in after[output], output


# --- the request --------------------------------------------------------------------------------------------


REQUESTS = [
    ("site address", {"base_url": "http://konferenz.example.org/"}, {XML, JSON, ICS}),
    ("path prefix", {"base_url": "http://localhost/konferenz/"}, {XML, JSON, ICS, GRID, GRID_TRACK, PAGE}),
    # The exports name the slides in the visitor's language ("Folien: ...").
    ("language", {"headers": {"Accept-Language": "de"}}, {XML, JSON, GRID, GRID_TRACK, PAGE}),
]


@pytest.mark.parametrize(("variant", "options", "expected"), REQUESTS, ids=[r[0] for r in REQUESTS])
def test_cached_outputs_follow_the_request(ctx: Ctx, variant: str, options: dict[str, Any],
                                           expected: set[str]) -> None:
    """The same state asked for under another address, path prefix or language: every output that prints
    links or words differs, and the cached answer for one never reaches the other."""
    visitor = ctx.app.test_client()
    plain = fetch_all(visitor, ctx)
    for key, value in options.items():
        setattr(ctx, key, value)
    other = fetch_all(visitor, ctx)
    assert {output for output in OUTPUTS if other[output] != plain[output]} == expected, variant
    ctx.base_url, ctx.headers = "http://localhost/", {}
    assert fetch_all(visitor, ctx) == plain


# --- time ---------------------------------------------------------------------------------------------------


def test_cached_outputs_follow_a_session_ending(app: Flask, create_event: Callable[..., Event],
                                                create_room: Callable[..., Room], person: Callable[..., User]) -> None:
    """A deck left to automatic publication appears in the exports, the session page and the archive the
    moment its session ends, although no one changed anything."""
    today = utcnow().date()
    event = create_event("heute", start=today - timedelta(days=1), end=today + timedelta(days=1),
                         timezone="UTC")
    room = create_room(event, "Saal")
    ends = (utcnow() + timedelta(seconds=3)).replace(microsecond=0) + timedelta(seconds=1)
    talks = []
    for title, start, end in (("Frühes Panel", ends - timedelta(hours=3), ends - timedelta(hours=2)),
                              ("Endet gleich", ends - timedelta(minutes=30), ends)):
        session = agenda.create_session(event, title=title, actor=None)
        agenda.schedule_session(session, room=room, start_at=start, end_at=end, actor=None)
        talks.append(session)
    commit()
    publish_release(event, name="1.0", actor=None)
    commit()
    ctx = Ctx(app, event, [room], [], [], talks[1], talks[0], person(event, Role.ORGANISER), person(event, None),
              {}, app.test_client())
    ctx.add_deck("early", talks[0], "frueh.pptx", "automatic")  # ended: published by itself
    ctx.add_deck("ending", talks[1], "gleich.pptx", "automatic")
    watched = (XML, JSON, PAGE, ZIP)
    visitor = app.test_client()
    before = {output: fetch(visitor, ctx, output) for output in watched}
    assert all("frueh.pptx" in before[output] for output in (XML, JSON, ZIP))
    assert not any("gleich.pptx" in text for text in before.values())

    time.sleep(max(0.0, (ends - utcnow()).total_seconds()) + 0.3)
    after = {output: fetch(visitor, ctx, output) for output in watched}
    assert [output for output in watched if "gleich.pptx" not in after[output]] == []


# --- browsers and proxies -----------------------------------------------------------------------------------


def _reused_without_asking(response: Any) -> bool:
    """A browser or proxy may answer from its copy without asking the server (for `max-age` seconds)."""
    control = parse_cache_control_header(response.headers.get("Cache-Control"), cls=ResponseCacheControl)
    if control.no_store or control.no_cache:
        return False
    if control.max_age or control.s_maxage:
        return True
    expires = response.expires
    return expires is not None and expires > utcnow()


#: Anonymous public reads that a cache may keep for CONFERENCE_PUBLIC_MAX_AGE seconds (issue 17: pollers and
#: shared caches); they show released data only. A hidden deck's *link* may stay in such a copy that long; the
#: deck itself (download, preview, archive), photos and style sheets are still revalidated on every use.
SHARED_FOR_MAX_AGE = frozenset({
    "agenda.export_xml", "agenda.export_json", "agenda.export_ics", "agenda.api_sessions", "agenda.api_session",
    "agenda.api_releases", "agenda.api_openapi", "events.api_events", "events.api_event", "presentations.api_list",
})


@pytest.mark.parametrize(("principal", "max_age"), [("anonymous", 60), ("anonymous", 0), ("attendee", 60)])
def test_no_answer_may_be_reused_without_asking(principal: str, max_age: int, world: World) -> None:
    """Every GET route (slides, photos, style sheets, pages, exports): a cache must ask the server again before
    it reuses an answer (ETag, 304), so a hidden deck, a removed photo or a changed colour is gone at once; only
    the anonymous public reads may be kept for CONFERENCE_PUBLIC_MAX_AGE seconds (none when it is 0)."""
    world.app.config["PUBLIC_MAX_AGE"] = max_age
    world.foreign_profile.photo_filename = store_photo(io.BytesIO(jpeg_with_exif()))
    presentation = db.session.get(Presentation, world.foreign_presentation_id)
    presentation.visibility_mode = "published"
    commit()
    client = world.client(principal)
    answered, reusable, shared = set(), [], set()
    for endpoint, rule in _get_cells():
        with client.get(_url(world, endpoint, rule)) as response:
            if response.status_code == 200:
                answered.add(endpoint)
                if not _reused_without_asking(response):
                    continue
                if endpoint in SHARED_FOR_MAX_AGE and response.headers["Cache-Control"] == f"public, max-age={max_age}":
                    shared.add(endpoint)
                else:
                    reusable.append(f"{endpoint}: {response.headers.get('Cache-Control')}")
    assert reusable == []
    if principal == "anonymous" and max_age:
        assert {"agenda.export_xml", "agenda.api_sessions"} <= shared, sorted(shared)
    else:
        assert shared == set()
    assert {"speakers.photo", "agenda.track_styles", "presentations.download", "presentations.thumbnail",
            "presentations.archive", "agenda.export_xml", "agenda.session_page"} <= answered, sorted(answered)
