"""Uploaded images (speaker photos, event logos and header images): bounded, decoded in a sandboxed child,
re-encoded, stored under a server name.

`process_in_child(source, "conference.speakers.photos:photo_jpeg", max_bytes=...)` spools the upload into a
temporary file and runs the recipe in a child of `conference.core.children` (`conference.core.image_child`:
minimal environment, the JOB_MEMORY_MB/JOB_TIMEOUT limits, one of the process's JOB_WORKERS child slots, shared
with PDF cleaning and previews). The request waits for the answer without holding the event loop.
"""

from __future__ import annotations

import io
import json
import logging
import os
import secrets
import shutil
import tempfile
import warnings
from pathlib import Path
from typing import IO, Any

from PIL import Image, ImageOps, UnidentifiedImageError

FORMATS = ("JPEG", "PNG", "WEBP", "GIF")
CHILD_MODULE = "conference.core.image_child"
RESULT_MAX_BYTES = 16 * 1024 * 1024  # what a recipe may give back (a re-encoded, scaled image is far smaller)

log = logging.getLogger("conference.images")


class ImageRefused(Exception):
    """The upload is not a usable image; `reason` is one of "too_large", "empty", "too_many_pixels",
    "not_an_image", "too_complex" (its child ran out of memory, time or failed; callers word the message for
    their field)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def decode_image(source: IO[bytes], *, max_bytes: int, max_pixels: int, draft: int | None = None) -> Image.Image:
    """The image in `source` as RGBA, turned upright; at most `max_bytes` read and `max_pixels` decoded.

    The pixel count comes from the header before anything is decoded, so a decompression bomb costs nothing.
    `draft`: the caller scales the image to fit `draft` x `draft` or less, so a JPEG may be decoded at 1/2, 1/4
    or 1/8 of its size (never below `draft` on either side): a 24-megapixel photo then needs a fraction of the
    memory. Runs in a sandboxed child (`process_in_child`).
    """
    data = source.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise ImageRefused("too_large")
    if not data:
        raise ImageRefused("empty")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data), formats=FORMATS)
            width, height = image.size
            if width < 1 or height < 1 or width * height > max_pixels:
                raise ImageRefused("too_many_pixels")
            image.seek(0)
            if draft is not None and image.format == "JPEG":
                image.draft(image.mode, (draft, draft))
            image.load()
            del data
            ImageOps.exif_transpose(image, in_place=True)
            return image if image.mode == "RGBA" else image.convert("RGBA")
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ImageRefused("too_many_pixels") from None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError, EOFError):
        raise ImageRefused("not_an_image") from None


def process_in_child(source: IO[bytes], recipe: str, *, max_bytes: int, **options: Any) -> bytes:
    """The result of `recipe` ("module:function", see `conference.core.image_child`) for the uploaded image,
    computed in a sandboxed child; `ImageRefused` for a file that is too large, empty or no usable image, and
    ("too_complex") when the child fails, is killed by a limit or runs out of time. Nothing is stored here."""
    from flask import current_app

    from conference.core import children, native
    from conference.extensions import socketio

    app = current_app._get_current_object()  # type: ignore[attr-defined]
    with native.temporary_directory("conference-image-") as work:
        spooled, result = work / "source", work / "result"
        size = native.submit(_spool, source, spooled, max_bytes)()
        if size > max_bytes:
            raise ImageRefused("too_large")
        if size == 0:
            raise ImageRefused("empty")
        try:
            answer = children.run_child(CHILD_MODULE, [recipe, str(spooled), str(result), json.dumps(options)],
                                        limits=child_limits(app), sleep=socketio.sleep)
        except children.ChildFailed as failure:
            log.warning("image child for %s failed: %s", recipe, failure)
            raise ImageRefused("too_complex") from None
        if answer.get("refused"):
            raise ImageRefused(str(answer["refused"]))
        if not result.is_file() or result.stat().st_size > RESULT_MAX_BYTES:
            log.warning("image child for %s gave no usable result: %s", recipe, answer)
            raise ImageRefused("too_complex")
        return result.read_bytes()


def process_upload(source: IO[bytes], recipe: str, *, image: str, field: str, max_bytes: int, max_pixels: int,
                   **options: Any) -> bytes:
    """`process_in_child` for an upload in a form: a refusal becomes `ValidationFailed` on `field`, worded once
    for every kind of image. `image` names it as the subject of a sentence, translated ("The logo")."""
    # The sandboxed child imports this module: Flask-Babel and the errors are loaded only when refusing here.
    from flask_babel import gettext as _

    from conference.core.errors import ValidationFailed

    try:
        return process_in_child(source, recipe, max_bytes=max_bytes, **options)
    except ImageRefused as refused:
        messages = {
            "too_large": _("%(image)s may be at most %(mb)d MB.", image=image, mb=max_bytes // (1024 * 1024)),
            "empty": _("%(image)s is an empty file.", image=image),
            "too_many_pixels": _("%(image)s has too many pixels (at most %(n)d megapixels).", image=image,
                                 n=max_pixels // 1_000_000),
            "too_complex": _("%(image)s could not be processed (it needs too much memory or time). Please save "
                             "it again as JPEG or PNG and upload it once more.", image=image),
        }
        message = messages.get(refused.reason, _("%(image)s must be a PNG, JPEG, WebP or GIF image.", image=image))
        raise ValidationFailed(message, field=field) from None


def child_limits(app: Any) -> Any:
    """The limits of an image child: those of every job child (JOB_MEMORY_MB, JOB_TIMEOUT)."""
    from conference.core import jobs

    return jobs.settings(app).limits


def _spool(source: IO[bytes], target: Path, max_bytes: int) -> int:
    """Copy at most max_bytes + 1 bytes of the upload into `target` (in a native thread); returns the count."""
    with target.open("wb") as sink:
        shutil.copyfileobj(_Bounded(source, max_bytes + 1), sink, 1024 * 1024)
        return sink.tell()


class _Bounded(io.RawIOBase):
    """Reads at most `limit` bytes of `source`."""

    def __init__(self, source: IO[bytes], limit: int) -> None:
        self.source, self.left = source, limit

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        if self.left <= 0:
            return b""
        want = self.left if size is None or size < 0 else min(size, self.left)
        data = self.source.read(want)
        self.left -= len(data)
        return data


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
