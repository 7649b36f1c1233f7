"""A past event with released sessions (one started, one in the future, one draft), people and questions."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

import pytest

from conference.agenda.models import ConferenceSession, TimetableSlot
from conference.auth.models import User
from conference.core.db import utcnow
from conference.core.permissions import Role
from conference.events.models import Event
from conference.extensions import db
from conference.live.models import Question
from conference.speakers.models import SpeakerProfile


@dataclass
class FeedbackWorld:
    event: Event
    other: Event
    started: ConferenceSession
    future: ConferenceSession
    draft: ConferenceSession
    profile: SpeakerProfile
    users: dict[str, User]


def _question(session: ConferenceSession, author: User, text: str, *, answer: str | None = None,
              hidden: bool = False) -> Question:
    question = Question(event_id=session.event_id, session_id=session.id, author_id=author.id,
                        author_name=author.name, text=text, client_id=f"c-{text[:20]}",
                        is_answered=answer is not None, answer=answer, hidden_at=utcnow() if hidden else None)
    db.session.add(question)
    return question


@pytest.fixture
def fworld(create_event, person, create_profile, create_talk) -> FeedbackWorld:
    today = date.today()
    event = create_event("doc-event", title="Fachtag", start=today - timedelta(days=2), end=today - timedelta(days=1))
    other = create_event("doc-other", start=today - timedelta(days=2), end=today - timedelta(days=1))
    users = {
        "attendee": person(event, Role.ATTENDEE, email="att@example.org", name="Anna Attendee"),
        "attendee2": person(event, Role.ATTENDEE, email="att2@example.org", name="Bruno Beispiel"),
        "speaker": person(event, Role.SPEAKER, email="spk@example.org", name="Sam Speaker"),
        "organiser_b": person(other, Role.ORGANISER, email="orgb@example.org", name="Otto Other"),
        "organiser": person(event, Role.ORGANISER, email="org@example.org", name="Olga Organiser"),
        "outsider": person(event, None, email="out@example.org", name="Oscar Outsider"),
    }
    profile = create_profile(event, user=users["speaker"], name="Sam Speaker")
    started = create_talk(event, title="Daten als Infrastruktur", start=utcnow() - timedelta(hours=2),
                          speakers=(profile,))
    started.recording_url = "https://video.example.org/rec-1"
    db.session.commit()
    future = create_talk(event, title="Blick nach vorn", start=utcnow() + timedelta(days=2))  # releases again
    draft = ConferenceSession(event_id=event.id, title="Geheimer Entwurf")
    db.session.add(draft)
    db.session.flush()
    db.session.add(TimetableSlot(session_id=draft.id, room_id=started.slots[0].room_id,
                                 start_at=utcnow() - timedelta(hours=3), end_at=utcnow() - timedelta(hours=2)))
    _question(started, users["attendee"], "Wie offen sind die Daten?", answer="Ganz offen.")
    _question(started, users["attendee2"], "Versteckte Frage?", answer="Versteckte Antwort", hidden=True)
    _question(started, users["attendee2"], "Unbeantwortete Frage?")
    _question(draft, users["attendee"], "Frage im Entwurf?", answer="Antwort im Entwurf")
    db.session.commit()
    return FeedbackWorld(event, other, started, future, draft, profile, users)
