"""Fixtures of the adversarial suite: a populated world of two events, state guards and the evidence counters.

Every case records what it tried into `evidence` (one JSON file per run, read by `bench/evidence.py`) and
asserts the exact outcome itself, so a counter can only show a non-zero failure figure while a test fails.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select, text

from conference.agenda.models import ConferenceSession, Room, SessionSpeaker, TimetableSlot, Track
from conference.agenda.releases import publish_release
from conference.auth.logins import start_login_session
from conference.auth.models import User
from conference.core.after_commit import commit
from conference.core.permissions import Role
from conference.events.models import Event
from conference.extensions import db
from conference.live.models import ChatMessage, ChatReport, LiveSanction, Question
from conference.presentations import services as presentation_services
from conference.speakers.models import SpeakerInvitation, SpeakerProfile
from tests.fixtures.accounts import CSRF_PATTERN, api_token_for, login
from tests.fixtures.presentations import pdf_bytes, upload

PROJECT_ROOT = Path(__file__).resolve().parents[2]
EVIDENCE_FILE = Path(os.environ.get("CONFERENCE_EVIDENCE_FILE")
                     or PROJECT_ROOT / "test-artifacts" / "security-evidence.json")
TRACEBACK_MARKERS = ("Traceback (most recent call last)", "File \"/", "werkzeug.debug", "sqlalchemy.exc")

#: The people of the authorization matrix, in the order the matrix asks them (least privileged first).
PRINCIPALS = ("anonymous", "outsider", "attendee", "speaker", "moderator", "organiser_b", "organiser")


# --- evidence ---------------------------------------------------------------------------------------------


class Evidence:
    """Counters for the published figures; `bench/evidence.py` prints them."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()
        self.failures: list[str] = []
        self.maxima: dict[str, tuple[float, str]] = {}

    def add(self, name: str, amount: int = 1) -> None:
        self.counts[name] += amount

    def record_max(self, name: str, value: float, detail: str) -> None:
        """Keep the largest `value` seen under `name`, and what caused it (printed beside the figure)."""
        if name not in self.maxima or value > self.maxima[name][0]:
            self.maxima[name] = (value, detail)

    def note(self, name: str, detail: str) -> None:
        """Count a failure figure (goal 0) and remember what it was; the calling test then fails."""
        self.counts[name] += 1
        self.failures.append(f"{name}: {detail}")

    def response(self, response: Any, *, refused: bool, what: str) -> None:
        """Count one tried variant answered over HTTP: 5xx, tracebacks and wrongly accepted variants."""
        self.counts["variants"] += 1
        body = response.get_data(as_text=True) if hasattr(response, "get_data") else str(response)
        if response.status_code >= 500:
            self.note("server_errors", f"{response.status_code} {what}")
        if any(marker in body for marker in TRACEBACK_MARKERS):
            self.note("tracebacks", what)
        if refused and response.status_code < 400 and not _is_login_redirect(response):
            self.note("wrongly_accepted", f"{response.status_code} {what}")


def _is_login_redirect(response: Any) -> bool:
    return response.status_code in (302, 303) and "/login" in response.headers.get("Location", "")


_EVIDENCE = Evidence()


@pytest.fixture(scope="session")
def evidence() -> Iterator[Evidence]:
    yield _EVIDENCE
    EVIDENCE_FILE.parent.mkdir(parents=True, exist_ok=True)
    maxima = {name: {"value": value, "by": detail} for name, (value, detail) in _EVIDENCE.maxima.items()}
    EVIDENCE_FILE.write_text(json.dumps({"counts": dict(_EVIDENCE.counts), "failures": _EVIDENCE.failures[:200],
                                         "maxima": maxima}, indent=2, sort_keys=True))


@pytest.fixture(autouse=True)
def _count_case(evidence: Evidence) -> None:
    evidence.add("cases")


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.when == "call":
        _EVIDENCE.add("outcome_xfailed" if hasattr(report, "wasxfail") else f"outcome_{report.outcome}")
        if report.outcome == "failed":
            _EVIDENCE.failures.append(f"failed: {report.nodeid}")


# --- outcomes ---------------------------------------------------------------------------------------------


def assert_refused(response: Any, statuses: tuple[int, ...] | int, evidence: Evidence, what: str = "") -> None:
    """A clear 4xx from the expected set, no traceback in the body."""
    expected = (statuses,) if isinstance(statuses, int) else statuses
    evidence.response(response, refused=True, what=what or response.request.path)
    body = response.get_data(as_text=True)
    assert response.status_code in expected, (what, response.status_code, body[:300])
    assert not any(marker in body for marker in TRACEBACK_MARKERS), (what, body[:500])


# --- state guard ------------------------------------------------------------------------------------------


def table_counts() -> dict[str, int]:
    db.session.expire_all()
    return {table.name: db.session.scalar(select(func.count()).select_from(table)) or 0
            for table in db.metadata.sorted_tables}


def upload_listing(app: Flask) -> dict[str, str]:
    root = Path(app.config["UPLOAD_DIR"])
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def table_fingerprint() -> dict[str, str]:
    """A hash of every row of every table (catches updates, not only inserts and deletes)."""
    result: dict[str, str] = {}
    with db.engine.connect() as connection:
        for table in db.metadata.sorted_tables:
            rows = connection.execute(select(table).order_by(*table.primary_key.columns)).all()
            result[table.name] = hashlib.sha256(repr(rows).encode()).hexdigest()
    return result


@dataclass
class StateGuard:
    """Row counts, row contents and the upload folder (names and sha256) before; compared after."""

    app: Flask
    evidence: Evidence
    before: tuple[dict[str, int], dict[str, str], dict[str, str]] = field(default_factory=lambda: ({}, {}, {}))

    def take(self) -> None:
        presentation_services.wait_for_background_tasks()
        self.before = (table_counts(), table_fingerprint(), upload_listing(self.app))

    def assert_unchanged(self, what: str = "") -> None:
        presentation_services.wait_for_background_tasks()
        counts, rows, files = table_counts(), table_fingerprint(), upload_listing(self.app)
        self.evidence.add("state_checks")
        created = sum(max(0, counts[t] - self.before[0].get(t, 0)) for t in counts)
        new_files = len(set(files) - set(self.before[2]))
        if created or new_files:
            self.evidence.note("rejected_writes", f"{what}: {created} rows, {new_files} files")
        changed = [t for t in rows if rows[t] != self.before[1].get(t)]
        # Login bookkeeping may legitimately move on a refused request (last_used_at of the token).
        changed = [t for t in changed if t not in ("api_tokens",)]
        assert counts == self.before[0], (what, {t: (self.before[0].get(t), counts[t]) for t in counts
                                                 if counts[t] != self.before[0].get(t)})
        assert files == self.before[2], (what, set(files) ^ set(self.before[2]))
        assert changed == [], (what, changed)


@pytest.fixture
def guard(app: Flask, evidence: Evidence) -> StateGuard:
    return StateGuard(app, evidence)


# --- the world: two events and their people ---------------------------------------------------------------

FUTURE = datetime(2099, 5, 4, 9, 0, tzinfo=UTC)


@dataclass
class World:
    app: Flask
    event: Event
    other_event: Event
    users: dict[str, User]
    tokens: dict[str, str]
    room: Room
    track: Track
    own_session: ConferenceSession  # the speaker's
    foreign_session: ConferenceSession  # another speaker's (object-level checks use this one)
    other_event_session: ConferenceSession
    own_profile: SpeakerProfile
    foreign_profile: SpeakerProfile
    foreign_presentation_id: int
    message: ChatMessage
    report: ChatReport
    sanction: LiveSanction
    invitation: SpeakerInvitation
    question: Question  # another person's question in the foreign session
    clients: dict[str, FlaskClient] = field(default_factory=dict)

    def client(self, principal: str) -> FlaskClient:
        """A browser-like test client logged in as `principal` (cached per world)."""
        if principal not in self.clients:
            client = self.app.test_client()
            if principal != "anonymous":
                response = login(client, self.users[principal].email)
                assert response.status_code == 302, response.get_data(as_text=True)[:300]
            self.clients[principal] = client
        return self.clients[principal]

    def csrf(self, principal: str) -> str:
        html = self.client(principal).get("/account" if principal != "anonymous" else "/login").get_data(
            as_text=True)
        match = CSRF_PATTERN.search(html)
        assert match
        return match.group(1) or match.group(2)


#: The world built once per test run: a copy of its database and upload folder, and the ids to load it by.
_TEMPLATE: dict[str, Any] = {}


def _build_world(app: Flask, create_user: Callable[..., User], grant: Callable[..., None]) -> dict[str, Any]:
    """Populate the app's empty database; returns the ids of what a `World` holds and the API tokens."""
    event = Event(slug="alpha", title="Alpha 2099", start_date=FUTURE.date(), end_date=FUTURE.date(),
                  is_published=True)
    other = Event(slug="beta", title="Beta 2099", start_date=FUTURE.date(), end_date=FUTURE.date(),
                  is_published=True)
    db.session.add_all([event, other])
    commit()
    users = {
        "outsider": create_user("outsider@example.org", name="Oscar Outsider"),
        "attendee": create_user("attendee@example.org", name="Anna Attendee"),
        "speaker": create_user("speaker@example.org", name="Sam Speaker"),
        "other_speaker": create_user("other@example.org", name="Otto Other"),
        "moderator": create_user("moderator@example.org", name="Mona Moderator"),
        "organiser": create_user("orga@example.org", name="Olga Organiser"),
        "organiser_b": create_user("orga-b@example.org", name="Bert Beta"),
        "banned": create_user("banned@example.org", name="Bea Banned"),
    }
    for name, role in (("attendee", Role.ATTENDEE), ("speaker", Role.SPEAKER), ("other_speaker", Role.SPEAKER),
                       ("moderator", Role.MODERATOR), ("organiser", Role.ORGANISER), ("banned", Role.ATTENDEE)):
        grant(event, users[name], role)
    grant(other, users["organiser_b"], Role.ORGANISER)
    grant(other, users["attendee"], Role.ATTENDEE)
    room = Room(event_id=event.id, name="Saal 1")
    room_b = Room(event_id=other.id, name="Saal B")
    track = Track(event_id=event.id, name="Daten")
    db.session.add_all([room, room_b, track])
    db.session.flush()
    own_profile = SpeakerProfile(event_id=event.id, user_id=users["speaker"].id, name="Sam Speaker")
    foreign_profile = SpeakerProfile(event_id=event.id, user_id=users["other_speaker"].id, name="Otto Other")
    db.session.add_all([own_profile, foreign_profile])
    db.session.flush()
    sessions = []
    for event_id, room_id, title, profile, offset in (
            (event.id, room.id, "Eigener Vortrag", own_profile, 0),
            (event.id, room.id, "Fremder Vortrag", foreign_profile, 1),
            (other.id, room_b.id, "Beta-Vortrag", None, 0)):
        session = ConferenceSession(event_id=event_id, title=title, abstract="Kurz.", track_id=None)
        db.session.add(session)
        db.session.flush()
        start = FUTURE + timedelta(hours=offset)
        db.session.add(TimetableSlot(session_id=session.id, room_id=room_id, start_at=start,
                                     end_at=start + timedelta(minutes=45)))
        if profile is not None:
            db.session.add(SessionSpeaker(session_id=session.id, speaker_id=profile.id, position=0))
        sessions.append(session)
    message = ChatMessage(event_id=event.id, room="lobby:alpha", author_id=users["other_speaker"].id,
                          author_name="Otto Other", author_role="speaker", text="Hallo", client_id="c-1")
    db.session.add(message)
    db.session.flush()
    report = ChatReport(event_id=event.id, message_id=message.id, reporter_id=users["attendee"].id, reason="spam")
    sanction = LiveSanction(event_id=event.id, user_id=users["banned"].id, kind="ban",
                            created_by_id=users["moderator"].id)
    invitation = SpeakerInvitation(event_id=event.id, session_id=sessions[1].id, speaker_id=foreign_profile.id,
                                   email="invitee@example.org", nonce="n" * 32,
                                   expires_at=FUTURE + timedelta(days=30))
    question = Question(event_id=event.id, session_id=sessions[1].id, author_id=users["other_speaker"].id,
                        author_name="Otto Other", text="Wer hat die Folien?", client_id="q-1")
    db.session.add_all([report, sanction, invitation, question])
    commit()
    tokens = {name: api_token_for(user) for name, user in users.items()}
    # A browser login of someone who never asks in the matrix: the object of "end another person's login".
    start_login_session(users["other_speaker"], user_agent="Elsewhere/1.0")
    commit()
    uploader = app.test_client()
    response = upload(uploader, sessions[1].id, "folien.pdf", pdf_bytes(), token=tokens["other_speaker"])
    assert response.status_code == 201, response.get_data(as_text=True)
    presentation_services.wait_for_background_tasks()
    for released in (event, other):  # the programme is announced: its sessions are public
        publish_release(released, name="1.0", actor=None)
    commit()
    return {"event": event.id, "other": other.id, "users": {name: user.id for name, user in users.items()},
            "tokens": tokens, "room": room.id, "track": track.id, "sessions": [s.id for s in sessions],
            "own_profile": own_profile.id, "foreign_profile": foreign_profile.id,
            "presentation": response.get_json()["id"], "message": message.id, "report": report.id,
            "sanction": sanction.id, "invitation": invitation.id, "question": question.id}


def _sqlite_path(app: Flask) -> Path | None:
    url = db.engine.url
    return Path(url.database) if url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:") \
        else None


def _copy_database(source: Path, target: Path) -> None:
    """SQLite's online backup: a consistent copy whatever the journal mode, onto a database in use or not."""
    import sqlite3

    with sqlite3.connect(source) as src, sqlite3.connect(target) as dst:
        src.backup(dst)
    src.close()
    dst.close()


@pytest.fixture
def world(app: Flask, create_user: Callable[..., User], grant: Callable[..., None],
          tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    """Two events and their people. Built once per run on SQLite (about half a second of logins, an upload
    through the sandboxed PDF check and its preview job, two releases), then each test gets a fresh copy of
    that database and upload folder: every test still starts from the same untouched state."""
    database = _sqlite_path(app)
    uploads = Path(app.config["UPLOAD_DIR"])
    template = _TEMPLATE.get("world")
    if database is None or template is None:
        ids = _build_world(app, create_user, grant)
        if database is not None:
            folder = tmp_path_factory.mktemp("world-template")
            db.session.remove()
            _copy_database(database, folder / "world.sqlite3")
            shutil.copytree(uploads, folder / "uploads", dirs_exist_ok=True)
            _TEMPLATE["world"] = {"ids": ids, "folder": folder}
    else:
        ids = template["ids"]
        db.session.remove()
        db.engine.dispose()
        _copy_database(template["folder"] / "world.sqlite3", database)
        shutil.copytree(template["folder"] / "uploads", uploads, dirs_exist_ok=True)
    get = db.session.get
    users = {name: get(User, user_id) for name, user_id in ids["users"].items()}
    sessions = [get(ConferenceSession, session_id) for session_id in ids["sessions"]]
    yield World(app, get(Event, ids["event"]), get(Event, ids["other"]), users, dict(ids["tokens"]),
                get(Room, ids["room"]), get(Track, ids["track"]), sessions[0], sessions[1], sessions[2],
                get(SpeakerProfile, ids["own_profile"]), get(SpeakerProfile, ids["foreign_profile"]),
                ids["presentation"], get(ChatMessage, ids["message"]), get(ChatReport, ids["report"]),
                get(LiveSanction, ids["sanction"]), get(SpeakerInvitation, ids["invitation"]),
                get(Question, ids["question"]))
    presentation_services.wait_for_background_tasks()


def scalar_count(model: Any, *where: Any) -> int:
    return db.session.scalar(select(func.count()).select_from(model).where(*where)) or 0


def sqlite_integrity(app: Flask) -> str:
    with db.engine.connect() as connection:
        return str(connection.execute(text("PRAGMA integrity_check")).scalar())
