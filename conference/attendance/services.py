"""Attendance figures from the presence minutes: per session, per event, over the day, live; CSV rows; a
person's own record. Reads only, except `set_certificate_threshold`."""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from flask_babel import gettext as _
from sqlalchemy import delete, func, select

from conference.agenda.models import ConferenceSession, SessionKind
from conference.agenda.public import released_session
from conference.attendance.models import Certificate, PresenceMinute, ReactionMinute, SlideDownloadDay
from conference.auth.models import User
from conference.core.errors import ValidationFailed
from conference.events.models import Event, EventMembership
from conference.extensions import db
from conference.live.models import ChatMessage, Question

BUCKET_MINUTES = 5
MAX_THRESHOLD = 24 * 60
NAMES_SHOWN = 50  # names per room in "who is where now"
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


@dataclass
class SessionFigures:
    session_id: int
    title: str
    room: str
    unique_attendees: int = 0
    peak_concurrent: int = 0
    person_minutes: int = 0
    chat_messages: int = 0
    questions: int = 0
    reactions: int = 0
    slide_downloads: int = 0

    @property
    def average_minutes(self) -> float:
        return round(self.person_minutes / self.unique_attendees, 1) if self.unique_attendees else 0.0


@dataclass
class EventFigures:
    registered: int
    attended: int
    sessions: list[SessionFigures]
    timeline: list[tuple[datetime, int]]  # start of each 5-minute bucket (UTC), distinct people present
    by_sector: list[tuple[str, int, int]] | None = None  # sector, registered, attended (None: not asked)
    lobby_attendees: int = 0
    extra: dict[str, Any] = field(default_factory=dict)


def room_of(session_id: int) -> str:
    return f"session:{session_id}"


def lobby_of(event: Event) -> str:
    return f"lobby:{event.slug}"


def minute_start(minute: int) -> datetime:
    return datetime.fromtimestamp(minute * 60, UTC)


def event_sessions(event: Event) -> list[ConferenceSession]:
    """The event's sessions that can have an audience (not breaks), by first start then title."""
    sessions = db.session.scalars(select(ConferenceSession).where(
        ConferenceSession.event_id == event.id, ConferenceSession.kind != SessionKind.BREAK)).all()
    far = datetime.max.replace(tzinfo=UTC)
    return sorted(sessions, key=lambda s: (min((slot.start_at for slot in s.slots), default=far), s.title))


def session_figures(event: Event) -> list[SessionFigures]:
    """One `SessionFigures` per session of the event, from the stored minutes and counters."""
    sessions = event_sessions(event)
    rooms = {room_of(s.id): s for s in sessions}
    figures = {s.id: SessionFigures(s.id, s.title, ", ".join(sorted({slot.room.name for slot in s.slots})))
               for s in sessions}
    in_event = PresenceMinute.event_id == event.id
    for room, people, minutes in db.session.execute(
            select(PresenceMinute.room, func.count(func.distinct(PresenceMinute.user_id)), func.count())
            .where(in_event).group_by(PresenceMinute.room)):
        if room in rooms:
            figures[rooms[room].id].unique_attendees = int(people)
            figures[rooms[room].id].person_minutes = int(minutes)
    per_minute = (select(PresenceMinute.room, PresenceMinute.minute, func.count().label("n"))
                  .where(in_event).group_by(PresenceMinute.room, PresenceMinute.minute).subquery())
    for room, peak in db.session.execute(select(per_minute.c.room, func.max(per_minute.c.n))
                                         .group_by(per_minute.c.room)):
        if room in rooms:
            figures[rooms[room].id].peak_concurrent = int(peak)
    for room, count in db.session.execute(select(ChatMessage.room, func.count()).where(
            ChatMessage.event_id == event.id, ChatMessage.deleted_at.is_(None)).group_by(ChatMessage.room)):
        if room in rooms:
            figures[rooms[room].id].chat_messages = int(count)
    for session_id, count in db.session.execute(select(Question.session_id, func.count()).where(
            Question.event_id == event.id).group_by(Question.session_id)):
        if session_id in figures:
            figures[session_id].questions = int(count)
    for room, count in db.session.execute(select(ReactionMinute.room, func.sum(ReactionMinute.count)).where(
            ReactionMinute.event_id == event.id).group_by(ReactionMinute.room)):
        if room in rooms:
            figures[rooms[room].id].reactions = int(count or 0)
    for session_id, count in db.session.execute(select(SlideDownloadDay.session_id, func.sum(SlideDownloadDay.count))
                                                .where(SlideDownloadDay.event_id == event.id)
                                                .group_by(SlideDownloadDay.session_id)):
        if session_id in figures:
            figures[session_id].slide_downloads = int(count or 0)
    return [figures[s.id] for s in sessions]


def timeline(event: Event) -> list[tuple[datetime, int]]:
    """Distinct people present in any room of the event per 5-minute bucket, from the first to the last."""
    bucket = (PresenceMinute.minute // BUCKET_MINUTES).label("b")  # integer division in SQLite and PostgreSQL
    people = func.count(func.distinct(PresenceMinute.user_id))
    rows: dict[int, int] = {int(b): int(n) for b, n in db.session.execute(
        select(bucket, people).where(PresenceMinute.event_id == event.id).group_by(bucket))}
    if not rows:
        return []
    first, last = int(min(rows)), int(max(rows))
    return [(minute_start(b * BUCKET_MINUTES), int(rows.get(b, 0))) for b in range(first, last + 1)]


def attendee_ids(event: Event) -> set[int]:
    return set(db.session.scalars(select(PresenceMinute.user_id).where(PresenceMinute.event_id == event.id)
                                  .distinct()))


def event_figures(event: Event) -> EventFigures:
    """Everything the dashboard shows after (or during) the event."""
    memberships = db.session.scalars(select(EventMembership).where(EventMembership.event_id == event.id)).all()
    attended = attendee_ids(event)
    by_sector = None
    from conference.people.models import RegistrationAnswer, RegistrationSettings

    asked = db.session.get(RegistrationSettings, event.id)
    if asked is not None and asked.asks_sector:  # the event's registration questions ask for it
        sectors = dict(db.session.execute(select(RegistrationAnswer.user_id, RegistrationAnswer.sector).where(
            RegistrationAnswer.event_id == event.id)).tuples().all())
        registered_by: Counter[str] = Counter()
        attended_by: Counter[str] = Counter()
        for membership in memberships:
            sector = sectors.get(membership.user_id) or str(_("not stated"))
            registered_by[sector] += 1
            attended_by[sector] += membership.user_id in attended
        by_sector = [(sector, registered_by[sector], attended_by[sector]) for sector in sorted(registered_by)]
    lobby = db.session.scalar(select(func.count(func.distinct(PresenceMinute.user_id))).where(
        PresenceMinute.event_id == event.id, PresenceMinute.room == lobby_of(event))) or 0
    return EventFigures(registered=len(memberships), attended=len(attended), sessions=session_figures(event),
                        timeline=timeline(event), by_sector=by_sector, lobby_attendees=int(lobby))


def online_people(rooms: list[dict[str, Any]]) -> int:
    """Distinct people in any of `rooms` (someone in the lobby and a session at once counts once)."""
    return len({user_id for room in rooms for user_id in room["ids"]})


def live_rooms(event: Event, registry: Any) -> list[dict[str, Any]]:
    """Who is where now: per counted room of the event, the people online (deployment-wide with Redis); the
    first NAMES_SHOWN names in alphabetical order and how many more (the page and its poll stay small with
    thousands online)."""
    rooms = [(lobby_of(event), _("Lobby"))] + [(room_of(s.id), s.title) for s in event_sessions(event)]
    found = []
    user_ids: set[int] = set()
    for room, title in rooms:
        ids = registry.online_users(room)
        user_ids.update(ids)
        found.append((room, title, ids))
    names = {user_id: name for user_id, name in db.session.execute(
        select(User.id, User.name).where(User.id.in_(user_ids)))} if user_ids else {}
    rows = []
    for room, title, ids in found:
        people = sorted(names.get(i, "?") for i in ids)
        rows.append({"room": room, "title": title, "online": len(ids), "ids": ids,
                     "people": people[:NAMES_SHOWN], "more": max(0, len(people) - NAMES_SHOWN)})
    return rows


def set_certificate_threshold(event: Event, *, minutes: int, actor: User) -> None:
    """Set how many minutes present a certificate of attendance needs (0..1440). Flushes."""
    if not 0 <= minutes <= MAX_THRESHOLD:
        raise ValidationFailed(_("Between 0 and %(n)d minutes, please.", n=MAX_THRESHOLD), field="minutes")
    event.certificate_min_minutes = minutes
    db.session.flush()


# --- a person's own record ------------------------------------------------------------------------------

@dataclass
class PersonalRecord:
    event: Event
    sessions: list[tuple[int, str, int]]  # session id, title as released, minutes
    total_minutes: int  # distinct minutes in any room of the event (lobby and session at once: once)
    first: datetime | None
    last: datetime | None

    @property
    def qualifies(self) -> bool:
        return self.total_minutes > 0 and self.total_minutes >= self.event.certificate_min_minutes


def released_title(event: Event, session_id: int) -> str:
    """The title as released (a session no release names is a draft: its working title is not shown)."""
    released = released_session(event, session_id)
    return released.title if released is not None else _("Session %(id)d", id=session_id)


def personal_record(event: Event, user_id: int) -> PersonalRecord:
    return personal_records(event, user_id=user_id).get(user_id) or PersonalRecord(event, [], 0, None, None)


def personal_records(event: Event, *, user_id: int | None = None) -> dict[int, PersonalRecord]:
    """Each person's record in the event (or only `user_id`'s), from one query over the presence minutes."""
    query = select(PresenceMinute.user_id, PresenceMinute.room, PresenceMinute.minute).where(
        PresenceMinute.event_id == event.id)
    if user_id is not None:
        query = query.where(PresenceMinute.user_id == user_id)
    per_room: dict[int, Counter[str]] = defaultdict(Counter)
    minutes: dict[int, set[int]] = defaultdict(set)
    for person, room, minute in db.session.execute(query):
        per_room[person][room] += 1
        minutes[person].add(int(minute))
    order = {s.id: index for index, s in enumerate(event_sessions(event))}
    titles: dict[int, str] = {}
    records = {}
    for person, rooms in per_room.items():
        sessions = []
        for room, count in rooms.items():
            if room.startswith("session:") and (session_id := int(room.split(":", 1)[1])) in order:
                if session_id not in titles:
                    titles[session_id] = released_title(event, session_id)
                sessions.append((session_id, titles[session_id], count))
        sessions.sort(key=lambda item: order[item[0]])
        seen = minutes[person]
        records[person] = PersonalRecord(event=event, sessions=sessions, total_minutes=len(seen),
                                         first=minute_start(min(seen)), last=minute_start(max(seen) + 1))
    return records


def events_attended(user_id: int) -> list[Event]:
    ids = select(PresenceMinute.event_id).where(PresenceMinute.user_id == user_id).distinct()
    return list(db.session.scalars(select(Event).where(Event.id.in_(ids)).order_by(Event.start_date.desc())))


def account_data(sender: Any, *, user_id: int, **kwargs: Any) -> dict[str, Any]:
    """A person's presence per event and room (with each minute's start) and their certificates."""
    records = []
    for event in events_attended(user_id):
        record = personal_record(event, user_id)
        minutes = db.session.execute(select(PresenceMinute.room, PresenceMinute.minute).where(
            PresenceMinute.event_id == event.id, PresenceMinute.user_id == user_id)
            .order_by(PresenceMinute.minute, PresenceMinute.room)).all()
        records.append({"event": event.slug, "total_minutes": record.total_minutes,
                        "sessions": [{"session_id": sid, "title": title, "minutes": count}
                                     for sid, title, count in record.sessions],
                        "minutes": [{"room": room, "minute": minute_start(m).isoformat()} for room, m in minutes]})
    certificates = [{"event_id": c.event_id, "code": c.code, "issued_at": c.issued_at.isoformat(),
                     "total_minutes": c.total_minutes}
                    for c in db.session.scalars(select(Certificate).where(Certificate.user_id == user_id))]
    return {"attendance": records, "certificates": certificates}


def erase_account(sender: Any, *, user_id: int, **kwargs: Any) -> None:
    """A deleted account takes its presence minutes and its certificates with it (their codes stop verifying)."""
    db.session.execute(delete(PresenceMinute).where(PresenceMinute.user_id == user_id))
    db.session.execute(delete(Certificate).where(Certificate.user_id == user_id))
    db.session.flush()


# --- CSV ----------------------------------------------------------------------------------------------

def safe_cell(value: Any) -> Any:
    """A cell a spreadsheet shows as text: a leading =, +, -, @ (or tab, CR) gets a quote in front."""
    if isinstance(value, str) and value.startswith(FORMULA_PREFIXES):
        return "'" + value
    return value


SESSION_COLUMNS = ("session_id", "title", "room", "unique_attendees", "peak_concurrent", "average_minutes",
                   "person_minutes", "chat_messages", "questions", "reactions", "slide_downloads")


def session_rows(event: Event) -> list[list[Any]]:
    return [[safe_cell(v) for v in (f.session_id, f.title, f.room, f.unique_attendees, f.peak_concurrent,
                                    f.average_minutes, f.person_minutes, f.chat_messages, f.questions,
                                    f.reactions, f.slide_downloads)] for f in session_figures(event)]


PRESENCE_COLUMNS = ("minute_utc", "room", "session_id", "user_id", "name")


def presence_rows(event: Event) -> Any:
    """Every stored minute of the event (raw records), by minute, room and person; a generator for streaming."""
    result = db.session.execute(
        select(PresenceMinute.minute, PresenceMinute.room, PresenceMinute.user_id, User.name)
        .join(User, User.id == PresenceMinute.user_id).where(PresenceMinute.event_id == event.id)
        .order_by(PresenceMinute.minute, PresenceMinute.room, PresenceMinute.user_id)
        .execution_options(yield_per=2000))
    for minute, room, user_id, name in result:
        session_id = room.split(":", 1)[1] if room.startswith("session:") else ""
        yield [minute_start(minute).strftime("%Y-%m-%dT%H:%M:00Z"), safe_cell(room), session_id, user_id,
               safe_cell(name)]
