"""Live layer rules: chat, moderation, Q&A, announcements, retention. Services flush, never commit.

Broadcasts are queued with `after_commit.defer` and go out only after a successful commit.
"""

from __future__ import annotations

import re
from collections.abc import MutableMapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from types import SimpleNamespace
from typing import Any

from flask_babel import gettext as _
from sqlalchemy import Insert, bindparam, delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import aliased

from conference.agenda.models import ConferenceSession
from conference.agenda.public import released_end, released_session
from conference.auth.models import User
from conference.core import after_commit
from conference.core.db import execute_committed, utcnow
from conference.core.errors import Conflict, NotAllowed, NotFound, RateLimited, ValidationFailed
from conference.core.ids import parse_id
from conference.core.permissions import Permission, Role, has_permission, permissions_for
from conference.core.text import has_forbidden_text
from conference.events.models import Event, EventMembership
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
HISTORY_DELETED_LIMIT = 500  # deleted ids reported by one chat:history answer (deletions are rare)
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
# Control characters, bidi overrides and lone surrogates (which no database can store as UTF-8).


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
        session_id = parse_id(key)
        session = db.session.get(ConferenceSession, session_id) if session_id is not None else None
        if session is None or session.event is None:
            raise NotFound(_("There is no such room."), code="unknown_room", field="room")
        return LiveRoom(name, kind, session.event, session)
    event = db.session.scalar(select(Event).where(Event.slug == key))
    if event is None:
        raise NotFound(_("There is no such room."), code="unknown_room", field="room")
    return LiveRoom(name, kind, event)


# --- snapshots for the frequent events: a room's settings, a person's standing ---------------------------

@dataclass(frozen=True)
class RoomInfo:
    """What every chat message needs to know about its room, as plain values (no ORM objects).

    Cached per process for a few seconds (see `broadcast.LiveState`); moderation changes drop it at once.
    """

    name: str
    kind: str
    event_id: int
    event_slug: str
    session_id: int | None
    closes_at: datetime | None  # a session chat becomes a read-only archive then
    slow_mode_seconds: int
    is_released: bool = True  # False: a session room whose session no release names yet (organisers only)

    @property
    def has_chat(self) -> bool:
        return self.kind in ("lobby", "session")

    @property
    def event_room(self) -> str:
        return f"event:{self.event_slug}"

    def is_closed(self, now: datetime | None = None) -> bool:
        return self.closes_at is not None and self.closes_at <= (now or utcnow())


def load_room_info(name: Any) -> RoomInfo:
    """The room for a client-given name, as plain values; unknown or malformed names are errors."""
    if not isinstance(name, str):
        raise ValidationFailed(_("The field 'room' is required."), field="room")
    match = ROOM_PATTERN.match(name)
    if match is None:
        raise NotFound(_("There is no such room."), code="unknown_room", field="room")
    kind, key = match.groups()
    session_id: int | None = None
    closes_at: datetime | None = None
    is_released = True
    if kind == "session":
        number = parse_id(key)
        if number is None:
            raise NotFound(_("There is no such room."), code="unknown_room", field="room")
        found = db.session.execute(select(ConferenceSession.id, Event)
                                   .join(Event, Event.id == ConferenceSession.event_id)
                                   .where(ConferenceSession.id == number)).first()
        if found is None:
            raise NotFound(_("There is no such room."), code="unknown_room", field="room")
        session_id, event = found
        event_id, slug = event.id, event.slug
        # The chat closes after the session's released end: the time attendees were told, not the editor's.
        entry = released_session(event, session_id)
        is_released = entry is not None
        end = entry.end_at if entry is not None else None
        closes_at = end + CHAT_CLOSES_AFTER_SESSION if end is not None else None
    else:
        row = db.session.execute(select(Event.id, Event.slug).where(Event.slug == key)).first()
        if row is None:
            raise NotFound(_("There is no such room."), code="unknown_room", field="room")
        event_id, slug = row
    slow = 0
    if kind != "event":
        slow = db.session.scalar(select(LiveRoomSetting.slow_mode_seconds).where(
            LiveRoomSetting.event_id == event_id, LiveRoomSetting.room == name)) or 0
    return RoomInfo(name, kind, event_id, slug, session_id, closes_at, int(slow), is_released)


def require_released_room(info: RoomInfo, *, may_manage_agenda: bool) -> None:
    """A session's room exists for attendees once a release names the session; before that only the
    organisers preparing it may use it (its id would otherwise confirm an unannounced session)."""
    if not info.is_released and not may_manage_agenda:
        raise NotFound(_("There is no such room."), code="unknown_room", field="room")


def live_room(info: RoomInfo) -> LiveRoom:
    """The ORM view of a room, for the rarer actions that need the event or session objects."""
    event = db.session.get(Event, info.event_id)
    session = db.session.get(ConferenceSession, info.session_id) if info.session_id is not None else None
    if event is None or (info.session_id is not None and session is None):
        raise NotFound(_("There is no such room."), code="unknown_room", field="room")
    return LiveRoom(info.name, info.kind, event, session)


_FOREVER = datetime.max.replace(tzinfo=UTC)


@dataclass(frozen=True)
class Standing:
    """One person's standing in one event (name, role, mute, ban) as a read-only snapshot.

    The send path checks permissions against it instead of querying; it is cached per process for a few
    seconds and dropped at once on a role change, mute, ban or lift (see `broadcast.forget_person`).
    """

    user_id: int
    event_id: int
    name: str
    is_admin: bool
    is_disabled: bool
    role: Role | None
    mute_ends: datetime | None = None  # None: not muted
    ban_ends: datetime | None = None

    @property
    def is_authenticated(self) -> bool:
        return not self.is_disabled

    def role_in(self, event: Event) -> Role | None:
        """`has_permission` protocol; a standing only knows its own event."""
        if event.id != self.event_id:
            raise ValueError("a standing belongs to one event")
        return self.role

    def may(self, permission: Permission) -> bool:
        """The same answer as `has_permission(user, event, permission)`, from the snapshot."""
        if self.is_disabled:
            return False
        return self.is_admin or permission in permissions_for(self.role)

    @property
    def shown_role(self) -> str:
        if self.role is not None:
            return str(self.role)
        return "admin" if self.is_admin else Role.ATTENDEE.value

    def is_muted(self, now: datetime) -> bool:
        return self.mute_ends is not None and self.mute_ends > now

    def is_banned(self, now: datetime) -> bool:
        return self.ban_ends is not None and self.ban_ends > now


def _sanction_ends(event_id: int, user_id: int) -> dict[str, datetime]:
    rows = db.session.execute(select(LiveSanction.kind, LiveSanction.until).where(
        LiveSanction.event_id == event_id, LiveSanction.user_id == user_id))
    return {kind: until or _FOREVER for kind, until in rows}


@lru_cache(maxsize=1)
def _standing_query() -> Any:
    """Built once: constructing a select with aliases costs more than running it."""
    mute, ban = aliased(LiveSanction), aliased(LiveSanction)
    user_id: Any = bindparam("user_id")
    event_id: Any = bindparam("event_id")

    def sanction(alias: Any, kind: SanctionKind) -> Any:
        return (alias.event_id == event_id) & (alias.user_id == User.id) & (alias.kind == kind.value)

    return (select(User.name, User.is_admin, User.is_disabled, EventMembership.role, mute.id, mute.until,
                   ban.id, ban.until)
            .outerjoin(EventMembership, (EventMembership.user_id == User.id) & (EventMembership.event_id == event_id))
            .outerjoin(mute, sanction(mute, SanctionKind.MUTE))
            .outerjoin(ban, sanction(ban, SanctionKind.BAN))
            .where(User.id == user_id))


def load_standing(user_id: int, event_id: int) -> Standing | None:
    """A fresh snapshot from the database in one query; None if the account is gone."""
    row = db.session.execute(_standing_query(), {"user_id": user_id, "event_id": event_id}).first()
    if row is None:
        return None
    name, is_admin, is_disabled, role, mute_id, mute_until, ban_id, ban_until = row
    return Standing(user_id, event_id, name, bool(is_admin), bool(is_disabled), Role(role) if role else None,
                    (mute_until or _FOREVER) if mute_id else None, (ban_until or _FOREVER) if ban_id else None)


def standing_of(user: User, event: Event) -> Standing:
    """The snapshot for an already loaded user (HTTP views, rare socket actions)."""
    ends = _sanction_ends(event.id, user.id)
    return Standing(user.id, event.id, user.name, user.is_admin, user.is_disabled, user.role_in(event),
                    ends.get(SanctionKind.MUTE), ends.get(SanctionKind.BAN))


def require_join(standing: Standing, now: datetime | None = None) -> None:
    """Registered people (any role) and site administrators may join; banned people may not."""
    if not standing.may(Permission.JOIN_LIVE):
        raise NotAllowed(_("Register for this event to take part."), code="not_registered")
    if not standing.is_admin and standing.is_banned(now or utcnow()):
        raise NotAllowed(_("You have been removed from this event's live rooms."), code="banned")


def require_write(standing: Standing, now: datetime | None = None) -> None:
    """Chat, questions, votes, reactions: needs the chat permission and no mute."""
    now = now or utcnow()
    require_join(standing, now)
    if not standing.may(Permission.CHAT):
        raise NotAllowed(_("You may not write here."), code="forbidden")
    if not standing.may(Permission.MODERATE) and standing.is_muted(now):
        raise NotAllowed(_("You have been muted in this event."), code="muted")


# --- access -----------------------------------------------------------------------------------------------

def check_can_join(room: LiveRoom, user: User) -> None:
    """Registered people (any role) and site administrators may join; banned people may not."""
    require_join(standing_of(user, room.event))


def check_can_write(room: LiveRoom, user: User) -> None:
    """Chat, questions, votes, reactions: needs the chat permission and no mute."""
    require_write(standing_of(user, room.event))


def is_moderator(user: User, event: Event) -> bool:
    return has_permission(user, event, Permission.MODERATE)


def shown_role(user: User, event: Event) -> str:
    role = user.role_in(event)
    if role is not None:
        return str(role)
    return "admin" if user.is_admin else Role.ATTENDEE.value


def session_end(session: ConferenceSession) -> datetime | None:
    """The released end (see `load_room_info`); None while no release names the session."""
    return released_end(session.event, session.id)


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
    text = value.replace("\r\n", "\n").replace("\r", "\n").strip()
    if not text:
        raise ValidationFailed(_("Please write something first."), field=field, code="empty")
    if len(text) > limit:
        raise ValidationFailed(_("At most %(n)d characters, please.", n=limit), field=field, code="too_long")
    if has_forbidden_text(text):
        raise ValidationFailed(_("The text contains characters that are not allowed."), field=field)
    return text


def clean_client_id(value: Any) -> str:
    if not isinstance(value, str) or not CLIENT_ID_PATTERN.match(value):
        raise ValidationFailed(
            _("The field 'client_id' must be 1 to %(n)d letters, digits or -_.:", n=CLIENT_ID_LIMIT),
            field="client_id")
    return value


def clean_number(value: Any, *, field: str) -> int:
    """A whole JSON number (minutes, seconds); ids go through `conference.core.ids` instead."""
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 2**53:
        raise ValidationFailed(_("The field '%(name)s' must be a whole number.", name=field), field=field)
    return value


def check_rate(store: Any, key: str, limit: tuple[int, int]) -> None:
    count, window = limit
    if store.hit(key, window) > count:
        raise RateLimited(_("You are sending too fast. Please wait a moment."))


# --- payloads (one builder per type) ----------------------------------------------------------------------

def message_payload(message: ChatMessage | Any) -> dict[str, Any]:
    """A chat message for clients; `message` is a ChatMessage or a row with the same column names."""
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
        "is_hidden": question.is_hidden,  # only moderators (and the author's own resend) ever receive true
    }
    if voted is not None:
        body["voted"] = voted
    return body


def announcement_payload(announcement: Announcement, event_slug: str) -> dict[str, Any]:
    return {"id": announcement.id, "event": event_slug, "text": announcement.text,
            "created_at": announcement.created_at.isoformat(timespec="milliseconds")}


# --- chat ----------------------------------------------------------------------------------------------------

def find_message_by_client_id(room: LiveRoom | RoomInfo, *, author: User | Standing,
                              client_id: str) -> ChatMessage | None:
    author_id = author.user_id if isinstance(author, Standing) else author.id
    return db.session.scalar(select(ChatMessage).where(
        ChatMessage.author_id == author_id, ChatMessage.room == room.name, ChatMessage.client_id == client_id))


_MESSAGE_COLUMNS = ("event_id", "room", "author_id", "author_name", "author_role", "text", "client_id", "created_at")


@lru_cache(maxsize=4)
def _insert_message(dialect: str) -> tuple[Insert, bool]:
    """One prepared INSERT per database dialect (its SQL is compiled once and cached by SQLAlchemy).

    SQLite and PostgreSQL skip a row that hits the (author, room, client_id) constraint and return nothing,
    so a resend costs no prior SELECT and no savepoint; other databases raise and are handled by the caller.
    """
    from sqlalchemy.dialects import postgresql, sqlite

    table = ChatMessage.__table__
    values: dict[str, Any] = {name: bindparam(name) for name in _MESSAGE_COLUMNS}
    unique = ["author_id", "room", "client_id"]
    if dialect == "sqlite":
        return sqlite.insert(table).values(values).on_conflict_do_nothing(index_elements=unique) \
            .returning(table.c.id), True
    if dialect == "postgresql":
        return postgresql.insert(table).values(values).on_conflict_do_nothing(index_elements=unique) \
            .returning(table.c.id), True
    return insert(table).values(values).returning(table.c.id), False


def post_message(room: RoomInfo, *, author: Standing, text: str, client_id: str,
                 now: datetime | None = None) -> tuple[dict[str, Any], bool]:
    """Store a chat message; returns (its payload as clients see it, created). A resend with a known
    `client_id` returns the original.

    One INSERT (no prior SELECT): the unique (author, room, client_id) constraint detects resends. No ORM
    object is built: this runs for every chat message, and the payload is all anyone needs of it.
    Side effect after commit: `chat:message` (or a grouped `chat:messages`) to the room, with the same payload.
    """
    now = now or utcnow()
    try:
        if not room.has_chat:
            raise ValidationFailed(_("This room has no chat."), code="no_chat", field="room")
        if room.is_closed(now):
            raise NotAllowed(_("This session is over; its chat is now an archive."), code="room_closed")
        require_write(author, now)
        text = clean_text(text, field="text", limit=CHAT_TEXT_LIMIT)
        if room.slow_mode_seconds and not author.may(Permission.MODERATE):
            _check_slow_mode(room, author, now)
    except (NotAllowed, RateLimited, ValidationFailed):
        # A resend after a reconnect still gets its stored original (e.g. once slow mode or a mute began).
        original = find_message_by_client_id(room, author=author, client_id=client_id)
        if original is None:
            raise
        return message_payload(original), False
    row = {"event_id": room.event_id, "room": room.name, "author_id": author.user_id, "author_name": author.name,
           "author_role": author.shown_role, "text": text, "client_id": client_id, "created_at": now}
    statement, skips_conflicts = _insert_message(db.session.get_bind().dialect.name)
    if skips_conflicts and not db.session().in_transaction():
        # The usual case (room and sender came from the caches): the INSERT is the unit of work's only
        # statement, so it runs in a transaction of its own, without the layers that cost more than the
        # INSERT itself; this runs for every message.
        message_id = execute_committed(db.engine, statement, row)
    elif skips_conflicts:
        # The session holds a connection already: use it (a second one per handler could exhaust the pool).
        message_id = db.session.connection().execute(statement, row).scalar()
    else:
        try:
            with db.session.begin_nested():
                message_id = db.session.execute(statement, row).scalar()
        except IntegrityError:
            message_id = None
    if message_id is None:
        # The same client_id was stored before (a resend, or a race with one): answer with the original.
        original = find_message_by_client_id(room, author=author, client_id=client_id)
        if original is None:
            raise NotFound(_("There is no such message."), field="client_id")
        return message_payload(original), False
    payload = message_payload(SimpleNamespace(id=message_id, **row))
    after_commit.defer(broadcast.chat_message, room.name, payload)
    return payload, True


def _check_slow_mode(room: RoomInfo, author: Standing, now: datetime) -> None:
    seconds = room.slow_mode_seconds
    last = db.session.scalar(select(func.max(ChatMessage.created_at)).where(
        ChatMessage.room == room.name, ChatMessage.author_id == author.user_id))
    if last is not None and now - last < timedelta(seconds=seconds):
        wait = seconds - int((now - last).total_seconds())
        raise RateLimited(_("Slow mode: please wait %(n)d seconds between messages.", n=max(wait, 1)),
                          code="slow_mode")


def history(room: LiveRoom, *, after_id: int | None = None, limit: int = HISTORY_PAGE) -> list[ChatMessage]:
    """Visible messages of the room in id order: after `after_id`, or else the latest `limit`."""
    query = select(ChatMessage).where(ChatMessage.room == room.name, ChatMessage.deleted_at.is_(None))
    if after_id is not None:
        return list(db.session.scalars(query.where(ChatMessage.id > after_id).order_by(ChatMessage.id).limit(limit)))
    latest = list(db.session.scalars(query.order_by(ChatMessage.id.desc()).limit(limit)))
    latest.reverse()
    return latest


def history_payloads(room: RoomInfo | LiveRoom, *, after_id: int | None = None, limit: int = HISTORY_PAGE,
                     cache: MutableMapping[int, dict[str, Any]] | None = None) -> list[dict[str, Any]]:
    """`history` as payloads. Joins and catch-ups are frequent (a reconnect storm is thousands at once), so
    only the ids are queried and the payloads come from `cache` where present: a stored message never
    changes (a deleted one is no longer among the ids), so its payload can be reused for everyone."""
    if after_id is not None:
        ids = list(db.session.scalars(_history_ids_query(True), {"room": room.name, "after_id": after_id,
                                                                  "limit": limit}))
    else:
        ids = list(db.session.scalars(_history_ids_query(False), {"room": room.name, "limit": limit}))
        ids.reverse()
    cache = {} if cache is None else cache
    missing = [message_id for message_id in ids if message_id not in cache]
    if missing:
        for row in db.session.execute(_message_rows_query(), {"ids": missing}):
            cache[row.id] = message_payload(row)
    return [cache[message_id] for message_id in ids if message_id in cache]


@lru_cache(maxsize=2)
def _history_ids_query(after: bool) -> Any:
    """Built once per kind (every join and catch-up asks): constructing a select costs more than running it.
    `after`: the oldest `limit` ids after `after_id`; otherwise the newest `limit`, newest first."""
    table = ChatMessage.__table__
    room: Any = bindparam("room")
    limit: Any = bindparam("limit")
    query = select(table.c.id).where(table.c.room == room, table.c.deleted_at.is_(None))
    if after:
        after_id: Any = bindparam("after_id")
        return query.where(table.c.id > after_id).order_by(table.c.id).limit(limit)
    return query.order_by(table.c.id.desc()).limit(limit)


@lru_cache(maxsize=1)
def _message_rows_query() -> Any:
    table = ChatMessage.__table__
    ids: Any = bindparam("ids", expanding=True)
    return select(*(table.c[name] for name in ("id", *_MESSAGE_COLUMNS))).where(table.c.id.in_(ids))


def deleted_message_ids(room: RoomInfo | LiveRoom, *, up_to_id: int,
                        limit: int = HISTORY_DELETED_LIMIT) -> list[int]:
    """Ids (ascending) of the room's deleted messages up to `up_to_id`, the newest `limit` of them.

    A client that catches up after being offline removes these from its list; messages after `up_to_id`
    that were deleted are simply never sent to it.
    """
    if up_to_id <= 0:
        return []
    ids = list(db.session.scalars(select(ChatMessage.id).where(
        ChatMessage.room == room.name, ChatMessage.deleted_at.is_not(None), ChatMessage.id <= up_to_id)
        .order_by(ChatMessage.id.desc()).limit(limit)))
    ids.reverse()
    return ids


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


def remove_reported(report: ChatReport, *, actor: User) -> None:
    """Resolve a report by removing what it names: delete the message or hide the question (which resolves
    every open report of it)."""
    if report.message is not None:
        delete_message(report.message, actor=actor)
    elif report.question is not None:
        hide_question(report.question, actor=actor)


def open_reports(event: Event) -> list[ChatReport]:
    """The event's unresolved reports of messages and questions, oldest first."""
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
    """Mute or ban `user` in `event`. After commit: their cached standing is dropped, and a ban removes their
    open sockets from the event's rooms."""
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
    after_commit.defer(broadcast.forget_person, user.id)
    if kind == SanctionKind.BAN:
        after_commit.defer(broadcast.remove_user_from_event, event.id, user.id, "banned")
    return sanction


def lift_sanction(sanction: LiveSanction, *, actor: User) -> None:
    """End a mute or ban now. After commit: the person's cached standing is dropped."""
    user_id = sanction.user_id
    db.session.delete(sanction)
    db.session.flush()
    after_commit.defer(broadcast.forget_person, user_id)


def active_sanctions(event: Event) -> list[LiveSanction]:
    now = utcnow()
    rows = db.session.scalars(select(LiveSanction).where(LiveSanction.event_id == event.id)
                              .order_by(LiveSanction.created_at.desc()))
    return [s for s in rows if s.is_active(now)]


def set_slow_mode(room: LiveRoom, *, seconds: int, actor: User) -> None:
    """Set the room's minimum interval between one person's messages. After commit: the cached room is
    dropped and `chat:settings` goes to the room."""
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
    after_commit.defer(broadcast.forget_room, room.name)
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
    if not _locked(question, hidden=False):
        raise _removed()
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
        if has_forbidden_text(answer):
            raise ValidationFailed(_("The text contains characters that are not allowed."), field="answer")
    if not _locked(question, hidden=False):
        raise _removed()
    question.is_answered = True
    question.answer = answer or question.answer
    question.answered_at = utcnow()
    question.answered_by_id = actor.id
    db.session.flush()
    after_commit.defer(broadcast.emit_to_room, room.name, "qa:updated", question_payload(question))


def questions_for(session: ConferenceSession, *, include_hidden: bool = False) -> list[Question]:
    """The session's questions by votes, then age; hidden ones only with `include_hidden` (moderators)."""
    query = select(Question).where(Question.session_id == session.id)
    if not include_hidden:
        query = query.where(Question.hidden_at.is_(None))
    return list(db.session.scalars(query.order_by(Question.vote_count.desc(), Question.id)))


def question_in_event(event: Event, question_id: int) -> Question:
    question = db.session.get(Question, question_id)
    if question is None or question.event_id != event.id:
        raise NotFound(_("There is no such question."), field="question_id")
    return question


def _locked(question: Question, *, hidden: bool) -> bool:
    """Lock the question's row if it is (`hidden`) or is not hidden; False if it is not so (any more).

    A conditional UPDATE that changes nothing: its condition is checked under the database's write lock (the
    row on PostgreSQL, the database on SQLite), held until the commit, so a vote or an answer that races a hide
    comes either before it or not at all, and never broadcasts a question hidden meanwhile.
    """
    condition = Question.hidden_at.is_not(None) if hidden else Question.hidden_at.is_(None)
    result: Any = db.session.execute(update(Question).where(Question.id == question.id, condition)
                                     .values(hidden_at=Question.hidden_at)
                                     .execution_options(synchronize_session=False))
    return bool(result.rowcount == 1)


def _removed() -> Conflict:
    return Conflict(_("The moderators have removed this question."), code="hidden", field="question_id")


def hide_question(question: Question, *, actor: User) -> None:
    """Remove a question from every public view and resolve its open reports; its votes are kept for a
    restore. After commit: `qa:hidden` to the session room (clients drop it; moderators' clients mark it)."""
    if question.is_hidden or not _locked(question, hidden=False):
        raise Conflict(_("This question is already hidden."), code="already_hidden", field="question_id")
    now = utcnow()
    question.hidden_at = now
    question.hidden_by_id = actor.id
    for report in db.session.scalars(select(ChatReport).where(ChatReport.question_id == question.id,
                                                              ChatReport.resolved_at.is_(None))):
        report.resolved_at = now
        report.resolved_by_id = actor.id
    db.session.flush()
    after_commit.defer(broadcast.emit_to_room, question.room, "qa:hidden", {"room": question.room, "id": question.id})


def restore_question(question: Question, *, actor: User) -> None:
    """Undo `hide_question` (with the votes it had). After commit: `qa:restored` with the question to the room."""
    if not question.is_hidden or not _locked(question, hidden=True):
        raise Conflict(_("This question is not hidden."), code="not_hidden", field="question_id")
    question.hidden_at = None
    question.hidden_by_id = None
    db.session.flush()
    after_commit.defer(broadcast.emit_to_room, question.room, "qa:restored", question_payload(question))


def report_question(question: Question, *, reporter: User, reason: str) -> ChatReport:
    """Put a question into the moderators' queue (once per reporter), next to reported chat messages."""
    if question.author_id == reporter.id:
        raise ValidationFailed(_("You cannot report your own question."), code="own_question")
    if question.is_hidden or not _locked(question, hidden=False):
        raise _removed()
    existing = db.session.scalar(select(ChatReport).where(ChatReport.question_id == question.id,
                                                          ChatReport.reporter_id == reporter.id))
    if existing is not None:
        return existing
    report = ChatReport(event_id=question.event_id, question_id=question.id, reporter_id=reporter.id,
                        reason=reason[:REPORT_REASON_LIMIT])
    db.session.add(report)
    db.session.flush()
    return report


def hidden_questions(event: Event, *, limit: int = 200) -> list[Question]:
    """The event's hidden questions, the most recently hidden first (the moderation page's undo list)."""
    return list(db.session.scalars(select(Question).where(Question.event_id == event.id,
                                                          Question.hidden_at.is_not(None))
                                   .order_by(Question.hidden_at.desc(), Question.id.desc()).limit(limit)))


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
                       announcement_payload(announcement, event.slug))
    return announcement


def latest_announcement(event: Event | RoomInfo, *, within: timedelta = timedelta(hours=2)) -> Announcement | None:
    """The event's newest announcement of the last `within` (shown to people who join late)."""
    event_id = event.event_id if isinstance(event, RoomInfo) else event.id
    return db.session.scalar(_latest_announcement_query(), {"event_id": event_id, "since": utcnow() - within})


@lru_cache(maxsize=1)
def _latest_announcement_query() -> Any:
    """Built once (every join asks): constructing the select costs more than running it."""
    since: Any = bindparam("since", type_=Announcement.__table__.c.created_at.type)
    event_id: Any = bindparam("event_id")
    return (select(Announcement).where(Announcement.event_id == event_id, Announcement.created_at >= since)
            .order_by(Announcement.id.desc()).limit(1))


def recent_announcements(event: Event, limit: int = 10) -> list[Announcement]:
    return list(db.session.scalars(select(Announcement).where(Announcement.event_id == event.id)
                                   .order_by(Announcement.id.desc()).limit(limit)))


def set_chat_retention(event: Event, *, days: int | None, actor: User) -> None:
    """How many days after the event its chat (messages and their reports) is deleted; None keeps it. The other
    periods of the event's retention policy: `conference.live.retention`."""
    from conference.live.retention import set_retention

    set_retention(event, periods={"chat_retention_days": days}, actor=actor)


def purge_expired_chat(now: datetime | None = None) -> int:
    """Apply every event's retention policy (`conference.live.retention.purge_expired`); returns the number of
    chat messages deleted."""
    from conference.live.retention import purge_expired

    return purge_expired(now).deleted["chat"]


def user_in_event(event: Event, user_id: int) -> User:
    user = db.session.get(User, user_id)
    if user is None or user.role_in(event) is None:
        raise NotFound(_("This person is not registered for the event."), field="user_id")
    return user



# --- the account's rights (answers to `account_data` and `account_erasing`) -----------------------------------


def account_data(sender: Any, *, user_id: int, **kwargs: Any) -> dict[str, Any]:
    """The account's chat messages (also those a moderator deleted) and questions."""
    messages = db.session.execute(
        select(ChatMessage, Event.slug).join(Event, Event.id == ChatMessage.event_id)
        .where(ChatMessage.author_id == user_id).order_by(ChatMessage.id)).all()
    questions = db.session.execute(
        select(Question, Event.slug).join(Event, Event.id == Question.event_id)
        .where(Question.author_id == user_id).order_by(Question.id)).all()
    return {
        "chat_messages": [{"event": slug, "room": message.room, "text": message.text, "shown_as": message.author_name,
                           "sent_at": message.created_at.isoformat(), "deleted": message.is_deleted}
                          for message, slug in messages],
        "questions": [{"event": slug, "session_id": question.session_id, "text": question.text,
                       "votes": question.vote_count, "answer": question.answer, "hidden": question.is_hidden,
                       "asked_at": question.created_at.isoformat()} for question, slug in questions],
    }


def erase_account(sender: Any, *, user_id: int, **kwargs: Any) -> None:
    """Messages and questions stay (the conversation keeps its sense) without the author's name: payloads and
    pages show them as from a deleted account. Mutes and bans of the account go; reports it made stay."""
    db.session.execute(update(ChatMessage).where(ChatMessage.author_id == user_id).values(author_name=""))
    for question in db.session.scalars(select(Question).where(Question.author_id == user_id)).all():
        question.author_name = ""  # through the ORM: the session pages' cached question panels are dropped
    db.session.execute(delete(LiveSanction).where(LiveSanction.user_id == user_id))
    db.session.flush()
