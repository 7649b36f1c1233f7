"""The account page: change name and address, download my data (Art. 15/20), delete my account (Art. 17)."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from conference.agenda.models import SessionSpeaker, StarredSession
from conference.agenda.personal import star_session
from conference.auth.models import ApiToken, LoginSession, User
from conference.core.after_commit import commit
from conference.core.mail import OutboxMessage
from conference.events.models import EventMembership
from conference.extensions import db
from conference.live.models import ChatMessage, Question
from conference.presentations import services as presentation_services
from conference.presentations.models import Presentation
from conference.speakers import services as speaker_services
from conference.speakers.models import SpeakerProfile
from tests.fixtures.accounts import PASSWORD, api_token_for, csrf_token, login
from tests.fixtures.presentations import Stage, pdf_bytes, upload


def mails_to(address: str) -> list[OutboxMessage]:
    db.session.expire_all()
    return list(db.session.scalars(select(OutboxMessage).where(OutboxMessage.recipient == address)
                                   .order_by(OutboxMessage.id)))


def browser(app: Flask, email: str) -> FlaskClient:
    client = app.test_client()
    assert login(client, email).status_code == 302
    return client


def count(model: Any, *where: Any) -> int:
    db.session.expire_all()
    return db.session.scalar(select(func.count()).select_from(model).where(*where)) or 0


def take_part(stage: Stage, socket_for: Callable[..., Any]) -> Any:
    """The speaker chats in the lobby, asks in the session, stars it, uploads two versions (the second
    published by the organiser) and has a photo."""
    socket = socket_for(stage.speaker)
    lobby, room = f"lobby:{stage.event.slug}", f"session:{stage.session.id}"
    assert socket.emit("join", {"room": lobby}, callback=True)["ok"] is True
    assert socket.emit("chat:send", {"room": lobby, "text": "Guten Morgen!", "client_id": "m1"},
                       callback=True)["ok"] is True
    assert socket.emit("join", {"room": room}, callback=True)["ok"] is True
    assert socket.emit("qa:ask", {"room": room, "text": "Gibt es die Folien?", "client_id": "q1"},
                       callback=True)["ok"] is True
    star_session(stage.session, user=stage.speaker)
    commit()
    token = api_token_for(stage.speaker)
    for name in ("entwurf.pdf", "final.pdf"):
        assert upload(stage.app_client, stage.session.id, name, pdf_bytes(), token=token).status_code == 201
    final = db.session.scalar(select(Presentation).where(Presentation.original_filename == "final.pdf"))
    presentation_services.set_visibility(final, mode="published", actor=stage.organiser)
    photos = speaker_services.photos_dir()
    photos.mkdir(parents=True, exist_ok=True)
    (photos / "sam.jpg").write_bytes(b"\xff\xd8\xff\xe0 photo")
    stage.profile.photo_filename = "sam.jpg"
    commit()
    return socket


def test_change_name(app: Flask, create_user: Callable[..., User]) -> None:
    user = create_user("ada@example.org", name="Ada")
    client = browser(app, "ada@example.org")
    answer = client.post("/account/name", data={"csrf_token": csrf_token(client, "/account"),
                                                "account_name": "  Ada   Lovelace "})
    assert answer.status_code == 303
    db.session.expire_all()
    assert db.session.get(User, user.id).name == "Ada Lovelace"
    page = client.get("/account").get_data(as_text=True)
    assert 'value="Ada Lovelace"' in page
    title = page[page.index("<title>"):page.index("</title>")]
    assert "<" not in title[len("<title>"):] and page.count('action="/account/delete"') == 1  # each section once


def test_address_changes_only_when_the_new_address_confirms(app: Flask, create_user: Callable[..., User]) -> None:
    user = create_user("ada@example.org", name="Ada")
    client = browser(app, "ada@example.org")
    answer = client.post("/account/email", data={"csrf_token": csrf_token(client, "/account"),
                                                 "new_email": "Ada@New.Example", "address_password": PASSWORD})
    assert answer.status_code == 303
    [link_mail] = mails_to("ada@new.example")
    [notice] = mails_to("ada@example.org")
    assert link_mail.subject == "Please confirm your new e-mail address"
    assert notice.subject == "Your e-mail address is about to change" and "ada@new.example" in notice.body
    db.session.expire_all()
    assert db.session.get(User, user.id).email == "ada@example.org"  # nothing changed yet
    link = re.search(r"http://localhost(/account/email/confirm/\S+)", link_mail.body).group(1)  # type: ignore[union-attr]
    page = app.test_client().get(link)  # e.g. a mail scanner: opening the link changes nothing
    assert page.status_code == 200 and "ada@new.example" in page.get_data(as_text=True)
    db.session.expire_all()
    assert db.session.get(User, user.id).email == "ada@example.org"
    assert client.post(link, data={"csrf_token": csrf_token(client, link)}).status_code == 303
    db.session.expire_all()
    changed = db.session.get(User, user.id)
    assert changed.email == "ada@new.example" and changed.is_verified
    assert login(app.test_client(), "ada@example.org").status_code == 400
    assert login(app.test_client(), "ada@new.example").status_code == 302


def test_download_my_data(app: Flask, slides_stage: Stage, socket_for: Callable[..., Any]) -> None:
    stage = slides_stage
    stage.app_client = app.test_client()  # type: ignore[attr-defined]
    take_part(stage, socket_for)
    client = browser(app, "speaker@example.org")
    answer = client.get("/account/data.json")
    assert answer.status_code == 200 and answer.mimetype == "application/json"
    assert answer.headers["Content-Disposition"] == "attachment; filename=my-data.json"
    assert answer.headers["Cache-Control"] == "no-store"
    data = json.loads(answer.get_data(as_text=True))
    assert data["profile"]["email"] == "speaker@example.org" and data["profile"]["name"] == "Sam Speaker"
    assert [(r["event"], r["role"]) for r in data["registrations"]] == [("slides-event", "speaker")]
    assert [s["session_title"] for s in data["personal_agenda"]] == ["Daten als Infrastruktur"]
    assert [m["text"] for m in data["chat_messages"]] == ["Guten Morgen!"]
    assert [q["text"] for q in data["questions"]] == ["Gibt es die Folien?"]
    assert [(u["filename"], u["published"]) for u in data["uploads"]] == [("entwurf.pdf", False),
                                                                          ("final.pdf", True)]
    assert [p["name"] for p in data["speaker_profiles"]] == ["Sam Speaker"]
    assert data["speaker_profiles"][0]["has_photo"] is True
    assert len(data["login_sessions"]) >= 1 and data["api_tokens"][0]["starts_with"].startswith("cft_")
    text = answer.get_data(as_text=True)
    user = db.session.scalar(select(User).where(User.email == "speaker@example.org"))
    assert user.password_hash not in text  # secrets are no information about the person
    for token_hash in db.session.scalars(select(ApiToken.token_hash)):
        assert token_hash not in text
    assert app.test_client().get("/account/data.json").status_code == 302  # logged out: to the login page


@pytest.mark.parametrize("marked", [True, False], ids=["slides-are-the-record", "not-marked"])
def test_delete_my_account(app: Flask, slides_stage: Stage, socket_for: Callable[..., Any], marked: bool) -> None:
    stage = slides_stage
    stage.event.keeps_slides_as_record = marked  # the organisers' choice on the event's settings page
    db.session.commit()
    stage.app_client = app.test_client()  # type: ignore[attr-defined]
    socket = take_part(stage, socket_for)
    user_id, profile_id = stage.speaker.id, stage.profile.id
    elsewhere = browser(app, "speaker@example.org")
    token = api_token_for(stage.speaker)
    upload_dir = Path(app.config["UPLOAD_DIR"])
    files_before = {p.name for p in upload_dir.rglob("*") if p.is_file()}
    draft = db.session.scalar(select(Presentation).where(Presentation.original_filename == "entwurf.pdf"))
    draft_file = presentation_services.file_path(draft)
    final = db.session.scalar(select(Presentation).where(Presentation.original_filename == "final.pdf"))
    final_file = presentation_services.file_path(final)
    assert draft_file.exists() and final_file.exists() and "sam.jpg" in files_before

    client = browser(app, "speaker@example.org")
    answer = client.post("/account/delete", data={"csrf_token": csrf_token(client, "/account"),
                                                  "delete_password": PASSWORD})
    assert answer.status_code == 303 and answer.headers["Location"] == "/"
    # Every login, token and socket has ended.
    for there in (client, elsewhere):
        assert there.get("/account").status_code == 302
    assert app.test_client().get("/api/v1/me", headers={"Authorization": f"Bearer {token}"}).status_code == 401
    assert not socket.is_connected()
    assert login(app.test_client(), "speaker@example.org").status_code == 400
    # The row stays, anonymous; messages and questions keep it as their author, without a name.
    db.session.expire_all()
    gone = db.session.get(User, user_id)
    assert (gone.name, gone.email, gone.is_disabled) == ("", f"deleted-{user_id}@invalid", True)
    assert gone.deleted_at is not None and gone.display_name == "deleted account"
    assert count(LoginSession, LoginSession.user_id == user_id) == 0
    assert db.session.scalars(select(ChatMessage.author_name).where(ChatMessage.author_id == user_id)).all() == [""]
    assert db.session.scalars(select(Question.author_name).where(Question.author_id == user_id)).all() == [""]
    reader = socket_for(stage.attendee)
    history = reader.emit("join", {"room": f"lobby:{stage.event.slug}"}, callback=True)["history"]
    assert [(m["text"], m["author"]["name"]) for m in history] == [("Guten Morgen!", "")]
    # Profile, photo, registrations, personal agenda: gone. Published slides stay where the organisers marked
    # them as the event's record; everything else the account uploaded goes.
    assert db.session.get(SpeakerProfile, profile_id) is None
    assert count(SessionSpeaker, SessionSpeaker.speaker_id == profile_id) == 0
    assert count(EventMembership, EventMembership.user_id == user_id) == 0
    assert count(StarredSession, StarredSession.user_id == user_id) == 0
    remaining = db.session.execute(select(Presentation.original_filename, Presentation.uploaded_by_id)).all()
    assert [tuple(row) for row in remaining] == ([("final.pdf", None)] if marked else [])
    assert final_file.exists() is marked
    assert not draft_file.exists() and not (speaker_services.photos_dir() / "sam.jpg").exists()
    # The address is free for a new account.
    again = app.test_client()
    registered = again.post("/register", data={"csrf_token": csrf_token(again, "/register"), "name": "Sam",
                                               "email": "speaker@example.org", "password": "a-new-password-1"})
    assert registered.status_code == 302
    assert count(User, User.email == "speaker@example.org") == 1


def test_deleted_author_shows_as_deleted_account_on_pages(app: Flask, slides_stage: Stage,
                                                          socket_for: Callable[..., Any]) -> None:
    stage = slides_stage
    stage.app_client = app.test_client()  # type: ignore[attr-defined]
    take_part(stage, socket_for)
    client = browser(app, "speaker@example.org")
    client.post("/account/delete", data={"csrf_token": csrf_token(client, "/account"), "delete_password": PASSWORD})
    organiser = browser(app, "orga@example.org")
    question_id = db.session.scalar(select(Question.id))
    manage = f"/manage/events/{stage.event.slug}/live"
    hidden = organiser.post(f"{manage}/questions/{question_id}/hide",
                            data={"csrf_token": csrf_token(organiser, manage)})
    assert hidden.status_code in (302, 303)
    page = organiser.get(manage).get_data(as_text=True)
    assert "Gibt es die Folien? (deleted account, Daten als Infrastruktur;" in page
    assert 'data-label-deleted-account="deleted account"' in page  # the live script's label for payloads
    script = Path(app.static_folder or "", "js", "live.js").read_text()
    assert script.count('label(null, "deleted-account", "deleted account")') == 2  # chat and questions
