"""Q&A moderation (finding 11): who may hide and restore a question, and a hidden question is gone from every
public view (pages, API, exports, socket answers) while its votes, answers and reports are refused."""

from __future__ import annotations

import json
from typing import Any

import pytest
from flask import url_for
from flask_socketio import SocketIOTestClient
from sqlalchemy import func, select

from conference.agenda.releases import ensure_demo_release
from conference.core.after_commit import commit
from conference.core.permissions import Role
from conference.extensions import db, socketio
from conference.live import qa as live_qa
from conference.live.models import ChatReport, Question, QuestionVote
from tests.fixtures.accounts import api_token_for
from tests.fixtures.live import standing
from tests.security.conftest import Evidence, StateGuard, World, assert_refused
from tests.security.test_authorization import _url_values
from tests.security.test_csrf import _get_cells
from tests.security.test_sockets import connect, joined, refused

HIDDEN_TEXT = "Zensiert-4711: beleidigende Frage"
VISIBLE_TEXT = "Sichtbar-0815: harmlose Frage"

#: Who asks, least privileged first; "author" asked the question, "moderator_b" moderates the other event.
REFUSED = ("anonymous", "outsider", "attendee", "speaker", "author", "moderator_b", "organiser_b")
ALLOWED = ("moderator", "organiser")


@pytest.fixture
def qa(world: World, create_user: Any, grant: Any) -> dict[str, Any]:
    """An attendee's question (to be hidden) and another's (stays) in a released session, and one in event beta."""
    author = create_user("author@example.org", name="Abe Author")
    moderator_b = create_user("mod-b@example.org", name="Mo Beta")
    grant(world.event, author, Role.ATTENDEE)
    grant(world.other_event, moderator_b, Role.MODERATOR)
    world.users.update(author=author, moderator_b=moderator_b)
    world.tokens.update(author=api_token_for(author), moderator_b=api_token_for(moderator_b))
    session = world.foreign_session
    hidden = Question(event_id=world.event.id, session_id=session.id, author_id=author.id, author_name=author.name,
                      text=HIDDEN_TEXT, client_id="q-hidden")
    visible = Question(event_id=world.event.id, session_id=session.id, author_id=world.users["speaker"].id,
                       author_name="Sam Speaker", text=VISIBLE_TEXT, client_id="q-visible")
    beta = Question(event_id=world.other_event.id, session_id=world.other_event_session.id, author_id=author.id,
                    author_name=author.name, text="Beta-Frage", client_id="q-beta")
    db.session.add_all([hidden, visible, beta])
    commit()
    ensure_demo_release(world.event)  # the session page is public only once released (the world may be already)
    commit()
    return {"question": hidden, "visible": visible, "beta": beta, "room": f"session:{session.id}"}


def received(client: SocketIOTestClient, *names: str) -> list[Any]:
    return [packet for packet in client.get_received() if packet["name"] in names]


def hide_now(world: World, question: Question) -> None:
    live_qa.hide_question(question, actor=standing(world.users["moderator"], world.event))
    commit()


def is_hidden(question_id: int) -> bool:
    db.session.expire_all()
    question = db.session.get(Question, question_id)
    assert question is not None
    return question.is_hidden


# --- who may hide and restore ---------------------------------------------------------------------------------


@pytest.mark.parametrize("event_name", ["qa:hide", "qa:unhide"])
@pytest.mark.parametrize("principal", REFUSED + ALLOWED)
def test_socket_hide_and_unhide_permission_matrix(principal: str, event_name: str, world: World, qa: dict[str, Any],
                                                  guard: StateGuard, evidence: Evidence) -> None:
    question = qa["question"]
    if event_name == "qa:unhide":
        hide_now(world, question)
    observer = joined(world, "attendee", qa["room"])
    guard.take()
    if principal == "anonymous":
        client = socketio.test_client(world.app)  # no credential: no socket, so no event at all
        evidence.add("variants")
        assert not client.is_connected()
        guard.assert_unchanged("anonymous socket")
        return
    ack = connect(world, principal).emit(event_name, {"question_id": question.id}, callback=True)
    if principal in ALLOWED:
        evidence.add("variants")
        assert ack["ok"] is True, ack
        assert ack["question"]["id"] == question.id and ack["question"]["is_hidden"] is (event_name == "qa:hide")
        assert is_hidden(question.id) is (event_name == "qa:hide")
        fact = "qa:hidden" if event_name == "qa:hide" else "qa:restored"
        assert [p["name"] for p in received(observer, "qa:hidden", "qa:restored")] == [fact]
        return
    refused(ack, "forbidden", evidence, f"{principal} {event_name}")
    guard.assert_unchanged(f"{principal} {event_name}")
    assert received(observer, "qa:hidden", "qa:restored", "qa:updated") == []


@pytest.mark.parametrize("action", ["hide", "restore"])
@pytest.mark.parametrize("principal", REFUSED + ALLOWED)
def test_http_hide_and_restore_permission_matrix(principal: str, action: str, world: World, qa: dict[str, Any],
                                                 guard: StateGuard, evidence: Evidence) -> None:
    question = qa["question"]
    if action == "restore":
        hide_now(world, question)
    url = f"/manage/events/alpha/live/questions/{question.id}/{action}"
    token = world.csrf(principal)
    guard.take()
    response = world.client(principal).post(url, data={"csrf_token": token})
    if principal in ALLOWED:
        evidence.add("variants")
        assert response.status_code == 303, response.get_data(as_text=True)[:300]
        assert is_hidden(question.id) is (action == "hide")
        return
    if principal == "anonymous":
        assert response.status_code == 302 and "/login" in response.headers["Location"]
    else:
        assert_refused(response, 403, evidence, f"{principal} {action}")
    guard.assert_unchanged(f"{principal} {action}")


def test_another_events_question_is_refused(world: World, qa: dict[str, Any], guard: StateGuard,
                                            evidence: Evidence) -> None:
    """This event's moderators and organisers cannot hide a question of event beta, by socket or by URL."""
    beta = qa["beta"]
    tokens = {principal: world.csrf(principal) for principal in ALLOWED}  # logs them in before the guard looks
    guard.take()
    for principal in ALLOWED:
        for event_name in ("qa:hide", "qa:unhide"):
            ack = connect(world, principal).emit(event_name, {"question_id": beta.id}, callback=True)
            refused(ack, "forbidden", evidence, f"{principal} {event_name} beta question")
        for action in ("hide", "restore"):
            response = world.client(principal).post(f"/manage/events/alpha/live/questions/{beta.id}/{action}",
                                                    data={"csrf_token": tokens[principal]})
            assert_refused(response, 404, evidence, f"{principal} {action} beta question under alpha")
    guard.assert_unchanged("another event's question")


BAD_PAYLOADS: list[tuple[Any, tuple[str, ...]]] = [
    ({}, ("invalid",)), ({"question_id": None}, ("invalid",)), ({"question_id": "1"}, ("invalid",)),
    ({"question_id": True}, ("invalid",)), ({"question_id": -1}, ("invalid",)), ({"question_id": 1.5}, ("invalid",)),
    ({"question_id": [1]}, ("invalid",)), ({"question_id": 2**63}, ("invalid",)), ({"question_id": 10**23}, ("invalid",)),
    ({"question_id": 0}, ("invalid", "not_found")), ({"question_id": 987654}, ("not_found",)),
    ("question", ("invalid_payload",)), ([1], ("invalid_payload",)),
]


@pytest.mark.parametrize("event_name", ["qa:hide", "qa:unhide", "qa:report"])
def test_bad_payloads_change_nothing(event_name: str, world: World, qa: dict[str, Any], guard: StateGuard,
                                     evidence: Evidence) -> None:
    principal = "attendee" if event_name == "qa:report" else "moderator"
    observer = joined(world, "speaker", qa["room"])
    client = connect(world, principal)
    guard.take()
    for payload, codes in BAD_PAYLOADS:
        refused(client.emit(event_name, payload, callback=True), codes, evidence, f"{event_name} {payload!r}")
    guard.assert_unchanged(f"bad {event_name} payloads")
    assert received(observer, "qa:hidden", "qa:restored") == []


def test_hiding_twice_and_restoring_a_visible_question_are_refused(world: World, qa: dict[str, Any],
                                                                   guard: StateGuard, evidence: Evidence) -> None:
    question = qa["question"]
    moderator = connect(world, "moderator")
    guard.take()
    refused(moderator.emit("qa:unhide", {"question_id": question.id}, callback=True), "not_hidden", evidence,
            "restore a visible question")
    guard.assert_unchanged("restore a visible question")
    assert moderator.emit("qa:hide", {"question_id": question.id}, callback=True)["ok"] is True
    observer = joined(world, "attendee", qa["room"])
    token = world.csrf("organiser")
    guard.take()
    refused(moderator.emit("qa:hide", {"question_id": question.id}, callback=True), "already_hidden", evidence,
            "hide twice")
    response = world.client("organiser").post(f"/manage/events/alpha/live/questions/{question.id}/hide",
                                              data={"csrf_token": token})
    assert_refused(response, 409, evidence, "hide twice over HTTP")
    guard.assert_unchanged("hide twice")
    assert received(observer, "qa:hidden", "qa:restored") == []


# --- a hidden question is gone ----------------------------------------------------------------------------------


def test_hidden_question_refuses_votes_answers_and_reports(world: World, qa: dict[str, Any], guard: StateGuard,
                                                           evidence: Evidence) -> None:
    question = qa["question"]
    hide_now(world, question)
    attendee, moderator = connect(world, "attendee"), connect(world, "moderator")
    guard.take()
    refused(attendee.emit("qa:vote", {"question_id": question.id}, callback=True), "hidden", evidence,
            "vote for a hidden question")
    refused(moderator.emit("qa:answer", {"question_id": question.id, "answer": "Nein."}, callback=True), "hidden",
            evidence, "answer a hidden question")
    refused(attendee.emit("qa:report", {"question_id": question.id}, callback=True), "hidden", evidence,
            "report a hidden question")
    guard.assert_unchanged("actions on a hidden question")
    assert moderator.emit("qa:unhide", {"question_id": question.id}, callback=True)["ok"] is True
    ack = attendee.emit("qa:vote", {"question_id": question.id}, callback=True)
    assert ack["ok"] is True and ack["question"]["votes"] == 1
    assert db.session.scalar(select(func.count()).select_from(QuestionVote)) == 1


def _public_urls(world: World, room: str) -> list[str]:
    """Every GET route of the application (pages, API, exports, feeds), plus the chat API of the session room."""
    values = _url_values(world)
    urls = []
    with world.app.test_request_context():
        for endpoint, rule in _get_cells():
            urls.append(url_for(endpoint, **{k: v for k, v in values.items() if f"<{k}>" in rule or f":{k}>" in rule}))
    # The account's own data export is not a public view: it gives its owner everything the platform holds
    # about them, their hidden questions included (DSGVO Art. 15).
    urls = [url for url in urls if url != "/account/data.json"]
    return [*urls, f"/api/v1/events/alpha/chat?room={room}", f"/events/alpha/sessions/{world.foreign_session.id}?x=1"]


def _body(world: World, principal: str, url: str) -> bytes:
    if url.startswith("/api/") and principal != "anonymous":
        response = world.app.test_client().get(url, headers={"Authorization": f"Bearer {world.tokens[principal]}"})
    else:
        response = world.client(principal).get(url)
    data = response.get_data()
    response.close()
    assert response.status_code < 500, (principal, url, response.status_code)
    return data


def test_hidden_question_is_gone_from_every_public_view(world: World, qa: dict[str, Any],
                                                        evidence: Evidence) -> None:
    """The finding: a banned author's abusive question stayed on the public session page. A ban alone leaves it
    (as it leaves chat messages); a moderator's hide removes it from every page, API answer, export and socket
    answer for everyone but moderators, at once (the anonymous panel cache included)."""
    question, room = qa["question"], qa["room"]
    page = f"/events/alpha/sessions/{world.foreign_session.id}"
    hidden, visible = HIDDEN_TEXT.encode(), VISIBLE_TEXT.encode()
    # Non-members read the questions on the page (members get them live over the socket): the walk can see
    # questions, and the anonymous panel is now cached.
    for principal in ("anonymous", "outsider"):
        assert hidden in _body(world, principal, page) and visible in _body(world, principal, page)
    moderator = joined(world, "moderator", room)
    ban = moderator.emit("mod:ban", {"room": room, "user_id": world.users["author"].id}, callback=True)
    assert ban["ok"] is True, ban
    assert hidden in _body(world, "anonymous", page)  # a ban removes the person, not what they wrote
    watcher = joined(world, "attendee", room)
    ack = moderator.emit("qa:hide", {"question_id": question.id}, callback=True)
    assert ack["ok"] is True, ack
    assert received(watcher, "qa:hidden") == [{"name": "qa:hidden", "args": [{"room": room, "id": question.id}],
                                              "namespace": "/"}]

    leaks = []
    for principal in REFUSED:
        for url in _public_urls(world, room):
            evidence.add("variants")
            if hidden in _body(world, principal, url):
                leaks.append((principal, url))
    assert leaks == []
    assert visible in _body(world, "anonymous", page) and visible in _body(world, "outsider", page)

    for principal in ("attendee", "speaker", "organiser_b"):
        client = connect(world, principal)
        answers = [client.emit("join", {"room": room}, callback=True),
                   client.emit("qa:list", {"room": room}, callback=True),
                   client.emit("chat:history", {"room": room}, callback=True)]
        evidence.add("variants", len(answers))
        assert HIDDEN_TEXT not in json.dumps(answers), (principal, answers)
    listing = connect(world, "attendee").emit("qa:list", {"room": room}, callback=True)
    assert VISIBLE_TEXT in [q["text"] for q in listing["questions"]]

    # Moderators still see it, marked, with the way back.
    for principal in ALLOWED:
        listing = connect(world, principal).emit("qa:list", {"room": room}, callback=True)
        shown = {q["text"]: q["is_hidden"] for q in listing["questions"]}
        assert (shown[HIDDEN_TEXT], shown[VISIBLE_TEXT]) == (True, False)
        manage = world.client(principal).get("/manage/events/alpha/live").get_data(as_text=True)
        assert HIDDEN_TEXT in manage and f"/live/questions/{question.id}/restore" in manage


def test_question_report_is_resolved_by_hiding(world: World, qa: dict[str, Any], evidence: Evidence) -> None:
    """Questions are reported like chat messages, into the same queue, and hiding resolves every report of it."""
    question = qa["question"]
    reports = [connect(world, p).emit("qa:report", {"question_id": question.id, "reason": "beleidigend"},
                                      callback=True) for p in ("attendee", "speaker", "attendee")]
    assert [r["ok"] for r in reports] == [True, True, True] and reports[0]["report_id"] == reports[2]["report_id"]
    refused(connect(world, "author").emit("qa:report", {"question_id": question.id}, callback=True), "own_question",
            evidence, "report own question")
    refused(connect(world, "outsider").emit("qa:report", {"question_id": question.id}, callback=True),
            "not_registered", evidence, "outsider reports")
    manage = world.client("moderator").get("/manage/events/alpha/live").get_data(as_text=True)
    assert HIDDEN_TEXT in manage and "Hide question" in manage
    response = world.client("moderator").post(f"/manage/events/alpha/live/reports/{reports[0]['report_id']}/delete",
                                              data={"csrf_token": world.csrf("moderator")})
    assert response.status_code == 303
    assert is_hidden(question.id)
    open_reports = db.session.scalar(select(func.count()).select_from(ChatReport).where(
        ChatReport.question_id == question.id, ChatReport.resolved_at.is_(None)))
    assert open_reports == 0
    assert HIDDEN_TEXT.encode() not in _body(world, "anonymous", f"/events/alpha/sessions/{world.foreign_session.id}")
