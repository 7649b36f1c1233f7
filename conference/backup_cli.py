"""`conference backup DIR` and `conference restore DIR`: backups of the database, the uploads and the key material."""

from __future__ import annotations

import os
from pathlib import Path

import click
from flask import current_app
from flask.cli import with_appcontext

PASSPHRASE_ENV = "CONFERENCE_BACKUP_PASSPHRASE"


def _passphrase(passphrase_file: Path | None) -> str | None:
    """From the file (first line), else from CONFERENCE_BACKUP_PASSPHRASE, else None. Never an argument:
    arguments show in `ps` and in shell histories."""
    from conference.core.backup_secrets import SecretsError, check_passphrase

    if passphrase_file is not None:
        try:
            text = passphrase_file.read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError) as error:
            raise click.ClickException(f"cannot read the passphrase file: {error}") from None
        value: str | None = text[0] if text else ""
    else:
        value = os.environ.get(PASSPHRASE_ENV) or None
    if value is None:
        return None
    try:
        return check_passphrase(value)
    except SecretsError as error:
        raise click.ClickException(str(error)) from None


PASSPHRASE_OPTION = click.option(
    "--passphrase-file", type=click.Path(dir_okay=False, path_type=Path),
    help=f"File whose first line is the passphrase for the encrypted secrets (or set {PASSPHRASE_ENV}).")


@click.command("backup")
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
@click.option("--verify", "verify_only", is_flag=True, help="Only check the names and hashes of an existing backup.")
@PASSPHRASE_OPTION
@click.option("--with-secrets/--without-secrets", "with_secrets", default=None,
              help="Include the secret key (encrypted; needs a passphrase) or leave it out. Default: included "
                   "when a passphrase is given.")
@click.option("--keep", type=click.IntRange(min=1), default=None,
              help="Write DIRECTORY/<timestamp>/ and keep only the newest N backups there (rotation).")
@with_appcontext
def backup_command(directory: Path, verify_only: bool, passphrase_file: Path | None, with_secrets: bool | None,
                   keep: int | None) -> None:
    """Write a backup (database snapshot, upload folder, encrypted secret key, sha256 manifest) while running."""
    from conference.core.backup import WITHOUT_SECRETS_NOTE, BackupError, create_backup, verify_backup
    from conference.core.backup_rotation import prune_backups, timestamped

    passphrase = _passphrase(passphrase_file)
    try:
        if verify_only:
            manifest = verify_backup(directory)
            secrets = "with encrypted secrets" if (manifest.get("secrets") or {}).get("included") else "without secrets"
            click.echo(f"Backup {directory} is intact: database and {len(manifest['files'])} files match ({secrets}).")
            return
        if with_secrets and passphrase is None:
            raise click.ClickException(f"--with-secrets needs a passphrase: --passphrase-file or {PASSPHRASE_ENV}")
        target = timestamped(directory) if keep else directory
        result = create_backup(current_app._get_current_object(), target,  # type: ignore[attr-defined]
                               passphrase=None if with_secrets is False else passphrase)
        removed = prune_backups(directory, keep) if keep else []
    except BackupError as error:
        raise click.ClickException(str(error)) from None
    for warning in result.warnings:
        click.echo(f"Warning: {warning}", err=True)
    click.echo(f"Backup written to {result.directory}: {result.database} database, {result.files} files "
               f"({result.bytes} bytes), manifest with sha256 hashes"
               + (", secret key encrypted with the passphrase." if result.secrets else "."))
    if not result.secrets:
        click.echo(WITHOUT_SECRETS_NOTE, err=True)
    for old in removed:
        click.echo(f"Removed the old backup {old}.")


@click.command("restore")
@click.argument("directory", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--replace", is_flag=True, help="Overwrite a database and upload folder that are not empty.")
@PASSPHRASE_OPTION
@click.option("--without-secrets", is_flag=True,
              help="Do not restore the secret key even if the backup has it (logins, feeds, invitations end).")
@with_appcontext
def restore_command(directory: Path, replace: bool, passphrase_file: Path | None, without_secrets: bool) -> None:
    """Restore a backup made by `conference backup` into this instance (stop the server first), all or nothing."""
    from conference.core.backup import WITHOUT_SECRETS_NOTE, BackupError
    from conference.core.backup_restore import restore_backup
    from conference.extensions import db

    db.session.remove()
    db.engine.dispose()  # no pooled connection may hold the old file
    try:
        result = restore_backup(current_app._get_current_object(), directory,  # type: ignore[attr-defined]
                                replace=replace, passphrase=_passphrase(passphrase_file),
                                without_secrets=without_secrets)
    except BackupError as error:
        raise click.ClickException(str(error)) from None
    click.echo(f"Restored {result.database} database and {result.files} files ({result.bytes} bytes)"
               + (" and the secret key" if result.secrets else "") + "; every hash matches.")
    if not result.secrets:
        click.echo(WITHOUT_SECRETS_NOTE.replace("this backup", "what was restored"), err=True)
    elif os.environ.get("CONFERENCE_SECRET_KEY"):
        click.echo("Warning: CONFERENCE_SECRET_KEY is set and overrides the restored instance/secret_key; "
                   "unset it (or set it to the old key) for old logins and links to work.", err=True)


COMMANDS = (backup_command, restore_command)
