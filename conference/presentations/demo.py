"""Demo slides: small real PDFs, generated in code, for a few sessions of the demo event."""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path

from flask import current_app
from sqlalchemy import func, select

from conference.agenda.models import ConferenceSession, SessionKind
from conference.core.after_commit import commit
from conference.events.models import Event
from conference.extensions import db
from conference.presentations import services
from conference.presentations.content_check import check_content
from conference.presentations.models import Presentation, ThumbnailState, VisibilityMode
from conference.presentations.storage import new_stored_name


def _pdf_text(text: str) -> bytes:
    escaped = text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")
    return escaped.encode("cp1252", "replace")


def make_pdf(title: str, lines: list[str] | tuple[str, ...] = (), *, pages: int = 1) -> bytes:
    """A small, valid PDF (A4 landscape, Helvetica) with a title and a few lines per page."""
    page_ids = [3 + 2 * i for i in range(pages)]
    font_id = 3 + 2 * pages
    objects: dict[int, bytes] = {
        1: b"<< /Type /Catalog /Pages 2 0 R >>",
        2: b"<< /Type /Pages /Kids [" + b" ".join(b"%d 0 R" % p for p in page_ids) + b"] /Count %d >>" % pages,
        font_id: b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>",
    }
    for number, page_id in enumerate(page_ids, start=1):
        content = b"BT /F1 36 Tf 60 500 Td (" + _pdf_text(title) + b") Tj ET\n"
        for index, line in enumerate([*lines, f"{number} / {pages}"]):
            content += b"BT /F1 20 Tf 60 %d Td (" % (420 - 34 * index) + _pdf_text(line) + b") Tj ET\n"
        content += b"0.11 0.31 0.57 rg 0 0 842 24 re f\n"
        objects[page_id] = (b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 842 595] "
                            b"/Resources << /Font << /F1 %d 0 R >> >> /Contents %d 0 R >>" % (font_id, page_id + 1))
        objects[page_id + 1] = b"<< /Length %d >>\nstream\n" % len(content) + content + b"endstream"
    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets: dict[int, int] = {}
    for number in sorted(objects):
        offsets[number] = len(out)
        out += b"%d 0 obj\n" % number + objects[number] + b"\nendobj\n"
    xref = len(out)
    count = max(objects) + 1
    out += b"xref\n0 %d\n0000000000 65535 f \n" % count
    for number in range(1, count):
        out += b"%010d 00000 n \n" % offsets[number]
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (count, xref)
    return bytes(out)


DEMO_DECKS = [
    ("Zwischenergebnisse der regionalen Digitalisierungspotenzialstudie", "potenzialstudie-zwischenstand.pdf",
     ["Befragung von über 400 Unternehmen", "Wo steht die Region?", "Potenziale und nächste Schritte"],
     VisibilityMode.PUBLISHED),
    ("KI im Mittelstand: drei Praxisbeispiele", "ki-im-mittelstand.pdf",
     ["Angebotskalkulation", "Qualitätsprüfung", "Lessons learned"], VisibilityMode.AUTOMATIC),
]


def load_demo_presentations(event: Event) -> int:
    """Add demo slides to two sessions if the event has none yet (idempotent). Commits; returns the count."""
    if db.session.scalar(select(func.count()).select_from(Presentation).where(Presentation.event_id == event.id)):
        return 0
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    services.ensure_directories(app)
    created: list[int] = []
    for title, filename, lines, mode in DEMO_DECKS:
        session = db.session.scalar(select(ConferenceSession).where(
            ConferenceSession.event_id == event.id, ConferenceSession.title == title,
            ConferenceSession.kind != SessionKind.BREAK))
        if session is None:
            continue
        data = make_pdf(title[:48], lines, pages=3)
        stored = new_stored_name("pdf")
        target = services.presentations_dir() / stored
        handle, temp_name = tempfile.mkstemp(dir=services.presentations_dir(), prefix=".upload-", suffix=".part")
        with os.fdopen(handle, "wb") as sink:
            sink.write(data)
        check_content(Path(temp_name), "pdf", len(data))
        os.replace(temp_name, target)
        presentation = Presentation(
            event_id=event.id, session_id=session.id, version=1, original_filename=filename,
            stored_filename=stored, file_type="pdf", size_bytes=len(data), sha256=hashlib.sha256(data).hexdigest(),
            visibility_mode=mode, thumbnail_state=ThumbnailState.PENDING)
        db.session.add(presentation)
        db.session.flush()
        created.append(presentation.id)
    commit()
    for presentation_id in created:
        services.render_thumbnail(app, presentation_id)  # a command, not a request: render right away
    return len(created)
