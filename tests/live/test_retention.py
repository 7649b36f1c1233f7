"""Retention that keeps its word: every kind of record of an event, filled through the protocol, and after the
period (`now=` moved past it, no sleeping) nothing personal of it is left in any table, cache or export."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import MetaData, String, Text, select

from conference.core import after_commit
from conference.core.mail import OutboxMessage, send_mail
from conference.core.permissions import Role
from conference.extensions import db
from conference.feedback.models import SessionFeedback
from conference.live import retention
from conference.live.broadcast import live_state
from conference.live.models import ChatMessage, ChatReport, LiveSanction, Question, QuestionVote
from conference.mails.models import AnnouncementMail, SentReminder, SlidesNotice
from tests.conftest import settings_for_tests
from tests.fixtures.accounts import csrf_token, login

SECRET = "4711-geheim"
NAME = "Zyxa Fragestellerin"  # the asker's name: kept in the account, nowhere else after the purge
SLUG = "retention-test"
#: Tables that may keep rows of the people after the purge: their accounts and registrations, not live records.
ACCOUNT_TABLES = {"users", "event_memberships", "api_tokens", "login_sessions", "privacy_consents",
                  "mail_preferences", "starred_sessions", "calendar_feeds"}


@pytest.fixture
def app_settings(tmp_path: Any) -> dict[str, Any]:
    return settings_for_tests(tmp_path, LIVE_AGGREGATE_INTERVAL=0.05, LIVE_CHAT_RATE_LIMIT=(50, 60))


def joined(socket_for: Any, user: Any, room: str) -> Any:
    client = socket_for(user)
    assert client.emit("join", {"room": room}, callback=True)["ok"] is True
    return client


def fill_every_kind(event: Any, session: Any, socket_for: Any, person: Any) -> dict[str, Any]:
    lobby, room = f"lobby:{SLUG}", f"session:{session.id}"
    asker = person(event, Role.ATTENDEE, name=NAME)
    voter = person(event, Role.ATTENDEE, name="Voter")
    mod = person(event, Role.MODERATOR, name="Moderatorin")
    a, v, m = joined(socket_for, asker, lobby), joined(socket_for, voter, lobby), joined(socket_for, mod, lobby)
    for client in (a, v, m):
        assert client.emit("join", {"room": room}, callback=True)["ok"] is True
    chat = [a.emit("chat:send", {"room": r, "text": f"Chat {SECRET} {r}", "client_id": f"c-{i}"},
                   callback=True)["message"] for i, r in enumerate((lobby, room, lobby))]
    assert v.emit("chat:report", {"message_id": chat[0]["id"], "reason": f"Grund {SECRET}"},
                  callback=True)["ok"] is True
    assert m.emit("chat:delete", {"message_id": chat[2]["id"]}, callback=True)["ok"] is True
    question = a.emit("qa:ask", {"room": room, "text": f"Frage {SECRET}?", "client_id": "q1"},
                      callback=True)["question"]
    assert v.emit("qa:vote", {"question_id": question["id"]}, callback=True)["ok"] is True
    assert m.emit("qa:answer", {"question_id": question["id"], "answer": f"Antwort {SECRET}"},
                  callback=True)["ok"] is True
    assert v.emit("qa:report", {"question_id": question["id"], "reason": f"Frage-Grund {SECRET}"},
                  callback=True)["ok"] is True
    assert a.emit("react", {"room": room, "reaction": "applause"}, callback=True)["ok"] is True
    assert m.emit("mod:mute", {"room": lobby, "user_id": voter.id, "minutes": 10}, callback=True)["ok"] is True
    send_mail(to=asker.email, subject=f"Erinnerung {SECRET}", body=f"Hallo Asker {SECRET}", event_id=event.id)
    db.session.add_all([SentReminder(user_id=asker.id, session_id=session.id, start_at=session.slots[0].start_at),
                        SlidesNotice(session_id=session.id, recipients=3),
                        AnnouncementMail(event_id=event.id, subject=f"Ankündigung {SECRET}", body=SECRET,
                                         sent_by_id=mod.id, recipients=3),
                        SessionFeedback(event_id=event.id, session_id=session.id, user_id=asker.id, rating=4,
                                        comment=f"Kommentar {SECRET}", shows_name=True)])
    after_commit.commit()
    return {"asker": asker, "voter": voter, "mod": mod, "chat": [c["id"] for c in chat],
            "question": question["id"], "sockets": (a, v, m)}


def counts(event_id: int) -> dict[str, int]:
    db.session.expire_all()
    query = {
        "chat": select(ChatMessage).where(ChatMessage.event_id == event_id),
        "questions": select(Question).where(Question.event_id == event_id),
        "votes": select(QuestionVote),
        "reports": select(ChatReport).where(ChatReport.event_id == event_id),
        "sanctions": select(LiveSanction).where(LiveSanction.event_id == event_id),
        "mails": select(OutboxMessage).where(OutboxMessage.event_id == event_id),
        "markers": select(SentReminder),
        "announcement_mails": select(AnnouncementMail),
        "notices": select(SlidesNotice),
        "feedback": select(SessionFeedback).where(SessionFeedback.event_id == event_id),
    }
    return {name: len(db.session.scalars(q).all()) for name, q in query.items()}


def leftovers(facts: dict[str, Any]) -> list[str]:
    """Every row in every table that holds the secret text, points at a purged message or question, or names
    one of the people outside their account tables."""
    found = []
    metadata = MetaData()
    metadata.reflect(db.engine)
    people = {facts["asker"].id, facts["voter"].id}
    purged = {"chat_messages": set(facts["chat"]), "qa_questions": {facts["question"]}}
    with db.engine.connect() as connection:
        for table in metadata.sorted_tables:
            for row in connection.execute(table.select()).mappings():
                for column in table.columns:
                    value = row[column.name]
                    if isinstance(column.type, (String, Text)) and isinstance(value, str):
                        if SECRET in value:
                            found.append(f"{table.name}.{column.name} holds the secret text")
                        if NAME in value and table.name != "users":
                            found.append(f"{table.name}.{column.name} holds the asker's name")
                    for key in column.foreign_keys:
                        target = key.column.table.name
                        if target in purged and value in purged[target]:
                            found.append(f"{table.name}.{column.name} points at purged {target} {value}")
                        if target == "users" and value in people and table.name not in ACCOUNT_TABLES:
                            found.append(f"{table.name}.{column.name} names a person ({value})")
    return found


def test_purge_after_the_period_leaves_nothing_personal_anywhere(app: Any, client: Any, create_event: Any,
                                                                 create_session: Any, socket_for: Any,
                                                                 person: Any) -> None:
    event = create_event(SLUG)
    session = create_session(event)
    facts = fill_every_kind(event, session, socket_for, person)
    organiser = person(event, Role.ORGANISER)
    # The caches hold the records: history payloads, the anonymous session page's question panel.
    assert client.get(f"/events/{SLUG}/sessions/{session.id}").get_data(as_text=True).count(f"Frage {SECRET}") == 1
    assert any(SECRET in p["text"] for p in live_state(app).payloads.values())
    before = counts(event.id)
    assert all(before.values()), before  # every kind was really stored
    assert leftovers(facts)  # and the check below can see it
    # The organisers set the policy in the form: 30 days for every kind.
    login(client, organiser.email)
    token = csrf_token(client, f"/manage/events/{SLUG}/live")
    form = {kind.column: "30" for kind in retention.KINDS}
    assert client.post(f"/manage/events/{SLUG}/live/retention", data={**form, "csrf_token": token}).status_code == 303
    client.post("/logout", data={"csrf_token": csrf_token(client, "/account")})
    db.session.expire_all()
    ends = event.ends_at
    # One day early: nothing goes.
    early = retention.purge_expired(now=ends + timedelta(days=29, hours=23))
    after_commit.commit()
    assert early.total == 0 and counts(event.id) == before
    report = retention.purge_expired(now=ends + timedelta(days=30, minutes=1))
    after_commit.commit()
    assert report.deleted["chat"] == 3 and report.deleted["questions"] == 1 and report.deleted["mail_log"] >= 4
    assert report.deleted["feedback"] == 1
    assert counts(event.id) == dict.fromkeys(before, 0)
    assert leftovers(facts) == []
    # Caches: nothing of it in the history payloads, the panels or the agenda page cache.
    assert not any(SECRET in str(p) for p in live_state(app).payloads.values())
    assert not any(SECRET in str(entry) for entry in app.extensions.get("agenda_panel_cache")._entries.values())
    assert not any(SECRET in str(value) for value in app.extensions.get("agenda_page_cache", {}).values())
    # Over the socket: qa:list, join history and chat:history are empty.
    a, v, _m = facts["sockets"]
    assert v.emit("qa:list", {"room": f"session:{session.id}"}, callback=True)["questions"] == []
    fresh = socket_for(facts["voter"])
    assert fresh.emit("join", {"room": f"lobby:{SLUG}"}, callback=True)["history"] == []
    assert fresh.emit("chat:history", {"room": f"lobby:{SLUG}", "after_id": 0}, callback=True)["messages"] == []
    # Public pages and exports, anonymous and as the asker (the account's own data export too).
    pages = [f"/events/{SLUG}/sessions/{session.id}", f"/events/{SLUG}/schedule.json", f"/events/{SLUG}/schedule.ics",
             f"/events/{SLUG}/schedule.xml", f"/api/v1/events/{SLUG}/sessions", f"/events/{SLUG}/agenda"]
    for path in pages:
        response = client.get(path)
        assert response.status_code == 200 and SECRET not in response.get_data(as_text=True), path
    login(client, facts["asker"].email)
    for path in [*pages, "/account/data.json", f"/api/v1/events/{SLUG}/chat?room=lobby:{SLUG}"]:
        response = client.get(path)
        assert response.status_code == 200, path
        body = response.get_data(as_text=True)
        assert f"Frage {SECRET}" not in body and f"Chat {SECRET}" not in body, path


def test_privacy_page_states_the_periods(client: Any, create_event: Any, app: Any) -> None:
    event = create_event(SLUG, chat_retention_days=30, question_retention_days=90, mail_log_retention_days=7)
    html = client.get(f"/events/{SLUG}/datenschutz").get_data(as_text=True)
    assert "30 days after the event" in html and "90 days after the event" in html and "7 days after" in html
    # votes, reports, attendance and feedback (no period set), and issued certificates (kept with the event)
    assert html.count("kept as long as the event") == 5
    assert "Session feedback" in html
    assert "Reactions and slide downloads" in html and "Certificates of attendance" in html
    assert client.get("/datenschutz").get_data(as_text=True).count("days after the event") == 0
    assert event.id


@pytest.mark.parametrize("value", ["-1", "3651", "abc", "1.5"])
def test_bad_periods_are_refused_and_change_nothing(client: Any, create_event: Any, person: Any, value: str) -> None:
    event = create_event(SLUG, question_retention_days=5)
    organiser = person(event, Role.ORGANISER)
    login(client, organiser.email)
    token = csrf_token(client, f"/manage/events/{SLUG}/live")
    response = client.post(f"/manage/events/{SLUG}/live/retention",
                           data={"chat_retention_days": "10", "question_retention_days": value, "csrf_token": token})
    assert response.status_code == 400
    db.session.expire_all()
    assert event.chat_retention_days is None and event.question_retention_days == 5


def test_purge_command_and_its_old_name(app: Any, create_event: Any, person: Any) -> None:
    event = create_event(SLUG, question_retention_days=0)
    runner = app.test_cli_runner()
    dry = runner.invoke(args=["live", "purge", "--dry-run"])
    assert dry.exit_code == 0 and dry.output.startswith("Would delete 0 chat messages")
    old = runner.invoke(args=["live", "purge-chat"])
    assert old.exit_code == 0 and "Deleted 0 chat messages" in old.output
    assert event.id
