"""Side effects run only after a successful commit; a unit of work without a transaction commits nothing."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import event as sa_event

from conference.auth import accounts
from conference.auth.models import User
from conference.core import after_commit
from conference.extensions import db


def test_deferred_calls_run_after_the_commit_and_see_its_rows(app: Any) -> None:
    seen: list[int] = []
    accounts.create_user(email="a@example.org", name="A", password="lang-genug-123", verified=True)
    after_commit.defer(lambda: seen.append(db.session.query(User).count()))
    assert seen == []
    after_commit.commit()
    assert seen == [1]


def test_a_failed_commit_drops_the_deferred_calls(app: Any) -> None:
    seen: list[str] = []
    accounts.create_user(email="b@example.org", name="B", password="lang-genug-123", verified=True)
    after_commit.commit()
    db.session.add(User(email="b@example.org", name="B again", password_hash="x"))  # the same e-mail address
    after_commit.defer(seen.append, "must not run")
    with pytest.raises(Exception):  # noqa: B017 - the database's own integrity error
        after_commit.commit()
    after_commit.run_deferred()
    assert seen == []


def test_without_a_transaction_nothing_is_committed_but_the_deferred_calls_run(app: Any) -> None:
    after_commit.commit()  # start from a session without a transaction
    seen: list[str] = []
    commits: list[Any] = []

    def record(session: Any) -> None:
        commits.append(session)

    session = db.session()
    sa_event.listen(session, "after_commit", record)
    try:
        after_commit.defer(seen.append, "ran")
        assert session.in_transaction() is False
        after_commit.commit()
    finally:
        sa_event.remove(session, "after_commit", record)
    assert seen == ["ran"] and commits == []
