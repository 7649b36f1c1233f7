"""Live pages: lobby, moderation page, session partial, retention and purge."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from flask import render_template
from sqlalchemy import func, select

from conference.core.permissions import Role
from conference.extensions import db
from conference.live import moderation, qa
from conference.live import rooms as live_rooms
from conference.live.models import Announcement, ChatMessage, Question
from tests.fixtures.accounts import csrf_token, login
from tests.fixtures.live import standing


def test_lobby_access(client: Any, create_event: Any, person: Any, create_user: Any) -> None:
    event = create_event("lobby-test")
    assert client.get("/events/lobby-test/lobby").status_code == 302
    login(client, create_user().email)
    assert client.get("/events/lobby-test/lobby").status_code == 403
    client.post("/logout", data={"csrf_token": csrf_token(client, "/account")})
    login(client, person(event, Role.ATTENDEE).email)
    html = client.get("/events/lobby-test/lobby").get_data(as_text=True)
    assert 'data-live-room="lobby:lobby-test"' in html and 'aria-live="polite"' in html
    assert "vendor/socket.io/socket.io.min.js" in html and "js/live.js" in html


def test_manage_page_permissions_and_announcement(client: Any, create_event: Any, person: Any) -> None:
    event = create_event("manage-test")
    login(client, person(event, Role.ATTENDEE).email)
    assert client.get("/manage/events/manage-test/live").status_code == 403
    client.post("/logout", data={"csrf_token": csrf_token(client, "/account")})
    login(client, person(event, Role.ORGANISER).email)
    assert client.get("/manage/events/manage-test/live").status_code == 200
    assert client.post("/manage/events/manage-test/live/announcements", data={"text": "ohne csrf"}).status_code == 400
    token = csrf_token(client, "/manage/events/manage-test/live")
    response = client.post("/manage/events/manage-test/live/announcements", data={"text": "Los geht's",
                                                                                   "csrf_token": token})
    assert response.status_code == 303
    assert db.session.scalar(select(Announcement.text)) == "Los geht's"
    response = client.post("/manage/events/manage-test/live/retention", data={"chat_retention_days": "abc",
                                                                              "csrf_token": token})
    assert response.status_code == 400  # refused with the page and its message, nothing stored
    db.session.refresh(event)
    assert event.chat_retention_days is None
    client.post("/manage/events/manage-test/live/retention", data={"chat_retention_days": "30", "csrf_token": token})
    db.session.refresh(event)
    assert event.chat_retention_days == 30


def test_moderator_cannot_announce_or_set_retention(client: Any, create_event: Any, person: Any) -> None:
    event = create_event("mod-test")
    login(client, person(event, Role.MODERATOR).email)
    token = csrf_token(client, "/manage/events/mod-test/live")
    assert client.post("/manage/events/mod-test/live/announcements",
                       data={"text": "x", "csrf_token": token}).status_code == 403
    assert client.post("/manage/events/mod-test/live/retention",
                       data={"chat_retention_days": "1", "csrf_token": token}).status_code == 403


def test_session_partial_shows_questions_escaped(app: Any, create_event: Any, person: Any,
                                                create_session: Any) -> None:
    event = create_event("partial-test")
    session = create_session(event)
    author = person(event, Role.ATTENDEE, name="Fragende Person")
    db.session.add(Question(event_id=event.id, session_id=session.id, author_id=author.id,
                            author_name=author.name, text="<script>alert(1)</script>", client_id="q",
                            vote_count=2, is_answered=True, answer="Antwort <b>fett</b>"))
    db.session.commit()
    with app.test_request_context("/"):
        html = render_template("live/_session_live.html", event=event, session=session)
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html and "<script>alert" not in html
    assert "Antwort &lt;b&gt;fett&lt;/b&gt;" in html
    assert "Fragende Person" not in html  # anonymous visitors do not see who asked


def test_purge_respects_retention(app: Any, create_event: Any, person: Any) -> None:
    old = create_event("old-event", start=(datetime.now(UTC) - timedelta(days=40)).date(), chat_retention_days=30)
    keep = create_event("keep-event", start=(datetime.now(UTC) - timedelta(days=40)).date())
    recent = create_event("recent-event", start=(datetime.now(UTC) - timedelta(days=5)).date(),
                          chat_retention_days=30)
    for event in (old, keep, recent):
        user = person(event, Role.ATTENDEE)
        db.session.add(ChatMessage(event_id=event.id, room=f"lobby:{event.slug}", author_id=user.id,
                                   author_name="x", author_role="attendee", text="hallo", client_id="c"))
    db.session.commit()
    assert moderation.purge_expired_chat() == 1
    db.session.commit()
    rooms = set(db.session.scalars(select(ChatMessage.room)))
    assert rooms == {"lobby:keep-event", "lobby:recent-event"}
    runner = app.test_cli_runner()
    result = runner.invoke(args=["live", "purge-chat"])
    assert "Deleted 0 chat messages," in result.output
    assert db.session.scalar(select(func.count()).select_from(ChatMessage)) == 2


def test_history_api(client: Any, create_event: Any, person: Any) -> None:
    event = create_event("api-test")
    user = person(event, Role.ATTENDEE)
    db.session.add(ChatMessage(event_id=event.id, room="lobby:api-test", author_id=user.id, author_name="A",
                               author_role="attendee", text="eins", client_id="c1"))
    db.session.commit()
    from tests.fixtures.accounts import api_token_for

    headers = {"Authorization": f"Bearer {api_token_for(user)}"}
    body = client.get("/api/v1/events/api-test/chat?room=lobby:api-test&after_id=0", headers=headers).get_json()
    assert [m["text"] for m in body["messages"]] == ["eins"]
    assert client.get("/api/v1/events/api-test/chat?room=lobby:other", headers=headers).status_code == 404
    assert client.get("/api/v1/events/api-test/chat?room=lobby:api-test&after_id=x",
                      headers=headers).status_code == 400
    assert client.get("/api/v1/events/api-test/chat?room=lobby:api-test").status_code == 401


def test_anonymous_session_page_shows_answered_question_at_once(client: Any, create_event: Any, person: Any,
                                                                 create_session: Any) -> None:
    """The questions panel is cached briefly for anonymous visitors; asking and answering drop it at once."""
    from conference.agenda import pagecache
    from conference.core.after_commit import commit

    event = create_event("qa-cache", start=datetime(2027, 3, 18).date())
    session = create_session(event)  # released by the fixture
    page = f"/events/{event.slug}/sessions/{session.id}"
    author = person(event, Role.ATTENDEE, name="Fragende Person")
    moderator = person(event, Role.MODERATOR, name="Moderation")
    room = live_rooms.load_room_info(live_rooms.room_for(session))
    assert "Wer bezahlt das?" not in client.get(page).get_data(as_text=True)
    question, _created = qa.ask_question(room, author=standing(author, event), text="Wer bezahlt das?",
                                         client_id="q1")
    commit()
    assert "Wer bezahlt das?" in client.get(page).get_data(as_text=True)
    assert "Answered" not in client.get(page).get_data(as_text=True)
    assert len(pagecache.panel_cache(client.application)) == 1
    qa.answer_question(question, room, actor=standing(moderator, event), answer="Der Bund.")
    commit()
    html = client.get(page).get_data(as_text=True)
    assert "Answered" in html and "Der Bund." in html
    # A change made past the ORM (like one by another worker) shows only after the time limit.
    db.session.execute(Question.__table__.update().where(Question.id == question.id).values(answer="Später"))
    db.session.commit()
    assert "Später" not in client.get(page).get_data(as_text=True)
    pagecache.panel_cache(client.application).ttl = 0
    assert "Später" in client.get(page).get_data(as_text=True)


def test_moderator_hides_and_restores_from_the_session_page(client: Any, create_event: Any, person: Any,
                                                            create_session: Any) -> None:
    """After a session the live panel is gone; moderators hide and restore on the page's questions list."""
    from conference.core.after_commit import commit

    today = datetime.now(UTC).date()
    event = create_event("qa-page", start=today - timedelta(days=1), end=today + timedelta(days=1))
    session = create_session(event, start=datetime.now(UTC) - timedelta(hours=5))  # released by the fixture
    author = person(event, Role.ATTENDEE)
    db.session.add(Question(event_id=event.id, session_id=session.id, author_id=author.id, author_name="A",
                            text="Beleidigung-42", client_id="q"))
    commit()
    question_id = db.session.scalar(select(Question.id))
    page = f"/events/qa-page/sessions/{session.id}"
    anonymous = client.application.test_client()
    assert "Beleidigung-42" in anonymous.get(page).get_data(as_text=True)
    login(client, person(event, Role.MODERATOR).email)
    html = client.get(page).get_data(as_text=True)
    assert f'action="/manage/events/qa-page/live/questions/{question_id}/hide"' in html
    token = csrf_token(client, page)
    response = client.post(f"/manage/events/qa-page/live/questions/{question_id}/hide",
                           data={"csrf_token": token, "back": "session"})
    assert response.status_code == 303 and response.headers["Location"].endswith(page)
    assert "Beleidigung-42" not in anonymous.get(page).get_data(as_text=True)
    html = client.get(page).get_data(as_text=True)
    assert "Beleidigung-42" in html and "Hidden from everyone but moderators" in html
    assert f'action="/manage/events/qa-page/live/questions/{question_id}/restore"' in html
    response = client.post(f"/manage/events/qa-page/live/questions/{question_id}/restore", data={"csrf_token": token})
    assert response.status_code == 303 and response.headers["Location"].endswith("/manage/events/qa-page/live")
    assert "Beleidigung-42" in anonymous.get(page).get_data(as_text=True)
    response = client.post("/manage/events/qa-page/live/questions/999999/hide", data={"csrf_token": token})
    assert response.status_code == 404


def test_manage_page_lists_question_reports_and_hidden_questions(client: Any, create_event: Any, person: Any,
                                                                 create_session: Any) -> None:
    event = create_event("qa-manage")
    session = create_session(event, title="Keynote")
    author, reporter = person(event, Role.ATTENDEE, name="Fragesteller"), person(event, Role.ATTENDEE)
    moderator = person(event, Role.MODERATOR, name="Mia Moderation")
    room = live_rooms.load_room_info(live_rooms.room_for(session))
    asker, reporting = standing(author, event), standing(reporter, event)
    question, _created = qa.ask_question(room, author=asker, text="Spam-Frage", client_id="s")
    other, _created = qa.ask_question(room, author=asker, text="Zweite Frage", client_id="t")
    report = qa.report_question(question, reporter=reporting, reason="Werbung")
    second = qa.report_question(other, reporter=reporting, reason="doppelt")
    from conference.core.after_commit import commit

    commit()
    login(client, moderator.email)
    html = client.get("/manage/events/qa-manage/live").get_data(as_text=True)
    assert "Spam-Frage" in html and "Werbung" in html and "Hide question" in html and "Keynote" in html
    assert "No hidden questions." in html
    token = csrf_token(client, "/manage/events/qa-manage/live")
    assert client.post(f"/manage/events/qa-manage/live/reports/{second.id}/dismiss",
                       data={"csrf_token": token}).status_code == 303
    assert client.post(f"/manage/events/qa-manage/live/reports/{report.id}/delete",
                       data={"csrf_token": token}).status_code == 303
    html = client.get("/manage/events/qa-manage/live").get_data(as_text=True)
    assert "No open reports." in html and "Mia Moderation" in html
    assert f"/live/questions/{question.id}/restore" in html and f"/live/questions/{other.id}/restore" not in html
