"""Agenda drafts stay with the organisers: every public and attendee read shows the latest release only.

After release "1.0" of the world's agenda the organiser prepares the next one without releasing it: a new session
in a new room with a new speaker (and a published slide deck), speakers invited to that session and to a released
one, a released session moved to another room and time, another one renamed. Every string of that draft is unique.
The walk asks every GET route of the URL map (parameters filled with the draft's and the release's ids) as an
anonymous visitor, a logged-in outsider, a registered attendee and the speaker of another session, through the
browser login and the API token, plus the exports, the personal calendar feed and the socket answers, and
asserts that none of the draft's strings or times appears and that no URL naming a draft object answers 2xx.

The same walk checks the per-event setting for stream and meeting links ("members only" or "public").
"""

from __future__ import annotations

import io
import itertools
import json
import secrets
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from flask import url_for
from flask_socketio import SocketIOTestClient
from sqlalchemy import select

from conference import create_app
from conference.agenda import services as agenda_services
from conference.agenda.models import ConferenceSession, Room, TimetableSlot
from conference.agenda.personal import calendar_feed_token, create_calendar_feed, star_session
from conference.agenda.releases import publish_release
from conference.agenda.rooms import create_room
from conference.auth.models import User
from conference.core.after_commit import commit
from conference.extensions import db, socketio
from conference.speakers import services as speaker_services
from tests.fixtures.accounts import csrf_token
from tests.fixtures.presentations import jpeg_with_exif, pdf_bytes, upload
from tests.security.conftest import Evidence, World

BERLIN = ZoneInfo("Europe/Berlin")
#: The people who must never see a draft (none of them may manage the agenda).
READERS = ("anonymous", "outsider", "attendee", "speaker", "moderator")

#: URL parameters the walk fills by itself; a route with any other parameter must be listed below.
FILLABLE = frozenset({"slug", "session_id", "speaker_id", "presentation_id"})
#: (endpoint, parameter) filled from one specific object.
SPECIFIC = frozenset({("agenda.calendar_feed", "token")})
#: GET routes the walk does not ask, with the reason.
NOT_WALKED = {
    "static": "files of the code base; no data",
    "speakers.invitation": "a signed link for one invitee that names the session they are invited to (the draft "
                           "title is meant for them); forged tokens are checked in test_authorization",
    "mail.unsubscribe": "a signed unsubscribe link for one address and event; it shows the address, no agenda data "
                        "(a forged link is 404: test_csrf, test_mail_queue)",
    "auth.confirm_address": "a signed link for one account's address; it shows the account's name and address, no "
                            "agenda data (forged, expired and reused links: test_account_takeover)",
    "auth.reset_password": "a signed reset link for one account; it shows the account's address, no agenda data "
                           "(forged, expired, reused and superseded links: test_account_links)",
    "auth.confirm_address_change": "a signed link mailed to an account's new address; it shows both addresses, "
                                   "no agenda data (bad links: test_account_links)",
    "attendance.verify": "a certificate's random code; it shows the certificate as issued (name, event, the "
                         "released session titles); genuine and forged codes: tests/attendance/test_routes.py",
}


def _get_rules() -> list[tuple[str, str, frozenset[str]]]:
    app = create_app({"INSTANCE_PATH": tempfile.mkdtemp(prefix="drafts-"), "SECRET_KEY": "x", "TESTING": True,
                      "DATABASE_URL": "sqlite://", "ASYNC_MODE": "threading"})
    return sorted((rule.endpoint, rule.rule, frozenset(rule.arguments)) for rule in app.url_map.iter_rules()
                  if "GET" in (rule.methods or set()) and not rule.endpoint.startswith("socketio_"))


GET_RULES = _get_rules()


# --- the draft --------------------------------------------------------------------------------------------


@dataclass
class Draft:
    world: World
    secrets: dict[str, str]  # what each unique string is -> the string
    draft_ids: dict[str, set[int]]  # URL parameter -> ids of objects that exist only in the draft
    values: dict[str, list[int]]  # URL parameter -> ids the walk tries
    feed_token: str
    stream_url: str
    draft_session_id: int
    moved_session_id: int
    clients: dict[str, Any] = field(default_factory=dict)


def _local(clock: str) -> datetime:
    hour, minute = map(int, clock.split(":"))
    return datetime(2099, 5, 4, hour, minute, tzinfo=BERLIN)


def _time_forms(clock: str) -> list[str]:
    """How a time of the event's day appears in pages, JSON, XML and iCalendar (local and UTC)."""
    local = _local(clock)
    utc = local.astimezone(ZoneInfo("UTC"))
    return [local.strftime("2099-05-04T%H:%M"), utc.strftime("2099-05-04T%H:%M"),
            local.strftime("20990504T%H%M"), utc.strftime("20990504T%H%M")]


@pytest.fixture
def draft(world: World, create_user: Callable[..., User]) -> Iterator[Draft]:
    tag = secrets.token_hex(5)
    organiser = db.session.get(User, world.users["organiser"].id)
    event = world.event
    stream_url = f"https://meet.example.org/raum{tag}s"
    room = db.session.get(Room, world.room.id)
    room.stream_kind, room.stream_url = "jitsi", stream_url
    commit()
    publish_release(event, name="2.0", actor=organiser)
    commit()

    # The next version, prepared in the editor and never released.
    draft_room = create_room(event, name=f"Raum{tag}r", actor=organiser)
    draft_speaker = speaker_services.create_profile(event, actor=organiser, name=f"Redner{tag}n")
    speaker_services.update_profile(draft_speaker, actor=organiser, photo=io.BytesIO(jpeg_with_exif((300, 300))),
                                    name=draft_speaker.name)
    session = agenda_services.create_session(event, title=f"Entwurf{tag}t", abstract=f"Zusammenfassung{tag}a",
                                             speakers=[(draft_speaker, "speaker")], actor=organiser)
    agenda_services.schedule_session(session, room=draft_room, start_at=_local("17:43"), end_at=_local("18:29"),
                                     actor=organiser)
    moved = db.session.get(ConferenceSession, world.own_session.id)
    slot = db.session.scalar(select(TimetableSlot).where(TimetableSlot.session_id == moved.id))
    agenda_services.move_slot(slot, room=draft_room, start_at=_local("15:17"), end_at=_local("16:02"),
                              actor=organiser)
    renamed = db.session.get(ConferenceSession, world.foreign_session.id)
    agenda_services.update_session(renamed, actor=organiser, title=f"Umbenannt{tag}u")
    commit()
    invited = {}
    for key, target in (("invited_draft", session), ("invited_released", renamed)):
        person = create_user(f"{key}-{tag}@example.org", name=f"Person{tag}{key}")
        invitation = speaker_services.invite_speaker(event, session=target, email=person.email, actor=organiser,
                                                     name=f"Eingeladen{tag}{key[-1]}")
        commit()
        invited[key] = speaker_services.accept_invitation(invitation, user=person).id
        commit()
    attendee = db.session.get(User, world.users["attendee"].id)
    for starred in (session, moved):
        star_session(starred, user=attendee)
    feed = create_calendar_feed(event, user=attendee)
    commit()
    feed_token = calendar_feed_token(feed)
    deck = upload(world.app.test_client(), session.id, f"folien{tag}d.pdf", pdf_bytes(f"Entwurf{tag}t"),
                  token=world.tokens["organiser"])
    assert deck.status_code == 201, deck.get_data(as_text=True)
    deck_id = deck.get_json()["id"]
    published = world.app.test_client().patch(
        f"/api/v1/sessions/{session.id}/presentations/{deck_id}", json={"visibility_mode": "published"},
        headers={"Authorization": f"Bearer {world.tokens['organiser']}"})
    assert published.status_code == 200, published.get_data(as_text=True)

    found = {
        "draft title": session.title, "draft abstract": session.abstract, "draft speaker": draft_speaker.name,
        "draft room": draft_room.name, "draft deck": f"folien{tag}d",
        "speaker invited to the draft": f"Eingeladen{tag}t", "speaker invited to a released session":
            f"Eingeladen{tag}d", "renamed title": renamed.title,
    }
    for what, clock in (("moved start", "15:17"), ("moved end", "16:02"), ("draft start", "17:43")):
        for number, form in enumerate(_time_forms(clock)):
            found[f"{what} ({number})"] = form
    yield Draft(world, found,
                {"session_id": {session.id}, "presentation_id": {deck_id},
                 "speaker_id": {draft_speaker.id, *invited.values()}},
                {"slug": [0], "session_id": [session.id, moved.id, renamed.id],
                 "speaker_id": [draft_speaker.id, *invited.values(), world.own_profile.id, world.foreign_profile.id],
                 "presentation_id": [deck_id, world.foreign_presentation_id]},
                feed_token, stream_url, session.id, moved.id)


# --- asking -----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Ask:
    principal: str
    url: str
    names_draft: bool  # the URL names an object that exists only in the draft
    bearer: bool = False
    allowed: frozenset[str] = frozenset()  # unique strings the request itself carries (echoed search terms)


def _urls(draft: Draft) -> list[tuple[str, bool]]:
    """(url, names a draft object) for every walked GET route, its parameters filled in every combination."""
    result = []
    with draft.world.app.test_request_context():
        for endpoint, _rule, arguments in GET_RULES:
            if endpoint in NOT_WALKED:
                continue
            names = sorted(arguments)
            choices = []
            for name in names:
                if (endpoint, name) == ("agenda.calendar_feed", "token"):
                    choices.append([draft.feed_token])
                elif name == "slug":
                    choices.append([draft.world.event.slug])
                else:
                    choices.append(draft.values[name])
            for combination in itertools.product(*choices):
                values = dict(zip(names, combination, strict=True))
                names_draft = any(values.get(name) in ids for name, ids in draft.draft_ids.items())
                result.append((url_for(endpoint, **values), names_draft))
    return result


def _extra_urls(draft: Draft) -> list[tuple[str, frozenset[str]]]:
    """Query variants the URL map cannot know: search, day, state, chat rooms."""
    slug = draft.world.event.slug
    abstract = draft.secrets["draft abstract"]
    return [(f"/events/{slug}/agenda?q={abstract}", frozenset({abstract})),
            (f"/events/{slug}/agenda?day=2099-05-04", frozenset()),
            (f"/events/{slug}/agenda?day=2099-05-04&q=Entwurf", frozenset()),
            (f"/api/v1/events/{slug}/sessions?state=working", frozenset()),
            (f"/api/v1/events/{slug}/chat?room=session:{draft.draft_session_id}", frozenset()),
            (f"/api/v1/events/{slug}/chat?room=session:{draft.moved_session_id}", frozenset()),
            (f"/api/v1/events/{slug}/chat?room=lobby:{slug}", frozenset())]


def _asks(draft: Draft, principals: tuple[str, ...]) -> list[Ask]:
    asks = []
    for principal in principals:
        for url, names_draft in _urls(draft):
            asks.append(Ask(principal, url, names_draft))
            if url.startswith("/api/") and principal != "anonymous":
                asks.append(Ask(principal, url, names_draft, bearer=True))
        for url, allowed in _extra_urls(draft):
            asks.append(Ask(principal, url, False, allowed=allowed))
            if url.startswith("/api/") and principal != "anonymous":
                asks.append(Ask(principal, url, False, bearer=True, allowed=allowed))
    return asks


def _fetch(draft: Draft, ask: Ask) -> tuple[int, str]:
    """Status and everything the reader receives (headers and body, binary bodies as latin-1)."""
    world = draft.world
    if ask.bearer:
        response = world.app.test_client().get(ask.url, headers={"Authorization": f"Bearer {world.tokens[ask.principal]}"})
    else:
        response = world.client(ask.principal).get(ask.url)
    body = response.get_data()
    response.close()
    headers = "\n".join(f"{k}: {v}" for k, v in response.headers.items())
    return response.status_code, headers + "\n" + body.decode("latin-1")


def _without_stamps(text: str) -> str:
    """iCalendar DTSTAMP lines carry the moment of the export, which may share a clock time with the draft."""
    return "\n".join(line for line in text.splitlines() if not line.startswith("DTSTAMP"))


def _leaks(draft: Draft, text: str, allowed: frozenset[str] = frozenset()) -> list[str]:
    text = _without_stamps(text)
    return [what for what, value in draft.secrets.items() if value not in allowed and value in text]


def _walk(draft: Draft, evidence: Evidence, principals: tuple[str, ...],
          check: Callable[[Ask, int, str], list[str]], counter: str, note: str) -> dict[tuple[str, str], str]:
    """Ask everything; `check` names what leaked in one answer. Returns the answers by (principal, url)."""
    leaks: list[str] = []
    answers: dict[tuple[str, str], str] = {}
    for ask in _asks(draft, principals):
        status, text = _fetch(draft, ask)
        evidence.add(counter)
        what = f"{ask.principal}{' (token)' if ask.bearer else ''} GET {ask.url} -> {status}"
        assert status < 500, what
        for leak in check(ask, status, text):
            evidence.note(note, f"{what}: {leak}")
            leaks.append(f"{what}: {leak}")
        if not ask.bearer:
            answers[(ask.principal, ask.url)] = text
    assert leaks == [], "\n".join(leaks[:40])
    return answers


# --- the tests --------------------------------------------------------------------------------------------


def test_every_get_route_is_walked_or_listed() -> None:
    """A new GET route is walked by itself when its parameters are known; any other must be listed here."""
    unknown = [(endpoint, sorted(arguments - FILLABLE)) for endpoint, _rule, arguments in GET_RULES
               if endpoint not in NOT_WALKED and any(name not in FILLABLE and (endpoint, name) not in SPECIFIC
                                                     for name in arguments)]
    stale = sorted(set(NOT_WALKED) - {endpoint for endpoint, _rule, _args in GET_RULES})
    assert unknown == [] and stale == [], (unknown, stale)


def test_no_public_or_attendee_read_shows_the_draft(draft: Draft, evidence: Evidence) -> None:
    def check(ask: Ask, status: int, text: str) -> list[str]:
        found = _leaks(draft, text, ask.allowed)
        if ask.names_draft and 200 <= status < 300:
            found.append("answers for an object that exists only in the draft")
        return found

    answers = _walk(draft, evidence, READERS, check, "draft_checks", "drafts_leaked")
    # The walk read real pages: the released programme is there, at its released time and place.
    world = draft.world
    speaker_page = answers[("anonymous", f"/events/alpha/speakers/{world.own_profile.id}")]
    assert "Eigener Vortrag" in speaker_page and "2099-05-04T09:00" in speaker_page and "Saal 1" in speaker_page
    assert "Fremder Vortrag" in answers[("anonymous", "/events/alpha/schedule.xml")]
    assert "Eigener Vortrag" in answers[("attendee", f"/events/alpha/calendar/{draft.feed_token}.ics")]
    assert "Otto Other" in answers[("anonymous", "/events/alpha/speakers")]


def _socket(draft: Draft, principal: str) -> SocketIOTestClient:
    client = socketio.test_client(draft.world.app, auth={"token": draft.world.tokens[principal]})
    assert client.is_connected()
    return client


def test_socket_answers_show_no_draft(draft: Draft, evidence: Evidence) -> None:
    slug = draft.world.event.slug
    draft_room = f"session:{draft.draft_session_id}"
    leaks = []
    for principal in ("outsider", "attendee", "speaker"):
        client = _socket(draft, principal)
        answers = []
        for name, payload in (("join", {"room": f"event:{slug}"}), ("join", {"room": f"lobby:{slug}"}),
                              ("join", {"room": f"session:{draft.moved_session_id}"}),
                              ("join", {"room": draft_room}), ("chat:history", {"room": draft_room}),
                              ("qa:list", {"room": draft_room})):
            ack = client.emit(name, payload, callback=True)
            evidence.add("draft_checks")
            answers.append(ack)
            if payload["room"] == draft_room and isinstance(ack, dict) and ack.get("ok"):
                leaks.append(f"{principal} {name} {draft_room} answered ok: a draft session's room exists")
        received = client.get_received()
        evidence.add("draft_checks", len(received))
        text = json.dumps([answers, received], ensure_ascii=False)
        leaks += [f"{principal} socket: {what}" for what in _leaks(draft, text)]
        client.disconnect()
    for leak in leaks:
        evidence.note("drafts_leaked", leak)
    assert leaks == []


def test_organisers_keep_seeing_the_draft(draft: Draft, evidence: Evidence) -> None:
    organiser = draft.world.client("organiser")
    editor = organiser.get("/manage/events/alpha/agenda").get_data(as_text=True)
    working = draft.world.app.test_client().get(
        "/api/v1/events/alpha/sessions?state=working",
        headers={"Authorization": f"Bearer {draft.world.tokens['organiser']}"}).get_data(as_text=True)
    slides = organiser.get(f"/events/alpha/sessions/{draft.draft_session_id}/slides").get_data(as_text=True)
    evidence.add("draft_checks", 3)
    for text in (editor, working):
        assert draft.secrets["draft title"] in text and draft.secrets["renamed title"] in text
    assert draft.secrets["moved start (0)"] in working
    assert draft.secrets["draft title"] in slides and draft.secrets["draft deck"] in slides


# --- members-only links -----------------------------------------------------------------------------------


def _settings(draft: Draft, *, links: str, registration: str = "open") -> None:
    """Change the event's settings on its manage page, as the organiser does."""
    client = draft.world.client("organiser")
    page = "/manage/events/alpha/"
    response = client.post(page, data={
        "csrf_token": csrf_token(client, page), "title": "Alpha 2099", "description": "", "start_date": "2099-05-04",
        "end_date": "2099-05-04", "timezone": "Europe/Berlin", "language": "de", "registration_mode": registration,
        "registration_code": "ein-langer-code-2099" if registration == "code" else "", "is_published": "y",
        "link_visibility": links})
    assert response.status_code == 303, response.get_data(as_text=True)[:500]


def _session_page(draft: Draft, principal: str) -> str:
    response = draft.world.client(principal).get(f"/events/alpha/sessions/{draft.world.foreign_session.id}")
    assert response.status_code == 200
    return response.get_data(as_text=True)


@pytest.mark.parametrize(("links", "registration"), [("members", "open"), ("auto", "code"), ("auto", "closed")])
def test_members_only_links_reach_members_only(links: str, registration: str, draft: Draft,
                                               evidence: Evidence) -> None:
    _settings(draft, links=links, registration=registration)

    def check(ask: Ask, status: int, text: str) -> list[str]:
        return ["the stream/meeting link"] if draft.stream_url in text else []

    _walk(draft, evidence, ("anonymous", "outsider"), check, "link_checks", "links_leaked")
    for principal in ("attendee", "speaker"):  # registered people see it on the session page
        evidence.add("link_checks")
        assert draft.stream_url in _session_page(draft, principal)


@pytest.mark.parametrize(("links", "registration"), [("public", "code"), ("auto", "open")])
def test_public_links_reach_everyone(links: str, registration: str, draft: Draft, evidence: Evidence) -> None:
    _settings(draft, links=links, registration=registration)
    for principal in ("anonymous", "outsider", "attendee"):
        evidence.add("link_checks")
        assert draft.stream_url in _session_page(draft, principal)


def test_mails_about_the_agenda_show_no_draft(draft: Draft, evidence: Evidence) -> None:
    """Reminders and slides notices follow the release: the attendee starred the draft session (with a published
    deck) and the moved one, asked for both kinds of mail, and the pass runs every five minutes of the day."""
    from conference.core.mail import OutboxMessage
    from conference.events.models import Event
    from conference.mails import services as mail_services

    attendee = db.session.get(User, draft.world.users["attendee"].id)
    event = db.session.get(Event, draft.world.event.id)
    mail_services.set_preferences(event, user=attendee, reminder_minutes=60, wants_slides_notice=True)
    commit()
    reminders = notices = 0
    for minute in range(6 * 60, 21 * 60, 5):
        report = mail_services.send_due_mails(_local(f"{minute // 60:02d}:{minute % 60:02d}"))
        commit()
        evidence.add("draft_checks")
        reminders, notices = reminders + report.reminders, notices + report.slides_notices
    # (The speaker invitations queued by the fixture name the draft on purpose: they go to the invitees.)
    mails = list(db.session.scalars(select(OutboxMessage).where(OutboxMessage.event_id == event.id,
                                                                OutboxMessage.recipient == attendee.email)))
    leaks = [f"mail {mail.subject!r}: {what}" for mail in mails for what in _leaks(draft, mail.subject + mail.body)]
    leaks += [f"mail {mail.subject!r}: draft time {clock}" for mail in mails for clock in ("15:17", "16:02", "17:43")
              if clock in mail.body]
    for leak in leaks:
        evidence.note("drafts_leaked", leak)
    assert leaks == []
    # One reminder, for the moved session at its released time; no notice for the draft session's deck.
    assert (reminders, notices) == (1, 0)
    assert [mail.subject for mail in mails] == ["Gleich: Eigener Vortrag"]
    assert "04.05.2099 11:00 (Saal 1)" in mails[0].body  # 09:00 UTC, released
