"""Feedback and documentation services: who may rate when, what speakers and organisers see, the page's content."""

from __future__ import annotations

import pytest

from conference.core.errors import Conflict, NotAllowed, NotFound, ValidationFailed
from conference.extensions import db
from conference.feedback import documentation, services
from conference.feedback.models import SessionFeedback


def test_feedback_saved_once_per_person_and_changeable(fworld) -> None:
    user = fworld.users["attendee"]
    services.give_feedback(fworld.event, fworld.started.id, user=user, rating="4", comment=" gut ")
    services.give_feedback(fworld.event, fworld.started.id, user=user, rating=2, comment="doch nicht",
                           shows_name=True)
    db.session.commit()
    rows = db.session.query(SessionFeedback).all()
    assert [(r.rating, r.comment, r.shows_name) for r in rows] == [(2, "doch nicht", True)]


@pytest.mark.parametrize("rating", [0, 6, "x", None, "", True, 3.5, "-1", [], {"a": 1}])
def test_feedback_refuses_bad_ratings(fworld, rating) -> None:
    with pytest.raises(ValidationFailed):
        services.give_feedback(fworld.event, fworld.started.id, user=fworld.users["attendee"], rating=rating)


def test_feedback_refuses_long_comment(fworld) -> None:
    with pytest.raises(ValidationFailed) as refused:
        services.give_feedback(fworld.event, fworld.started.id, user=fworld.users["attendee"], rating=3,
                               comment="x" * 1001)
    assert refused.value.field == "comment"


def test_feedback_only_from_registered_people(fworld) -> None:
    for who in ("outsider", "organiser_b"):
        with pytest.raises(NotAllowed):
            services.give_feedback(fworld.event, fworld.started.id, user=fworld.users[who], rating=3)


def test_feedback_only_after_start_and_not_for_drafts(fworld) -> None:
    with pytest.raises(Conflict):
        services.give_feedback(fworld.event, fworld.future.id, user=fworld.users["attendee"], rating=3)
    with pytest.raises(NotFound):
        services.give_feedback(fworld.event, fworld.draft.id, user=fworld.users["attendee"], rating=3)
    with pytest.raises(NotFound):  # another event's id under this event
        services.give_feedback(fworld.other, fworld.started.id, user=fworld.users["organiser_b"], rating=3)


def _rate(fworld) -> None:
    services.give_feedback(fworld.event, fworld.started.id, user=fworld.users["attendee"], rating=5,
                           comment="Sehr gut", shows_name=True)
    services.give_feedback(fworld.event, fworld.started.id, user=fworld.users["attendee2"], rating=2,
                           comment="Zu schnell", shows_name=False)
    db.session.commit()


def test_speaker_figures_carry_no_names(fworld) -> None:
    _rate(fworld)
    figures = services.speaker_figures(fworld.event, fworld.profile.id)
    assert figures["registered"] == 4
    [summary] = figures["sessions"]
    assert (summary.count, summary.average, summary.questions) == (2, 3.5, 3)
    assert sorted(summary.comments) == [("Sehr gut", None), ("Zu schnell", None)]
    assert "Anna" not in repr(figures) and "Bruno" not in repr(figures)


def test_organisers_see_names_only_when_allowed(fworld) -> None:
    _rate(fworld)
    summaries = {s.session_id: s for s in services.organiser_overview(fworld.event)}
    assert fworld.draft.id not in summaries
    assert sorted(summaries[fworld.started.id].comments, key=lambda c: c[0]) == [
        ("Sehr gut", "Anna Attendee"), ("Zu schnell", None)]


def test_documentation_figures(fworld) -> None:
    from conference.attendance.models import PresenceMinute
    from conference.extensions import db

    assert documentation.documentation_figures(fworld.event) == {
        "registered": 4, "attended": 0, "sessions": 2, "questions": 3, "slides": 0}
    someone = next(iter(fworld.users.values()))
    for minute in (100, 101):  # two minutes in a session room: one person attended
        db.session.add(PresenceMinute(user_id=someone.id, room=f"session:{fworld.started.id}", minute=minute,
                                      event_id=fworld.event.id))
    db.session.flush()
    assert documentation.documentation_figures(fworld.event)["attended"] == 1


def test_documented_sessions_release_only_answered_not_hidden(fworld) -> None:
    sessions = documentation.documented_sessions(fworld.event, show_links=True)
    assert [d.entry.title for d in sessions] == ["Daten als Infrastruktur", "Blick nach vorn"]
    started = sessions[0]
    assert started.answered == [("Wie offen sind die Daten?", "Ganz offen.")]
    assert started.recording_url == "https://video.example.org/rec-1"  # ended, links shown
    assert sessions[1].recording_url is None  # not yet held


def test_recording_only_for_those_who_may_see_links(fworld) -> None:
    started = documentation.documented_sessions(fworld.event, show_links=False)[0]
    assert started.recording_url is None


def test_summary_rules(fworld) -> None:
    with pytest.raises(NotFound):
        documentation.save_summary(fworld.event, fworld.draft.id, text="x")
    with pytest.raises(ValidationFailed):
        documentation.save_summary(fworld.event, fworld.started.id, text="x" * 5001)
    assert documentation.save_summary(fworld.event, fworld.started.id, text="**Kurz**").text == "**Kurz**"
    assert documentation.save_summary(fworld.event, fworld.started.id, text="  ") is None
    assert documentation.summaries_of(fworld.event) == {}


@pytest.mark.parametrize("url", ["http://x.example", "javascript:alert(1)", "https://a b", "https://" + "x" * 500])
def test_survey_url_must_be_https(fworld, url) -> None:
    with pytest.raises(ValidationFailed):
        documentation.update_documentation(fworld.event, is_published=True, survey_url=url)


def test_published_figures_follow_the_checkboxes(fworld) -> None:
    settings = documentation.update_documentation(fworld.event, is_published=True, survey_url="",
                                                  shows_registered=True, shows_questions=True)
    assert documentation.published_figures(fworld.event, settings) == [("registered", 4), ("questions", 3)]


def test_account_data_and_erasure(fworld) -> None:
    _rate(fworld)
    data = services.account_data(None, user_id=fworld.users["attendee"].id)
    assert [(r["rating"], r["comment"]) for r in data["session_feedback"]] == [(5, "Sehr gut")]
    services.erase_account(None, user_id=fworld.users["attendee"].id)
    db.session.commit()
    assert [r.user_id for r in db.session.query(SessionFeedback)] == [fworld.users["attendee2"].id]
