"""The one rule for text people type: which characters no field may hold, and which a one-line field refuses.

Refused everywhere: C0 controls but tab, newline and carriage return; DEL and the C1 controls; bidi overrides,
embeddings and isolates (they make "gpj.exe" look like "exe.jpg"); U+FFFD (what invalid UTF-8 turns into, so a
mangled upload or form is refused rather than stored); lone surrogates. One-line fields (names, titles) also
refuse tab, line breaks and the Unicode line and paragraph separators (a name goes into mail headers).
The request boundary (`core.security`) and every domain check the same sets.
"""

from __future__ import annotations

import re

FORBIDDEN_TEXT = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069\ufffd\ud800-\udfff]")
LINE_BREAKS = re.compile("[\t\n\r\u2028\u2029]")


def has_forbidden_text(value: str) -> bool:
    """Whether `value` holds a character no field may hold."""
    return FORBIDDEN_TEXT.search(value) is not None


def has_forbidden_line_text(value: str) -> bool:
    """Whether `value` holds a character a one-line field may not hold (the above, tab or a line break)."""
    return FORBIDDEN_TEXT.search(value) is not None or LINE_BREAKS.search(value) is not None
