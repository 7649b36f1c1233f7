"""The mail queue against a real SMTP server process: transactions, multipart, TLS and AUTH, faults, restarts,
two senders, the background sender inside the real server, and the outbox page."""

from __future__ import annotations

import os
import signal
import statistics
import subprocess
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from conference import create_app
from conference.core.after_commit import commit
from conference.core.db import utcnow
from conference.core.mail import (
    MailOptOut,
    MailStatus,
    OutboxMessage,
    external_url,
    link_segments,
    mail_locale,
    recipient_locale,
    send_mail,
)
from conference.core.mail_queue import SendReport, send_queued
from conference.core.mail_smtp import html_body
from conference.core.permissions import Role
from conference.extensions import db
from tests.conftest import settings_for_tests
from tests.fixtures.accounts import login
from tests.fixtures.smtp import SmtpServer
from tests.support.server import CONFERENCE, PROJECT_ROOT, running_server, server_env

pytestmark = pytest.mark.timeout(120)


class Clock:
    """Simulated time for the retry schedule: starts now, moves only when told."""

    def __init__(self) -> None:
        self.now = utcnow()

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


def queue(count: int, *, prefix: str = "mail", **kwargs: Any) -> list[str]:
    """Queue and commit `count` mails; returns their Message-IDs."""
    ids = []
    for number in range(count):
        message = send_mail(to=f"{prefix}{number}@example.org", subject=f"{prefix} {number}",
                            body=f"Hallo {number}\n", **kwargs)
        assert message is not None
        ids.append(message.message_id)
    commit()
    return ids


def statuses() -> dict[str, int]:
    db.session.expire_all()
    rows = db.session.execute(select(OutboxMessage.status, func.count()).group_by(OutboxMessage.status)).all()
    return {status: count for status, count in rows}


def drain(app: Flask, clock: Clock | None = None, *, passes: int = 20) -> SendReport:
    total = SendReport()
    for _ in range(passes):
        report = send_queued(app, clock=clock) if clock else send_queued(app)
        total.add(report)
        if statuses().get("queued", 0) == 0:
            break
        if clock is not None:
            clock.advance(hours=1)
    return total


# --- the transaction ---------------------------------------------------------------------------------------


def test_mail_is_queued_in_the_transaction_and_a_rollback_sends_nothing(
        app: Flask, smtp_server: Callable[..., SmtpServer]) -> None:
    server = smtp_server()
    app.config.update(server.settings())
    send_mail(to="rolled@example.org", subject="Zurückgerollt", body="nie\n")
    db.session.rollback()
    kept = send_mail(to="kept@example.org", subject="Gespeichert", body="ja\n")
    assert kept is not None
    commit()
    assert statuses() == {"queued": 1}

    report = send_queued(app)

    assert (report.sent, report.retried, report.failed) == (1, 0, 0)
    received = server.received()
    assert [mail.rcpt_tos for mail in received] == [["kept@example.org"]]
    assert received[0].message["Message-ID"] == kept.message_id
    assert statuses() == {"sent": 1}


def test_without_a_mail_server_mails_stay_queued_in_the_outbox(app: Flask) -> None:
    app.config["MAIL_SERVER"] = None
    queue(2)
    assert send_queued(app).handled == 0
    assert statuses() == {"queued": 2}


# --- the message -------------------------------------------------------------------------------------------


def test_sent_mail_is_multipart_text_and_escaped_html_with_clickable_links(
        app: Flask, smtp_server: Callable[..., SmtpServer]) -> None:
    server = smtp_server()
    app.config.update(server.settings())
    body = ("Hallo Ada,\n\n<script>alert(1)</script> & Co.\nBitte hier entlang: "
            "https://konferenz.example.org/events/x?a=1&b=2.\n\nGrüße\n")
    row = send_mail(to="Ada@Example.org", to_name="Ada Lovelace", subject="Grüße <b>", body=body, locale="de")
    assert row is not None
    commit()
    send_queued(app)

    (mail,) = server.received()
    message = mail.message
    assert mail.rcpt_tos == ["ada@example.org"]
    assert mail.mail_from == "konferenz@example.org"
    assert message["To"] == "Ada Lovelace <ada@example.org>"
    assert message["From"] == "Testkonferenz <konferenz@example.org>"
    assert message["Subject"] == "Grüße <b>"
    assert message["Message-ID"] == row.message_id
    assert abs((parsedate_to_datetime(message["Date"]) - row.created_at).total_seconds()) < 1
    assert message["Content-Language"] == "de"
    assert message["Auto-Submitted"] == "auto-generated"
    assert message["List-Unsubscribe"] is None
    assert message.get_content_type() == "multipart/alternative"
    text = message.get_body(("plain",))
    html = message.get_body(("html",))
    assert text is not None and html is not None
    assert text.get_content().replace("\r\n", "\n") == body
    page = html.get_content()
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; Co." in page and "<script>" not in page
    assert ('<a href="https://konferenz.example.org/events/x?a=1&amp;b=2">'
            "https://konferenz.example.org/events/x?a=1&amp;b=2</a>.") in page
    assert '<html lang="de">' in page and "<title>Grüße &lt;b&gt;</title>" in page


def test_language_is_the_recipients_then_the_events_then_german(
        app: Flask, create_event: Callable[..., Any], create_user: Callable[..., Any]) -> None:
    german_event = create_event(language="de")
    english_event = create_event(language="en")
    english_user = create_user(email="en@example.org")
    english_user.locale = "en"
    no_choice = create_user(email="none@example.org")
    commit()
    assert recipient_locale(english_user, german_event) == "en"
    assert recipient_locale(no_choice, english_event) == "en"
    assert recipient_locale(no_choice, german_event) == "de"
    assert recipient_locale(None, None) == "de"
    # The request may speak English; the mail speaks the recipient's language.
    with app.test_request_context("/", headers={"Accept-Language": "en"}):
        from flask_babel import gettext as _

        for user, event in ((no_choice, german_event), (english_user, german_event)):
            with mail_locale(user, event):
                send_mail(to=user.email, subject=_("Invitation to speak at %(event)s", event="X"), body="-\n")
        commit()
    rows = db.session.scalars(select(OutboxMessage).order_by(OutboxMessage.id)).all()
    assert [(row.locale, row.subject) for row in rows] == [("de", "Einladung als Referent*in bei X"),
                                                          ("en", "Invitation to speak at X")]


def test_speaker_invitation_is_written_in_the_invitees_language(
        app: Flask, slides_stage: Any, create_user: Callable[..., Any]) -> None:
    from conference.speakers.services import invite_speaker

    english = create_user(email="english@example.org")
    english.locale = "en"
    commit()
    with app.test_request_context("/", headers={"Accept-Language": "de"}):
        for address in ("english@example.org", "unbekannt@example.org"):
            invite_speaker(slides_stage.event, session=slides_stage.session, email=address,
                           actor=slides_stage.organiser, name="Nina")
        commit()
    rows = db.session.scalars(select(OutboxMessage).order_by(OutboxMessage.id)).all()
    assert [(row.recipient, row.locale, row.recipient_name) for row in rows] == [
        ("english@example.org", "en", "Nina"), ("unbekannt@example.org", "de", "Nina")]
    assert rows[0].subject.startswith("Invitation to speak") and rows[1].subject.startswith("Einladung")


def test_links_in_mails_are_absolute_in_development_mode(app: Flask) -> None:
    app.config.update(EXTERNAL_URL=None, LOCAL_URL="http://127.0.0.1:5000")
    assert external_url("events.home") == "http://127.0.0.1:5000/"
    app.config.update(EXTERNAL_URL="https://konferenz.example.org")
    assert external_url("events.home") == "https://konferenz.example.org/"


# --- bulk mail and unsubscribing ---------------------------------------------------------------------------


def test_bulk_mail_carries_one_click_unsubscribe_which_works_without_login(
        app: Flask, client: FlaskClient, smtp_server: Callable[..., SmtpServer],
        create_event: Callable[..., Any]) -> None:
    server = smtp_server()
    app.config.update(server.settings())
    event = create_event()
    bulk = send_mail(to="leser@example.org", subject="Ankündigung", body="Neuigkeiten\n", event_id=event.id,
                     bulk=True, locale="de")
    assert bulk is not None
    commit()
    send_queued(app)
    (mail,) = server.received()
    url = mail.message["List-Unsubscribe"].strip("<>")
    assert url.startswith("http://localhost/mail/unsubscribe/")
    assert mail.message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert url in mail.message.get_body(("plain",)).get_content()

    path = url.removeprefix("http://localhost")
    assert client.get(path).status_code == 200  # a link scanner's GET changes nothing
    assert db.session.scalar(select(func.count()).select_from(MailOptOut)) == 0
    forged = client.post(path[:-3] + "abc", data="List-Unsubscribe=One-Click",
                         content_type="application/x-www-form-urlencoded")
    assert forged.status_code == 404
    # The mail program's one-click POST: no login, no CSRF token.
    answer = client.post(path, data="List-Unsubscribe=One-Click", content_type="application/x-www-form-urlencoded")
    assert answer.status_code == 200
    assert "leser@example.org" in answer.get_data(as_text=True)
    assert db.session.scalars(select(MailOptOut.email)).all() == ["leser@example.org"]

    assert send_mail(to="Leser@example.org", subject="Noch eine", body="x\n", event_id=event.id, bulk=True) is None
    assert send_mail(to="leser@example.org", subject="Konto", body="x\n", event_id=event.id) is not None
    other_event = create_event()
    assert send_mail(to="leser@example.org", subject="Andere", body="x\n", event_id=other_event.id,
                     bulk=True) is not None


# --- TLS and AUTH ------------------------------------------------------------------------------------------


def test_starttls_and_auth_deliver_with_a_trusted_certificate(
        app: Flask, smtp_server: Callable[..., SmtpServer]) -> None:
    server = smtp_server(starttls=True, auth=("mailer", "geheim-123"))
    app.config.update(server.settings())
    (message_id,) = queue(1)
    report = send_queued(app)
    assert report.sent == 1
    (mail,) = server.received()
    assert (mail.tls, mail.login, mail.message["Message-ID"]) == (True, "mailer", message_id)


def test_implicit_tls_with_auth_delivers(app: Flask, smtp_server: Callable[..., SmtpServer]) -> None:
    server = smtp_server(implicit_tls=True, auth=("mailer", "geheim-123"))
    app.config.update(server.settings())
    queue(1)
    assert send_queued(app).sent == 1
    (mail,) = server.received()
    assert (mail.tls, mail.login) == (True, "mailer")


def test_untrusted_certificate_is_refused_before_the_password_is_sent(
        app: Flask, smtp_server: Callable[..., SmtpServer]) -> None:
    server = smtp_server(starttls=True, auth=("mailer", "geheim-123"))
    app.config.update(server.settings(MAIL_TLS_CA_FILE=None))  # the self-signed certificate is not trusted
    queue(1)
    report = send_queued(app)
    assert (report.sent, report.retried) == (0, 1)
    row = db.session.scalars(select(OutboxMessage)).one()
    assert row.status == MailStatus.QUEUED and row.attempts == 1
    assert "CERTIFICATE_VERIFY_FAILED" in (row.last_error or "")
    assert server.received() == []


def test_wrong_password_is_retried_and_delivered_once_fixed(
        app: Flask, smtp_server: Callable[..., SmtpServer]) -> None:
    server = smtp_server(starttls=True, auth=("mailer", "geheim-123"))
    app.config.update(server.settings(MAIL_PASSWORD="falsch"))
    (message_id,) = queue(1)
    clock = Clock()
    assert send_queued(app, clock=clock).retried == 1
    row = db.session.scalars(select(OutboxMessage)).one()
    assert (row.last_error or "").startswith("535")
    app.config["MAIL_PASSWORD"] = "geheim-123"
    clock.advance(minutes=1)
    assert send_queued(app, clock=clock).sent == 1
    assert server.message_ids() == {message_id: 1}


# --- faults ------------------------------------------------------------------------------------------------


def test_refusing_silent_and_hanging_up_servers_each_mail_arrives_exactly_once(
        app: Flask, smtp_server: Callable[..., SmtpServer], capsys: pytest.CaptureFixture[str]) -> None:
    """Every fault in turn while mails keep being queued; after the server recovers, each arrives once."""
    server = smtp_server()
    app.config.update(server.settings(MAIL_TIMEOUT=1))
    queued = queue(5, prefix="first")
    clock = Clock()
    total = SendReport()
    for fault in ("refuse-4xx", "refuse-5xx", "hang", "drop-data", "stopped"):
        if fault == "stopped":
            server.stop()
        else:
            server.set_mode(fault)
        report = send_queued(app, clock=clock)
        total.add(report)
        assert (report.sent, report.retried, report.failed) == (0, 1, 0), fault
        queued += queue(3, prefix=fault.replace("-", ""))
        clock.advance(minutes=31)  # past the failed mail's retry and the queue's pause
        report = send_queued(app, clock=clock)  # still down: again one attempt, the rest waits
        total.add(report)
        assert (report.sent, report.retried) == (0, 1), fault
        clock.advance(minutes=40)
    assert server.received() == []
    server.start()
    server.set_mode("ok")
    recovered = drain(app, clock)
    total.add(recovered)

    assert server.message_ids() == {message_id: 1 for message_id in queued}
    assert statuses() == {"sent": len(queued)}
    assert (total.sent, total.failed) == (len(queued), 0)
    attempts = db.session.scalars(select(OutboxMessage.attempts)).all()
    assert sum(attempts) == total.sent + total.retried
    with capsys.disabled():
        print(f"\nMAIL-FAULTS queued={len(queued)} sent={total.sent} failed={total.failed} "
              f"retried={total.retried} connections={server.connections()} "
              f"most-attempts={max(attempts)}")


def test_recipient_refused_for_good_fails_at_once_and_a_full_mailbox_is_retried(
        app: Flask, smtp_server: Callable[..., SmtpServer]) -> None:
    server = smtp_server()
    app.config.update(server.settings())
    unknown = send_mail(to="unknown@example.org", subject="a", body="a\n")
    busy = send_mail(to="busy@example.org", subject="b", body="b\n")
    fine = send_mail(to="fine@example.org", subject="c", body="c\n")
    assert unknown and busy and fine
    commit()
    clock = Clock()
    report = send_queued(app, clock=clock)
    assert (report.sent, report.retried, report.failed) == (1, 1, 1)
    db.session.expire_all()
    assert (unknown.status, unknown.attempts, unknown.last_error) == (
        MailStatus.FAILED, 1, "550 5.1.1 No such user here")
    assert (busy.status, busy.attempts) == (MailStatus.QUEUED, 1)
    assert busy.next_attempt_at == clock.now + timedelta(minutes=1)
    assert server.message_ids() == {fine.message_id: 1}


def test_retries_double_from_a_minute_and_give_up_after_a_day(
        app: Flask, smtp_server: Callable[..., SmtpServer]) -> None:
    server = smtp_server()
    app.config.update(server.settings())
    server.stop()  # connection refused on every attempt
    queue(1)
    clock = Clock()
    row = db.session.scalars(select(OutboxMessage)).one()
    attempt_times = []
    for _ in range(30):
        db.session.expire_all()
        if row.status != MailStatus.QUEUED:
            break
        clock.now = max(clock.now, row.next_attempt_at)
        attempt_times.append(clock.now)
        send_queued(app, clock=clock)
    db.session.expire_all()
    gaps = [round((b - a).total_seconds() / 60) for a, b in zip(attempt_times, attempt_times[1:], strict=False)]
    # 1, 2, 4, ... minutes; the 12th and last try at the limit (17 h after the first try the next gap would
    # be 1024 minutes, beyond the day)
    assert gaps == [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 417]
    assert row.status == MailStatus.FAILED and row.attempts == len(attempt_times) == 12
    assert attempt_times[-1] == row.created_at + timedelta(days=1)
    assert "ConnectionRefusedError" in (row.last_error or "")


def test_a_mail_queued_before_the_server_was_configured_is_not_sent_a_day_late(
        app: Flask, smtp_server: Callable[..., SmtpServer]) -> None:
    server = smtp_server()
    app.config["MAIL_SERVER"] = None
    queue(1)
    app.config.update(server.settings())
    clock = Clock()
    clock.advance(hours=25)
    report = send_queued(app, clock=clock)
    assert (report.sent, report.failed) == (0, 1)
    assert server.received() == []


# --- restarts and several senders --------------------------------------------------------------------------


def test_queued_mails_are_sent_by_the_next_app_instance(tmp_path: Path,
                                                        smtp_server: Callable[..., SmtpServer]) -> None:
    server = smtp_server()
    first = create_app(settings_for_tests(tmp_path, MAIL_SERVER=None))
    with first.app_context():
        db.create_all()
        ids = queue(4)
        db.session.remove()
        db.engine.dispose()
    # "Restart": a new application on the same database, now with the mail server.
    second = create_app(settings_for_tests(tmp_path, **server.settings()))
    report = send_queued(second)
    assert report.sent == 4
    assert server.message_ids() == {message_id: 1 for message_id in ids}
    with second.app_context():
        db.engine.dispose()


def test_a_sender_killed_mid_send_loses_nothing_and_sends_nothing_twice(
        tmp_path: Path, smtp_server: Callable[..., SmtpServer]) -> None:
    server = smtp_server()
    server.set_mode("hang")
    instance = tmp_path / "instance"
    env = server_env(instance, "threading", CONFERENCE_DATABASE_URL=f"sqlite:///{tmp_path / 'db.sqlite3'}",
                     CONFERENCE_EXTERNAL_URL="http://localhost", **{**server.env(), "CONFERENCE_MAIL_TIMEOUT": "60"})
    subprocess.run([*CONFERENCE, "db", "upgrade"], env=env, cwd=PROJECT_ROOT, check=True, capture_output=True,
                   timeout=60)
    app = create_app({**settings_for_tests(tmp_path, DATABASE_URL=env["CONFERENCE_DATABASE_URL"]),
                      **server.settings()})
    with app.app_context():
        ids = queue(2)
        sender = subprocess.Popen([*CONFERENCE, "mail", "send-queued"], env=env, cwd=PROJECT_ROOT,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        server.wait_for(lambda: server.connections() >= 1)
        os.kill(sender.pid, signal.SIGKILL)  # dies holding its claim, in the middle of the SMTP conversation
        sender.wait(timeout=10)
        assert statuses() == {"sending": 1, "queued": 1}
        server.set_mode("ok")
        clock = Clock()
        report = send_queued(app, clock=clock)  # the claim is younger than the lease: left alone
        assert (report.requeued, report.sent) == (0, 1)
        clock.advance(seconds=app.config["MAIL_SENDING_LEASE"] + 1)
        report = send_queued(app, clock=clock)
        assert (report.requeued, report.sent) == (1, 1)
        assert server.message_ids() == {message_id: 1 for message_id in ids}
        db.engine.dispose()


def _two_senders_race(database_url: str, tmp_path: Path, server: SmtpServer, count: int) -> list[int]:
    env = server_env(tmp_path / "instance", "threading", CONFERENCE_DATABASE_URL=database_url,
                     CONFERENCE_EXTERNAL_URL="http://localhost", **server.env())
    subprocess.run([*CONFERENCE, "db", "upgrade"], env=env, cwd=PROJECT_ROOT, check=True, capture_output=True,
                   timeout=120)
    app = create_app({**settings_for_tests(tmp_path, DATABASE_URL=database_url), **server.settings()})
    server.set_mode("slow")  # 30 ms per mail: the two processes overlap even if one starts a second later
    with app.app_context():
        ids = queue(count)
        senders = [subprocess.Popen([*CONFERENCE, "mail", "send-queued"], env=env, cwd=PROJECT_ROOT,
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
        outputs = [sender.communicate(timeout=90) for sender in senders]
        assert [sender.returncode for sender in senders] == [0, 0], outputs
        sent = [int(out.split("sent ")[1].split(",")[0]) for out, _err in outputs]
        assert server.message_ids() == {message_id: 1 for message_id in ids}
        assert statuses() == {"sent": count}
        db.engine.dispose()
    return sent


def test_two_senders_on_sqlite_never_send_the_same_mail(tmp_path: Path,
                                                        smtp_server: Callable[..., SmtpServer]) -> None:
    server = smtp_server()
    sent = _two_senders_race(f"sqlite:///{tmp_path / 'db.sqlite3'}", tmp_path, server, 150)
    assert sum(sent) == 150 and min(sent) > 0  # both delivered: they really ran side by side


@pytest.mark.postgres
def test_two_senders_on_postgresql_never_send_the_same_mail(tmp_path: Path, postgres_url: str,
                                                            smtp_server: Callable[..., SmtpServer]) -> None:
    server = smtp_server()
    sent = _two_senders_race(postgres_url, tmp_path, server, 150)
    assert sum(sent) == 150 and min(sent) > 0


# --- the background sender in the real server --------------------------------------------------------------


@pytest.mark.server
@pytest.mark.parametrize("async_mode", ["eventlet", "gevent"])
def test_a_hanging_mail_server_does_not_hold_up_requests(
        tmp_path: Path, async_mode: str, smtp_server: Callable[..., SmtpServer],
        capsys: pytest.CaptureFixture[str]) -> None:
    """The sender of `conference run` talks to a server that never answers; pages keep coming at once."""
    import urllib.request

    server = smtp_server()
    server.set_mode("hang")
    database_url = f"sqlite:///{tmp_path / 'db.sqlite3'}"
    extra = {**server.env(), "CONFERENCE_MAIL_TIMEOUT": "4", "CONFERENCE_MAIL_RETRY_FIRST": "1",
             "CONFERENCE_MAIL_POLL_INTERVAL": "1", "CONFERENCE_DATABASE_URL": database_url}
    with running_server(tmp_path / "instance", async_mode, demo_attendees=None, **extra) as running:
        app = create_app({**settings_for_tests(tmp_path, DATABASE_URL=database_url), **server.settings()})
        with app.app_context():
            (message_id,) = queue(1)
            server.wait_for(lambda: server.connections() >= 1)
            hung_at = time.monotonic()
            timings = []
            while time.monotonic() - hung_at < 3:  # inside the 4 s the sender waits for the silent server
                started = time.perf_counter()
                with urllib.request.urlopen(f"{running.url}/healthz", timeout=5) as response:  # noqa: S310
                    assert response.status == 200
                timings.append(time.perf_counter() - started)
            assert statuses() == {"sending": 1}  # the sender was still waiting all along
            server.set_mode("ok")
            server.wait_for(lambda: server.message_ids() == {message_id: 1}, timeout=20)
            db.engine.dispose()
    timings.sort()
    p99 = timings[int(len(timings) * 0.99) - 1]
    with capsys.disabled():
        print(f"\nMAIL-HANG {async_mode}: {len(timings)} requests while the SMTP server hung, "
              f"p50 {statistics.median(timings) * 1000:.1f} ms, p99 {p99 * 1000:.1f} ms, "
              f"max {timings[-1] * 1000:.1f} ms")
    assert timings[-1] < 1.0


# --- operators ---------------------------------------------------------------------------------------------


def test_send_queued_command(app: Flask, runner: Any, smtp_server: Callable[..., SmtpServer]) -> None:
    app.config["MAIL_SERVER"] = None
    refused = runner.invoke(args=["mail", "send-queued"])
    assert refused.exit_code == 1 and "No mail server is configured" in refused.output
    server = smtp_server()
    app.config.update(server.settings(MAIL_FROM="Konferenz"))
    queue(2)
    misconfigured = runner.invoke(args=["mail", "send-queued"])
    assert misconfigured.exit_code == 1 and "CONFERENCE_MAIL_FROM is not a mail address" in misconfigured.output
    assert send_queued(app).handled == 0 and statuses() == {"queued": 2}  # no attempt spent on a setting
    app.config.update(server.settings())
    result = runner.invoke(args=["mail", "send-queued"])
    assert result.exit_code == 0, result.output
    assert result.output.strip() == "sent 2, retried 0, failed 0, requeued 0"
    assert len(server.received()) == 2


@pytest.mark.parametrize(("settings", "message"), [
    ({}, "CONFERENCE_EXTERNAL_URL is not set"),
    ({"CONFERENCE_EXTERNAL_URL": "konferenz.example.org"}, "must be an http(s) address"),
])
def test_run_refuses_to_start_without_a_usable_external_url(tmp_path: Path, settings: dict[str, str],
                                                            message: str) -> None:
    env = {k: v for k, v in server_env(tmp_path / "instance", "eventlet", **settings).items()
           if k != "CONFERENCE_DEVELOPMENT"}
    result = subprocess.run([*CONFERENCE, "run", "--port", "9"], env=env, cwd=PROJECT_ROOT, capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 2
    assert message in result.stderr


def test_outbox_page_is_the_record_of_queued_sent_and_failed_mail(
        app: Flask, client: FlaskClient, smtp_server: Callable[..., SmtpServer],
        create_event: Callable[..., Any], person: Callable[..., Any]) -> None:
    server = smtp_server()
    app.config.update(server.settings())
    event = create_event()
    person(event, Role.ORGANISER, email="orga@example.org")
    send_mail(to="fine@example.org", subject="Zugestellt", body="a\n", event_id=event.id)
    send_mail(to="unknown@example.org", subject="Abgelehnt", body="b\n", event_id=event.id)
    send_mail(to="busy@example.org", subject="Später", body="c\n", event_id=event.id)
    commit()
    send_queued(app)
    send_mail(to="neu@example.org", subject="Wartet", body="d\n", event_id=event.id)
    commit()
    login(client, "orga@example.org")
    page = client.get(f"/manage/events/{event.slug}/outbox").get_data(as_text=True)
    for subject, state in (("Zugestellt", "sent"), ("Abgelehnt", "failed"), ("Später", "queued"),
                           ("Wartet", "queued")):
        article = page.split(f">{subject}</h2>")[1].split("</article>")[0]
        assert f'<span class="badge">{state}</span>' in article, subject
    assert "550 5.1.1 No such user here" in page and "452 4.2.2 Mailbox full" in page
    assert "attempts: 1" in page


def test_links_in_mail_text_are_escaped_and_only_http_or_site_paths() -> None:
    body = ('Hi <script>alert(1)</script> see javascript:alert(1) and "https://x.example/a?b=1&c=<2>". '
            "Then /events/x/invitations/t.")
    assert link_segments(body) == [
        ("text", 'Hi <script>alert(1)</script> see javascript:alert(1) and "'),
        ("link", "https://x.example/a?b=1&c="), ("text", '<2>". Then '),
        ("link", "/events/x/invitations/t"), ("text", "."),
    ]
    page = html_body(body, locale="en", title="t")
    assert "<script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert 'href="javascript' not in page and "see javascript:alert(1) and &#34;" in page
    assert '<a href="https://x.example/a?b=1&amp;c=">https://x.example/a?b=1&amp;c=</a>&lt;2&gt;&#34;. ' in page
    assert '<a href="/events/x/invitations/t">/events/x/invitations/t</a>.</p>' in page
