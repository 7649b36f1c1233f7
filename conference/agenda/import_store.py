"""Previews of a schedule import kept between "preview" and "apply": one JSON file per preview in the instance
folder, named by a random token, readable only by the person and event that made it, for PREVIEW_MAX_AGE."""

from __future__ import annotations

import json
import os
import re
import secrets
import time
from pathlib import Path
from typing import Any

PREVIEW_MAX_AGE = 3600
TOKEN_PATTERN = re.compile(r"^[A-Za-z0-9_-]{43}$")


def _folder(instance_path: str) -> Path:
    folder = Path(instance_path) / "schedule-imports"
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    return folder


def save_preview(instance_path: str, data: dict[str, Any]) -> str:
    """Store `data` (which names event_id and user_id) and return its token; forgets expired previews."""
    folder = _folder(instance_path)
    now = time.time()
    for old in folder.glob("*.json"):
        try:
            if now - old.stat().st_mtime > PREVIEW_MAX_AGE:
                old.unlink()
        except FileNotFoundError:
            pass
    token = secrets.token_urlsafe(32)
    path = folder / f"{token}.json"
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as target:
        json.dump(data, target)
    return token


def load_preview(instance_path: str, token: str, *, event_id: int, user_id: int) -> dict[str, Any] | None:
    """The stored preview, or None when the token is malformed, unknown, expired or someone else's."""
    if not isinstance(token, str) or not TOKEN_PATTERN.match(token):
        return None
    path = _folder(instance_path) / f"{token}.json"
    try:
        if time.time() - path.stat().st_mtime > PREVIEW_MAX_AGE:
            path.unlink()
            return None
        data = json.loads(path.read_text(encoding="utf-8"))
    except (FileNotFoundError, ValueError):
        return None
    if data.get("event_id") != event_id or data.get("user_id") != user_id:
        return None
    return data


def discard_preview(instance_path: str, token: str) -> None:
    if TOKEN_PATTERN.match(token or ""):
        (_folder(instance_path) / f"{token}.json").unlink(missing_ok=True)
