"""The `conference` command: run, demo, users (and `db`, from Flask-Migrate)."""

from __future__ import annotations

import csv
import io
import json
import sys
from pathlib import Path
from typing import Any

import click
from flask import Flask, current_app
from flask.cli import FlaskGroup, with_appcontext
from sqlalchemy import select

from conference import __version__
from conference.core.permissions import Role
from conference.settings import get_settings


def _create_app() -> Flask:
    from conference.factory import create_app

    return create_app()


cli = FlaskGroup(name="conference", create_app=_create_app, add_default_commands=False,
                 add_version_option=False, load_dotenv=False, help="Virtual conference platform.")
cli = click.version_option(__version__, "--version", prog_name="conference",
                           message="%(prog)s %(version)s")(cli)


def upgrade_database() -> None:
    """Bring the schema to the newest migration (all heads), without alembic's progress lines (`conference db
    upgrade` shows them); a failure still raises."""
    from flask_migrate import upgrade

    current_app.extensions["quiet_migrations"] = True
    try:
        upgrade(directory=current_app.extensions["migrate"].directory, revision="heads")
    finally:
        current_app.extensions.pop("quiet_migrations", None)


@click.command("run")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5000, show_default=True, type=int)
@click.option("--workers", default=1, show_default=True, type=click.IntRange(1, 64), envvar="CONFERENCE_WORKERS",
              help="Worker processes on consecutive ports from --port; more than one needs CONFERENCE_MESSAGE_QUEUE.")
@click.option("--no-upgrade", is_flag=True, hidden=True, help="Skip the schema upgrade (workers of a supervisor).")
@with_appcontext
def run_command(host: str, port: int, workers: int, no_upgrade: bool) -> None:
    """Upgrade the database to the newest schema, then serve with the configured async server."""
    from conference.serving.server import serve
    from conference.serving.workers import supervise_workers

    app = current_app._get_current_object()  # type: ignore[attr-defined]
    _require_external_url(app, host=host, port=port)
    settings = get_settings(app)
    if workers > 1 and not settings.message_queue:
        raise click.UsageError("--workers > 1 needs CONFERENCE_MESSAGE_QUEUE (e.g. redis://127.0.0.1:6379/0)")
    if str(settings.database_url).startswith("sqlite") and workers > 1:
        raise click.UsageError("--workers > 1 needs a database server (CONFERENCE_DATABASE_URL=postgresql+...)")
    if not no_upgrade:
        upgrade_database()
    if workers > 1:
        click.echo(f"Starting {workers} workers on http://{host}:{port}-{port + workers - 1}/ "
                   f"({settings.async_mode}). Stop with Ctrl+C.")
        supervise_workers(host=host, port=port, workers=workers)
        return
    warm_up(app)
    click.echo(f"Serving on http://{host}:{port}/ ({settings.async_mode}). Stop with Ctrl+C.")
    serve(app, host=host, port=port)


def warm_up(app: Flask) -> None:
    """Compile every template, configure the ORM mappers and read both catalogues before the first request:
    otherwise the first visitor of each page pays for it on the event loop (100+ ms, and a loop-probe
    warning on the console of `make run`)."""
    from flask_babel import force_locale, gettext
    from sqlalchemy.orm import configure_mappers

    configure_mappers()
    for name in app.jinja_env.list_templates(extensions=["html", "txt"]):
        app.jinja_env.get_template(name)
    with app.test_request_context("/"):
        for locale in app.config["LANGUAGES"]:
            with force_locale(locale):
                gettext("Log in")


def _require_external_url(app: Flask, *, host: str, port: int) -> None:
    """Mail links must reach people: without EXTERNAL_URL they would be guessed from a local address."""
    from urllib.parse import urlsplit

    external = get_settings(app).external_url
    if external:
        parts = urlsplit(str(external))
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise click.UsageError(f"CONFERENCE_EXTERNAL_URL must be an http(s) address such as "
                                   f"https://konferenz.example.org, not {external!r}")
        return
    if not get_settings(app).development:
        raise click.UsageError(
            "CONFERENCE_EXTERNAL_URL is not set. Set it to the public address people open (e.g. "
            "CONFERENCE_EXTERNAL_URL=https://konferenz.example.org); links in mails are built from it. "
            "For a demo on this computer set CONFERENCE_DEVELOPMENT=1 (make run sets CONFERENCE_EXTERNAL_URL).")
    shown = {"0.0.0.0": "127.0.0.1", "::": "::1"}.get(host, host)  # noqa: S104 - a name to link to, not a bind
    shown = f"[{shown}]" if ":" in shown else shown
    app.config["LOCAL_URL"] = f"http://{shown}:{port}"
    click.echo(f"Development mode: links in mails point at {app.config['LOCAL_URL']}")


@click.command("demo")
@click.option("--attendees", default=130, show_default=True, type=click.IntRange(0, 100_000))
@click.option("--token-file", type=click.Path(dir_okay=False, writable=True, path_type=Path))
@with_appcontext
def demo_command(attendees: int, token_file: Path | None) -> None:
    """Load the demo conference (idempotent) and print the demo logins."""
    from conference.demo import load_demo

    upgrade_database()
    result = load_demo(attendees=attendees, with_tokens=token_file is not None)
    if token_file is not None:
        token_file.write_text("".join(f"{token}\n" for token in result.tokens))
        click.echo(f"Wrote {len(result.tokens)} attendee API tokens to {token_file}")
    click.echo(f"Demo conference: {result.event_title} (/events/{result.event_slug}/)")
    click.echo(f"Demo logins (password for all: {result.password}):")
    for label, email in result.logins:
        click.echo(f"  {label:<14} {email}")


users = click.Group("users", help="Create, list, import users and issue API tokens.")


@users.command("create")
@click.option("--email", required=True)
@click.option("--name", required=True)
@click.option("--event", "event_slug", help="Event slug for the role.")
@click.option("--role", type=click.Choice([r.value for r in Role]), default=None)
@click.option("--admin", is_flag=True, help="Make the user a site administrator.")
@with_appcontext
def users_create(email: str, name: str, event_slug: str | None, role: str | None, admin: bool) -> None:
    """Create a user; the password is read from standard input (one line)."""
    from conference.auth import accounts
    from conference.core.after_commit import commit
    from conference.core.errors import DomainError
    from conference.events import services as event_services

    password = sys.stdin.readline().rstrip("\n")
    try:
        event = _event_or_fail(event_slug) if event_slug else None
        if role and event is None:
            raise click.UsageError("--role needs --event")
        # The operator vouches for the address of an account made here.
        user = accounts.create_user(email=email, name=name, password=password, is_admin=admin, verified=True)
        if event is not None:
            event_services.set_role(event, user=user, role=role or Role.ATTENDEE)
        commit()
    except DomainError as error:
        raise click.ClickException(error.message) from None
    click.echo(f"Created user {user.id} <{user.email}>")


@users.command("list")
@click.option("--event", "event_slug")
@click.option("--role", type=click.Choice([r.value for r in Role]))
@click.option("--json", "as_json", is_flag=True)
@with_appcontext
def users_list(event_slug: str | None, role: str | None, as_json: bool) -> None:
    """List users, optionally only those with a role in an event."""
    from conference.auth.models import User
    from conference.events.models import EventMembership
    from conference.extensions import db

    query: Any = select(User).order_by(User.id)
    if event_slug or role:
        query = query.join(EventMembership, EventMembership.user_id == User.id)
        if event_slug:
            query = query.where(EventMembership.event_id == _event_or_fail(event_slug).id)
        if role:
            query = query.where(EventMembership.role == role)
        query = query.distinct()
    rows = [{"id": u.id, "email": u.email, "name": u.name, "admin": u.is_admin, "verified": u.is_verified}
            for u in db.session.scalars(query)]
    if as_json:
        click.echo(json.dumps(rows, ensure_ascii=False))
        return
    for row in rows:
        marks = ("  (admin)" if row["admin"] else "") + ("" if row["verified"] else "  (unconfirmed)")
        click.echo(f"{row['id']:>6}  {row['email']:<40} {row['name']}{marks}")


@users.command("verify")
@click.option("--email", required=True)
@with_appcontext
def users_verify(email: str) -> None:
    """Count the user's address as confirmed (the operator vouches for it); waiting roles apply."""
    from conference.auth import accounts, registration
    from conference.core.after_commit import commit

    user = accounts.find_user_by_email(email)
    if user is None:
        raise click.ClickException(f"No user with e-mail {email}")
    changed = registration.verify_address(user)
    commit()
    click.echo(f"Confirmed <{user.email}>." if changed else f"<{user.email}> was confirmed already.")


@users.command("reset-password")
@click.option("--email", required=True)
@with_appcontext
def users_reset_password(email: str) -> None:
    """Print a one-time link with which the user chooses a new password (nothing is mailed).

    The operator passes the link on by a channel they trust and never learns the password. The link works
    once and for PASSWORD_RESET_MAX_AGE seconds; it voids every older reset link of the account."""
    from conference.auth import accounts, passwords
    from conference.core.after_commit import commit

    user = accounts.find_user_by_email(email)
    if user is None or user.is_disabled:
        raise click.ClickException(f"No enabled user with e-mail {email}")
    link = passwords.password_reset_link(user)
    commit()
    click.echo(link)


@users.command("token")
@click.option("--email", required=True)
@click.option("--name", default="cli")
@with_appcontext
def users_token(email: str, name: str) -> None:
    """Print a fresh API token for a user."""
    from conference.auth import accounts, logins
    from conference.core.after_commit import commit

    user = accounts.find_user_by_email(email)
    if user is None:
        raise click.ClickException(f"No user with e-mail {email}")
    token = logins.issue_api_token(user, name=name)
    commit()
    click.echo(token)


@users.command("import")
@click.argument("csv_file", type=click.File("r", encoding="utf-8-sig"))
@click.option("--event", "event_slug", required=True)
@with_appcontext
def users_import(csv_file: io.TextIOBase, event_slug: str) -> None:
    """Import a registration list (columns: email, name, optional role and password). All or nothing."""
    from conference.core.after_commit import commit
    from conference.events.importing import ImportFailed, import_registrations
    from conference.extensions import db

    event = _event_or_fail(event_slug)
    try:
        report = import_registrations(event, csv.reader(csv_file))
        commit()
    except ImportFailed as error:
        db.session.rollback()
        raise click.ClickException(str(error)) from None
    click.echo(f"Imported {report.created + report.existing} rows: {report.created} new accounts, "
               f"{report.existing} existing accounts.")
    for note in report.notes:
        click.echo(f"  {note}")


def _event_or_fail(slug: str) -> Any:
    from conference.events.models import Event
    from conference.extensions import db

    event = db.session.scalar(select(Event).where(Event.slug == slug))
    if event is None:
        raise click.ClickException(f"No event with slug {slug!r}")
    return event


def register_cli(app: Flask) -> None:
    from conference.agenda.cli import COMMANDS as agenda_commands
    from conference.backup_cli import COMMANDS as backup_commands
    from conference.mail_cli import COMMANDS as mail_commands

    for command in (run_command, demo_command, users, *backup_commands, *mail_commands, *agenda_commands):
        app.cli.add_command(command)
