"""First-page preview of a PDF, rendered in a child process: `python -m conference.presentations.render SRC DST`.

A separate process keeps pdfium (C code parsing untrusted files) away from the server: a crash, a hang or a
memory spike ends only the child, and the server's event loop never waits on it. It is started by the job
runner through `conference.core.sandbox`, which sets its memory, CPU and file limits and a minimal environment.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

THUMBNAIL_BOX = (480, 360)


def render_first_page(source: Path, target: Path) -> None:
    import pypdfium2 as pdfium

    pdf = pdfium.PdfDocument(str(source))
    try:
        if len(pdf) < 1:
            raise ValueError("the PDF has no pages")
        page = pdf[0]
        try:
            width, height = page.get_size()
            scale = min(THUMBNAIL_BOX[0] / max(width, 1), THUMBNAIL_BOX[1] / max(height, 1), 4.0)
            image = page.render(scale=scale).to_pil()
        finally:
            page.close()
    finally:
        pdf.close()
    handle, temp_name = tempfile.mkstemp(dir=target.parent, prefix=".thumb-", suffix=".part")
    try:
        with os.fdopen(handle, "wb") as sink:
            image.convert("RGB").save(sink, format="PNG", optimize=True)
        os.replace(temp_name, target)
    except BaseException:
        Path(temp_name).unlink(missing_ok=True)
        raise


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: python -m conference.presentations.render SOURCE.pdf TARGET.png", file=sys.stderr)
        return 2
    try:
        render_first_page(Path(argv[0]), Path(argv[1]))
    except Exception as error:  # noqa: BLE001 - reported through the exit code
        print(f"preview failed: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
