"""Benchmark of certificates of attendance: 130 attendees of a simulated day (16 sessions), every certificate
issued and rendered as PDF (fpdf2, embedded DejaVu font, QR code) into one ZIP, as the organisers' "Generate all
certificates" does in a native thread.

    .venv/bin/python bench/certificates_bench.py            # 130 attendees
    .venv/bin/python bench/certificates_bench.py --people 20

Runs in a temporary instance with SQLite; prints the time of each step and per certificate.
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
import zipfile
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT_ROOT))

SESSIONS = 16


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--people", type=int, default=130)
    args = parser.parse_args()

    from conference import create_app
    from conference.agenda.models import ConferenceSession, Room, TimetableSlot
    from conference.attendance import certificates
    from conference.attendance.collector import minute_of, record_presence
    from conference.auth import accounts
    from conference.core.mail import external_url
    from conference.core.permissions import Role
    from conference.events import services as event_services
    from conference.extensions import db

    folder = Path(tempfile.mkdtemp(prefix="certificates-bench-"))
    app = create_app({"TESTING": True, "SECRET_KEY": "bench", "INSTANCE_PATH": str(folder / "instance"),
                      "DATABASE_URL": f"sqlite:///{folder / 'bench.sqlite3'}", "ASYNC_MODE": "threading",
                      "PASSWORD_HASH_METHOD": "scrypt:1024:8:1", "EXTERNAL_URL": "https://konferenz.example.org",
                      "BABEL_DEFAULT_LOCALE": "de"})
    rng = random.Random(20)
    with app.test_request_context("/", headers={"Accept-Language": "de"}):
        db.create_all()
        day = date(2027, 3, 18)
        event = event_services.create_event(slug="tagung-2027", title="Fachtagung Wärmewende 2027",
                                            start_date=day, end_date=day, is_published=True)
        room = Room(event_id=event.id, name="Großer Saal")
        db.session.add(room)
        db.session.flush()
        start = datetime(2027, 3, 18, 8, 0, tzinfo=UTC)
        sessions = []
        for index in range(SESSIONS):
            session = ConferenceSession(event_id=event.id, title=f"Sitzung {index + 1}: Städte, Gemeinden & Übergänge")
            db.session.add(session)
            db.session.flush()
            begins = start + timedelta(minutes=30 * index)
            db.session.add(TimetableSlot(session_id=session.id, room_id=room.id, start_at=begins,
                                         end_at=begins + timedelta(minutes=30)))
            sessions.append((session, minute_of(begins.timestamp())))
        people = []
        for number in range(args.people):
            user = accounts.create_user(email=f"p{number}@example.org", name=f"Jörg Müller-Weiß {number}",
                                             password="x" * 12, verified=True)
            event_services.set_role(event, user=user, role=Role.ATTENDEE)
            people.append(user)
        db.session.commit()
        for user in people:
            for session, first in sessions:
                if rng.random() < 0.6:
                    stay = rng.randint(10, 30)
                    for minute in range(first, first + stay):
                        record_presence(minute, [(user.id, f"session:{session.id}", event.id)])
        db.session.commit()

        began = time.perf_counter()
        issued = certificates.issue_all(event)
        db.session.commit()
        issue_seconds = time.perf_counter() - began
        began = time.perf_counter()
        documents = [certificates.certificate_document(c, event, external_url("attendance.verify", code=c.code))
                     for c in issued]
        document_seconds = time.perf_counter() - began
    path = folder / "certificates.zip"
    began = time.perf_counter()
    count = certificates.write_zip(documents, path)
    render_seconds = time.perf_counter() - began
    with zipfile.ZipFile(path) as archive:
        assert len(archive.namelist()) == count
    size = path.stat().st_size
    print(f"attendees with a certificate: {count} of {args.people} (threshold {event.certificate_min_minutes} min)")
    print(f"issue (DB, personal records):  {issue_seconds:.2f} s")
    print(f"documents (texts, URLs):       {document_seconds:.2f} s")
    print(f"render PDFs + ZIP:             {render_seconds:.2f} s  "
          f"({1000 * render_seconds / max(count, 1):.1f} ms per certificate, ZIP {size / 1e6:.1f} MB)")
    print(f"total:                         {issue_seconds + document_seconds + render_seconds:.2f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
