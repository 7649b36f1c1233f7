"""The event's logo and header image recipes, run in a sandboxed child (`conference.core.image_child`): they
import Pillow only. Sizes and limits: see `conference.events.branding`."""

from __future__ import annotations

import io
from typing import IO

from PIL import Image

from conference.core.images import decode_image

LOGO_MAX_BYTES = 2 * 1024 * 1024
LOGO_MAX_PIXELS = 16_000_000
LOGO_SIZE = (640, 160)  # shown at most 40 px high in the header; twice that for sharp high-density screens
#: A header image is a photo more often than not: a camera's JPEG may be larger than a logo.
HEADER_IMAGE_MAX_BYTES = 5 * 1024 * 1024
HEADER_IMAGE_MAX_PIXELS = 40_000_000
#: Shown as a strip at most 10rem high across the page: stored at most 1600 px wide and cropped to at most 3:1
#: (a tall photo keeps its middle band), as WebP, so that a banner costs tens of kilobytes, not hundreds.
HEADER_IMAGE_SIZE = (1600, 534)  # 534: a 3:1 image 2400 wide fits as 1600x533, not 1599x533
HEADER_IMAGE_MAX_RATIO = 3
HEADER_IMAGE_QUALITIES = (72, 60, 48, 36, 28)
LOGO_RECIPE = "conference.events.images:logo_png"
HEADER_RECIPE = "conference.events.images:header_webp"


def logo_png(source: IO[bytes]) -> bytes:
    """Decoded (bounded), at most LOGO_SIZE, as PNG; `ImageRefused` if it is none."""
    image = decode_image(source, max_bytes=LOGO_MAX_BYTES, max_pixels=LOGO_MAX_PIXELS, draft=max(LOGO_SIZE))
    image.thumbnail(LOGO_SIZE, Image.Resampling.LANCZOS)
    out = io.BytesIO()
    image.save(out, format="PNG", optimize=True)
    return out.getvalue()


def header_webp(source: IO[bytes], *, target_bytes: int) -> bytes:
    """Decoded (bounded), cropped to at most 3:1 around its middle, scaled and encoded as WebP, the quality
    lowered step by step until it fits `target_bytes`; `ImageRefused` if it is none."""
    image = decode_image(source, max_bytes=HEADER_IMAGE_MAX_BYTES, max_pixels=HEADER_IMAGE_MAX_PIXELS,
                         draft=max(HEADER_IMAGE_SIZE))
    width, height = image.size
    band = max(1, width // HEADER_IMAGE_MAX_RATIO)
    if height > band:
        top = (height - band) // 2
        image = image.crop((0, top, width, top + band))
    image.thumbnail(HEADER_IMAGE_SIZE, Image.Resampling.LANCZOS)
    alpha = image.getchannel("A").getextrema()
    if alpha == (255, 255):
        image = image.convert("RGB")
    # A busy photo costs more: lower the quality step by step until the banner fits the page budget's share.
    data = b""
    for quality in HEADER_IMAGE_QUALITIES:
        out = io.BytesIO()
        image.save(out, format="WEBP", quality=quality, method=4)
        data = out.getvalue()
        if len(data) <= target_bytes:
            break
    return data
