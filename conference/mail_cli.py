"""`conference mail send-queued`: deliver the mails that are due now, once (the server's sender does it always)."""

from __future__ import annotations

import click
from flask import current_app
from flask.cli import with_appcontext

from conference.settings import get_settings

mail = click.Group("mail", help="The mail queue.")


@mail.command("send-queued")
@with_appcontext
def send_queued_command() -> None:
    """Deliver every queued mail that is due now over SMTP, then print what happened."""
    from conference.core.mail_queue import BATCH_LIMIT, SendReport, send_queued
    from conference.core.mail_smtp import MailSettings

    app = current_app._get_current_object()  # type: ignore[attr-defined]
    if not get_settings(app).mail_server:
        raise click.ClickException("No mail server is configured (CONFERENCE_MAIL_SERVER); the mails stay in "
                                   "the outbox page.")
    problem = MailSettings.from_config(app.config).problem()
    if problem:
        raise click.ClickException(problem)
    total = SendReport()
    while True:
        report = send_queued(app)
        total.add(report)
        if report.handled < BATCH_LIMIT:
            break
    click.echo(f"sent {total.sent}, retried {total.retried}, failed {total.failed}, "
               f"requeued {total.requeued}")


@mail.command("send-reminders")
@with_appcontext
def send_reminders_command() -> None:
    """Queue the session reminders and slides notices that are due now, once (the server does it every
    MAIL_REMINDER_INTERVAL seconds); the mail sender delivers them."""
    from conference.mails.services import run_pass

    report = run_pass(current_app._get_current_object())  # type: ignore[attr-defined]
    click.echo(f"reminders {report.reminders}, slides notices {report.slides_notices}")


COMMANDS = (mail,)
