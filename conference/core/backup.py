"""Backups while the platform runs: a consistent database snapshot, the upload folder and the instance's key
material, with a sha256 manifest.

SQLite is copied with the sqlite3 online backup API (one read transaction, so a chat that writes meanwhile
cannot tear the copy); PostgreSQL with `pg_dump --format=custom` (a single snapshot transaction) and restored
with `pg_restore --single-transaction`. The database is snapshotted first, then the files: a file uploaded in
between is an orphan in the backup (harmless), never a row whose file is missing. The secret key goes in only
encrypted with the operator's passphrase (`conference.core.backup_secrets`); without one the backup says that
it lacks the key and what that costs. Symbolic links are never followed: one in the upload folder is left out
with a warning. Restoring is `conference.core.backup_restore`.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sqlite3
import stat
import subprocess
import tempfile
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import Any

from flask import Flask
from sqlalchemy.engine import make_url

from conference.core.backup_secrets import SECRETS_FILE, key_material, seal
from conference.settings import get_settings

MANIFEST = "manifest.json"
SQLITE_FILE = "database.sqlite3"
PG_FILE = "database.pgdump"
FILES_DIR = "uploads"
FORMAT_VERSION = 2
READABLE_FORMATS = (1, 2)  # format 1: before the key material was part of a backup
CHUNK = 1024 * 1024
#: Half-written uploads (streamed to a temporary name first) are never part of a backup.
SKIPPED_PREFIXES = (".upload-",)
WITHOUT_SECRETS_NOTE = (
    "The secret key is NOT in this backup. An instance restored from it gets a new key: every login (browser "
    "cookie) ends, every personal calendar feed address and every open speaker invitation, confirmation, "
    "password and unsubscribe link stops working (API tokens keep working). Give a passphrase "
    "(--passphrase-file or CONFERENCE_BACKUP_PASSPHRASE) to include the key encrypted.")
class BackupError(Exception):
    """The backup or restore cannot be done; the message says why, for the operator."""


@dataclass(frozen=True)
class BackupResult:
    directory: Path
    files: int
    bytes: int
    database: str
    secrets: bool = False  # the key material is in it (encrypted)
    warnings: tuple[str, ...] = field(default=())


def open_nofollow(path: Path) -> int:
    """A read-only descriptor of `path` itself: a symbolic link there is an error, never followed."""
    return os.open(path, os.O_RDONLY | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0))


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with os.fdopen(open_nofollow(path), "rb") as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def copy_nofollow(source: Path, target: Path) -> tuple[str, int]:
    """Copy a regular file without following links at the source; returns the copy's sha256 and size."""
    digest, size = hashlib.sha256(), 0
    fd = open_nofollow(source)
    with os.fdopen(fd, "rb") as reader:
        if not stat.S_ISREG(os.fstat(reader.fileno()).st_mode):
            raise OSError(f"{source} is not a regular file")
        with target.open("xb") as writer:
            while chunk := reader.read(CHUNK):
                digest.update(chunk)
                size += len(chunk)
                writer.write(chunk)
    return digest.hexdigest(), size


def _database_kind(url: str) -> str:
    backend = make_url(url).get_backend_name()
    if backend not in ("sqlite", "postgresql"):
        raise BackupError(f"backups support SQLite and PostgreSQL, not {backend}")
    return backend


def _sqlite_path(url: str) -> Path:
    database = make_url(url).database
    if not database or database == ":memory:":
        raise BackupError("an in-memory SQLite database cannot be backed up")
    return Path(database)


def _pg_env(url: str) -> tuple[list[str], dict[str, str]]:
    parsed = make_url(url)
    env = dict(os.environ)
    if parsed.password:
        env["PGPASSWORD"] = parsed.password
    args = [f"--dbname={parsed.database}"]
    if parsed.host:
        args.append(f"--host={parsed.host}")
    if parsed.port:
        args.append(f"--port={parsed.port}")
    if parsed.username:
        args.append(f"--username={parsed.username}")
    return args, env


def _snapshot_sqlite(source: Path, target: Path) -> None:
    if not source.exists():
        raise BackupError(f"no database at {source}")
    src = sqlite3.connect(f"file:{source}?mode=ro", uri=True, timeout=30)
    dst = sqlite3.connect(target)
    try:
        with dst:
            src.backup(dst)  # all pages in one step, under one read transaction: a consistent snapshot
        check = dst.execute("PRAGMA integrity_check").fetchone()[0]
        if check != "ok":
            raise BackupError(f"the snapshot failed its integrity check: {check}")
    finally:
        src.close()
        dst.close()


def _snapshot_postgres(url: str, target: Path) -> None:
    if shutil.which("pg_dump") is None:
        raise BackupError("pg_dump is not installed (Debian: postgresql-client)")
    args, env = _pg_env(url)
    result = subprocess.run(["pg_dump", "--format=custom", "--no-owner", f"--file={target}", *args], env=env,
                            capture_output=True, text=True, timeout=3600, check=False)
    if result.returncode != 0:
        raise BackupError(f"pg_dump failed: {result.stderr.strip()}")


def _upload_files(uploads: Path) -> tuple[list[Path], list[str]]:
    """The regular files under `uploads` (never through a link) and a warning for each link left out."""
    files: list[Path] = []
    warnings: list[str] = []
    if not uploads.is_dir():
        return files, warnings
    for root, dirnames, filenames in os.walk(uploads, followlinks=False):
        base = Path(root)
        for name in sorted(dirnames):
            if (base / name).is_symlink():
                warnings.append(f"skipped the symbolic link {(base / name).relative_to(uploads)}/ (not followed)")
        for name in sorted(filenames):
            path = base / name
            mode = path.lstat().st_mode
            if stat.S_ISLNK(mode):
                warnings.append(f"skipped the symbolic link {path.relative_to(uploads)} (its target is not copied)")
            elif stat.S_ISREG(mode) and not name.startswith(SKIPPED_PREFIXES):
                files.append(path)
    return sorted(files), warnings


def create_backup(app: Flask, directory: Path, *, passphrase: str | None = None) -> BackupResult:
    """Write a backup into `directory` (created; must be empty). With `passphrase` the instance's key material
    is included, encrypted; without, it is not (`WITHOUT_SECRETS_NOTE`). Returns what was saved."""
    directory = Path(directory)
    if directory.exists() and any(directory.iterdir()):
        raise BackupError(f"{directory} is not empty")
    url = str(get_settings(app).database_url)
    kind = _database_kind(url)
    work = Path(tempfile.mkdtemp(prefix=".backup-", dir=directory.parent if directory.parent.exists() else None))
    try:
        db_file = work / (SQLITE_FILE if kind == "sqlite" else PG_FILE)
        if kind == "sqlite":
            _snapshot_sqlite(_sqlite_path(url), db_file)
        else:
            _snapshot_postgres(url, db_file)
        uploads = Path(str(get_settings(app).upload_dir))
        files: dict[str, dict[str, Any]] = {}
        total = 0
        paths, warnings = _upload_files(uploads)
        for path in paths:
            relative = path.relative_to(uploads).as_posix()
            target = work / FILES_DIR / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            try:
                digest, size = copy_nofollow(path, target)
            except FileNotFoundError:
                continue  # deleted while we copied: its row was deleted too (or is an orphan already)
            except OSError as error:  # replaced by a link meanwhile (ELOOP), or no longer a regular file
                target.unlink(missing_ok=True)
                warnings.append(f"skipped {relative}: {error.strerror or error}")
                continue
            files[relative] = {"sha256": digest, "size": size}
            total += size
        secrets: dict[str, Any] = {"included": False}
        if passphrase is not None:
            (work / SECRETS_FILE).write_bytes(seal(key_material(app.config), passphrase))
            secrets = {"included": True, "file": SECRETS_FILE, "sha256": sha256_of(work / SECRETS_FILE)}
        manifest = {
            "format": FORMAT_VERSION,
            "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "database": {"kind": kind, "file": db_file.name, "sha256": sha256_of(db_file)},
            "files": files,
            "secrets": secrets,
        }
        (work / MANIFEST).write_text(json.dumps(manifest, indent=1, sort_keys=True), encoding="utf-8")
        work.chmod(0o700)  # the database holds everyone's data, encrypted secrets or not
        directory.parent.mkdir(parents=True, exist_ok=True)
        if directory.exists():
            directory.rmdir()
        work.rename(directory)  # the backup appears complete or not at all
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    return BackupResult(directory, len(files), total, kind, secrets["included"], tuple(warnings))


def read_manifest(directory: Path) -> dict[str, Any]:
    try:
        fd = open_nofollow(Path(directory) / MANIFEST)
        with os.fdopen(fd, "rb") as handle:
            manifest = json.loads(handle.read(16 * 1024 * 1024))
    except (OSError, ValueError) as error:
        raise BackupError(f"no readable {MANIFEST} in {directory}: {error}") from None
    if not isinstance(manifest, dict) or manifest.get("format") not in READABLE_FORMATS:
        raise BackupError(f"unknown backup format {manifest.get('format') if isinstance(manifest, dict) else None!r}")
    if not isinstance(manifest.get("database"), dict) or not isinstance(manifest.get("files"), dict):
        raise BackupError(f"{MANIFEST} lacks the database or the file list")
    return manifest


def member(directory: Path, relative: Any) -> Path:
    """The path of a file the manifest names, inside the backup; refused when the name could leave the backup
    folder (absolute, `..`, odd separators) or when any part of the way is a symbolic link."""
    if not isinstance(relative, str) or not relative or "\\" in relative or "\x00" in relative:
        raise BackupError(f"unsafe path in manifest: {relative!r}")
    pure = PurePosixPath(relative)
    if pure.is_absolute() or any(part in ("", ".", "..") for part in relative.split("/")):
        raise BackupError(f"unsafe path in manifest: {relative!r}")
    path = Path(directory)
    mode = 0
    for part in pure.parts:
        path = path / part
        try:
            mode = path.lstat().st_mode
        except FileNotFoundError:
            raise BackupError(f"{relative} is missing or damaged") from None
        if stat.S_ISLNK(mode):
            raise BackupError(f"symbolic link in the backup, refused: {relative}")
    if not stat.S_ISREG(mode):
        raise BackupError(f"{relative} is not a regular file")
    return path


def _check(directory: Path, relative: Any, expected: Any) -> None:
    path = member(directory, relative)
    try:
        actual = sha256_of(path)
    except OSError as error:
        raise BackupError(f"{relative} is not readable: {error}") from None
    if actual != expected:
        raise BackupError(f"{relative} is missing or damaged (its hash does not match)")


def verify_backup(directory: Path) -> dict[str, Any]:
    """Check every name and hash of a backup; raise BackupError naming the first file that does not pass."""
    directory = Path(directory)
    manifest = read_manifest(directory)
    database = manifest["database"]
    expected_file = {"sqlite": SQLITE_FILE, "postgresql": PG_FILE}.get(database.get("kind"))
    if database.get("file") != expected_file:
        raise BackupError(f"unsafe or unknown database file in manifest: {database.get('file')!r}")
    try:
        _check(directory, database["file"], database.get("sha256"))
    except BackupError as error:
        raise BackupError(f"the database file is missing or damaged: {error}") from None
    for relative, info in manifest["files"].items():
        if not isinstance(info, dict):
            raise BackupError(f"bad manifest entry for {relative!r}")
        _check(directory, f"{FILES_DIR}/{relative}", info.get("sha256"))
    secrets = manifest.get("secrets") or {"included": False}
    if secrets.get("included"):
        if secrets.get("file") != SECRETS_FILE:
            raise BackupError(f"unsafe or unknown secrets file in manifest: {secrets.get('file')!r}")
        _check(directory, SECRETS_FILE, secrets.get("sha256"))
    return manifest
