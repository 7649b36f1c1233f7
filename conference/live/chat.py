"""Chat: sending (the fast INSERT path), history and catch-up, deleting and reporting messages.

Services flush, never commit; broadcasts are queued with `after_commit.defer` and go out after the commit.
"""

from __future__ import annotations

from collections.abc import MutableMapping
from datetime import datetime, timedelta
from functools import lru_cache
from types import SimpleNamespace
from typing import Any

from flask_babel import gettext as _
from sqlalchemy import Insert, bindparam, func, insert, select
from sqlalchemy.exc import IntegrityError

from conference.core import after_commit
from conference.core.db import execute_committed, utcnow
from conference.core.errors import NotAllowed, NotFound, RateLimited, ValidationFailed
from conference.core.permissions import Permission
from conference.events.models import Event
from conference.extensions import db
from conference.live import broadcast, reports
from conference.live.access import Standing, require_write
from conference.live.inputs import clean_text
from conference.live.models import (
    CHAT_TEXT_LIMIT,
    ChatMessage,
    ChatReport,
)
from conference.live.payloads import message_payload
from conference.live.rooms import LiveRoom, RoomInfo

HISTORY_ON_JOIN = 50
HISTORY_PAGE = 100
HISTORY_DELETED_LIMIT = 500  # deleted ids reported by one chat:history answer (deletions are rare)


def find_message_by_client_id(room: RoomInfo, *, author: Standing, client_id: str) -> ChatMessage | None:
    return db.session.scalar(select(ChatMessage).where(
        ChatMessage.author_id == author.user_id, ChatMessage.room == room.name, ChatMessage.client_id == client_id))


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


def history(room: RoomInfo | LiveRoom, *, after_id: int | None = None, limit: int = HISTORY_PAGE) -> list[ChatMessage]:
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


def delete_message(message: ChatMessage, *, actor: Standing) -> None:
    """Hide a message for everyone and resolve its reports. After commit: `chat:deleted` to the room."""
    if message.deleted_at is not None:
        return
    message.deleted_at = utcnow()
    message.deleted_by_id = actor.user_id
    for report in db.session.scalars(select(ChatReport).where(ChatReport.message_id == message.id,
                                                              ChatReport.resolved_at.is_(None))):
        report.resolved_at = message.deleted_at
        report.resolved_by_id = actor.user_id
    db.session.flush()
    after_commit.defer(broadcast.emit_to_room, message.room, "chat:deleted", {"room": message.room, "id": message.id})


def report_message(message: ChatMessage, *, reporter: Standing, reason: str) -> ChatReport:
    """Put a message into the moderators' queue (once per reporter)."""
    if message.deleted_at is not None:
        raise NotFound(_("There is no such message."), field="message_id")
    if message.author_id == reporter.user_id:
        raise ValidationFailed(_("You cannot report your own message."), code="own_message")
    return reports.file_report(message.event_id, reporter=reporter, reason=reason, message_id=message.id)
