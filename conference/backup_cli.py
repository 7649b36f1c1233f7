"""`conference backup DIR` and `conference restore DIR`: consistent backups of the database and the uploads."""

from __future__ import annotations

from pathlib import Path

import click
from flask import current_app
from flask.cli import with_appcontext


@click.command("backup")
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
@click.option("--verify", "verify_only", is_flag=True, help="Only check the hashes of an existing backup.")
@with_appcontext
def backup_command(directory: Path, verify_only: bool) -> None:
    """Write a backup (database snapshot + upload folder + sha256 manifest) into DIRECTORY while running."""
    from conference.core.backup import BackupError, create_backup, verify_backup

    try:
        if verify_only:
            manifest = verify_backup(directory)
            click.echo(f"Backup {directory} is intact: database and {len(manifest['files'])} files match.")
            return
        result = create_backup(current_app._get_current_object(), directory)  # type: ignore[attr-defined]
    except BackupError as error:
        raise click.ClickException(str(error)) from None
    click.echo(f"Backup written to {result.directory}: {result.database} database, {result.files} files "
               f"({result.bytes} bytes), manifest with sha256 hashes.")


@click.command("restore")
@click.argument("directory", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--replace", is_flag=True, help="Overwrite a database and upload folder that are not empty.")
@with_appcontext
def restore_command(directory: Path, replace: bool) -> None:
    """Restore a backup made by `conference backup` into this instance (stop the server first)."""
    from conference.core.backup import BackupError, restore_backup
    from conference.extensions import db

    db.session.remove()
    db.engine.dispose()  # no pooled connection may hold the old file
    try:
        result = restore_backup(current_app._get_current_object(), directory,  # type: ignore[attr-defined]
                                replace=replace)
    except BackupError as error:
        raise click.ClickException(str(error)) from None
    click.echo(f"Restored {result.database} database and {result.files} files ({result.bytes} bytes); "
               "every hash matches.")


COMMANDS = (backup_command, restore_command)
