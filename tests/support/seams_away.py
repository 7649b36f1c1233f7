"""Test support: a server process whose library seams find the library changed under them.

`TEST_SEAMS_AWAY="<part of a seam's name>:version,<part>:names"` makes each matching seam see the installed
library outside its tested range (`version`) or lacking a name it needs (`names`), through the real fence: the
seam must then switch itself off with one log line and the library's public path must serve.
"""

from __future__ import annotations

import os
from typing import Any


def apply() -> None:
    wanted = [item.split(":", 1) for item in os.environ.get("TEST_SEAMS_AWAY", "").split(",") if ":" in item]
    if not wanted:
        return
    from conference.serving import fence, heap

    original_allows = fence.allows

    def allows(seam: str, distributions: Any, names: Any = (), *, fallback: str) -> bool:
        for part, how in wanted:
            if part in seam and how == "version":
                real_release = fence.release
                fence.release = lambda distribution: (0, 0)
                try:
                    return original_allows(seam, distributions, names, fallback=fallback)
                finally:
                    fence.release = real_release
            if part in seam and how == "names":
                return original_allows(seam, distributions, (*names, (fence, "name_the_library_dropped")),
                                       fallback=fallback)
        return original_allows(seam, distributions, names, fallback=fallback)

    fence.allows = allows
    for part, how in wanted:
        if part in heap.SEAM and how == "version":
            heap.TESTED_PYTHON = ((3, 0), (3, 1))


apply()
