"""Rotation of scheduled backups: `conference backup --keep N DIR` writes DIR/<UTC timestamp>/ and keeps N."""

from __future__ import annotations

import re
import shutil
from datetime import UTC, datetime
from pathlib import Path

from conference.core.backup import MANIFEST

STAMP = "%Y%m%dT%H%M%SZ"
STAMP_PATTERN = re.compile(r"^\d{8}T\d{6}Z(-\d+)?$")


def timestamped(parent: Path, now: datetime | None = None) -> Path:
    """A new, unused DIR/<timestamp> (a second backup in the same second gets a suffix)."""
    parent.mkdir(parents=True, exist_ok=True)
    name = (now or datetime.now(UTC)).strftime(STAMP)
    candidate, number = parent / name, 1
    while candidate.exists():
        candidate, number = parent / f"{name}-{number}", number + 1
    return candidate


def prune_backups(parent: Path, keep: int) -> list[Path]:
    """Delete all but the newest `keep` complete backups in `parent`; only folders named by `timestamped` and
    holding a manifest count (nothing else there is touched, symbolic links never). Returns what was removed."""
    backups = sorted(p for p in parent.iterdir()
                     if STAMP_PATTERN.match(p.name) and p.is_dir() and not p.is_symlink() and (p / MANIFEST).is_file())
    removed = backups[:-keep] if keep > 0 else []
    for path in removed:
        shutil.rmtree(path)
    return removed
