"""Background passes (reminder mails, retention): one unit of work in its own application context and
transaction, and a task that repeats it every N seconds without ever ending on a failure."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, TypeVar

from conference.core import after_commit
from conference.extensions import db

log = logging.getLogger("conference.passes")
T = TypeVar("T")


def run_in_transaction(app: Any, work: Callable[[], T]) -> T:
    """`work()` in a fresh app context, committed (after-commit side effects run then) or rolled back."""
    with app.app_context():
        try:
            result = work()
            after_commit.commit()
        except Exception:
            db.session.rollback()
            raise
        finally:
            db.session.remove()
    return result


def repeat_every(interval: float, step: Callable[[], Any], *, name: str,
                 start_background_task: Callable[..., Any], sleep: Callable[[float], Any]) -> None:
    """Run `step` every `interval` seconds in a background task (`interval <= 0`: never); a failing step (the
    database away) is logged and the next one retries."""
    if interval <= 0:
        return

    def loop() -> None:
        while True:
            sleep(interval)
            try:
                step()
            except Exception:
                log.exception("the %s pass failed", name)

    start_background_task(loop)
