"""Certificates of attendance: issued from a person's presence minutes, rendered as PDF (fpdf2 with an
embedded DejaVu font, so umlauts print), checked on a public page by their random code.

`certificate_document` gathers everything a PDF shows (texts already translated) in the request; `render_pdf`
is a plain function of that document, so bulk generation can run it in a native thread (`core/native.py`)
without an application context.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import secrets
import tempfile
import threading
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import qrcode
from flask_babel import format_date
from flask_babel import gettext as _
from fontTools import subset
from fontTools.ttLib import TTFont
from fpdf import FPDF
from sqlalchemy import select

from conference.attendance.models import Certificate
from conference.attendance.services import PersonalRecord, personal_record, personal_records
from conference.auth.models import User
from conference.core.db import utcnow
from conference.core.errors import NotAllowed
from conference.events.models import Event
from conference.extensions import db
from conference.paths import data_dir

FONT_DIRS = (Path("/usr/share/fonts/truetype/dejavu"), data_dir("static") / "fonts")
# Latin (with Extended-A/B and Additional), Greek, Cyrillic, punctuation, currency, letterlike symbols, arrows:
# every name in the languages of the region prints; parsing this subset instead of the whole DejaVu Sans
# (6,000 glyphs) makes a certificate about four times faster.
FONT_RANGES = ((0x20, 0x24F), (0x370, 0x3FF), (0x400, 0x4FF), (0x1E00, 0x1EFF), (0x2000, 0x206F),
               (0x20A0, 0x20CF), (0x2100, 0x214F), (0x2190, 0x21FF))
_font_lock = threading.Lock()
_font_file: Path | None = None


def font_path() -> Path:
    """DejaVu Sans from the system (Debian: fonts-dejavu-core), else the copy in static/fonts."""
    for folder in FONT_DIRS:
        if (folder / "DejaVuSans.ttf").is_file():
            return folder / "DejaVuSans.ttf"
    raise FileNotFoundError("DejaVuSans.ttf")


def certificate_font() -> Path:
    """The subset of DejaVu Sans the PDFs embed, made once per process into the temporary folder."""
    global _font_file
    with _font_lock:
        if _font_file is not None and _font_file.is_file():
            return _font_file
        source = font_path()
        stat = source.stat()
        key = hashlib.sha256(f"{source}:{stat.st_size}:{stat.st_mtime_ns}:{FONT_RANGES}".encode()).hexdigest()[:16]
        target = Path(tempfile.gettempdir()) / f"conference-certificate-font-{key}.ttf"
        if not target.is_file():
            font = TTFont(str(source))
            options = subset.Options()
            options.layout_features = []
            options.hinting = False
            options.notdef_outline = True
            options.name_IDs = ["*"]
            options.drop_tables += ["FFTM"]
            subsetter = subset.Subsetter(options)
            subsetter.populate(unicodes=[c for first, last in FONT_RANGES for c in range(first, last + 1)])
            subsetter.subset(font)
            partial = target.with_suffix(f".{os.getpid()}.partial")
            font.save(str(partial))
            partial.replace(target)
        _font_file = target
        return target


def issue_certificate(event: Event, user: User, *, record: PersonalRecord | None = None) -> Certificate:
    """The person's certificate for the event, issued now or brought up to date with their record (its code
    stays). Raises NotAllowed below the event's threshold. Flushes."""
    record = record or personal_record(event, user.id)
    if not record.qualifies:
        raise NotAllowed(_("A certificate needs at least %(n)d minutes of attendance.",
                           n=event.certificate_min_minutes), code="below_threshold")
    certificate = db.session.scalar(select(Certificate).where(Certificate.event_id == event.id,
                                                              Certificate.user_id == user.id))
    certificate = _fill(event, user, record, certificate)
    db.session.flush()
    return certificate


def _fill(event: Event, user: User, record: PersonalRecord, certificate: Certificate | None) -> Certificate:
    if certificate is None:
        certificate = Certificate(event_id=event.id, user_id=user.id, code=secrets.token_urlsafe(16))
        db.session.add(certificate)
    certificate.name = user.name[:200]
    certificate.sessions_json = json.dumps([{"title": title, "minutes": minutes}
                                            for _id, title, minutes in record.sessions], ensure_ascii=False)
    certificate.total_minutes = record.total_minutes
    certificate.issued_at = utcnow()
    return certificate


def issue_all(event: Event) -> list[Certificate]:
    """Issue (or update) the certificate of everyone who reached the event's threshold. Flushes."""
    records = {user_id: r for user_id, r in personal_records(event).items() if r.qualifies}
    existing = {c.user_id: c for c in db.session.scalars(select(Certificate).where(Certificate.event_id == event.id))}
    issued = []
    for user in db.session.scalars(select(User).where(User.id.in_(records)).order_by(User.name)):
        issued.append(_fill(event, user, records[user.id], existing.get(user.id)))
    db.session.flush()
    return issued


def by_code(code: str) -> Certificate | None:
    if not isinstance(code, str) or not 8 <= len(code) <= 32:
        return None
    return db.session.scalar(select(Certificate).where(Certificate.code == code))


def sessions_of(certificate: Certificate) -> list[dict[str, Any]]:
    return list(json.loads(certificate.sessions_json or "[]"))


@dataclass(frozen=True)
class Document:
    """Everything one certificate PDF shows, texts translated."""

    title: str
    name: str
    statement: str
    sessions_heading: str
    sessions: list[tuple[str, str]]  # title, "45 min"
    total: str
    verify_label: str
    verify_url: str
    issued: str
    filename: str


def certificate_document(certificate: Certificate, event: Event, verify_url: str) -> Document:
    dates = format_date(event.start_date, "long") if event.start_date == event.end_date else \
        f"{format_date(event.start_date, 'long')} – {format_date(event.end_date, 'long')}"
    return Document(
        title=_("Certificate of attendance"),
        name=certificate.name,
        statement=_("took part in the event “%(event)s” on %(dates)s.", event=event.title, dates=dates),
        sessions_heading=_("Sessions attended"),
        sessions=[(s["title"], _("%(n)d min", n=s["minutes"])) for s in sessions_of(certificate)],
        total=_("Time present in total: %(n)d minutes", n=certificate.total_minutes),
        verify_label=_("Check that this certificate is genuine:"),
        verify_url=verify_url,
        issued=_("Issued on %(date)s", date=format_date(certificate.issued_at.date(), "long")),
        filename=f"{event.slug}-certificate-{certificate.id}.pdf",
    )


def _qr_png(url: str) -> bytes:
    image = qrcode.make(url, box_size=4, border=2)
    out = io.BytesIO()
    image.save(out)
    return out.getvalue()


def render_pdf(document: Document) -> bytes:
    """The certificate as a one-page A4 PDF (more pages for a long list of sessions). No Flask needed."""
    pdf = FPDF(format="A4")
    pdf.set_title(document.title)
    pdf.set_creator("conference")
    pdf.add_font("DejaVu", "", str(certificate_font()))  # one font (no bold): each one costs ~20 ms to parse
    pdf.set_auto_page_break(True, margin=20)
    pdf.add_page()
    pdf.set_font("DejaVu", "", 24)
    pdf.cell(0, 20, document.title, align="C", new_x="LMARGIN", new_y="NEXT")
    pdf.ln(8)
    pdf.set_font("DejaVu", "", 18)
    pdf.multi_cell(0, 10, document.name, align="C", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("DejaVu", "", 12)
    pdf.ln(2)
    pdf.multi_cell(0, 7, document.statement, align="C", new_x="LMARGIN", new_y="NEXT")
    pdf.ln(8)
    if document.sessions:
        pdf.set_font("DejaVu", "", 13)
        pdf.cell(0, 9, document.sessions_heading, new_x="LMARGIN", new_y="NEXT")
        pdf.set_font("DejaVu", "", 11)
        for title, minutes in document.sessions:
            if pdf.get_y() > pdf.h - 40:
                pdf.add_page()
            top = pdf.get_y()
            pdf.multi_cell(pdf.epw - 30, 6, title, new_x="LMARGIN", new_y="NEXT")
            below = pdf.get_y()
            pdf.set_xy(pdf.l_margin + pdf.epw - 30, top)
            pdf.cell(30, 6, minutes, align="R")
            pdf.set_xy(pdf.l_margin, below)
        pdf.ln(3)
    pdf.set_font("DejaVu", "", 11)
    pdf.cell(0, 8, document.total, new_x="LMARGIN", new_y="NEXT")
    pdf.ln(6)
    pdf.set_font("DejaVu", "", 9)
    if pdf.get_y() > pdf.h - 70:
        pdf.add_page()
    top = pdf.get_y()
    pdf.image(_qr_png(document.verify_url), x=pdf.l_margin, y=top, w=35, h=35)
    pdf.set_xy(pdf.l_margin + 40, top + 4)
    pdf.multi_cell(pdf.epw - 40, 5, f"{document.verify_label}\n{document.verify_url}\n\n{document.issued}")
    return bytes(pdf.output())


def write_zip(documents: Iterable[Document], path: Path) -> int:
    """Render every document into one ZIP at `path` (written beside it, then renamed). Returns the count."""
    partial = path.with_suffix(".partial")
    count = 0
    with zipfile.ZipFile(partial, "w", zipfile.ZIP_DEFLATED) as archive:
        for document in documents:
            archive.writestr(document.filename, render_pdf(document))
            count += 1
    partial.replace(path)
    return count
