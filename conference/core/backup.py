"""Backups while the platform runs: a consistent database snapshot plus the upload folder with sha256 manifest.

SQLite is copied with the sqlite3 online backup API (one read transaction, so a chat that writes meanwhile
cannot tear the copy); PostgreSQL with `pg_dump --format=custom` (a single snapshot transaction) and restored
with `pg_restore`. The database is snapshotted first, then the files: a file uploaded in between is an
orphan in the backup (harmless), never a row whose file is missing. Restore checks every hash before it
writes anything and again after, and refuses a non-empty target unless told to replace it.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sqlite3
import subprocess
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from flask import Flask
from sqlalchemy.engine import make_url

from conference.settings import get_settings

MANIFEST = "manifest.json"
SQLITE_FILE = "database.sqlite3"
PG_FILE = "database.pgdump"
FILES_DIR = "uploads"
FORMAT_VERSION = 1
CHUNK = 1024 * 1024
#: Half-written uploads (streamed to a temporary name first) are never part of a backup.
SKIPPED_PREFIXES = (".upload-",)


class BackupError(Exception):
    """The backup or restore cannot be done; the message says why, for the operator."""


@dataclass(frozen=True)
class BackupResult:
    directory: Path
    files: int
    bytes: int
    database: str


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


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


def create_backup(app: Flask, directory: Path) -> BackupResult:
    """Write a backup into `directory` (created; must be empty). Returns what was saved."""
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
        for path in sorted(uploads.rglob("*")) if uploads.exists() else []:
            if not path.is_file() or path.name.startswith(SKIPPED_PREFIXES):
                continue
            relative = path.relative_to(uploads).as_posix()
            target = work / FILES_DIR / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            try:
                shutil.copyfile(path, target)
            except FileNotFoundError:
                continue  # deleted while we copied: its row was deleted too (or is an orphan already)
            files[relative] = {"sha256": sha256_of(target), "size": target.stat().st_size}
            total += files[relative]["size"]
        manifest = {
            "format": FORMAT_VERSION,
            "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "database": {"kind": kind, "file": db_file.name, "sha256": sha256_of(db_file)},
            "files": files,
        }
        (work / MANIFEST).write_text(json.dumps(manifest, indent=1, sort_keys=True), encoding="utf-8")
        directory.parent.mkdir(parents=True, exist_ok=True)
        if directory.exists():
            directory.rmdir()
        work.rename(directory)  # the backup appears complete or not at all
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    return BackupResult(directory, len(files), total, kind)


def read_manifest(directory: Path) -> dict[str, Any]:
    try:
        manifest = json.loads((Path(directory) / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise BackupError(f"no readable {MANIFEST} in {directory}: {error}") from None
    if manifest.get("format") != FORMAT_VERSION:
        raise BackupError(f"unknown backup format {manifest.get('format')!r}")
    return manifest


def verify_backup(directory: Path) -> dict[str, Any]:
    """Check every hash of a backup; raise BackupError naming the first file that does not match."""
    directory = Path(directory)
    manifest = read_manifest(directory)
    database = manifest["database"]
    db_file = directory / database["file"]
    if not db_file.is_file() or sha256_of(db_file) != database["sha256"]:
        raise BackupError(f"the database file {db_file.name} is missing or damaged")
    for relative, info in manifest["files"].items():
        path = directory / FILES_DIR / relative
        if ".." in Path(relative).parts or Path(relative).is_absolute():
            raise BackupError(f"unsafe path in manifest: {relative}")
        if not path.is_file() or sha256_of(path) != info["sha256"]:
            raise BackupError(f"{relative} is missing or damaged")
    return manifest


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


def restore_backup(app: Flask, directory: Path, *, replace: bool = False) -> BackupResult:
    """Restore `directory` into this instance's database and upload folder (verified before and after)."""
    manifest = verify_backup(directory)
    url = str(get_settings(app).database_url)
    kind = _database_kind(url)
    if kind != manifest["database"]["kind"]:
        raise BackupError(f"the backup holds a {manifest['database']['kind']} database, this instance uses {kind}")
    uploads = Path(str(get_settings(app).upload_dir))
    existing = [p for p in uploads.rglob("*") if p.is_file()] if uploads.exists() else []
    source_db = Path(directory) / manifest["database"]["file"]
    if kind == "sqlite":
        target = _sqlite_path(url)
        if not replace and (_sqlite_has_data(target) or existing):
            raise BackupError("the target instance is not empty (use --replace to overwrite it)")
        target.parent.mkdir(parents=True, exist_ok=True)
        temporary = target.with_name(f".{target.name}.restore")
        shutil.copyfile(source_db, temporary)
        for suffix in ("-wal", "-shm", "-journal"):
            Path(f"{target}{suffix}").unlink(missing_ok=True)
        os.replace(temporary, target)
    else:
        if shutil.which("pg_restore") is None:
            raise BackupError("pg_restore is not installed (Debian: postgresql-client)")
        if not replace and (_postgres_has_tables(url) or existing):
            raise BackupError("the target instance is not empty (use --replace to overwrite it)")
        args, env = _pg_env(url)
        flags = ["--clean", "--if-exists"] if replace else []
        result = subprocess.run(["pg_restore", "--no-owner", "--exit-on-error", *flags, *args, str(source_db)],
                                env=env, capture_output=True, text=True, timeout=3600, check=False)
        if result.returncode != 0:
            raise BackupError(f"pg_restore failed: {result.stderr.strip()}")
    if replace:
        for path in existing:
            path.unlink()
    total = 0
    for relative, info in manifest["files"].items():
        target_file = uploads / relative
        target_file.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(Path(directory) / FILES_DIR / relative, target_file)
        if sha256_of(target_file) != info["sha256"]:
            raise BackupError(f"{relative} changed while it was restored")
        total += info["size"]
    return BackupResult(Path(directory), len(manifest["files"]), total, kind)
