"""Live layer rules: chat, moderation, Q&A, announcements, retention. Services flush, never commit.

Broadcasts are queued with `after_commit.defer` and go out only after a successful commit.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from flask_babel import gettext as _
from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError

from conference.agenda.models import ConferenceSession, TimetableSlot
from conference.auth.models import User
from conference.core import after_commit
from conference.core.db import utcnow
from conference.core.errors import NotAllowed, NotFound, RateLimited, ValidationFailed
from conference.core.permissions import Permission, Role, has_permission
from conference.events.models import Event
from conference.extensions import db
from conference.live import broadcast
from conference.live.models import (
    ANSWER_TEXT_LIMIT,
    CHAT_TEXT_LIMIT,
    CLIENT_ID_LIMIT,
    QUESTION_TEXT_LIMIT,
    Announcement,
    ChatMessage,
    ChatReport,
    LiveRoomSetting,
    LiveSanction,
    Question,
    QuestionVote,
    SanctionKind,
)

HISTORY_ON_JOIN = 50
HISTORY_PAGE = 100
ANNOUNCEMENT_LIMIT = 500
REPORT_REASON_LIMIT = 500
MAX_SLOW_MODE_SECONDS = 3600
MAX_SANCTION_MINUTES = 60 * 24 * 366
MAX_RETENTION_DAYS = 3650
CHAT_CLOSES_AFTER_SESSION = timedelta(hours=1)  # then the session chat is a read-only archive
CLIENT_ID_PATTERN = re.compile(rf"^[A-Za-z0-9_.:-]{{1,{CLIENT_ID_LIMIT}}}$")
ROOM_PATTERN = re.compile(r"^(lobby|session|event):([a-z0-9-]{1,64})$")
REACTIONS = ("applause", "heart", "laugh", "thumbs_up", "idea")
# Control characters other than newline and tab, and the bidi overrides used to disguise text.
_FORBIDDEN_CHARS = re.compile("[\x00-\x08\x0b-\x1f\x7f\u202a-\u202e\u2066-\u2069]")


@dataclass(frozen=True)
class LiveRoom:
    """A resolved room name: `lobby:<slug>`, `session:<id>` (chat rooms) or `event:<slug>` (notices only)."""

    name: str
    kind: str
    event: Event
    session: ConferenceSession | None = None

    @property
    def has_chat(self) -> bool:
        return self.kind in ("lobby", "session")


def event_room(event: Event) -> str:
    return f"event:{event.slug}"


def room_for(obj: Event | ConferenceSession) -> str:
    if isinstance(obj, ConferenceSession):
        return f"session:{obj.id}"
    return f"lobby:{obj.slug}"


def resolve_room(name: Any) -> LiveRoom:
    """The room for a client-given name; unknown or malformed names are errors, never created."""
    if not isinstance(name, str):
        raise ValidationFailed(_("The field 'room' is required."), field="room")
    match = ROOM_PATTERN.match(name)
    if match is None:
        raise NotFound(_("There is no such room."), code="unknown_room", field="room")
    kind, key = match.groups()
    if kind == "session":
        if not key.isdigit() or len(key) > 12:
            raise NotFound(_("There is no such room."), code="unknown_room", field="room")
        session = db.session.get(ConferenceSession, int(key))
        if session is None or session.event is None:
            raise NotFound(_("There is no such room."), code="unknown_room", field="room")
        return LiveRoom(name, kind, session.event, session)
    event = db.session.scalar(select(Event).where(Event.slug == key))
    if event is None:
        raise NotFound(_("There is no such room."), code="unknown_room", field="room")
    return LiveRoom(name, kind, event)


# --- access -----------------------------------------------------------------------------------------------

def active_sanction(event: Event, user: User, kind: SanctionKind, now: datetime | None = None) -> LiveSanction | None:
    sanction = db.session.scalar(select(LiveSanction).where(
        LiveSanction.event_id == event.id, LiveSanction.user_id == user.id, LiveSanction.kind == kind))
    if sanction is None or not sanction.is_active(now or utcnow()):
        return None
    return sanction


def check_can_join(room: LiveRoom, user: User) -> None:
    """Registered people (any role) and site administrators may join; banned people may not."""
    event = room.event
    if not has_permission(user, event, Permission.JOIN_LIVE):
        raise NotAllowed(_("Register for this event to take part."), code="not_registered")
    if not user.is_admin and active_sanction(event, user, SanctionKind.BAN) is not None:
        raise NotAllowed(_("You have been removed from this event's live rooms."), code="banned")


def check_can_write(room: LiveRoom, user: User) -> None:
    """Chat, questions, votes, reactions: needs the chat permission and no mute."""
    check_can_join(room, user)
    if not has_permission(user, room.event, Permission.CHAT):
        raise NotAllowed(_("You may not write here."), code="forbidden")
    if has_permission(user, room.event, Permission.MODERATE):
        return
    mute = active_sanction(room.event, user, SanctionKind.MUTE)
    if mute is not None:
        raise NotAllowed(_("You have been muted in this event."), code="muted")


def is_moderator(user: User, event: Event) -> bool:
    return has_permission(user, event, Permission.MODERATE)


def shown_role(user: User, event: Event) -> str:
    role = user.role_in(event)
    if role is not None:
        return str(role)
    return "admin" if user.is_admin else Role.ATTENDEE.value


def session_end(session: ConferenceSession) -> datetime | None:
    return db.session.scalar(select(func.max(TimetableSlot.end_at)).where(TimetableSlot.session_id == session.id))


def session_has_ended(session: ConferenceSession, now: datetime | None = None) -> bool:
    end = session_end(session)
    return end is not None and end <= (now or utcnow())


def chat_is_closed(room: LiveRoom, now: datetime | None = None) -> bool:
    if room.session is None:
        return False
    end = session_end(room.session)
    return end is not None and end + CHAT_CLOSES_AFTER_SESSION <= (now or utcnow())


# --- input checks -------------------------------------------------------------------------------------------

def clean_text(value: Any, *, field: str, limit: int) -> str:
    if not isinstance(value, str):
        raise ValidationFailed(_("The field '%(name)s' must be text.", name=field), field=field)
    text = value.replace("\r\n", "\n").strip()
    if not text:
        raise ValidationFailed(_("Please write something first."), field=field, code="empty")
    if len(text) > limit:
        raise ValidationFailed(_("At most %(n)d characters, please.", n=limit), field=field, code="too_long")
    if _FORBIDDEN_CHARS.search(text):
        raise ValidationFailed(_("The text contains characters that are not allowed."), field=field)
    return text


def clean_client_id(value: Any) -> str:
    if not isinstance(value, str) or not CLIENT_ID_PATTERN.match(value):
        raise ValidationFailed(
            _("The field 'client_id' must be 1 to %(n)d letters, digits or -_.:", n=CLIENT_ID_LIMIT),
            field="client_id")
    return value


def clean_id(value: Any, *, field: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 2**53:
        raise ValidationFailed(_("The field '%(name)s' must be a whole number.", name=field), field=field)
    return value


def check_rate(store: Any, key: str, limit: tuple[int, int]) -> None:
    count, window = limit
    if store.hit(key, window) > count:
        raise RateLimited(_("You are sending too fast. Please wait a moment."))


# --- payloads (one builder per type) ----------------------------------------------------------------------

def message_payload(message: ChatMessage) -> dict[str, Any]:
    return {
        "id": message.id,
        "room": message.room,
        "text": message.text,
        "client_id": message.client_id,
        "author": {"id": message.author_id, "name": message.author_name, "role": message.author_role},
        "created_at": message.created_at.isoformat(timespec="milliseconds"),
    }


def question_payload(question: Question, *, voted: bool | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": question.id,
        "room": question.room,
        "session_id": question.session_id,
        "text": question.text,
        "client_id": question.client_id,
        "author": {"id": question.author_id, "name": question.author_name},
        "votes": question.vote_count,
        "is_answered": question.is_answered,
        "answer": question.answer,
        "created_at": question.created_at.isoformat(timespec="milliseconds"),
        "answered_at": question.answered_at.isoformat(timespec="milliseconds") if question.answered_at else None,
    }
    if voted is not None:
        body["voted"] = voted
    return body


def announcement_payload(announcement: Announcement, event: Event) -> dict[str, Any]:
    return {"id": announcement.id, "event": event.slug, "text": announcement.text,
            "created_at": announcement.created_at.isoformat(timespec="milliseconds")}


# --- chat ----------------------------------------------------------------------------------------------------

def find_message_by_client_id(room: LiveRoom, *, author: User, client_id: str) -> ChatMessage | None:
    return db.session.scalar(select(ChatMessage).where(
        ChatMessage.author_id == author.id, ChatMessage.room == room.name, ChatMessage.client_id == client_id))


def post_message(room: LiveRoom, *, author: User, text: str, client_id: str,
                 now: datetime | None = None) -> tuple[ChatMessage, bool]:
    """Store a chat message; returns (message, created). A resend with a known `client_id` returns the original.

    Side effect after commit: `chat:message` (or a grouped `chat:messages`) to the room.
    """
    existing = find_message_by_client_id(room, author=author, client_id=client_id)
    if existing is not None:
        return existing, False
    if not room.has_chat:
        raise ValidationFailed(_("This room has no chat."), code="no_chat", field="room")
    now = now or utcnow()
    if chat_is_closed(room, now):
        raise NotAllowed(_("This session is over; its chat is now an archive."), code="room_closed")
    check_can_write(room, author)
    text = clean_text(text, field="text", limit=CHAT_TEXT_LIMIT)
    if not is_moderator(author, room.event):
        _check_slow_mode(room, author, now)
    message = ChatMessage(event_id=room.event.id, room=room.name, author_id=author.id, author_name=author.name,
                          author_role=shown_role(author, room.event), text=text, client_id=client_id,
                          created_at=now)
    try:
        with db.session.begin_nested():
            db.session.add(message)
            db.session.flush()
    except IntegrityError:
        # The same resend raced us into the unique constraint: answer with the stored original.
        original = find_message_by_client_id(room, author=author, client_id=client_id)
        if original is None:
            raise
        return original, False
    after_commit.defer(broadcast.chat_message, room.name, message_payload(message))
    return message, True


def _check_slow_mode(room: LiveRoom, author: User, now: datetime) -> None:
    seconds = slow_mode_seconds(room)
    if not seconds:
        return
    last = db.session.scalar(select(func.max(ChatMessage.created_at)).where(
        ChatMessage.room == room.name, ChatMessage.author_id == author.id))
    if last is not None and now - last < timedelta(seconds=seconds):
        wait = seconds - int((now - last).total_seconds())
        raise RateLimited(_("Slow mode: please wait %(n)d seconds between messages.", n=max(wait, 1)),
                          code="slow_mode")


def slow_mode_seconds(room: LiveRoom) -> int:
    value = db.session.scalar(select(LiveRoomSetting.slow_mode_seconds).where(
        LiveRoomSetting.event_id == room.event.id, LiveRoomSetting.room == room.name))
    return int(value or 0)


def history(room: LiveRoom, *, after_id: int | None = None, limit: int = HISTORY_PAGE) -> list[ChatMessage]:
    """Visible messages of the room in id order: after `after_id`, or else the latest `limit`."""
    query = select(ChatMessage).where(ChatMessage.room == room.name, ChatMessage.deleted_at.is_(None))
    if after_id is not None:
        return list(db.session.scalars(query.where(ChatMessage.id > after_id).order_by(ChatMessage.id).limit(limit)))
    latest = list(db.session.scalars(query.order_by(ChatMessage.id.desc()).limit(limit)))
    latest.reverse()
    return latest


def message_in_event(message_id: int, event: Event | None = None) -> ChatMessage:
    message = db.session.get(ChatMessage, message_id)
    if message is None or (event is not None and message.event_id != event.id):
        raise NotFound(_("There is no such message."), field="message_id")
    return message


def delete_message(message: ChatMessage, *, actor: User) -> None:
    """Hide a message for everyone and resolve its reports. After commit: `chat:deleted` to the room."""
    if message.deleted_at is not None:
        return
    message.deleted_at = utcnow()
    message.deleted_by_id = actor.id
    for report in db.session.scalars(select(ChatReport).where(ChatReport.message_id == message.id,
                                                              ChatReport.resolved_at.is_(None))):
        report.resolved_at = message.deleted_at
        report.resolved_by_id = actor.id
    db.session.flush()
    after_commit.defer(broadcast.emit_to_room, message.room, "chat:deleted", {"room": message.room, "id": message.id})


def report_message(message: ChatMessage, *, reporter: User, reason: str) -> ChatReport:
    """Put a message into the moderators' queue (once per reporter)."""
    if message.deleted_at is not None:
        raise NotFound(_("There is no such message."), field="message_id")
    if message.author_id == reporter.id:
        raise ValidationFailed(_("You cannot report your own message."), code="own_message")
    existing = db.session.scalar(select(ChatReport).where(ChatReport.message_id == message.id,
                                                          ChatReport.reporter_id == reporter.id))
    if existing is not None:
        return existing
    report = ChatReport(event_id=message.event_id, message_id=message.id, reporter_id=reporter.id,
                        reason=reason[:REPORT_REASON_LIMIT])
    db.session.add(report)
    db.session.flush()
    return report


def open_reports(event: Event) -> list[ChatReport]:
    return list(db.session.scalars(select(ChatReport).where(ChatReport.event_id == event.id,
                                                            ChatReport.resolved_at.is_(None))
                                   .order_by(ChatReport.created_at)))


def dismiss_report(report: ChatReport, *, actor: User) -> None:
    report.resolved_at = utcnow()
    report.resolved_by_id = actor.id
    db.session.flush()


# --- sanctions and room settings ---------------------------------------------------------------------------

def sanction_user(event: Event, *, user: User, kind: SanctionKind | str, minutes: int | None,
                  actor: User) -> LiveSanction:
    """Mute or ban `user` in `event`. After commit a ban removes their open sockets from the event's rooms."""
    try:
        kind = SanctionKind(kind)
    except ValueError:
        raise ValidationFailed(_("Unknown sanction."), field="kind") from None
    if minutes is not None and not 1 <= minutes <= MAX_SANCTION_MINUTES:
        raise ValidationFailed(_("The duration is out of range."), field="minutes")
    if user.id == actor.id:
        raise NotAllowed(_("You cannot do this to yourself."), code="self")
    if user.is_admin or is_moderator(user, event):
        raise NotAllowed(_("Moderators and organisers cannot be muted or banned."), code="protected")
    if user.role_in(event) is None:
        raise NotFound(_("This person is not registered for the event."), field="user")
    until = utcnow() + timedelta(minutes=minutes) if minutes else None
    sanction = db.session.scalar(select(LiveSanction).where(
        LiveSanction.event_id == event.id, LiveSanction.user_id == user.id, LiveSanction.kind == kind))
    if sanction is None:
        sanction = LiveSanction(event_id=event.id, user_id=user.id, kind=kind, until=until, created_by_id=actor.id)
        db.session.add(sanction)
    else:
        sanction.until, sanction.created_by_id, sanction.created_at = until, actor.id, utcnow()
    db.session.flush()
    if kind == SanctionKind.BAN:
        after_commit.defer(broadcast.remove_user_from_event, event.id, user.id, "banned")
    return sanction


def lift_sanction(sanction: LiveSanction, *, actor: User) -> None:
    db.session.delete(sanction)
    db.session.flush()


def active_sanctions(event: Event) -> list[LiveSanction]:
    now = utcnow()
    rows = db.session.scalars(select(LiveSanction).where(LiveSanction.event_id == event.id)
                              .order_by(LiveSanction.created_at.desc()))
    return [s for s in rows if s.is_active(now)]


def set_slow_mode(room: LiveRoom, *, seconds: int, actor: User) -> None:
    """Set the room's minimum interval between one person's messages. After commit: `chat:settings`."""
    if not room.has_chat:
        raise ValidationFailed(_("This room has no chat."), code="no_chat", field="room")
    if not 0 <= seconds <= MAX_SLOW_MODE_SECONDS:
        raise ValidationFailed(_("Slow mode must be between 0 and %(n)d seconds.", n=MAX_SLOW_MODE_SECONDS),
                               field="seconds")
    setting = db.session.scalar(select(LiveRoomSetting).where(LiveRoomSetting.event_id == room.event.id,
                                                              LiveRoomSetting.room == room.name))
    if setting is None:
        setting = LiveRoomSetting(event_id=room.event.id, room=room.name)
        db.session.add(setting)
    setting.slow_mode_seconds = seconds
    db.session.flush()
    after_commit.defer(broadcast.emit_to_room, room.name, "chat:settings",
                       {"room": room.name, "slow_mode_seconds": seconds})


# --- Q&A -----------------------------------------------------------------------------------------------------

def ask_question(room: LiveRoom, *, author: User, text: str, client_id: str) -> tuple[Question, bool]:
    """Ask a question in a session room. After commit: `qa:question` to the room."""
    if room.session is None:
        raise ValidationFailed(_("Questions belong to a session."), code="no_qa", field="room")
    existing = db.session.scalar(select(Question).where(Question.author_id == author.id,
                                                        Question.session_id == room.session.id,
                                                        Question.client_id == client_id))
    if existing is not None:
        return existing, False
    if chat_is_closed(room):
        raise NotAllowed(_("This session is over; questions are closed."), code="room_closed")
    check_can_write(room, author)
    question = Question(event_id=room.event.id, session_id=room.session.id, author_id=author.id,
                        author_name=author.name, text=clean_text(text, field="text", limit=QUESTION_TEXT_LIMIT),
                        client_id=client_id)
    db.session.add(question)
    db.session.flush()
    after_commit.defer(broadcast.emit_to_room, room.name, "qa:question", question_payload(question))
    return question, True


def question_in(question_id: int) -> Question:
    question = db.session.get(Question, question_id)
    if question is None:
        raise NotFound(_("There is no such question."), field="question_id")
    return question


def vote_question(question: Question, room: LiveRoom, *, voter: User) -> bool:
    """One upvote per person; returns False if they had voted already. After commit: `qa:updated`."""
    check_can_write(room, voter)
    if question.author_id == voter.id:
        raise ValidationFailed(_("You cannot vote for your own question."), code="own_question")
    try:
        with db.session.begin_nested():
            db.session.add(QuestionVote(question_id=question.id, user_id=voter.id))
            db.session.flush()
    except IntegrityError:
        return False
    question.vote_count = db.session.scalar(
        select(func.count()).select_from(QuestionVote).where(QuestionVote.question_id == question.id)) or 0
    db.session.flush()
    after_commit.defer(broadcast.emit_to_room, room.name, "qa:updated", question_payload(question))
    return True


def answer_question(question: Question, room: LiveRoom, *, actor: User, answer: str | None) -> None:
    """Mark answered, with an optional written answer. After commit: `qa:updated` to the room."""
    if answer is not None:
        answer = answer.strip()
        if len(answer) > ANSWER_TEXT_LIMIT:
            raise ValidationFailed(_("At most %(n)d characters, please.", n=ANSWER_TEXT_LIMIT), field="answer",
                                   code="too_long")
        if _FORBIDDEN_CHARS.search(answer):
            raise ValidationFailed(_("The text contains characters that are not allowed."), field="answer")
    question.is_answered = True
    question.answer = answer or question.answer
    question.answered_at = utcnow()
    question.answered_by_id = actor.id
    db.session.flush()
    after_commit.defer(broadcast.emit_to_room, room.name, "qa:updated", question_payload(question))


def questions_for(session: ConferenceSession) -> list[Question]:
    return list(db.session.scalars(select(Question).where(Question.session_id == session.id)
                                   .order_by(Question.vote_count.desc(), Question.id)))


def voted_question_ids(user: User, session: ConferenceSession) -> set[int]:
    query = (select(QuestionVote.question_id).join(Question, Question.id == QuestionVote.question_id)
             .where(Question.session_id == session.id, QuestionVote.user_id == user.id))
    return set(db.session.scalars(query))


# --- announcements, agenda, retention -------------------------------------------------------------------

def announce(event: Event, *, text: str, actor: User) -> Announcement:
    """Store an announcement; after commit `announcement` goes to every room of the event."""
    announcement = Announcement(event_id=event.id, author_id=actor.id,
                                text=clean_text(text, field="text", limit=ANNOUNCEMENT_LIMIT))
    db.session.add(announcement)
    db.session.flush()
    after_commit.defer(broadcast.emit_to_room, event_room(event), "announcement",
                       announcement_payload(announcement, event))
    return announcement


def latest_announcement(event: Event, *, within: timedelta = timedelta(hours=2)) -> Announcement | None:
    return db.session.scalar(select(Announcement).where(Announcement.event_id == event.id,
                                                        Announcement.created_at >= utcnow() - within)
                             .order_by(Announcement.id.desc()).limit(1))


def recent_announcements(event: Event, limit: int = 10) -> list[Announcement]:
    return list(db.session.scalars(select(Announcement).where(Announcement.event_id == event.id)
                                   .order_by(Announcement.id.desc()).limit(limit)))


def set_chat_retention(event: Event, *, days: int | None, actor: User) -> None:
    """How many days after the event its chat (messages and reports) is deleted; None keeps it."""
    if days is not None and not 0 <= days <= MAX_RETENTION_DAYS:
        raise ValidationFailed(_("Between 0 and %(n)d days, please.", n=MAX_RETENTION_DAYS),
                               field="chat_retention_days")
    event.chat_retention_days = days
    db.session.flush()


def purge_expired_chat(now: datetime | None = None) -> int:
    """Delete chat messages of events whose retention period has passed; returns the number deleted."""
    now = now or utcnow()
    deleted = 0
    for event in db.session.scalars(select(Event).where(Event.chat_retention_days.is_not(None))):
        if event.ends_at + timedelta(days=event.chat_retention_days or 0) > now:
            continue
        result = db.session.execute(delete(ChatMessage).where(ChatMessage.event_id == event.id))
        deleted += int(getattr(result, "rowcount", 0) or 0)
    db.session.flush()
    return deleted


def user_in_event(event: Event, user_id: int) -> User:
    user = db.session.get(User, user_id)
    if user is None or user.role_in(event) is None:
        raise NotFound(_("This person is not registered for the event."), field="user_id")
    return user

