"""Conflict checks of the agenda: times within the event, rooms and speakers free. Nothing here changes data.

Hard conflicts (room double-booked, speaker in two places, outside the event's days, end before start, zero
length) refuse a change with `Conflict`/`Unprocessable`; soft ones come back as `Problem` warnings.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any

from flask_babel import gettext as _
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from conference.agenda.models import ConferenceSession, Room, SessionSpeaker, TimetableSlot
from conference.core.errors import Conflict, Unprocessable, ValidationFailed
from conference.events.models import Event
from conference.extensions import db
from conference.speakers.models import SpeakerProfile

BACK_TO_BACK_GAP = timedelta(minutes=5)  # less than this between two rooms: the speaker has to rush


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


def refuse_hard(problems: list[Problem]) -> list[Problem]:
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


def unique_problems(problems: list[Problem]) -> list[Problem]:
    seen: list[Problem] = []
    for problem in problems:
        if problem not in seen:
            seen.append(problem)
    return seen
