"""The one payload builder per live type clients receive: chat messages, questions, announcements."""

from __future__ import annotations

from typing import Any

from conference.live.models import (
    Announcement,
    ChatMessage,
    Question,
)


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
