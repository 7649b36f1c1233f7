"""Importing a frab schedule.xml into an event's WORKING agenda: a plan (pure), a preview and an apply (flush).

`plan_import(state, schedule)` compares a parsed file with a plain-data picture of the working agenda and
lists the changes: rooms and tracks matched by name, speakers by their account's e-mail, else by name,
sessions by the file's guid (`ConferenceSession.import_guid`; a file exported by this very event matches on
our own `guid`). `apply_import` carries out exactly such a plan and refuses when the result would have a hard
conflict that the agenda did not have before. Nothing is published: the organisers release as usual.

Sessions that an earlier import brought and that the file no longer lists are only reported, unless the
caller asks to remove them: then a session that a release names is cancelled (attendees see it marked),
one that was never released is deleted.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from flask_babel import gettext as _
from sqlalchemy import select

from conference.agenda import services
from conference.agenda.conflicts import Problem, agenda_problems, check_times
from conference.agenda.frab_reader import ImportedPerson, ImportedSession, ParsedSchedule
from conference.agenda.lookups import session_in_event
from conference.agenda.models import ConferenceSession, Room, SessionSpeaker, TimetableSlot, Track
from conference.agenda.public import released_sessions
from conference.agenda.rooms import create_room, create_track, update_track
from conference.agenda.snapshots import load_sessions
from conference.auth.models import User
from conference.core.db import utcnow
from conference.core.errors import Conflict
from conference.events.models import Event
from conference.extensions import db
from conference.speakers.models import SpeakerProfile
from conference.speakers.services import profile_fields

DEFAULT_TRACK_COLOR = "#3b6ea5"


# --- the working agenda as plain data ------------------------------------------------------------


@dataclass(frozen=True)
class StateSpeaker:
    id: int
    name: str
    display_name: str
    email: str | None


@dataclass(frozen=True)
class StateSession:
    id: int
    guid: str
    import_guid: str | None
    title: str
    abstract: str
    kind: str
    language: str
    track: str | None
    cancelled: bool
    released: bool
    speakers: tuple[int, ...]
    slots: tuple[tuple[str, str, str], ...]  # (room name, start, end) in UTC ISO form


@dataclass(frozen=True)
class AgendaState:
    timezone: str
    starts_at: str
    ends_at: str
    rooms: tuple[str, ...]
    tracks: tuple[tuple[str, str], ...]
    speakers: tuple[StateSpeaker, ...]
    sessions: tuple[StateSession, ...]

    def fingerprint(self) -> str:
        """Changes whenever anything the plan depends on changes (a preview is applied only while it holds)."""
        return hashlib.sha256(json.dumps(asdict(self), sort_keys=True).encode()).hexdigest()


def load_state(event: Event) -> AgendaState:
    rooms = db.session.scalars(select(Room).where(Room.event_id == event.id).order_by(Room.position, Room.id))
    tracks = db.session.scalars(select(Track).where(Track.event_id == event.id).order_by(Track.id))
    profiles = db.session.execute(select(SpeakerProfile, User.email).outerjoin(User, User.id == SpeakerProfile.user_id)
                                  .where(SpeakerProfile.event_id == event.id).order_by(SpeakerProfile.id)).all()
    released = {entry.id for entry in released_sessions(event)}
    sessions = tuple(StateSession(
        id=s.id, guid=s.guid, import_guid=s.import_guid, title=s.title, abstract=s.abstract or "", kind=s.kind,
        language=s.language, track=s.track.name if s.track else None, cancelled=bool(s.is_cancelled),
        released=s.id in released, speakers=tuple(link.speaker_id for link in s.speakers),
        slots=tuple(sorted((slot.room.name, _iso(slot.start_at), _iso(slot.end_at)) for slot in s.slots)))
        for s in load_sessions(event))
    return AgendaState(timezone=event.timezone, starts_at=_iso(event.starts_at), ends_at=_iso(event.ends_at),
                       rooms=tuple(r.name for r in rooms), tracks=tuple((t.name, t.color) for t in tracks),
                       speakers=tuple(StateSpeaker(p.id, p.name, p.display_name, email.lower() if email else None)
                                      for p, email in profiles),
                       sessions=sessions)


def _iso(value: datetime) -> str:
    return value.astimezone(UTC).isoformat()


# --- the plan ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Change:
    """One line of the preview. `target` is the id of the existing row (None for a new one)."""

    action: str  # create | update | delete | cancel | keep
    kind: str  # room | track | speaker | session
    name: str
    details: tuple[tuple[str, str, str], ...] = ()  # (field, before, after)
    line: int | None = None
    target: int | None = None
    key: str = ""  # the session's guid in the file / the person's matching key


@dataclass
class ImportPlan:
    changes: list[Change] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def count(self, action: str, kind: str = "session") -> int:
        return sum(1 for c in self.changes if c.action == action and c.kind == kind)

    @property
    def has_changes(self) -> bool:
        return any(c.action != "keep" for c in self.changes)

    def digest(self) -> str:
        return hashlib.sha256(json.dumps([asdict(c) for c in self.changes]).encode()).hexdigest()


def person_key(person: ImportedPerson) -> str:
    return f"email:{person.email}" if person.email else f"name:{person.name.casefold()}"


def match_person(state: AgendaState, person: ImportedPerson) -> int | None:
    """By the e-mail of the profile's account, else by name (or name with title); the oldest profile wins."""
    if person.email:
        for speaker in state.speakers:
            if speaker.email == person.email:
                return speaker.id
    wanted = person.name.casefold()
    for speaker in state.speakers:
        if wanted in (speaker.name.casefold(), speaker.display_name.casefold()):
            return speaker.id
    return None


def match_session(state: AgendaState, guid: str) -> StateSession | None:
    for entry in state.sessions:
        if entry.import_guid == guid:
            return entry
    for entry in state.sessions:  # a file exported by this event (our guids are random, unique everywhere)
        if entry.guid == guid:
            return entry
    return None


def plan_import(state: AgendaState, schedule: ParsedSchedule, *, remove_missing: bool = False) -> ImportPlan:
    """What importing `schedule` would change in the working agenda `state`. Pure: reads nothing else."""
    plan = ImportPlan(warnings=list(schedule.warnings))
    rooms = {name.casefold() for name in state.rooms}
    for name in schedule.rooms:
        if name.casefold() not in rooms:
            plan.changes.append(Change("create", "room", name))
    tracks = {name.casefold(): color for name, color in state.tracks}
    for name, color in schedule.tracks:
        if name.casefold() not in tracks:
            plan.changes.append(Change("create", "track", name, (("color", "", color or DEFAULT_TRACK_COLOR),)))
        elif color and color.lower() != tracks[name.casefold()]:
            plan.changes.append(Change("update", "track", name, (("color", tracks[name.casefold()], color.lower()),)))
    names = {s.id: s.display_name for s in state.speakers}
    new_people: dict[str, str] = {}
    for entry in schedule.sessions:
        for person in entry.persons:
            if match_person(state, person) is None and person_key(person) not in new_people:
                new_people[person_key(person)] = person.name
                plan.changes.append(Change("create", "speaker", person.name, key=person_key(person)))
    starts_at, ends_at = datetime.fromisoformat(state.starts_at), datetime.fromisoformat(state.ends_at)
    matched: set[int] = set()
    for entry in schedule.sessions:
        if entry.start_at < starts_at or entry.end_at > ends_at:
            plan.errors.append(_("line %(line)d: »%(title)s« (%(start)s) lies outside the days of the event; change "
                                 "the event's dates first.", line=entry.line, title=entry.title,
                                 start=entry.start_at.isoformat()))
            continue
        current = match_session(state, entry.guid)
        speakers = [names.get(match_person(state, p) or -1, p.name) for p in entry.persons]
        if current is None:
            plan.changes.append(Change("create", "session", entry.title, (
                ("when", "", _when(entry.room, entry.start_at.isoformat(), entry.end_at.isoformat(), state)),
                ("speakers", "", ", ".join(speakers))), entry.line, None, entry.guid))
            continue
        matched.add(current.id)
        details = _session_details(state, current, entry, speakers, names)
        if details:
            plan.changes.append(Change("update", "session", entry.title, details, entry.line, current.id,
                                       entry.guid))
    for current in state.sessions:
        if current.import_guid is None or current.id in matched:
            continue
        if not remove_missing:
            plan.changes.append(Change("keep", "session", current.title, target=current.id, key=current.import_guid))
        elif current.released and not current.cancelled:
            plan.changes.append(Change("cancel", "session", current.title, target=current.id,
                                       key=current.import_guid))
        elif not current.released:
            plan.changes.append(Change("delete", "session", current.title, target=current.id,
                                       key=current.import_guid))
    return plan


def _when(room: str, start: str, end: str, state: AgendaState) -> str:
    from zoneinfo import ZoneInfo

    zone = ZoneInfo(state.timezone)
    begin, finish = datetime.fromisoformat(start).astimezone(zone), datetime.fromisoformat(end).astimezone(zone)
    return f"{room}, {begin:%Y-%m-%d %H:%M}–{finish:%H:%M}"


def _session_details(state: AgendaState, current: StateSession, entry: ImportedSession, speakers: list[str],
                     names: dict[int, str]) -> tuple[tuple[str, str, str], ...]:
    details: list[tuple[str, str, str]] = []
    for name, before, after in (("title", current.title, entry.title), ("abstract", current.abstract, entry.abstract),
                                ("kind", current.kind, entry.kind), ("language", current.language, entry.language),
                                ("track", current.track or "", entry.track or "")):
        if before != after:
            details.append((name, before if name != "abstract" else _short(before),
                            after if name != "abstract" else _short(after)))
    before_speakers = [names.get(i, "?") for i in current.speakers]
    if before_speakers != speakers:
        details.append(("speakers", ", ".join(before_speakers), ", ".join(speakers)))
    room = next((name for name in state.rooms if name.casefold() == entry.room.casefold()), entry.room)
    wanted = (room, _iso(entry.start_at), _iso(entry.end_at))
    both_breaks = current.kind == "break" and entry.kind == "break"
    if not (current.slots == (wanted,) or (both_breaks and wanted in current.slots)):
        before = "; ".join(_when(*slot, state) for slot in current.slots)
        details.append(("when", before, _when(*wanted, state)))
    if current.cancelled:
        details.append(("cancelled", "yes", "no"))
    return tuple(details)


def _short(text: str) -> str:
    return text if len(text) <= 80 else text[:79] + "…"


# --- carrying a plan out -------------------------------------------------------------------------


@dataclass
class ImportResult:
    plan: ImportPlan
    new_problems: list[Problem]


def apply_import(event: Event, schedule: ParsedSchedule, *, remove_missing: bool = False,
                 actor: User | None) -> ImportResult:
    """Import `schedule` into the working agenda. Flushes; raises `Conflict` (nothing kept once the caller rolls
    back) when the plan has errors or the result would have a hard conflict the agenda did not have before."""
    before = {p.message for p in agenda_problems(event)}
    state = load_state(event)
    plan = plan_import(state, schedule, remove_missing=remove_missing)
    if plan.errors:
        raise Conflict(plan.errors[0], code="import_refused")
    _execute(event, state, schedule, plan, actor=actor)
    new = [p for p in agenda_problems(event) if p.message not in before]
    errors = [p for p in new if p.severity == "error"]
    if errors:
        raise Conflict(_("The import would create a conflict: %(message)s", message=errors[0].message),
                       code="import_conflict")
    return ImportResult(plan, new)


def preview_import(event: Event, schedule: ParsedSchedule, *, remove_missing: bool = False) -> ImportResult:
    """The plan and the conflicts the import would bring, found by applying it inside a savepoint that is
    rolled back: nothing changes."""
    state = load_state(event)
    plan = plan_import(state, schedule, remove_missing=remove_missing)
    if plan.errors:
        return ImportResult(plan, [])
    before = {p.message for p in agenda_problems(event)}
    nested = db.session.begin_nested()
    try:
        _execute(event, state, schedule, plan, actor=None)
        new = [p for p in agenda_problems(event) if p.message not in before]
    finally:
        nested.rollback()
    db.session.expire_all()
    return ImportResult(plan, new)


def _execute(event: Event, state: AgendaState, schedule: ParsedSchedule, plan: ImportPlan, *,
             actor: User | None) -> None:
    rooms = {r.name.casefold(): r for r in db.session.scalars(select(Room).where(Room.event_id == event.id))}
    tracks = {t.name.casefold(): t for t in db.session.scalars(select(Track).where(Track.event_id == event.id))}
    profiles: dict[str, SpeakerProfile] = {}
    by_guid = {s.guid: s for s in schedule.sessions}
    for change in plan.changes:
        if change.kind == "room" and change.action == "create":
            rooms[change.name.casefold()] = create_room(event, name=change.name, actor=actor)
        elif change.kind == "track" and change.action == "create":
            tracks[change.name.casefold()] = create_track(event, name=change.name,
                                                          color=change.details[0][2], actor=actor)
        elif change.kind == "track" and change.action == "update":
            track = tracks[change.name.casefold()]
            update_track(track, name=track.name, color=change.details[0][2], actor=actor)
        elif change.kind == "speaker":
            profile = SpeakerProfile(event_id=event.id, **profile_fields(name=change.name))
            db.session.add(profile)
            profiles[change.key] = profile
    db.session.flush()
    for change in plan.changes:
        if change.kind != "session" or change.action == "keep":
            continue
        if change.action in ("delete", "cancel"):
            session = session_in_event(event, change.target or 0)
            (services.delete_session if change.action == "delete" else services.cancel_session)(session, actor=actor)
            continue
        entry = by_guid[change.key]
        speakers = [_profile(state, person, profiles) for person in entry.persons]
        session_track = tracks[entry.track.casefold()] if entry.track else None
        if change.action == "create":
            session = services.create_session(event, title=entry.title, abstract=entry.abstract, kind=entry.kind,
                                              language=entry.language, track=session_track, actor=actor)
        else:
            session = session_in_event(event, change.target or 0)
            if any(name == "when" for name, _before, _after in change.details):  # else the slot keeps its id
                _place(session, rooms[entry.room.casefold()], entry, keep_break_slots=True)
            services.update_session(session, title=entry.title, abstract=entry.abstract, kind=entry.kind,
                                    language=entry.language, track=session_track, actor=actor)
            session.is_cancelled = False
        if change.action == "create":
            session.import_guid = entry.guid
            _place(session, rooms[entry.room.casefold()], entry, keep_break_slots=False)
        _set_speakers(session, speakers)
    db.session.flush()


def _profile(state: AgendaState, person: ImportedPerson, created: dict[str, SpeakerProfile]) -> SpeakerProfile:
    speaker_id = match_person(state, person)
    if speaker_id is not None:
        profile = db.session.get(SpeakerProfile, speaker_id)
        assert profile is not None
        return profile
    return created[person_key(person)]


def _place(session: ConferenceSession, room: Room, entry: ImportedSession, *, keep_break_slots: bool) -> None:
    """One slot at the file's time (a break keeps its other rooms' slots when one of them is that time).
    Conflicts are checked for the whole agenda afterwards: moving one by one would trip over itself."""
    check_times(session.event, entry.start_at, entry.end_at)
    if keep_break_slots and session.is_break and entry.kind == "break" and any(
            s.room_id == room.id and s.start_at == entry.start_at and s.end_at == entry.end_at for s in session.slots):
        return
    for slot in list(session.slots):
        session.slots.remove(slot)
        db.session.delete(slot)
    db.session.flush()
    slot = TimetableSlot(room_id=room.id, start_at=entry.start_at, end_at=entry.end_at)
    slot.room = room
    session.slots.append(slot)
    session.updated_at = utcnow()


def _set_speakers(session: ConferenceSession, speakers: Iterable[SpeakerProfile]) -> None:
    """The file's speakers in its order; someone already on the session keeps their role (e.g. moderator)."""
    roles = {link.speaker_id: link.role for link in session.speakers}
    wanted = list(dict.fromkeys(speakers))
    if [link.speaker_id for link in session.speakers] == [p.id for p in wanted]:
        return
    for link in list(session.speakers):
        session.speakers.remove(link)
    db.session.flush()
    for position, profile in enumerate(wanted):
        session.speakers.append(SessionSpeaker(speaker_id=profile.id, role=roles.get(profile.id, "speaker"),
                                               position=position))


def plan_summary(plan: ImportPlan) -> dict[str, Any]:
    """Counts for the CLI and the page header."""
    return {f"{kind}s_{action}": plan.count(action, kind) for kind in ("room", "track", "speaker", "session")
            for action in ("create", "update", "delete", "cancel", "keep") if plan.count(action, kind)}
