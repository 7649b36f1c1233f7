"""Uploaded images (speaker photos, event logos): bounded, decoded safely, re-encoded, stored under a server name."""

from __future__ import annotations

import io
import os
import secrets
import tempfile
import warnings
from pathlib import Path
from typing import IO, Any

from PIL import Image, ImageOps, UnidentifiedImageError

FORMATS = ("JPEG", "PNG", "WEBP", "GIF")


class ImageRefused(Exception):
    """The upload is not a usable image; `reason` is one of "too_large", "empty", "too_many_pixels",
    "not_an_image" (callers word the message for their field)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def decode_image(source: IO[bytes], *, max_bytes: int, max_pixels: int) -> Image.Image:
    """The image in `source` as RGBA, turned upright; at most `max_bytes` read and `max_pixels` decoded.

    The pixel count comes from the header before anything is decoded, so a decompression bomb costs nothing.
    """
    data = source.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise ImageRefused("too_large")
    if not data:
        raise ImageRefused("empty")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data), formats=FORMATS) as image:
                width, height = image.size
                if width < 1 or height < 1 or width * height > max_pixels:
                    raise ImageRefused("too_many_pixels")
                image.seek(0)
                image.load()
                return ImageOps.exif_transpose(image).convert("RGBA")
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ImageRefused("too_many_pixels") from None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError, EOFError):
        raise ImageRefused("not_an_image") from None


def store_file(directory: Path, data: bytes, suffix: str) -> str:
    """Write `data` atomically under a new random name in `directory`; returns the name."""
    directory.mkdir(parents=True, exist_ok=True)
    name = f"{secrets.token_hex(16)}{suffix}"
    handle, temp_name = tempfile.mkstemp(dir=directory, prefix=".upload-", suffix=".part")
    try:
        with os.fdopen(handle, "wb") as sink:
            sink.write(data)
        os.replace(temp_name, directory / name)
    except BaseException:
        Path(temp_name).unlink(missing_ok=True)
        raise
    return name


def replace_stored_file(owner: Any, attribute: str, directory: Path, new_name: str | None, *,
                        remove: bool) -> None:
    """Point `owner.<attribute>` at the stored file `new_name` (or at none when `remove`); the file it pointed at
    before is deleted after the commit (a rollback keeps it)."""
    from conference.core import after_commit

    old = getattr(owner, attribute)
    if new_name is not None:
        setattr(owner, attribute, new_name)
    elif remove:
        setattr(owner, attribute, None)
    if old and old != getattr(owner, attribute):
        after_commit.defer(remove_stored_file, directory / old)


def remove_stored_file(path: Path) -> None:
    path.unlink(missing_ok=True)
