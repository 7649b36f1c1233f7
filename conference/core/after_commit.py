"""Side effects (broadcasts, mails) that must run only after the database commit succeeded."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import g, has_app_context


def defer(fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> None:
    """Queue `fn(*args, **kwargs)` to run after the current unit of work commits.

    Outside an application context (scripts) the call runs at once.
    """
    if not has_app_context():
        fn(*args, **kwargs)
        return
    queue = g.setdefault("_after_commit", [])
    queue.append((fn, args, kwargs))


def run_deferred() -> None:
    """Run and clear the queue; called right after a successful commit."""
    if not has_app_context():
        return
    queue = g.pop("_after_commit", [])
    for fn, args, kwargs in queue:
        fn(*args, **kwargs)


def discard_deferred() -> None:
    """Drop the queue after a rollback: nobody may see what was not stored."""
    if has_app_context():
        g.pop("_after_commit", None)


def commit() -> None:
    """Commit the session, then run the deferred side effects.

    A session that began no transaction has nothing to commit, and skipping it saves the commit's layers on
    the most frequent socket event (a chat message is stored in a transaction of its own).
    """
    from conference.extensions import db

    try:
        session = db.session()
        if session.in_transaction():
            session.commit()
    except Exception:
        db.session.rollback()
        discard_deferred()
        raise
    run_deferred()
