"""The session page's questions panel in the agenda's anonymous panel cache (`conference.agenda.pagecache`).

Every committed change of a question (asked, voted, answered, removed) drops the cached panels of its session
in this process, whichever service made it: the ORM reports the flushed questions, and the drop is queued with
`after_commit.defer`, so it runs after the commit and not at all after a rollback.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import event as sa_event
from sqlalchemy.orm import Session

from conference.agenda import pagecache
from conference.core import after_commit
from conference.live.models import Question


def _questions_flushed(session: Session, _flush_context: Any) -> None:
    changed = {obj.session_id for obj in (*session.new, *session.dirty, *session.deleted)
               if isinstance(obj, Question) and obj.session_id is not None}
    for session_id in changed:
        after_commit.defer(pagecache.forget_panels, session_id)


def register() -> None:
    """Listen to every ORM session's flushes (once per process, however many apps are created)."""
    if not sa_event.contains(Session, "after_flush", _questions_flushed):
        sa_event.listen(Session, "after_flush", _questions_flushed)
