"""The speaker photo recipe, run in a sandboxed child (`conference.core.image_child`): imports Pillow only."""

from __future__ import annotations

import io
from typing import IO

from PIL import Image

from conference.core.images import decode_image

PHOTO_MAX_BYTES = 5 * 1024 * 1024
PHOTO_MAX_PIXELS = 24_000_000  # about 6000 x 4000; larger images are refused before decoding
PHOTO_SIZE = (400, 400)
RECIPE = "conference.speakers.photos:photo_jpeg"


def photo_jpeg(source: IO[bytes]) -> bytes:
    """The photo decoded (bounded), on white, at most PHOTO_SIZE, as JPEG; `ImageRefused` if it is none."""
    rgba = decode_image(source, max_bytes=PHOTO_MAX_BYTES, max_pixels=PHOTO_MAX_PIXELS, draft=max(PHOTO_SIZE))
    background = Image.new("RGB", rgba.size, (255, 255, 255))
    background.paste(rgba, mask=rgba.getchannel("A"))
    del rgba
    background.thumbnail(PHOTO_SIZE, Image.Resampling.LANCZOS)
    out = io.BytesIO()
    background.save(out, format="JPEG", quality=85, optimize=True, progressive=True)
    return out.getvalue()
