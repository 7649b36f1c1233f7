"""Lookups scoped to an event: ids from a request or an import resolved to the event's own rows, or refused.

A room, track, speaker or slot of another event is as unknown as one that does not exist.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from flask_babel import gettext as _
from sqlalchemy import select

from conference.agenda.fields import MAX_SPEAKERS
from conference.agenda.models import ConferenceSession, Room, SpeakerRole, TimetableSlot, Track
from conference.agenda.public import is_released
from conference.core.errors import NotFound, Unprocessable, ValidationFailed
from conference.core.ids import parse_id
from conference.core.loading import get_in_event_or_404
from conference.events.models import Event
from conference.extensions import db
from conference.speakers.models import SpeakerProfile


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
