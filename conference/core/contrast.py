"""WCAG 2 contrast of colours (#rrggbb), for colours that organisers choose."""

from __future__ import annotations

import re

COLOR = re.compile(r"^#[0-9a-fA-F]{6}$")
#: WCAG 2.1 level AA for normal text (1.4.3).
AA_NORMAL_TEXT = 4.5


def relative_luminance(color: str) -> float:
    """WCAG's relative luminance of an sRGB colour given as #rrggbb."""
    if not COLOR.match(color):
        raise ValueError(f"not a #rrggbb colour: {color!r}")
    channels = []
    for i in (1, 3, 5):
        c = int(color[i:i + 2], 16) / 255
        channels.append(c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4)
    red, green, blue = channels
    return 0.2126 * red + 0.7152 * green + 0.0722 * blue


def contrast_ratio(first: str, second: str) -> float:
    """From 1 (same luminance) to 21 (black on white)."""
    lighter, darker = sorted((relative_luminance(first), relative_luminance(second)), reverse=True)
    return (lighter + 0.05) / (darker + 0.05)
