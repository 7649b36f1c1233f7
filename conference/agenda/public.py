"""What everyone but the organisers sees of the agenda: each question answered from the latest release only.

The working rows (`ConferenceSession`, `TimetableSlot`, `SessionSpeaker`) are the organisers' draft. Public and
attendee-facing reads (pages, speaker pages and photos, slides, exports, feeds, the API, socket answers) ask
these functions instead, so a session created, moved, renamed or given a speaker in the editor stays invisible
until a release names it. Each call costs one small query on a parsed, cached release (`published_schedule`).
"""

from __future__ import annotations

from datetime import datetime

from conference.agenda.schedule import PSession, published_schedule
from conference.events.models import Event


def released_sessions(event: Event) -> list[PSession]:
    """Every session of the latest release (cancelled ones marked), by start; none before the first release."""
    schedule = published_schedule(event)
    return list(schedule.sessions) if schedule is not None else []


def released_session(event: Event, session_id: int) -> PSession | None:
    """The session as released, or None while no release names it (it is a draft)."""
    schedule = published_schedule(event)
    return schedule.session(session_id) if schedule is not None else None


def is_released(event: Event, session_id: int) -> bool:
    return released_session(event, session_id) is not None


def released_sessions_of_speaker(event: Event, speaker_id: int) -> list[tuple[PSession, str]]:
    """(session, role) of the released sessions that name the speaker and are not cancelled, by start."""
    schedule = published_schedule(event)
    return schedule.sessions_of_speaker(speaker_id) if schedule is not None else []


def released_speaker_ids(event: Event) -> frozenset[int]:
    """The speakers a released, not cancelled session names: the only ones the public may see."""
    schedule = published_schedule(event)
    return schedule.speaker_ids() if schedule is not None else frozenset()


def released_end(event: Event, session_id: int) -> datetime | None:
    """When the session ends as released (its last slot), or None for a draft or an unscheduled session."""
    entry = released_session(event, session_id)
    return entry.end_at if entry is not None else None
