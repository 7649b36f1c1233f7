"""Certificates of attendance: issued from a person's presence minutes, rendered as PDF (fpdf2 with an
embedded DejaVu font, so umlauts print), checked on a public page by their random code.

`certificate_document` gathers everything a PDF shows (texts already translated) in the request; `render_pdf`
is a plain function of that document, so bulk generation can run it in a native thread (`core/native.py`)
without an application context.
"""

from __future__ import annotations

import io
import json
import secrets
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import qrcode
from flask_babel import format_date
from flask_babel import gettext as _
from fpdf import FPDF
from sqlalchemy import select

from conference.attendance.models import Certificate
from conference.attendance.services import PersonalRecord, attendee_ids, personal_record
from conference.auth.models import User
from conference.core.db import utcnow
from conference.core.errors import NotAllowed
from conference.events.models import Event
from conference.extensions import db
from conference.paths import data_dir

FONT_DIRS = (Path("/usr/share/fonts/truetype/dejavu"), data_dir("static") / "fonts")


def font_path(bold: bool = False) -> Path:
    """DejaVu Sans from the system (Debian: fonts-dejavu-core), else the copy in static/fonts."""
    name = "DejaVuSans-Bold.ttf" if bold else "DejaVuSans.ttf"
    for folder in FONT_DIRS:
        if (folder / name).is_file():
            return folder / name
    raise FileNotFoundError(name)


def issue_certificate(event: Event, user: User, *, record: PersonalRecord | None = None) -> Certificate:
    """The person's certificate for the event, issued now or brought up to date with their record (its code
    stays). Raises NotAllowed below the event's threshold. Flushes."""
    record = record or personal_record(event, user.id)
    if not record.qualifies:
        raise NotAllowed(_("A certificate needs at least %(n)d minutes of attendance.",
                           n=event.certificate_min_minutes), code="below_threshold")
    certificate = db.session.scalar(select(Certificate).where(Certificate.event_id == event.id,
                                                              Certificate.user_id == user.id))
    if certificate is None:
        certificate = Certificate(event_id=event.id, user_id=user.id, code=secrets.token_urlsafe(16))
        db.session.add(certificate)
    certificate.name = user.name[:200]
    certificate.sessions_json = json.dumps([{"title": title, "minutes": minutes}
                                            for _id, title, minutes in record.sessions], ensure_ascii=False)
    certificate.total_minutes = record.total_minutes
    certificate.issued_at = utcnow()
    db.session.flush()
    return certificate


def issue_all(event: Event) -> list[Certificate]:
    """Issue (or update) the certificate of everyone who reached the event's threshold. Flushes."""
    issued = []
    for user in db.session.scalars(select(User).where(User.id.in_(attendee_ids(event))).order_by(User.name)):
        record = personal_record(event, user.id)
        if record.qualifies:
            issued.append(issue_certificate(event, user, record=record))
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
    pdf.add_font("DejaVu", "", str(font_path()))
    pdf.add_font("DejaVu", "B", str(font_path(bold=True)))
    pdf.set_auto_page_break(True, margin=20)
    pdf.add_page()
    pdf.set_font("DejaVu", "B", 24)
    pdf.cell(0, 20, document.title, align="C", new_x="LMARGIN", new_y="NEXT")
    pdf.ln(8)
    pdf.set_font("DejaVu", "B", 18)
    pdf.multi_cell(0, 10, document.name, align="C", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("DejaVu", "", 12)
    pdf.ln(2)
    pdf.multi_cell(0, 7, document.statement, align="C", new_x="LMARGIN", new_y="NEXT")
    pdf.ln(8)
    if document.sessions:
        pdf.set_font("DejaVu", "B", 13)
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
    pdf.set_font("DejaVu", "B", 11)
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
