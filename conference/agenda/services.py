"""Agenda rules: sessions, slots, rooms, tracks, conflict checks, releases, stars and calendar feeds.

Services flush, never commit; they raise `DomainError` subclasses and never read the request.
Hard conflicts (room double-booked, speaker in two places, outside the event's days, end before start,
zero length) refuse a change with `Conflict`/`ValidationFailed`; soft ones come back as `Problem` warnings.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import secrets
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any

from flask import current_app
from flask_babel import gettext as _
from sqlalchemy import func, select
from sqlalchemy.orm import selectinload

from conference.agenda.models import (
    AgendaRelease,
    CalendarFeed,
    ConferenceSession,
    Room,
    SessionKind,
    SessionSpeaker,
    SpeakerRole,
    StarredSession,
    StreamKind,
    TimetableSlot,
    Track,
)
from conference.agenda.players import StreamAddressError, player_for
from conference.agenda.public import is_released, released_session
from conference.agenda.snapshots import build_snapshot, diff_snapshots
from conference.auth.models import User
from conference.core import after_commit
from conference.core.db import utcnow
from conference.core.errors import Conflict, NotFound, Unprocessable, ValidationFailed
from conference.core.ids import parse_id
from conference.core.loading import get_in_event_or_404
from conference.core.signals import agenda_released
from conference.core.text import has_forbidden_text
from conference.events.models import Event
from conference.extensions import db
from conference.speakers.models import SpeakerProfile

TITLE_MAX = 200
ABSTRACT_MAX = 20_000
NAME_MAX = 120
RELEASE_NAME_MAX = 60
STREAM_URL_MAX = 500
MAX_SPEAKERS = 20
BACK_TO_BACK_GAP = timedelta(minutes=5)  # less than this between two rooms: the speaker has to rush
COLOR_PATTERN = re.compile(r"^#[0-9a-fA-F]{6}$")
LANGUAGES = ("de", "en")


@dataclass(frozen=True)
class Problem:
    """A conflict found in the agenda. `severity` is "error" (refused) or "warning" (allowed)."""

    code: str
    message: str
    severity: str = "warning"
    field: str | None = None
    session_id: int | None = None

    def as_dict(self) -> dict[str, Any]:
        return {key: value for key, value in asdict(self).items() if value is not None}


# --- lookups scoped to an event -----------------------------------------------------------------


def room_in_event(event: Event, room_id: Any, *, field: str = "room_id") -> Room:
    number = parse_id(room_id) if not isinstance(room_id, str) else None
    room = db.session.get(Room, number) if number is not None else None
    if room is None or room.event_id != event.id:
        raise Unprocessable(_("Unknown room."), field=field, code="unknown_room")
    return room


def track_in_event(event: Event, track_id: Any, *, field: str = "track_id") -> Track | None:
    if track_id is None or track_id == "":
        return None
    number = parse_id(track_id) if not isinstance(track_id, str) else None
    track = db.session.get(Track, number) if number is not None else None
    if track is None or track.event_id != event.id:
        raise Unprocessable(_("Unknown track."), field=field, code="unknown_track")
    return track


def session_in_event(event: Event, session_id: int) -> ConferenceSession:
    return get_in_event_or_404(ConferenceSession, session_id, event, message=_("No such session."))


def released_session_in_event(event: Event, session_id: int) -> ConferenceSession:
    """A session that the latest release names: what attendees may act on (star); drafts are 404."""
    if not is_released(event, session_id):
        raise NotFound(_("No such session."))
    return session_in_event(event, session_id)


def slot_in_event(event: Event, slot_id: int) -> TimetableSlot:
    return get_in_event_or_404(TimetableSlot, slot_id, event, message=_("No such slot."),
                               event_id_of=lambda slot: slot.session.event_id)


def speakers_in_event(event: Event, entries: Sequence[tuple[Any, Any]], *,
                      field: str = "speakers") -> list[tuple[SpeakerProfile, str]]:
    """Resolve (speaker_id, role) pairs; unknown speakers, bad roles and duplicates are refused."""
    if len(entries) > MAX_SPEAKERS:
        raise ValidationFailed(_("A session may have at most %(n)d speakers.", n=MAX_SPEAKERS), field=field)
    ids = [speaker_id for speaker_id, _role in entries]
    if any(isinstance(i, str) or parse_id(i) is None for i in ids):
        raise ValidationFailed(_("Speakers are given by their numeric id."), field=field)
    if len(set(ids)) != len(ids):
        raise Unprocessable(_("A speaker is listed twice."), field=field, code="duplicate_speaker")
    profiles = {p.id: p for p in db.session.scalars(
        select(SpeakerProfile).where(SpeakerProfile.id.in_(ids), SpeakerProfile.event_id == event.id))}
    resolved: list[tuple[SpeakerProfile, str]] = []
    for speaker_id, role in entries:
        if speaker_id not in profiles:
            raise Unprocessable(_("Unknown speaker %(id)s.", id=speaker_id), field=field,
                                   code="unknown_speaker")
        if not isinstance(role, str) or role not in set(SpeakerRole):
            raise ValidationFailed(_("Unknown speaker role."), field=field)
        resolved.append((profiles[speaker_id], role))
    return resolved


# --- field validation ---------------------------------------------------------------------------


def _clean_text(value: Any, *, field: str, max_length: int, required: bool = True) -> str:
    if not isinstance(value, str):
        raise ValidationFailed(_("The field '%(name)s' has the wrong type.", name=field), field=field)
    text = value.strip()
    if required and not text:
        raise ValidationFailed(_("The field '%(name)s' is required.", name=field), field=field)
    if has_forbidden_text(text):
        raise ValidationFailed(_("The text contains characters that are not allowed."), field=field)
    if len(text) > max_length:
        raise ValidationFailed(_("The field '%(name)s' may have at most %(n)d characters.", name=field,
                                 n=max_length), field=field)
    return text


def _check_kind(kind: Any) -> str:
    if kind not in set(SessionKind):
        raise ValidationFailed(_("Unknown kind of session."), field="kind")
    return str(kind)


def _check_language(language: Any) -> str:
    if language not in LANGUAGES:
        raise ValidationFailed(_("Unknown language."), field="language")
    return str(language)


def check_times(event: Event, start_at: datetime, end_at: datetime) -> None:
    """End after start, not zero length, within the event's days. Raises `Unprocessable` (422)."""
    if start_at.tzinfo is None or end_at.tzinfo is None:
        raise ValidationFailed(_("Times need a time zone."), field="start")
    if end_at < start_at:
        raise Unprocessable(_("The session cannot end before it starts."), field="end", code="end_before_start")
    if end_at == start_at:
        raise Unprocessable(_("The session needs a length: start and end are the same."), field="end",
                               code="zero_length")
    if start_at < event.starts_at or start_at >= event.ends_at:
        raise Unprocessable(_("The start lies outside the days of the event."), field="start",
                               code="outside_event")
    if end_at > event.ends_at:
        raise Unprocessable(_("The end lies outside the days of the event."), field="end", code="outside_event")


# --- conflict checks ----------------------------------------------------------------------------


def _describe(session: ConferenceSession, room: Room, start_at: datetime, end_at: datetime, zone: Any) -> str:
    return f"»{session.title}« ({room.name}, {start_at.astimezone(zone):%H:%M}–{end_at.astimezone(zone):%H:%M})"


def slot_problems(session: ConferenceSession, *, room: Room, start_at: datetime, end_at: datetime,
                  ignore_slot_id: int | None = None, speaker_ids: Iterable[int] | None = None) -> list[Problem]:
    """Every conflict of putting `session` into `room` from `start_at` to `end_at` (nothing is changed).

    Cancelled sessions neither block a room nor a speaker.
    """
    event = session.event
    zone = event.zone
    problems: list[Problem] = []
    if session.is_cancelled:
        return problems
    overlapping = db.session.execute(
        select(TimetableSlot, ConferenceSession)
        .join(ConferenceSession, ConferenceSession.id == TimetableSlot.session_id)
        .where(TimetableSlot.room_id == room.id, ConferenceSession.is_cancelled.is_(False),
               TimetableSlot.start_at < end_at, TimetableSlot.end_at > start_at,
               TimetableSlot.id != (ignore_slot_id or 0))
    ).all()
    for other_slot, other in overlapping:
        problems.append(Problem(
            "room_overlap", _("%(room)s is already taken by %(other)s.", room=room.name,
                              other=_describe(other, room, other_slot.start_at, other_slot.end_at, zone)),
            "error", "room_id", other.id))
    ids = list(speaker_ids) if speaker_ids is not None else [link.speaker_id for link in session.speakers]
    if not ids:
        return problems
    window_start, window_end = start_at - BACK_TO_BACK_GAP, end_at + BACK_TO_BACK_GAP
    rows = db.session.execute(
        select(SessionSpeaker.speaker_id, TimetableSlot, ConferenceSession, Room, SpeakerProfile.name)
        .join(ConferenceSession, ConferenceSession.id == SessionSpeaker.session_id)
        .join(TimetableSlot, TimetableSlot.session_id == ConferenceSession.id)
        .join(Room, Room.id == TimetableSlot.room_id)
        .join(SpeakerProfile, SpeakerProfile.id == SessionSpeaker.speaker_id)
        .where(SessionSpeaker.speaker_id.in_(ids), ConferenceSession.id != session.id,
               ConferenceSession.is_cancelled.is_(False),
               TimetableSlot.start_at < window_end, TimetableSlot.end_at > window_start)
    ).all()
    for _speaker_id, other_slot, other, other_room, name in rows:
        where = _describe(other, other_room, other_slot.start_at, other_slot.end_at, zone)
        if other_slot.overlaps(start_at, end_at):
            problems.append(Problem("speaker_overlap", _("%(name)s speaks at the same time in %(other)s.",
                                                         name=name, other=where), "error", "speakers", other.id))
        elif other_room.id != room.id:
            problems.append(Problem("speaker_back_to_back", _(
                "%(name)s has %(other)s directly before or after, in another room.", name=name, other=where),
                "warning", "speakers", other.id))
    return problems


def _refuse_hard(problems: list[Problem]) -> list[Problem]:
    """Raise on the first hard conflict; return the warnings."""
    for problem in problems:
        if problem.severity == "error":
            raise Conflict(problem.message, field=problem.field, code=problem.code)
    return problems


def agenda_problems(event: Event) -> list[Problem]:
    """All conflicts and warnings of the working agenda (for the editor), computed in memory."""
    slots = db.session.scalars(
        select(TimetableSlot).join(ConferenceSession).where(ConferenceSession.event_id == event.id)
        .options(selectinload(TimetableSlot.session).selectinload(ConferenceSession.speakers)
                 .selectinload(SessionSpeaker.speaker), selectinload(TimetableSlot.room))
        .order_by(TimetableSlot.start_at)
    ).all()
    zone, problems = event.zone, []
    active = [s for s in slots if not s.session.is_cancelled]
    for slot in slots:
        if slot.start_at < event.starts_at or slot.end_at > event.ends_at:
            problems.append(Problem("outside_event", _("%(what)s lies outside the days of the event.", what=_describe(
                slot.session, slot.room, slot.start_at, slot.end_at, zone)), "error", "start", slot.session_id))
    for i, first in enumerate(active):
        for second in active[i + 1:]:
            if second.start_at >= first.end_at + BACK_TO_BACK_GAP:
                break
            overlap = first.overlaps(second.start_at, second.end_at)
            a = _describe(first.session, first.room, first.start_at, first.end_at, zone)
            b = _describe(second.session, second.room, second.start_at, second.end_at, zone)
            if overlap and first.room_id == second.room_id:
                problems.append(Problem("room_overlap", _("%(a)s overlaps %(b)s.", a=a, b=b), "error", "room_id",
                                        second.session_id))
            if first.session_id == second.session_id:
                continue
            first_names = {link.speaker_id: link.speaker.name for link in first.session.speakers}
            shared = first_names.keys() & {link.speaker_id for link in second.session.speakers}
            names = sorted(first_names[speaker_id] for speaker_id in shared)
            for name in names:
                if overlap:
                    problems.append(Problem("speaker_overlap", _("%(name)s is in %(a)s and %(b)s at once.",
                                                                 name=name, a=a, b=b), "error", "speakers",
                                            second.session_id))
                elif first.room_id != second.room_id:
                    problems.append(Problem("speaker_back_to_back", _(
                        "%(name)s goes straight from %(a)s to %(b)s in another room.", name=name, a=a, b=b),
                        "warning", "speakers", second.session_id))
    return problems


# --- sessions -----------------------------------------------------------------------------------


def create_session(event: Event, *, title: Any, abstract: Any = "", kind: Any = SessionKind.TALK,
                   language: Any = "de", track: Track | None = None,
                   speakers: Sequence[tuple[SpeakerProfile, str]] = (), actor: User | None) -> ConferenceSession:
    """Create an unscheduled session (schedule it with `schedule_session`)."""
    session = ConferenceSession(
        event_id=event.id, title=_clean_text(title, field="title", max_length=TITLE_MAX),
        abstract=_clean_text(abstract or "", field="abstract", max_length=ABSTRACT_MAX, required=False),
        kind=_check_kind(kind), language=_check_language(language), track_id=track.id if track else None)
    session.event = event
    if track is not None and track.event_id != event.id:
        raise Unprocessable(_("Unknown track."), field="track_id")
    db.session.add(session)
    db.session.flush()
    _replace_speakers(session, speakers)
    db.session.flush()
    return session


def _check_recording(url: Any) -> str | None:
    url = (url or "").strip() if isinstance(url, str) or url is None else None
    if url == "":
        return None
    if url is None or len(url) > STREAM_URL_MAX or not re.match(r"^https://[^\s\"'<>\\]+$", url):
        raise ValidationFailed(_("The recording address must be an https:// URL of at most %(n)d characters.",
                                 n=STREAM_URL_MAX), field="recording_url")
    return url


def update_session(session: ConferenceSession, *, actor: User | None, **changes: Any) -> list[Problem]:
    """Change content fields (title, abstract, kind, language, track, speakers). New speakers are checked
    against every slot of the session; a speaker who is elsewhere at that time refuses the change."""
    allowed = {"title", "abstract", "kind", "language", "track", "speakers", "recording_url"}
    unknown = set(changes) - allowed
    if unknown:
        raise ValidationFailed(_("Unknown field."), field=sorted(unknown)[0])
    values: dict[str, Any] = {}
    if "title" in changes:
        values["title"] = _clean_text(changes["title"], field="title", max_length=TITLE_MAX)
    if "abstract" in changes:
        values["abstract"] = _clean_text(changes["abstract"] or "", field="abstract", max_length=ABSTRACT_MAX,
                                         required=False)
    if "kind" in changes:
        values["kind"] = _check_kind(changes["kind"])
        if values["kind"] != SessionKind.BREAK and len(session.slots) > 1:
            raise Conflict(_("Only a break may have more than one slot; remove the other slots first."),
                           field="kind", code="multiple_slots")
    if "language" in changes:
        values["language"] = _check_language(changes["language"])
    if "recording_url" in changes:
        values["recording_url"] = _check_recording(changes["recording_url"])
    if "track" in changes:
        track = changes["track"]
        if track is not None and track.event_id != session.event_id:
            raise Unprocessable(_("Unknown track."), field="track_id")
        values["track_id"] = track.id if track else None
    warnings: list[Problem] = []
    if "speakers" in changes:
        speakers = changes["speakers"]
        ids = [profile.id for profile, _role in speakers]
        for slot in session.slots:
            warnings += _refuse_hard(slot_problems(session, room=slot.room, start_at=slot.start_at,
                                                   end_at=slot.end_at, ignore_slot_id=slot.id, speaker_ids=ids))
        _replace_speakers(session, speakers)
    for key, value in values.items():
        setattr(session, key, value)
    session.updated_at = utcnow()
    db.session.flush()
    return _unique(warnings)


def _replace_speakers(session: ConferenceSession, speakers: Sequence[tuple[SpeakerProfile, str]]) -> None:
    for link in list(session.speakers):
        session.speakers.remove(link)
    db.session.flush()
    for position, (profile, role) in enumerate(speakers):
        if profile.event_id != session.event_id:
            raise Unprocessable(_("Unknown speaker %(id)s.", id=profile.id), field="speakers")
        session.speakers.append(SessionSpeaker(speaker_id=profile.id, role=role, position=position))


def cancel_session(session: ConferenceSession, *, actor: User | None) -> None:
    """Mark as cancelled: it stays on the public pages (marked) after the next release, frees room and people."""
    session.is_cancelled = True
    session.updated_at = utcnow()
    db.session.flush()


def restore_session(session: ConferenceSession, *, actor: User | None) -> list[Problem]:
    """Undo a cancellation; its slots must still be free."""
    session.is_cancelled = False
    warnings: list[Problem] = []
    for slot in session.slots:
        warnings += _refuse_hard(slot_problems(session, room=slot.room, start_at=slot.start_at,
                                               end_at=slot.end_at, ignore_slot_id=slot.id))
    session.updated_at = utcnow()
    db.session.flush()
    return _unique(warnings)


def delete_session(session: ConferenceSession, *, actor: User | None) -> None:
    """Delete the session with its slots and speaker links (published releases keep their copy)."""
    db.session.delete(session)
    db.session.flush()


# --- slots --------------------------------------------------------------------------------------


def schedule_session(session: ConferenceSession, *, room: Room, start_at: datetime, end_at: datetime,
                     actor: User | None) -> tuple[TimetableSlot, list[Problem]]:
    """Give the session a slot. Only breaks may have several slots (e.g. one per room)."""
    if room.event_id != session.event_id:
        raise Unprocessable(_("Unknown room."), field="room_id", code="unknown_room")
    check_times(session.event, start_at, end_at)
    if session.slots and not session.is_break:
        raise Conflict(_("This session already has a slot; move it instead."), field="room_id",
                       code="already_scheduled")
    warnings = _refuse_hard(slot_problems(session, room=room, start_at=start_at, end_at=end_at))
    slot = TimetableSlot(room_id=room.id, start_at=start_at, end_at=end_at)
    slot.room = room
    session.slots.append(slot)
    db.session.flush()
    return slot, _unique(warnings)


def move_slot(slot: TimetableSlot, *, room: Room, start_at: datetime, end_at: datetime,
              actor: User | None) -> list[Problem]:
    """Move a slot to another room and/or time."""
    session = slot.session
    if room.event_id != session.event_id:
        raise Unprocessable(_("Unknown room."), field="room_id", code="unknown_room")
    check_times(session.event, start_at, end_at)
    warnings = _refuse_hard(slot_problems(session, room=room, start_at=start_at, end_at=end_at,
                                          ignore_slot_id=slot.id))
    slot.room_id, slot.start_at, slot.end_at = room.id, start_at, end_at
    slot.room = room
    session.updated_at = utcnow()
    db.session.flush()
    return _unique(warnings)


def delete_slot(slot: TimetableSlot, *, actor: User | None) -> None:
    """Remove a slot: the session becomes unscheduled (or loses one room, for a break)."""
    session = slot.session
    session.slots.remove(slot)
    db.session.delete(slot)
    session.updated_at = utcnow()
    db.session.flush()


def copy_break_to_all_rooms(session: ConferenceSession, *, actor: User | None) -> list[TimetableSlot]:
    """Give a break the same time in every room that does not have it yet. All rooms or none."""
    if not session.is_break:
        raise Conflict(_("Only a break can be copied to all rooms."), field="kind", code="not_a_break")
    if not session.slots:
        raise Conflict(_("Schedule the break in one room first."), field="room_id", code="not_scheduled")
    first = session.slots[0]
    have = {slot.room_id for slot in session.slots}
    rooms = db.session.scalars(select(Room).where(Room.event_id == session.event_id).order_by(Room.position,
                                                                                              Room.id)).all()
    created = []
    for room in rooms:
        if room.id in have:
            continue
        slot, _warnings = schedule_session(session, room=room, start_at=first.start_at, end_at=first.end_at,
                                           actor=actor)
        created.append(slot)
    return created


# --- rooms and tracks ---------------------------------------------------------------------------


def _check_stream(kind: Any, url: Any) -> tuple[str | None, str | None]:
    kind = kind or None
    url = (url or "").strip() or None
    if kind is None and url is None:
        return None, None
    if kind not in set(StreamKind):
        raise ValidationFailed(_("Unknown kind of stream."), field="stream_kind")
    if url is None:
        raise ValidationFailed(_("Give the address of the stream."), field="stream_url")
    if not isinstance(url, str) or len(url) > STREAM_URL_MAX or not re.match(r"^https://[^\s\"'<>]+$", url):
        raise ValidationFailed(_("The stream address must be an https:// URL of at most %(n)d characters.",
                                 n=STREAM_URL_MAX), field="stream_url")
    try:
        player_for(str(kind), url)
    except StreamAddressError as exc:
        raise ValidationFailed(exc.message, field="stream_url", code="bad_stream_address") from None
    return str(kind), url


def create_room(event: Event, *, name: Any, stream_kind: Any = None, stream_url: Any = None,
                position: int | None = None, actor: User | None) -> Room:
    kind, url = _check_stream(stream_kind, stream_url)
    if position is None:
        position = (db.session.scalar(select(func.max(Room.position)).where(Room.event_id == event.id)) or 0) + 1
    room = Room(event_id=event.id, name=_clean_text(name, field="name", max_length=NAME_MAX), position=position,
                stream_kind=kind, stream_url=url)
    db.session.add(room)
    db.session.flush()
    return room


def update_room(room: Room, *, name: Any, stream_kind: Any = None, stream_url: Any = None,
                position: int | None = None, actor: User | None) -> Room:
    room.name = _clean_text(name, field="name", max_length=NAME_MAX)
    room.stream_kind, room.stream_url = _check_stream(stream_kind, stream_url)
    if position is not None:
        room.position = position
    db.session.flush()
    return room


def delete_room(room: Room, *, actor: User | None) -> None:
    """Only an empty room can be deleted, so no session loses its place unnoticed."""
    if db.session.scalar(select(func.count()).select_from(TimetableSlot).where(TimetableSlot.room_id == room.id)):
        raise Conflict(_("The room still has sessions; move or remove them first."), field="room_id",
                       code="room_in_use")
    db.session.delete(room)
    db.session.flush()


def _check_color(color: Any) -> str:
    if not isinstance(color, str) or not COLOR_PATTERN.match(color):
        raise ValidationFailed(_("The colour must look like #1f5f99."), field="color")
    return color.lower()


def create_track(event: Event, *, name: Any, color: Any = "#3b6ea5", actor: User | None) -> Track:
    track = Track(event_id=event.id, name=_clean_text(name, field="name", max_length=NAME_MAX),
                  color=_check_color(color))
    db.session.add(track)
    db.session.flush()
    return track


def update_track(track: Track, *, name: Any, color: Any, actor: User | None) -> Track:
    track.name = _clean_text(name, field="name", max_length=NAME_MAX)
    track.color = _check_color(color)
    db.session.flush()
    return track


def delete_track(track: Track, *, actor: User | None) -> None:
    """Sessions of the track keep their place and lose the track."""
    db.session.delete(track)
    db.session.flush()


# --- releases -----------------------------------------------------------------------------------


def latest_release(event: Event) -> AgendaRelease | None:
    return db.session.scalar(select(AgendaRelease).where(AgendaRelease.event_id == event.id)
                             .order_by(AgendaRelease.sequence.desc()).limit(1))


def publish_release(event: Event, *, name: Any, actor: User | None) -> AgendaRelease:
    """Publish the working agenda as a named version with a change log against the previous release.

    Refused while the agenda has hard conflicts or when nothing changed. After commit: `agenda_released`.
    """
    name = _clean_text(name, field="name", max_length=RELEASE_NAME_MAX)
    errors = [p for p in agenda_problems(event) if p.severity == "error"]
    if errors:
        raise Conflict(_("Resolve the conflicts first: %(first)s", first=errors[0].message), field="name",
                       code="agenda_has_conflicts")
    previous = latest_release(event)
    if db.session.scalar(select(AgendaRelease.id).where(AgendaRelease.event_id == event.id,
                                                        AgendaRelease.name == name)):
        raise Conflict(_("A release with this name exists already."), field="name", code="duplicate_name")
    snapshot = build_snapshot(event)
    old = json.loads(previous.snapshot) if previous else None
    if old is not None and old["sessions"] == snapshot["sessions"] and old["rooms"] == snapshot["rooms"] \
            and old["tracks"] == snapshot["tracks"]:
        raise Conflict(_("Nothing has changed since the last release."), field="name", code="no_changes")
    changes = diff_snapshots(old, snapshot)
    release = AgendaRelease(event_id=event.id, sequence=(previous.sequence + 1) if previous else 1, name=name,
                            changes=json.dumps(changes, ensure_ascii=False),
                            snapshot=json.dumps(snapshot, ensure_ascii=False, separators=(",", ":")),
                            published_by_id=actor.id if actor is not None else None)
    db.session.add(release)
    db.session.flush()
    after_commit.defer(_announce_release, event.id, release.name, changes)
    return release


def _announce_release(event_id: int, version: str, changes: dict[str, Any]) -> None:
    agenda_released.send(current_app._get_current_object(),  # type: ignore[attr-defined]
                         event_id=event_id, version=version, release={"version": version, "changes": changes})


def ensure_demo_release(event: Event) -> AgendaRelease | None:
    """Publish release "1.0" of the event's agenda if it has none yet (used by the demo loader)."""
    if latest_release(event) is not None:
        return None
    return publish_release(event, name="1.0", actor=None)


# --- personal agenda ----------------------------------------------------------------------------


def star_session(session: ConferenceSession, *, user: User) -> None:
    """Add to the user's agenda (idempotent)."""
    exists = db.session.scalar(select(StarredSession.id).where(StarredSession.user_id == user.id,
                                                               StarredSession.session_id == session.id))
    if exists is None:
        db.session.add(StarredSession(user_id=user.id, session_id=session.id))
        db.session.flush()


def unstar_session(session: ConferenceSession, *, user: User) -> None:
    """Remove from the user's agenda (idempotent)."""
    star = db.session.scalar(select(StarredSession).where(StarredSession.user_id == user.id,
                                                          StarredSession.session_id == session.id))
    if star is not None:
        db.session.delete(star)
        db.session.flush()


def starred_session_ids(event: Event, user: Any) -> set[int]:
    if user is None or not getattr(user, "is_authenticated", False):
        return set()
    return set(db.session.scalars(
        select(StarredSession.session_id).join(ConferenceSession)
        .where(StarredSession.user_id == user.id, ConferenceSession.event_id == event.id)))


def active_calendar_feed(event: Event, user: User) -> CalendarFeed | None:
    return db.session.scalar(select(CalendarFeed).where(
        CalendarFeed.event_id == event.id, CalendarFeed.user_id == user.id, CalendarFeed.revoked_at.is_(None)))


def create_calendar_feed(event: Event, *, user: User) -> CalendarFeed:
    """A fresh secret address; any previous one of this person for this event stops working."""
    revoke_calendar_feed(event, user=user)
    feed = CalendarFeed(event_id=event.id, user_id=user.id, nonce=secrets.token_urlsafe(32))
    db.session.add(feed)
    db.session.flush()
    return feed


def revoke_calendar_feed(event: Event, *, user: User) -> None:
    feed = active_calendar_feed(event, user)
    if feed is not None:
        feed.revoked_at = utcnow()
        db.session.flush()


def calendar_feed_token(feed: CalendarFeed) -> str:
    key = current_app.config["SECRET_KEY"].encode()
    digest = hmac.new(key, f"calendar-feed:{feed.id}:{feed.nonce}".encode(), hashlib.sha256).hexdigest()
    return f"{feed.id}-{digest[:40]}"


def calendar_feed_for_token(event: Event, token: str) -> CalendarFeed | None:
    """The active feed this token belongs to, or None (compared in constant time)."""
    feed_id = parse_id(token.partition("-")[0])
    if feed_id is None or len(token) > 80:
        return None
    feed = db.session.get(CalendarFeed, feed_id)
    if feed is None or feed.event_id != event.id or feed.revoked_at is not None or feed.user.is_disabled:
        return None
    return feed if hmac.compare_digest(calendar_feed_token(feed), token) else None


def _unique(problems: list[Problem]) -> list[Problem]:
    seen: list[Problem] = []
    for problem in problems:
        if problem not in seen:
            seen.append(problem)
    return seen


# --- the account's rights (answers to `account_data` and `account_erasing`) -----------------------------------


def account_data(sender: Any, *, user_id: int, **kwargs: Any) -> dict[str, Any]:
    """The personal agenda (starred sessions) and calendar feeds; the feeds' secret addresses are left out.

    Titles as released (None while no release names the session): the working agenda may hold a draft title
    that the person may not see."""
    stars = db.session.execute(
        select(StarredSession, ConferenceSession, Event)
        .join(ConferenceSession, ConferenceSession.id == StarredSession.session_id)
        .join(Event, Event.id == ConferenceSession.event_id)
        .where(StarredSession.user_id == user_id).order_by(StarredSession.id)).all()
    feeds = db.session.execute(
        select(CalendarFeed, Event).join(Event, Event.id == CalendarFeed.event_id)
        .where(CalendarFeed.user_id == user_id).order_by(CalendarFeed.id)).all()
    return {
        "personal_agenda": [{"event": event.slug, "session_id": session.id,
                             "session_title": released.title if (released := released_session(event, session.id))
                             else None, "starred_at": star.created_at.isoformat()} for star, session, event in stars],
        "calendar_feeds": [{"event": event.slug, "created_at": feed.created_at.isoformat(),
                            "revoked_at": feed.revoked_at.isoformat() if feed.revoked_at else None}
                           for feed, event in feeds],
    }


def erase_account(sender: Any, *, user_id: int, **kwargs: Any) -> None:
    """Remove the personal agenda and the calendar feeds (their addresses stop working at once)."""
    for model in (StarredSession, CalendarFeed):
        for row in db.session.scalars(select(model).where(model.user_id == user_id)).all():
            db.session.delete(row)
    db.session.flush()
