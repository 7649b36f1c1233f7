"""Agenda state changes of sessions and their slots: create, edit, cancel, delete, schedule, move.

Services flush, never commit; they raise `DomainError` subclasses and never read the request. Every change that
places a session is checked by `conflicts` (hard conflicts refused, warnings returned). Rooms and tracks are
changed in `rooms`, releases in `releases`, the personal agenda in `personal`.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from flask_babel import gettext as _
from sqlalchemy import select

from conference.agenda.conflicts import Problem, check_times, refuse_hard, slot_problems, unique_problems
from conference.agenda.fields import ABSTRACT_MAX, LANGUAGES, STREAM_URL_MAX, TITLE_MAX, clean_text
from conference.agenda.models import ConferenceSession, Room, SessionKind, SessionSpeaker, TimetableSlot, Track
from conference.auth.models import User
from conference.core.db import utcnow
from conference.core.errors import Conflict, Unprocessable, ValidationFailed
from conference.events.models import Event
from conference.extensions import db
from conference.speakers.models import SpeakerProfile

# --- sessions -----------------------------------------------------------------------------------


def _check_kind(kind: Any) -> str:
    if kind not in set(SessionKind):
        raise ValidationFailed(_("Unknown kind of session."), field="kind")
    return str(kind)


def _check_language(language: Any) -> str:
    if language not in LANGUAGES:
        raise ValidationFailed(_("Unknown language."), field="language")
    return str(language)


def create_session(event: Event, *, title: Any, abstract: Any = "", kind: Any = SessionKind.TALK,
                   language: Any = "de", track: Track | None = None,
                   speakers: Sequence[tuple[SpeakerProfile, str]] = (), actor: User | None) -> ConferenceSession:
    """Create an unscheduled session (schedule it with `schedule_session`)."""
    session = ConferenceSession(
        event_id=event.id, title=clean_text(title, field="title", max_length=TITLE_MAX),
        abstract=clean_text(abstract or "", field="abstract", max_length=ABSTRACT_MAX, required=False),
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
        values["title"] = clean_text(changes["title"], field="title", max_length=TITLE_MAX)
    if "abstract" in changes:
        values["abstract"] = clean_text(changes["abstract"] or "", field="abstract", max_length=ABSTRACT_MAX,
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
            warnings += refuse_hard(slot_problems(session, room=slot.room, start_at=slot.start_at,
                                                  end_at=slot.end_at, ignore_slot_id=slot.id, speaker_ids=ids))
        _replace_speakers(session, speakers)
    for key, value in values.items():
        setattr(session, key, value)
    session.updated_at = utcnow()
    db.session.flush()
    return unique_problems(warnings)


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
        warnings += refuse_hard(slot_problems(session, room=slot.room, start_at=slot.start_at,
                                              end_at=slot.end_at, ignore_slot_id=slot.id))
    session.updated_at = utcnow()
    db.session.flush()
    return unique_problems(warnings)


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
    warnings = refuse_hard(slot_problems(session, room=room, start_at=start_at, end_at=end_at))
    slot = TimetableSlot(room_id=room.id, start_at=start_at, end_at=end_at)
    slot.room = room
    session.slots.append(slot)
    db.session.flush()
    return slot, unique_problems(warnings)


def move_slot(slot: TimetableSlot, *, room: Room, start_at: datetime, end_at: datetime,
              actor: User | None) -> list[Problem]:
    """Move a slot to another room and/or time."""
    session = slot.session
    if room.event_id != session.event_id:
        raise Unprocessable(_("Unknown room."), field="room_id", code="unknown_room")
    check_times(session.event, start_at, end_at)
    warnings = refuse_hard(slot_problems(session, room=room, start_at=start_at, end_at=end_at,
                                         ignore_slot_id=slot.id))
    slot.room_id, slot.start_at, slot.end_at = room.id, start_at, end_at
    slot.room = room
    session.updated_at = utcnow()
    db.session.flush()
    return unique_problems(warnings)


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
