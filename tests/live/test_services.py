"""Live rules called directly: hiding, restoring and reporting questions."""

from __future__ import annotations

from typing import Any

import pytest
from flask import g
from sqlalchemy import func, select, update

from conference.core.after_commit import commit
from conference.core.db import utcnow
from conference.core.errors import Conflict, ValidationFailed
from conference.core.permissions import Role
from conference.extensions import db
from conference.live import broadcast, chat, moderation, reports, rooms
from conference.live import qa as live_qa
from conference.live.models import ChatMessage, ChatReport, Question, QuestionVote
from tests.fixtures.live import standing


@pytest.fixture
def qa(create_event: Any, create_session: Any, person: Any) -> dict[str, Any]:
    event = create_event("rules")
    session = create_session(event)
    people = {role: standing(person(event, role), event) for role in (Role.ATTENDEE, Role.SPEAKER, Role.MODERATOR)}
    room = rooms.load_room_info(rooms.room_for(session))
    question, _created = live_qa.ask_question(room, author=people[Role.ATTENDEE], text="Darf ich?", client_id="a")
    other, _created = live_qa.ask_question(room, author=people[Role.SPEAKER], text="Und ich?", client_id="b")
    commit()
    return {"event": event, "session": session, "room": room, "question": question, "other": other,
            "author": people[Role.ATTENDEE], "voter": people[Role.SPEAKER], "moderator": people[Role.MODERATOR]}


def deferred_events() -> list[str]:
    """The socket events queued for after the commit."""
    return [args[1] for fn, args, _kwargs in g.get("_after_commit", []) if fn is broadcast.emit_to_room]


def test_hide_flushes_and_broadcasts_only_after_commit(qa: dict[str, Any]) -> None:
    question, moderator = qa["question"], qa["moderator"]
    live_qa.hide_question(question, actor=moderator)
    assert question.is_hidden and question.hidden_by_id == moderator.user_id
    assert deferred_events() == ["qa:hidden"]
    db.session.rollback()  # the service did not commit: nothing stays, nobody hears of it
    g.pop("_after_commit", None)
    db.session.expire_all()
    assert not db.session.get(Question, question.id).is_hidden


def test_hide_resolves_only_the_open_reports_of_that_question(qa: dict[str, Any], person: Any) -> None:
    question, other, moderator = qa["question"], qa["other"], qa["moderator"]
    reporters = [standing(person(qa["event"], Role.ATTENDEE), qa["event"]) for _ in range(2)]
    mine = [live_qa.report_question(question, reporter=r, reason="x") for r in reporters]
    theirs = live_qa.report_question(other, reporter=reporters[0], reason="y")
    message = ChatMessage(event_id=qa["event"].id, room="lobby:rules", author_id=qa["author"].user_id, author_name="A",
                          author_role="attendee", text="Hallo", client_id="m")
    db.session.add(message)
    db.session.flush()
    chat.report_message(message, reporter=reporters[1], reason="z")
    commit()
    live_qa.hide_question(question, actor=moderator)
    commit()
    db.session.expire_all()
    assert [r.resolved_by_id for r in mine] == [moderator.user_id, moderator.user_id]
    assert db.session.get(ChatReport, theirs.id).resolved_at is None
    assert [r.question_id for r in reports.open_reports(qa["event"])] == [other.id, None]


def test_hide_twice_and_restore_visible_are_conflicts(qa: dict[str, Any]) -> None:
    question, moderator = qa["question"], qa["moderator"]
    with pytest.raises(Conflict) as refused:
        live_qa.restore_question(question, actor=moderator)
    assert refused.value.code == "not_hidden"
    live_qa.hide_question(question, actor=moderator)
    commit()
    with pytest.raises(Conflict) as refused:
        live_qa.hide_question(question, actor=moderator)
    assert refused.value.code == "already_hidden"


def test_restore_keeps_votes_and_answer(qa: dict[str, Any]) -> None:
    question, moderator, room = qa["question"], qa["moderator"], qa["room"]
    assert live_qa.vote_question(question, room, voter=qa["voter"]) is True
    live_qa.answer_question(question, room, actor=moderator, answer="Ja.")
    live_qa.hide_question(question, actor=moderator)
    commit()
    assert [q.id for q in live_qa.questions_for(qa["session"].id)] == [qa["other"].id]
    assert [q.id for q in live_qa.questions_for(qa["session"].id, include_hidden=True)] == [question.id, qa["other"].id]
    assert live_qa.hidden_questions(qa["event"]) == [question]
    live_qa.restore_question(question, actor=moderator)
    commit()
    db.session.expire_all()
    restored = db.session.get(Question, question.id)
    assert (restored.is_hidden, restored.hidden_by_id, restored.vote_count, restored.answer) == (False, None, 1, "Ja.")
    assert live_qa.hidden_questions(qa["event"]) == []


@pytest.mark.parametrize("action", ["vote", "answer", "report"])
def test_a_stale_visible_copy_cannot_act_on_a_question_hidden_meanwhile(qa: dict[str, Any], action: str) -> None:
    """A vote (answer, report) whose question was hidden by another worker after it was loaded is refused: the
    check runs in the database under the write lock, not on the loaded copy (which still says visible)."""
    question = qa["question"]
    assert not question.is_hidden
    with db.engine.begin() as other_worker:
        other_worker.execute(update(Question).where(Question.id == question.id)
                             .values(hidden_at=utcnow(), hidden_by_id=qa["moderator"].user_id))
    assert not question.is_hidden  # the loaded copy is stale
    with pytest.raises(Conflict) as refused:
        if action == "vote":
            live_qa.vote_question(question, qa["room"], voter=qa["voter"])
        elif action == "answer":
            live_qa.answer_question(question, qa["room"], actor=qa["moderator"], answer="Ja.")
        else:
            live_qa.report_question(question, reporter=qa["voter"], reason="")
    assert refused.value.code == "hidden"
    db.session.rollback()
    assert db.session.scalar(select(func.count()).select_from(QuestionVote)) == 0
    assert db.session.scalar(select(func.count()).select_from(ChatReport)) == 0
    assert db.session.get(Question, question.id).answer is None


def test_report_question_rules(qa: dict[str, Any]) -> None:
    question = qa["question"]
    with pytest.raises(ValidationFailed) as refused:
        live_qa.report_question(question, reporter=qa["author"], reason="")
    assert refused.value.code == "own_question"
    first = live_qa.report_question(question, reporter=qa["voter"], reason="r" * 600)
    assert live_qa.report_question(question, reporter=qa["voter"], reason="again") is first
    assert len(first.reason) == reports.REPORT_REASON_LIMIT and first.reported is question


def test_remove_reported_hides_a_question_and_deletes_a_message(qa: dict[str, Any]) -> None:
    report = live_qa.report_question(qa["question"], reporter=qa["voter"], reason="")
    moderation.remove_reported(report, actor=qa["moderator"])
    commit()
    db.session.expire_all()
    assert db.session.get(Question, qa["question"].id).is_hidden
    assert db.session.get(ChatReport, report.id).resolved_by_id == qa["moderator"].user_id


def test_an_announcement_is_decided_on_the_snapshots_like_chat(create_event: Any, person: Any) -> None:
    """`announce` takes the event room and the sender's standing: the organiser's goes out after commit, a
    moderator's or another event's organiser's is refused before anything is written."""
    from conference.core.errors import NotAllowed
    from conference.live import announcements
    from conference.live.models import Announcement

    event, other = create_event("announce"), create_event("announce-other")
    room = rooms.load_room_info(f"event:{event.slug}")
    for refused in (standing(person(event, Role.MODERATOR), event), standing(person(other, Role.ORGANISER), other)):
        with pytest.raises(NotAllowed):
            announcements.announce(room, text="Pause", actor=refused)
    assert db.session.scalar(select(func.count()).select_from(Announcement)) == 0

    organiser = standing(person(event, Role.ORGANISER), event)
    announcement = announcements.announce(room, text="  Pause bis 11 Uhr ", actor=organiser)
    assert (announcement.event_id, announcement.author_id, announcement.text) == (event.id, organiser.user_id,
                                                                                   "Pause bis 11 Uhr")
    assert deferred_events() == ["announcement"]
    commit()
    assert announcements.latest_announcement(room).id == announcement.id
