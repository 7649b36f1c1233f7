"""`conference agenda import EVENT_SLUG FILE [--dry-run]`: a frab schedule.xml into the working agenda."""

from __future__ import annotations

from pathlib import Path

import click
from flask.cli import with_appcontext

agenda = click.Group("agenda", help="The agenda: import a schedule.")


@agenda.command("import")
@click.argument("event_slug")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--dry-run", is_flag=True, help="Only show what would change.")
@click.option("--remove-missing", is_flag=True,
              help="Remove imported sessions the file no longer lists (released ones are cancelled).")
@with_appcontext
def import_command(event_slug: str, file: Path, dry_run: bool, remove_missing: bool) -> None:
    """Import a frab/pretalx schedule.xml into the event's working agenda (all or nothing; not published)."""
    from sqlalchemy import select

    from conference.agenda.frab_reader import ScheduleFileError, parse_schedule
    from conference.agenda.importing import apply_import, preview_import
    from conference.core.after_commit import commit
    from conference.core.errors import DomainError
    from conference.events.models import Event
    from conference.extensions import db
    from conference.settings import get_settings

    event = db.session.scalar(select(Event).where(Event.slug == event_slug))
    if event is None:
        raise click.ClickException(f"No event with slug {event_slug!r}")
    limit = get_settings().schedule_import_max_bytes
    with file.open("rb") as source:
        data = source.read(limit + 1)
    try:
        schedule = parse_schedule(data, default_timezone=event.timezone, max_bytes=limit)
        result = preview_import(event, schedule, remove_missing=remove_missing)
        if not dry_run and not result.plan.errors:
            result = apply_import(event, schedule, remove_missing=remove_missing, actor=None)
            commit()
    except ScheduleFileError as error:
        raise click.ClickException("the file cannot be imported:\n  " + "\n  ".join(error.problems)) from None
    except DomainError as error:
        db.session.rollback()
        raise click.ClickException(error.message) from None
    plan = result.plan
    for change in plan.changes:
        where = f" (line {change.line})" if change.line else ""
        click.echo(f"{change.action:<7} {change.kind:<8} {change.name}{where}")
        for name, before, after in change.details:
            click.echo(f"          {name}: {before or '-'} -> {after or '-'}")
    for message in plan.warnings:
        click.echo(f"warning: {message}")
    for problem in result.new_problems:
        click.echo(f"{problem.severity}: {problem.message}")
    if plan.errors:
        raise click.ClickException("the import is refused:\n  " + "\n  ".join(plan.errors))
    counts = ", ".join(f"{plan.count(a)} {a}" for a in ("create", "update", "cancel", "delete", "keep"))
    if dry_run:
        click.echo(f"Dry run, nothing changed. Sessions: {counts}.")
    else:
        click.echo(f"Imported into the working agenda of {event.slug} (publish a release to show it). "
                   f"Sessions: {counts}.")


COMMANDS = (agenda,)
