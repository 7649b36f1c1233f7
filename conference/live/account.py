"""The account's rights for the live layer: its chat messages and questions exported, or kept without its name."""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, select, update

from conference.events.models import Event
from conference.extensions import db
from conference.live.models import (
    ChatMessage,
    LiveSanction,
    Question,
)


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
