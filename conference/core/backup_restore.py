"""Restoring a backup: everything checked first, then staged next to the instance, then swapped in.

Order of work, so that a refusal or a failure leaves the instance exactly as it was:

1. `verify_backup`: every manifest name stays inside the backup folder, no part of the backup is a symbolic
   link, every hash matches; the encrypted key material opens with the passphrase. Nothing is written yet.
2. Staging: the uploads are copied into a new folder next to the upload folder, the SQLite database and the
   secret key into new files next to theirs (each copy hashed again as it is written). PostgreSQL is restored
   with `pg_restore --single-transaction`: all or nothing, on the database server's side.
3. The swap: each staged item is renamed over its place (`os.replace`, atomic per item, same file system);
   the old items are first renamed aside, and if a later rename fails, the earlier ones are put back.
4. The old items are deleted only after every rename has succeeded.
"""

from __future__ import annotations

import os
import secrets as random
import shutil
import sqlite3
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

from flask import Flask

from conference.core.backup import (
    FILES_DIR,
    BackupError,
    BackupResult,
    _database_kind,
    _pg_env,
    _sqlite_path,
    copy_nofollow,
    member,
    verify_backup,
)
from conference.core.backup_secrets import SECRETS_FILE, SecretsError, unseal

SECRET_KEY_FILE = "secret_key"
SQLITE_SIDE_FILES = ("-wal", "-shm", "-journal")


def _sqlite_has_data(path: Path) -> bool:
    if not path.exists() or path.stat().st_size == 0:
        return False
    with sqlite3.connect(path) as connection:
        tables = connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall()
    return bool(tables)


def _postgres_has_tables(url: str) -> bool:
    from sqlalchemy import create_engine, inspect

    engine = create_engine(url)
    try:
        return bool(inspect(engine).get_table_names())
    finally:
        engine.dispose()


def open_secrets(directory: Path, manifest: dict[str, Any], passphrase: str | None,
                 without_secrets: bool) -> dict[str, Any] | None:
    """The backup's key material, None when it has none or the operator chose to leave it out."""
    if not (manifest.get("secrets") or {}).get("included") or without_secrets:
        return None
    if passphrase is None:
        raise BackupError("this backup holds the instance's secret key, encrypted: give its passphrase "
                          "(--passphrase-file or CONFERENCE_BACKUP_PASSPHRASE), or --without-secrets to restore "
                          "without it (logins, calendar feeds and invitation links then stop working)")
    try:
        return unseal(member(directory, SECRETS_FILE).read_bytes(), passphrase)
    except SecretsError as error:
        raise BackupError(str(error)) from None


class _Swap:
    """Renames with an undo list: `put(staged, place)` moves an existing `place` aside first."""

    def __init__(self) -> None:
        self.done: list[tuple[Path, Path | None]] = []  # (place, where the old item went)

    def put(self, staged: Path, place: Path) -> None:
        aside: Path | None = None
        if place.exists() or place.is_symlink():
            aside = place.with_name(f".{place.name}.old-{random.token_hex(4)}")
            os.rename(place, aside)
        try:
            os.replace(staged, place)
        except BaseException:
            if aside is not None:
                os.rename(aside, place)
            raise
        self.done.append((place, aside))

    def aside(self, place: Path) -> None:
        """Move `place` out of the way (SQLite's side files of the old database)."""
        if place.exists():
            target = place.with_name(f".{place.name}.old-{random.token_hex(4)}")
            os.rename(place, target)
            self.done.append((place, target))

    def undo(self) -> None:
        for place, aside in reversed(self.done):
            if aside is None:
                _remove(place)
            else:
                _remove(place)
                os.rename(aside, place)
        self.done.clear()

    def finish(self) -> None:
        for _place, aside in self.done:
            if aside is not None:
                _remove(aside)


def _resolved(path: Path) -> Path:
    return path.resolve() if path.is_symlink() else path


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def _stage_uploads(directory: Path, manifest: dict[str, Any], staging: Path,
                   copy: Callable[[Path, Path], tuple[str, int]]) -> int:
    staging.mkdir(mode=0o750, parents=False)
    total = 0
    for relative, info in manifest["files"].items():
        target = staging / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        digest, size = copy(member(directory, f"{FILES_DIR}/{relative}"), target)
        if digest != info["sha256"]:
            raise BackupError(f"{relative} changed while it was restored")
        total += size
    return total


def _write_key(instance: Path, material: dict[str, Any]) -> Path:
    staged = instance / f".{SECRET_KEY_FILE}.restore-{random.token_hex(4)}"
    fd = os.open(staged, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(material["secret_key"])
    return staged


def restore_backup(app: Flask, directory: Path, *, replace: bool = False, passphrase: str | None = None,
                   without_secrets: bool = False,
                   copy: Callable[[Path, Path], tuple[str, int]] = copy_nofollow) -> BackupResult:
    """Restore `directory` into this instance (database, uploads, secret key), all or nothing.

    `copy` copies one file and returns its hash and size (the tests put a failing one in to prove a failure
    midway leaves the instance as it was)."""
    directory = Path(directory)
    manifest = verify_backup(directory)
    url = app.config["DATABASE_URL"]
    kind = _database_kind(url)
    if kind != manifest["database"]["kind"]:
        raise BackupError(f"the backup holds a {manifest['database']['kind']} database, this instance uses {kind}")
    material = open_secrets(directory, manifest, passphrase, without_secrets)
    # An upload folder or database that is itself a link (a bigger disk) is resolved once: the restore puts
    # the data where the link points and keeps the link; nothing inside them is followed.
    uploads = _resolved(Path(app.config["UPLOAD_DIR"]))
    instance = Path(app.instance_path)
    has_files = uploads.is_dir() and any(p.is_file() for p in uploads.rglob("*"))
    source_db = member(directory, manifest["database"]["file"])
    if not replace and (has_files or (_sqlite_has_data(_sqlite_path(url)) if kind == "sqlite"
                                      else _postgres_has_tables(url))):
        raise BackupError("the target instance is not empty (use --replace to overwrite it)")
    uploads.parent.mkdir(parents=True, exist_ok=True)
    staged: list[Path] = []
    swap = _Swap()
    try:
        staging = uploads.with_name(f".{uploads.name}.restore-{random.token_hex(4)}")
        staged.append(staging)
        total = _stage_uploads(directory, manifest, staging, copy)
        if material is not None:
            staged.append(_write_key(instance, material))
        if kind == "sqlite":
            target = _resolved(_sqlite_path(url))
            target.parent.mkdir(parents=True, exist_ok=True)
            db_staged = target.with_name(f".{target.name}.restore-{random.token_hex(4)}")
            staged.append(db_staged)
            digest, _size = copy(source_db, db_staged)
            if digest != manifest["database"]["sha256"]:
                raise BackupError("the database file changed while it was restored")
            with sqlite3.connect(db_staged) as check:
                if check.execute("PRAGMA integrity_check").fetchone()[0] != "ok":
                    raise BackupError("the restored database failed its integrity check")
            check.close()
        else:
            _pg_restore(url, source_db, replace=replace)  # one transaction: all or nothing
        # Everything is staged: swap it in, undoing what was done if any rename fails.
        if kind == "sqlite":
            for suffix in SQLITE_SIDE_FILES:
                swap.aside(Path(f"{target}{suffix}"))
            swap.put(db_staged, target)
        swap.put(staging, uploads)
        if material is not None:
            swap.put(staged[1], instance / SECRET_KEY_FILE)
    except BaseException:
        swap.undo()
        for path in staged:
            _remove(path)
        raise
    swap.finish()
    return BackupResult(directory, len(manifest["files"]), total, kind, material is not None)


def _pg_restore(url: str, source: Path, *, replace: bool) -> None:
    if shutil.which("pg_restore") is None:
        raise BackupError("pg_restore is not installed (Debian: postgresql-client)")
    args, env = _pg_env(url)
    flags = ["--clean", "--if-exists"] if replace else []
    result = subprocess.run(["pg_restore", "--no-owner", "--exit-on-error", "--single-transaction", *flags, *args,
                             str(source)], env=env, capture_output=True, text=True, timeout=3600, check=False)
    if result.returncode != 0:
        raise BackupError(f"pg_restore failed: {result.stderr.strip()}")
