"""An event's look: accent colour (checked for WCAG AA contrast), logo, header image and footer links.
Services flush, never commit."""

from __future__ import annotations

import re
from pathlib import Path
from typing import IO, Any

from flask import current_app
from flask_babel import format_decimal
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from conference.auth.models import User
from conference.core import after_commit
from conference.core.contrast import AA_NORMAL_TEXT, COLOR, contrast_ratio
from conference.core.errors import ValidationFailed
from conference.core.images import process_upload, store_file
from conference.events.images import (
    HEADER_IMAGE_MAX_BYTES,
    HEADER_IMAGE_MAX_PIXELS,
    HEADER_RECIPE,
    LOGO_MAX_BYTES,
    LOGO_MAX_PIXELS,
    LOGO_RECIPE,
)
from conference.events.models import Event
from conference.extensions import db

#: What a banner may add to a page (an attendee's agenda is about 146 KB, pages stay under 200 KB): the quality
#: drops until it fits (a photo's noise may still exceed it at the lowest quality; it is then stored as that).
HEADER_IMAGE_TARGET_BYTES = 48 * 1024
#: The largest branding form: both images at their limits plus the text fields.
FORM_MAX_BYTES = LOGO_MAX_BYTES + HEADER_IMAGE_MAX_BYTES + 64 * 1024
#: The colours the accent is used with (static/css/main.css): white text on accent (header, buttons) and accent
#: text on the page background (#ffffff) and on boxes (--surface).
ACCENT_PAIRS = (("#ffffff", _l("white text and the page background")), ("#f4f6f8", _l("the grey boxes")))
FOOTER_URL = re.compile(r"^(https://[^\s\"'<>\\]+|mailto:[^\s\"'<>\\@]+@[^\s\"'<>\\@]+)$")
FOOTER_FIELDS = ("imprint_url", "privacy_url", "contact_url")


def check_accent_color(color: Any) -> str | None:
    """None (the platform's colour) or a #rrggbb colour readable with every colour it is used with (WCAG AA)."""
    if color is None or (isinstance(color, str) and not color.strip()):
        return None
    if not isinstance(color, str) or not COLOR.match(color.strip()):
        raise ValidationFailed(_("The accent colour must look like #1d4f91."), field="accent_color")
    color = color.strip().lower()
    for other, label in ACCENT_PAIRS:
        ratio = contrast_ratio(color, other)
        if ratio < AA_NORMAL_TEXT:
            raise ValidationFailed(_(
                "The accent colour %(color)s has a contrast of only %(ratio)s:1 with %(other)s; readable text "
                "needs at least 4.5:1 (WCAG AA). Please choose a darker colour.",
                color=color, ratio=format_decimal(int(ratio * 100) / 100, format="0.00"), other=str(label)),
                field="accent_color", code="low_contrast")
    return color


def logos_dir() -> Path:
    return Path(current_app.config["UPLOAD_DIR"]) / "logos"


def header_images_dir() -> Path:
    return Path(current_app.config["UPLOAD_DIR"]) / "headers"


def process_logo(source: IO[bytes]) -> bytes:
    """The logo re-encoded as PNG (transparency kept, metadata and trailing data dropped), at most LOGO_SIZE;
    decoded in a sandboxed child (`conference.core.images.process_in_child`)."""
    return process_upload(source, LOGO_RECIPE, image=_("The logo"), field="logo", max_bytes=LOGO_MAX_BYTES,
                          max_pixels=LOGO_MAX_PIXELS)


def process_header_image(source: IO[bytes]) -> bytes:
    """The header image re-encoded as WebP (metadata and trailing data dropped): cropped to at most 3:1 around
    its middle, at most HEADER_IMAGE_SIZE; transparency kept only where the image has some. Decoded in a
    sandboxed child."""
    return process_upload(source, HEADER_RECIPE, image=_("The header image"), field="header_image",
                          max_bytes=HEADER_IMAGE_MAX_BYTES, max_pixels=HEADER_IMAGE_MAX_PIXELS,
                          target_bytes=HEADER_IMAGE_TARGET_BYTES)


def update_branding(event: Event, *, accent_color: Any, logo: IO[bytes] | None = None, remove_logo: bool = False,
                    header_image: IO[bytes] | None = None, remove_header_image: bool = False,
                    imprint_url: Any = None, privacy_url: Any = None, contact_url: Any = None,
                    actor: User | None) -> Event:
    """Set the event's accent colour, logo, header image and footer links; all checked before anything changes.

    Side effects: new image files are written now; the replaced ones are removed after the commit.
    """
    color = check_accent_color(accent_color)
    links = {}
    for field, value in zip(FOOTER_FIELDS, (imprint_url, privacy_url, contact_url), strict=True):
        text = (value or "").strip() if isinstance(value, str) or value is None else None
        if text is None or len(text) > 500 or (text and not FOOTER_URL.match(text)):
            raise ValidationFailed(_("A link must start with https:// (or mailto: for the contact) and have at "
                                     "most 500 characters."), field=field)
        links[field] = text or None
    # Both images are decoded before either is written: a refused header image leaves no stray logo file.
    logo_data = process_logo(logo) if logo is not None else None
    header_data = process_header_image(header_image) if header_image is not None else None
    event.accent_color = color
    for field, text in links.items():
        setattr(event, field, text)
    _replace_file(event, "logo_filename", logos_dir(), logo_data, ".png", remove=remove_logo)
    _replace_file(event, "header_image_filename", header_images_dir(), header_data, ".webp",
                  remove=remove_header_image)
    db.session.flush()
    return event


def _replace_file(event: Event, attribute: str, directory: Path, data: bytes | None, suffix: str, *,
                  remove: bool) -> None:
    """Store `data` as the event's new file (or drop the old one when `remove`); the old file goes after commit."""
    old = getattr(event, attribute)
    if data is not None:
        setattr(event, attribute, store_file(directory, data, suffix))
    elif remove:
        setattr(event, attribute, None)
    if old and old != getattr(event, attribute):
        after_commit.defer(_remove_file, directory / old)


def _remove_file(path: Path) -> None:
    path.unlink(missing_ok=True)
