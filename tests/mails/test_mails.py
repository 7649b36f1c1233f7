"""Mails attendees get: registration confirmation, session reminders, slides notices, announcements by mail."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient, FlaskCliRunner
from sqlalchemy import select

from conference.agenda import services as agenda_services
from conference.agenda.models import ConferenceSession, Room
from conference.agenda.personal import active_calendar_feed, calendar_feed_token, star_session
from conference.auth.models import User
from conference.core import jobs
from conference.core.after_commit import commit
from conference.core.db import utcnow
from conference.core.mail import OutboxMessage, opt_out, unsubscribe_token
from conference.core.mail_queue import send_queued
from conference.core.permissions import Role
from conference.events.models import Event
from conference.extensions import db
from conference.mails import services
from conference.presentations.models import Presentation, VisibilityMode
from tests.fixtures.accounts import csrf_token, login
from tests.fixtures.agenda import at, record_release
from tests.fixtures.smtp import SmtpServer


def outbox() -> list[OutboxMessage]:
    db.session.expire_all()
    return list(db.session.scalars(select(OutboxMessage).order_by(OutboxMessage.id)))


@pytest.fixture
def world(create_event: Callable[..., Event], create_room: Callable[..., Room],
          create_agenda_session: Callable[..., ConferenceSession]) -> dict[str, Any]:
    """A German event (2027-03-18, Europe/Berlin) with one released talk at 09:00-10:00."""
    event = create_event("mails-test", title="Mailkonferenz", language="de")
    room = create_room(event, "Hauptbühne")
    talk = create_agenda_session(event, "Offene Daten", room=room, start="09:00", end="10:00")
    record_release(event)
    return {"event": event, "room": room, "talk": talk}


def attendee(person: Callable[..., User], event: Event, *, locale: str | None = None, star: ConferenceSession | None
             = None, reminder: int | None = None, slides: bool = False, **kwargs: Any) -> User:
    user = person(event, Role.ATTENDEE, **kwargs)
    user.locale = locale
    if star is not None:
        star_session(star, user=user)
    if reminder is not None or slides:
        services.set_preferences(event, user=user, reminder_minutes=reminder, wants_slides_notice=slides)
    commit()
    return user


# --- registration confirmation ----------------------------------------------------------------------------------


def test_registration_confirmation_is_queued_once_in_the_recipients_language_with_absolute_links(
        app: Flask, client: FlaskClient, world: dict[str, Any], create_user: Callable[..., User]) -> None:
    event = world["event"]
    user = create_user("ada@example.org", name="Ada")
    user.locale = "en"
    commit()
    login(client, "ada@example.org")
    token = csrf_token(client, "/events/mails-test/")

    first = client.post("/events/mails-test/register", data={"csrf_token": token})
    again = client.post("/events/mails-test/register", data={"csrf_token": token})

    assert (first.status_code, again.status_code) == (303, 303)
    mails = outbox()
    assert [(m.recipient, m.locale, m.subject) for m in mails] == [
        ("ada@example.org", "en", "You are registered for Mailkonferenz")]
    feed = active_calendar_feed(event, user)
    assert feed is not None
    feed_url = f"http://localhost/events/mails-test/calendar/{calendar_feed_token(feed)}.ics"
    assert "http://localhost/events/mails-test/agenda\n" in mails[0].body
    assert f"{feed_url}\n" in mails[0].body
    assert "Mar 18, 2027" in mails[0].body
    calendar = client.get(feed_url.removeprefix("http://localhost"))
    assert calendar.status_code == 200 and calendar.mimetype == "text/calendar"


def test_registration_confirmation_in_german_and_none_for_an_unverified_address(
        app: Flask, client: FlaskClient, world: dict[str, Any], create_user: Callable[..., User]) -> None:
    create_user("berta@example.org", name="Berta")
    create_user("fremd@example.org", name="Fremd", verified=False)
    for address in ("berta@example.org", "fremd@example.org"):
        login(client, address)
        client.post("/events/mails-test/register", data={"csrf_token": csrf_token(client, "/events/mails-test/")})
        client.post("/logout", data={"csrf_token": csrf_token(client, "/events/mails-test/")})

    mails = outbox()
    assert [(m.recipient, m.locale, m.subject) for m in mails] == [
        ("berta@example.org", "de", "Sie sind für Mailkonferenz angemeldet")]
    assert "18.03.2027" in mails[0].body


# --- reminders ---------------------------------------------------------------------------------------------------


def test_reminder_is_queued_once_at_the_chosen_time_and_only_for_people_who_opted_in(
        app: Flask, world: dict[str, Any], person: Callable[..., User]) -> None:
    event, talk = world["event"], world["talk"]
    ada = attendee(person, event, locale="en", star=talk, reminder=15, email="ada@example.org", name="Ada")
    attendee(person, event, star=talk, email="no-optin@example.org")  # starred, no reminders
    attendee(person, event, reminder=15, email="no-star@example.org")  # reminders, nothing starred
    attendee(person, event, star=talk, reminder=30, email="frueh@example.org", name="Frida")

    early = services.send_due_mails(at(event, "08:29"))
    frida = services.send_due_mails(at(event, "08:30"))
    commit()
    ada_due = services.send_due_mails(at(event, "08:45"))
    again = services.send_due_mails(at(event, "08:50"))
    commit()

    assert (early.reminders, frida.reminders, ada_due.reminders, again.reminders) == (0, 1, 1, 0)
    mails = outbox()
    assert [(m.recipient, m.locale, m.subject) for m in mails] == [
        ("frueh@example.org", "de", "Gleich: Offene Daten"), ("ada@example.org", "en", "Soon: Offene Daten")]
    assert "09:00" in mails[1].body and "Hauptbühne" in mails[1].body
    assert f"http://localhost/events/mails-test/sessions/{talk.id}\n" in mails[1].body
    assert ada.id is not None


def test_reminder_keeps_the_released_time_and_title_while_the_editor_moves_the_session(
        app: Flask, world: dict[str, Any], person: Callable[..., User]) -> None:
    event, talk, room = world["event"], world["talk"], world["room"]
    attendee(person, event, locale="en", star=talk, reminder=15, email="ada@example.org")
    agenda_services.move_slot(talk.slots[0], room=room, start_at=at(event, "11:00"), end_at=at(event, "12:00"),
                              actor=None)
    talk.title = "Geheimer Entwurfstitel"
    commit()

    report = services.send_due_mails(at(event, "08:45"))
    commit()

    assert report.reminders == 1
    mail = outbox()[0]
    assert mail.subject == "Soon: Offene Daten"
    assert "09:00" in mail.body and "11:00" not in mail.body and "Entwurf" not in mail.body


def test_reminder_follows_a_session_moved_in_a_new_release_before_it_was_due(
        app: Flask, world: dict[str, Any], person: Callable[..., User]) -> None:
    event, talk, room = world["event"], world["talk"], world["room"]
    attendee(person, event, locale="en", star=talk, reminder=15, email="ada@example.org")
    agenda_services.move_slot(talk.slots[0], room=room, start_at=at(event, "11:00"), end_at=at(event, "12:00"),
                              actor=None)
    commit()
    record_release(event)

    at_old_time = services.send_due_mails(at(event, "08:45"))
    at_new_time = services.send_due_mails(at(event, "10:45"))
    commit()

    assert (at_old_time.reminders, at_new_time.reminders) == (0, 1)
    assert "11:00" in outbox()[0].body


def test_no_reminder_for_a_started_cancelled_or_draft_session(
        app: Flask, world: dict[str, Any], person: Callable[..., User],
        create_agenda_session: Callable[..., ConferenceSession]) -> None:
    event, talk = world["event"], world["talk"]
    draft = create_agenda_session(event, "Entwurf", room=world["room"], start="10:00", end="10:30")
    attendee(person, event, star=talk, reminder=15, email="ada@example.org")
    star_session(draft, user=db.session.scalar(select(User).where(User.email == "ada@example.org")))
    commit()

    started = services.send_due_mails(at(event, "09:00"))
    draft_due = services.send_due_mails(at(event, "09:50"))

    assert (started.reminders, draft_due.reminders) == (0, 0)
    assert outbox() == []


# --- slides notices ----------------------------------------------------------------------------------------------


def add_slides(talk: ConferenceSession, mode: str) -> Presentation:
    presentation = Presentation(event_id=talk.event_id, session_id=talk.id, version=1, original_filename="f.pdf",
                                stored_filename=f"{talk.id}-{mode}.pdf", file_type="pdf", size_bytes=10,
                                sha256="0" * 64, visibility_mode=mode)
    db.session.add(presentation)
    commit()
    return presentation


def test_slides_notice_goes_once_to_the_opted_in_people_who_starred_the_session(
        app: Flask, world: dict[str, Any], person: Callable[..., User]) -> None:
    event, talk = world["event"], world["talk"]
    attendee(person, event, locale="en", star=talk, slides=True, email="ada@example.org")
    attendee(person, event, star=talk, email="no-optin@example.org")
    attendee(person, event, slides=True, email="no-star@example.org")
    presentation = add_slides(talk, VisibilityMode.HIDDEN)

    hidden = services.send_due_mails(at(event, "08:00"))
    presentation.visibility_mode = VisibilityMode.PUBLISHED  # published by hand before the session
    commit()
    published = services.send_due_mails(at(event, "08:01"))
    commit()
    again = services.send_due_mails(at(event, "12:00"))

    assert (hidden.slides_notices, published.slides_notices, again.slides_notices) == (0, 1, 0)
    mails = outbox()
    assert [(m.recipient, m.locale, m.subject) for m in mails] == [
        ("ada@example.org", "en", "Slides available: Offene Daten")]
    assert f"http://localhost/events/mails-test/sessions/{talk.id}\n" in mails[0].body


def test_slides_notice_after_automatic_publication_at_the_released_end(
        app: Flask, world: dict[str, Any], person: Callable[..., User]) -> None:
    event, talk = world["event"], world["talk"]
    attendee(person, event, star=talk, slides=True, email="ada@example.org")
    add_slides(talk, VisibilityMode.AUTOMATIC)

    during = services.send_due_mails(at(event, "09:59"))
    after = services.send_due_mails(at(event, "10:00"))
    commit()

    assert (during.slides_notices, after.slides_notices) == (0, 1)
    assert [(m.recipient, m.subject) for m in outbox()] == [("ada@example.org", "Folien verfügbar: Offene Daten")]


def test_send_reminders_command_runs_one_pass(app: Flask, runner: FlaskCliRunner, world: dict[str, Any],
                                              person: Callable[..., User]) -> None:
    event, talk = world["event"], world["talk"]
    talk.slots[0].start_at = utcnow() + timedelta(minutes=10)
    talk.slots[0].end_at = utcnow() + timedelta(minutes=40)
    commit()
    record_release(event)
    attendee(person, event, star=talk, reminder=15, email="ada@example.org")

    first = runner.invoke(args=["mail", "send-reminders"])
    second = runner.invoke(args=["mail", "send-reminders"])

    assert first.output.strip() == "reminders 1, slides notices 0", first.output
    assert second.output.strip() == "reminders 0, slides notices 0"
    assert [m.recipient for m in outbox()] == ["ada@example.org"]


# --- mail settings ---------------------------------------------------------------------------------------------


def test_mail_settings_are_saved_for_members_and_refused_otherwise(
        app: Flask, client: FlaskClient, world: dict[str, Any], person: Callable[..., User],
        create_user: Callable[..., User]) -> None:
    event = world["event"]
    ada = attendee(person, event, email="ada@example.org")
    create_user("fremd@example.org")
    login(client, "ada@example.org")
    token = csrf_token(client, "/events/mails-test/my-agenda")

    page = client.get("/events/mails-test/my-agenda").get_data(as_text=True)
    assert '<input type="checkbox" name="reminders" value="1">' in page  # off by default,
    assert '<option value="15" selected>' in page  # 15 minutes once switched on

    saved = client.post("/events/mails-test/my-agenda/mail-settings",
                        data={"csrf_token": token, "reminders": "1", "reminder_minutes": "30", "slides_notice": "1"})
    odd = client.post("/events/mails-test/my-agenda/mail-settings",
                      data={"csrf_token": token, "reminders": "1", "reminder_minutes": "7"})
    no_csrf = client.post("/events/mails-test/my-agenda/mail-settings", data={"reminders": "1"})

    assert (saved.status_code, odd.status_code, no_csrf.status_code) == (303, 400, 400)
    assert "Choose one of the offered reminder times." in odd.get_data(as_text=True)
    db.session.expire_all()
    preference = services.preference_of(event, ada)
    assert preference is not None
    assert (preference.reminder_minutes, preference.wants_slides_notice) == (30, True)
    page = client.get("/events/mails-test/my-agenda").get_data(as_text=True)
    assert '<option value="30" selected>' in page and 'name="reminders" value="1" checked>' in page
    assert client.post("/events/mails-test/my-agenda/mail-settings", data={"csrf_token": token}).status_code == 303
    db.session.expire_all()
    assert (preference.reminder_minutes, preference.wants_slides_notice) == (None, False)

    client.post("/logout", data={"csrf_token": token})
    login(client, "fremd@example.org")
    outsider = client.post("/events/mails-test/my-agenda/mail-settings",
                           data={"csrf_token": csrf_token(client, "/events/mails-test/"), "reminders": "1"})
    assert outsider.status_code == 403


# --- announcements ---------------------------------------------------------------------------------------------


@pytest.fixture
def announcing(app: Flask, client: FlaskClient, world: dict[str, Any], person: Callable[..., User]) -> dict[str, Any]:
    event = world["event"]
    organiser = person(event, Role.ORGANISER, email="orga@example.org", name="Olga")
    english = attendee(person, event, locale="en", email="ada@example.org", name="Ada")
    attendee(person, event, email="berta@example.org", name="Berta")
    attendee(person, event, email="fremd@example.org", verified=False)
    attendee(person, event, email="abgemeldet@example.org")
    opt_out("abgemeldet@example.org", event.id)
    commit()
    login(client, "orga@example.org")
    return {"event": event, "organiser": organiser, "english": english,
            "token": csrf_token(client, "/manage/events/mails-test/mail/announcement")}


def post_announcement(client: FlaskClient, token: str, action: str, subject: str = "Raumwechsel",
                      body: str = "Der Workshop ist heute in Raum B.") -> Any:
    return client.post("/manage/events/mails-test/mail/announcement",
                       data={"csrf_token": token, "action": action, "subject": subject, "body": body})


def test_announcement_preview_then_test_mail_to_oneself_then_everyone_registered(
        app: Flask, client: FlaskClient, announcing: dict[str, Any]) -> None:
    token = announcing["token"]

    preview = post_announcement(client, token, "preview")
    assert preview.status_code == 200 and outbox() == []
    assert "Der Workshop ist heute in Raum B." in preview.get_data(as_text=True)

    test = post_announcement(client, token, "test")
    assert test.status_code == 200
    assert [(m.recipient, m.subject) for m in outbox()] == [("orga@example.org", "[Test] Raumwechsel")]

    sent = post_announcement(client, token, "send")
    assert sent.status_code == 303
    jobs.wait_idle(app)  # the mails are queued by the announcement's job
    mails = outbox()[1:]
    assert sorted((m.recipient, m.locale, m.subject) for m in mails) == [
        ("ada@example.org", "en", "Raumwechsel"), ("berta@example.org", "de", "Raumwechsel"),
        ("orga@example.org", "de", "Raumwechsel")]
    for mail in mails:
        assert mail.unsubscribe_url == "http://localhost/mail/unsubscribe/" + unsubscribe_token(
            mail.recipient, announcing["event"].id)
        assert mail.body.startswith("Der Workshop ist heute in Raum B.\n\n-- \n")
    assert "To receive no more mails like this" in next(m.body for m in mails if m.locale == "en")


def test_announcement_mails_are_limited_per_event_and_hour(
        app: Flask, client: FlaskClient, announcing: dict[str, Any]) -> None:
    app.config["ANNOUNCEMENT_MAIL_LIMIT"] = 2
    token = announcing["token"]
    assert [post_announcement(client, token, "send", subject=f"Nr. {n}").status_code for n in (1, 2)] == [303, 303]
    jobs.wait_idle(app)
    before = len(outbox())

    refused = post_announcement(client, token, "send", subject="Nr. 3")

    assert refused.status_code == 429
    assert "At most 2 announcement mails per hour" in refused.get_data(as_text=True)
    assert len(outbox()) == before


def test_announcement_bad_input_and_other_people_are_refused(
        app: Flask, client: FlaskClient, announcing: dict[str, Any]) -> None:
    token = announcing["token"]
    empty = post_announcement(client, token, "send", subject=" ")
    long_subject = post_announcement(client, token, "send", subject="x" * 201)
    control = post_announcement(client, token, "test", body="Text\x00")
    assert (empty.status_code, long_subject.status_code, control.status_code) == (400, 400, 400)
    client.post("/logout", data={"csrf_token": token})
    login(client, "ada@example.org")
    refused = post_announcement(client, csrf_token(client, "/events/mails-test/"), "send")
    assert refused.status_code == 403
    assert outbox() == []


def test_announcement_arrives_over_real_smtp_with_list_unsubscribe(
        app: Flask, client: FlaskClient, announcing: dict[str, Any],
        smtp_server: Callable[..., SmtpServer]) -> None:
    server = smtp_server()
    app.config.update(server.settings())
    assert post_announcement(client, announcing["token"], "send").status_code == 303
    jobs.wait_idle(app)

    report = send_queued(app)

    assert (report.sent, report.failed) == (3, 0)
    received = {mail.rcpt_tos[0]: mail.message for mail in server.received()}
    assert sorted(received) == ["ada@example.org", "berta@example.org", "orga@example.org"]
    token = unsubscribe_token("ada@example.org", announcing["event"].id)
    ada = received["ada@example.org"]
    assert ada["List-Unsubscribe"] == f"<http://localhost/mail/unsubscribe/{token}>"
    assert ada["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert ada["Subject"] == "Raumwechsel" and ada["Content-Language"] == "en"
    assert received["berta@example.org"]["Content-Language"] == "de"
    # The one-click unsubscribe of the mail program: the next announcement skips Ada.
    assert client.post(f"/mail/unsubscribe/{token}").status_code == 200
    assert post_announcement(client, announcing["token"], "send", subject="Zweite").status_code == 303
    jobs.wait_idle(app)
    assert sorted(m.recipient for m in outbox() if m.subject == "Zweite") == ["berta@example.org",
                                                                             "orga@example.org"]


def test_announcement_form_body_is_limited_before_it_is_parsed(
        app: Flask, client: FlaskClient, announcing: dict[str, Any]) -> None:
    response = post_announcement(client, announcing["token"], "send", body="x" * (70 * 1024))
    assert response.status_code == 413
    assert outbox() == []


def test_announcement_job_continues_after_a_failure_and_nobody_gets_it_twice(
        app: Flask, announcing: dict[str, Any], person: Callable[..., User]) -> None:
    """The job queues in committed batches; one that fails between batches is retried from where it got."""
    from conference.mails import services as mail_services
    from conference.mails.models import AnnouncementMail

    event = announcing["event"]
    for number in range(5):
        attendee(person, event, email=f"weitere{number}@example.org")
    commit()
    with app.test_request_context():
        record = mail_services.send_announcement(event, subject="Raumwechsel", body="Raum B",
                                                 actor=announcing["organiser"])
        db.session.rollback()  # nothing committed: no record, no job
    assert db.session.scalar(select(AnnouncementMail)) is None
    with app.test_request_context():
        record = mail_services.send_announcement(event, subject="Raumwechsel", body="Raum B",
                                                 actor=announcing["organiser"])
        record_id = record.id
        commit()  # the job is queued; after the commit a runner task takes it
        jobs.wait_idle(app)
    # The job ran once already through the runner; queue the same announcement's mails again by hand as a
    # retry would: nothing new, since every batch was committed with its progress.
    with app.test_request_context():
        assert mail_services.queue_announcement_mails(record_id) == 0
    done = db.session.get(AnnouncementMail, record_id)
    assert done is not None and done.queued_at is not None and done.recipients == 8  # Olga, Ada, Berta, 5 more

    # A fresh announcement whose job dies after the second batch of two: the retry finishes it, once each.
    with app.test_request_context():
        second = AnnouncementMail(event_id=event.id, subject="Zweite", body="Text", sent_by_id=None)
        db.session.add(second)
        db.session.commit()
        batches = []

        def dies_after_two() -> None:
            batches.append(1)
            if len(batches) == 2:
                raise RuntimeError("the process stopped")

        with pytest.raises(RuntimeError):
            mail_services.queue_announcement_mails(second.id, batch=2, pause=dies_after_two)
        db.session.rollback()
        partial = db.session.get(AnnouncementMail, second.id)
        # Two batches by id: Olga, Ada | Berta, the one who unsubscribed (no mail): three queued.
        assert partial is not None and partial.recipients == 3 and partial.queued_at is None
        assert mail_services.queue_announcement_mails(second.id, batch=2) == 5
    recipients = [m.recipient for m in outbox() if m.subject == "Zweite"]
    assert len(recipients) == len(set(recipients)) == 8
