"""Example legal pages for the demo conference (invented organisations; no real person or address)."""

from __future__ import annotations

from sqlalchemy import select

from conference.auth.models import User
from conference.events.models import Event
from conference.extensions import db
from conference.legal import services
from conference.legal.models import LegalKind

SITE_IMPRESSUM = """\
# Angaben gemäß § 5 DDG

Revier Digital Plattform GmbH (Beispiel)
Musterstraße 1
01234 Kohlhaven

Vertreten durch: Dr. Katrin Wendt (Geschäftsführerin)

# Kontakt

E-Mail: [kontakt@demo.invalid](mailto:kontakt@demo.invalid)

Dies ist ein **Beispieltext** der Demo-Konferenz. Alle Angaben sind erfunden.
"""

SITE_PRIVACY = """\
# Verantwortliche Stelle

Revier Digital Plattform GmbH (Beispiel), Musterstraße 1, 01234 Kohlhaven, \
[datenschutz@demo.invalid](mailto:datenschutz@demo.invalid).

# Welche Daten wir verarbeiten

- **Konto:** Name, E-Mail-Adresse, Passwort (nur als Hash), Sprache; Zeitpunkt Ihrer Zustimmung zu dieser Erklärung.
- **Anmeldungen:** angemeldete Geräte (Browserkennung) und API-Schlüssel (nur als Hash).
- **Konferenz:** Ihre Anmeldung zu Veranstaltungen, Ihre persönliche Agenda, Chat-Nachrichten und Fragen.

Zweck ist die Durchführung der Online-Konferenz (Art. 6 Abs. 1 lit. b DSGVO).

# Ihre Rechte

Sie haben das Recht auf Auskunft, Berichtigung, Löschung, Einschränkung der Verarbeitung und \
Datenübertragbarkeit (Art. 15–20 DSGVO) sowie das Recht auf Beschwerde bei einer Aufsichtsbehörde.

Dies ist ein **Beispieltext** der Demo-Konferenz und keine Rechtsberatung.
"""

EVENT_IMPRESSUM = """\
# Veranstalter der Digitalkonferenz Revier 2027

IT-Cluster Revier Digital e.V. (Beispiel)
Am Förderturm 7
01234 Kohlhaven

Vereinsregister: Amtsgericht Kohlhaven, VR 0000 (erfunden)
Vorstand: Dr. Katrin Wendt, Jens Pohlmann

Die Datenschutzerklärung dieser Konferenz ist die der Plattform.
"""


def load_demo_legal_texts(event: Event, *, account_domain: str) -> None:
    """The platform's Impressum and privacy notice and the event's own Impressum (its privacy page falls back
    to the platform's), if none exist yet; then the consent of every demo account, which are invented people,
    so that `make run` opens straight into the conference. Commits nothing (the caller does)."""
    admin = db.session.scalar(select(User).where(User.is_admin.is_(True)).order_by(User.id).limit(1))
    if admin is None:
        return
    if services.current_text(None, LegalKind.PRIVACY) is None:
        services.save_texts(None, texts={LegalKind.IMPRESSUM: SITE_IMPRESSUM, LegalKind.PRIVACY: SITE_PRIVACY},
                            actor=admin)
    if services.current_text(event, LegalKind.IMPRESSUM) is None:
        services.save_texts(event, texts={LegalKind.IMPRESSUM: EVENT_IMPRESSUM}, actor=admin)
    demo_ids = list(db.session.scalars(select(User.id).where(User.email.like(f"%@{account_domain}"))))
    services.record_consents_for(demo_ids)
