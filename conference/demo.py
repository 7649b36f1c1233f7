"""The demo conference: a one-day German-language online conference on digitalisation in structural change.

Modelled on a real regional conference in a former lignite-mining region (about 130 participants from
business, science and politics). All people and organisations are fictional; accounts use `demo.invalid`.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import dataclass, field
from datetime import date, datetime, time
from zoneinfo import ZoneInfo

from flask import current_app
from sqlalchemy import insert, select

from conference.agenda.models import ConferenceSession, Room, SessionKind, SessionSpeaker, TimetableSlot, Track
from conference.agenda.releases import ensure_demo_release
from conference.auth.accounts import hash_password
from conference.auth.logins import TOKEN_PREFIX
from conference.auth.models import ApiToken, User, hash_secret
from conference.core.after_commit import commit
from conference.core.db import utcnow
from conference.core.permissions import Role
from conference.events.models import Event, EventMembership
from conference.extensions import db
from conference.legal.demo import load_demo_legal_texts
from conference.presentations.demo import load_demo_presentations
from conference.speakers.models import SpeakerProfile

DEMO_SLUG = "digitalkonferenz-2027"
DEMO_PASSWORD = "demo-passwort-2027"
DEMO_DATE = date(2027, 3, 18)
DEMO_DOMAIN = "demo.invalid"

ORGANISERS = [
    ("Dr. Katrin Wendt", "orga@demo.invalid", "Geschäftsführerin, IT-Cluster Revier Digital e.V."),
    ("Jens Pohlmann", "orga2@demo.invalid", "Referent, Unternehmerverband Mittleres Revier"),
]
MODERATORS = [("Sabine Kühnel", "moderation@demo.invalid")]

# (key, title, name, position, organisation, bio)
SPEAKERS = [
    ("wendt", "Dr.", "Katrin Wendt", "Geschäftsführerin", "IT-Cluster Revier Digital e.V.",
     "Leitet das IT-Cluster der Region und verbindet **Softwarehäuser, Hochschulen und Kommunen**."),
    ("brandt", "Prof. Dr.", "Thomas Brandt", "Professor für Wirtschaftsinformatik", "Technische Hochschule Revier",
     "Forscht zu digitalen Geschäftsmodellen im Mittelstand und leitet die Potenzialstudie."),
    ("yilmaz", "", "Elif Yılmaz", "Projektleiterin Potenzialstudie", "Technische Hochschule Revier",
     "Verantwortet die Befragung von über 400 Unternehmen der Region."),
    ("hartung", "", "Michael Hartung", "Oberbürgermeister", "Stadt Kohlhaven",
     "Setzt auf eine digitale Verwaltung als Standortfaktor."),
    ("lorenz", "", "Anja Lorenz", "Leiterin", "Digitalisierungszentrum Kohlhaven",
     "Begleitet kleine und mittlere Unternehmen bei ihren ersten Digitalisierungsschritten."),
    ("pohlmann", "", "Jens Pohlmann", "Referent Innovation", "Unternehmerverband Mittleres Revier",
     "Vertritt die Interessen von 600 Mitgliedsunternehmen."),
    ("schubert", "Dr.", "Frank Schubert", "Vorstand", "Revier Energie AG",
     "Verantwortet den Umbau vom Tagebau-Dienstleister zum Energie- und Datenunternehmen."),
    ("nguyen", "", "Linh Nguyen", "Gründerin und CEO", "Flözwerk Software GmbH",
     "Gründete ein Start-up für Arbeitsplanung in Schichtbetrieben."),
    ("becker", "", "Stefanie Becker", "Personalleiterin", "Lausitzer Maschinenbau GmbH",
     "Hat mobiles Arbeiten in einem Produktionsbetrieb mit 350 Beschäftigten eingeführt."),
    ("krause", "Prof. Dr.", "Martin Krause", "Professor für Stadtplanung", "Universität Mittelland",
     "Forscht zur Zukunft von Innenstädten in schrumpfenden Regionen."),
    ("vogel", "", "Julia Vogel", "Stadtbaurätin", "Stadt Kohlhaven",
     "Leitet das Projekt „Smarte Innenstadt Kohlhaven“."),
    ("richter", "", "Andreas Richter", "Mitglied des Landtags", "Ausschuss für Wirtschaft und Strukturwandel",
     "Setzt sich für schnelles Internet in ländlichen Regionen ein."),
    ("koenig", "Dr.", "Miriam König", "Referentin Förderprogramme", "Wirtschaftsförderung Revier GmbH",
     "Berät Unternehmen zu Fördermitteln für Digitalisierungsprojekte."),
    ("weber", "", "Tobias Weber", "Data Scientist", "Flözwerk Software GmbH",
     "Baut KI-Anwendungen für den Mittelstand."),
    ("kuehnel", "", "Sabine Kühnel", "Moderatorin", "Kühnel Kommunikation",
     "Moderiert Fachkonferenzen zu Wirtschaft und Wissenschaft."),
]

# (start, end, room index or None for all rooms, kind, title, abstract, [(speaker key, role)], track)
PROGRAMME: list[tuple[str, str, int | None, SessionKind, str, str, list[tuple[str, str]], str | None]] = [
    ("09:00", "09:15", 0, SessionKind.TALK, "Begrüßung",
     "Eröffnung der Konferenz durch die Veranstalter.", [("wendt", "speaker"), ("pohlmann", "speaker")], None),
    ("09:15", "10:00", 0, SessionKind.KEYNOTE, "Keynote: Digitalisierung als Motor des Strukturwandels",
     "Was kommt nach der Kohle? Warum digitale Wertschöpfung für die Region **entscheidend** ist.",
     [("schubert", "speaker")], "Wirtschaft"),
    ("10:00", "10:45", 0, SessionKind.TALK, "Zwischenergebnisse der regionalen Digitalisierungspotenzialstudie",
     "Erste Ergebnisse der Befragung von über 400 Unternehmen: Wo steht die Region, wo liegen Potenziale?",
     [("brandt", "speaker"), ("yilmaz", "speaker")], "Wissenschaft"),
    ("10:45", "11:00", None, SessionKind.BREAK, "Kaffeepause", "", [], None),
    ("11:00", "12:00", 0, SessionKind.PANEL, "Podium: Die Rolle der Unternehmen im Strukturwandel",
     "Unternehmen, Verbände und Politik diskutieren, wer den Wandel gestaltet.",
     [("kuehnel", "moderator"), ("schubert", "speaker"), ("nguyen", "speaker"), ("richter", "speaker")],
     "Wirtschaft"),
    ("11:00", "12:00", 1, SessionKind.PANEL, "Podium: Neue Arbeitswelten",
     "Mobiles Arbeiten, Schichtplanung per App, Weiterbildung: wie Arbeit in der Region sich verändert.",
     [("lorenz", "moderator"), ("becker", "speaker"), ("weber", "speaker")], "Arbeit"),
    ("11:00", "12:00", 2, SessionKind.WORKSHOP, "Workshop: Fördermittel für Digitalisierungsprojekte",
     "Welche Programme gibt es, wie stellt man einen Antrag? Mit Fragerunde.",
     [("koenig", "speaker")], "Wirtschaft"),
    ("12:00", "13:00", None, SessionKind.BREAK, "Mittagspause", "", [], None),
    ("13:00", "14:00", 0, SessionKind.PANEL, "Podium: Die Zukunft der Stadtentwicklung",
     "Leerstand, Mobilität, digitale Verwaltung: wie Städte im Revier attraktiv bleiben.",
     [("kuehnel", "moderator"), ("hartung", "speaker"), ("krause", "speaker"), ("vogel", "speaker")],
     "Stadt"),
    ("13:00", "13:45", 1, SessionKind.TALK, "Smarte Region: Daten als Infrastruktur",
     "Offene Daten und Sensorik für Verkehr, Energie und Verwaltung.", [("lorenz", "speaker")], "Stadt"),
    ("13:00", "13:45", 2, SessionKind.TALK, "KI im Mittelstand: drei Praxisbeispiele",
     "Von der Angebotskalkulation bis zur Qualitätsprüfung.", [("weber", "speaker")], "Wirtschaft"),
    ("14:00", "15:00", 0, SessionKind.PANEL, "Podium: Digitalisierung und Vernetzung als Chance",
     "Wie Cluster, Verbände und Digitalisierungszentren zusammen mehr erreichen.",
     [("wendt", "moderator"), ("lorenz", "speaker"), ("pohlmann", "speaker"), ("brandt", "speaker")],
     "Wirtschaft"),
    ("14:00", "14:45", 1, SessionKind.TALK, "Weiterbildung digital: vom Tagebau in die IT",
     "Erfahrungen aus einem Umschulungsprogramm für Beschäftigte der Energiewirtschaft.",
     [("becker", "speaker")], "Arbeit"),
    ("15:00", "15:15", None, SessionKind.BREAK, "Pause", "", [], None),
    ("15:15", "16:00", 1, SessionKind.NETWORKING, "Networking: Unternehmen treffen Wissenschaft",
     "Offener Austausch in kleinen Runden.", [], None),
    ("15:15", "15:45", 0, SessionKind.TALK, "Zusammenfassung und Ausblick",
     "Die Veranstalter fassen den Tag zusammen.", [("wendt", "speaker"), ("lorenz", "speaker")], None),
]

ROOMS = [("Hauptbühne", "youtube", "https://www.youtube.com/live/demoBuehne1"),
         ("Raum A", "peertube", "https://video.example.org/videos/embed/demo-raum-a"),
         ("Raum B", "jitsi", "https://meet.example.org/digitalkonferenz-raum-b")]
TRACKS = {"Wirtschaft": "#1f5f99", "Wissenschaft": "#6a3d9a", "Arbeit": "#2e7d32", "Stadt": "#b35900"}
FIRST_NAMES = ["Anna", "Ben", "Clara", "David", "Emma", "Felix", "Greta", "Hannes", "Ida", "Jonas", "Karla",
               "Lukas", "Mia", "Noah", "Paula", "Rico", "Sophie", "Tim", "Ulrike", "Volker"]
LAST_NAMES = ["Schmidt", "Müller", "Fischer", "Wagner", "Hoffmann", "Schulz", "Zimmermann", "Krüger",
              "Lehmann", "Köhler", "Neumann", "Schwarz", "Wolf", "Hahn", "Franke", "Berger"]


@dataclass
class DemoResult:
    event_slug: str
    event_title: str
    password: str
    logins: list[tuple[str, str]]
    tokens: list[str] = field(default_factory=list)


def demo_token(user_id: int) -> str:
    """Deterministic per instance, so repeated `demo --token-file` runs hand out the same tokens."""
    key = current_app.config["SECRET_KEY"].encode()
    digest = hmac.new(key, f"demo-token:{user_id}".encode(), hashlib.sha256).digest()
    return TOKEN_PREFIX + base64.urlsafe_b64encode(digest).decode().rstrip("=")


def attendee_email(number: int) -> str:
    return f"teilnehmer{number:05d}@{DEMO_DOMAIN}"


def load_demo(*, attendees: int = 130, with_tokens: bool = False) -> DemoResult:
    """Create the demo event, people and programme if missing; add attendees up to `attendees`. Commits."""
    password_hash = hash_password(DEMO_PASSWORD)  # one hash shared by all demo accounts keeps N=10,000 fast
    event = db.session.scalar(select(Event).where(Event.slug == DEMO_SLUG))
    if event is None:
        event = _create_event_with_programme(password_hash)
    logins = [("Organisation", ORGANISERS[0][1]), ("Moderation", MODERATORS[0][1]),
              ("Referentin", f"sprecher.wendt@{DEMO_DOMAIN}"), ("Teilnehmer", attendee_email(1))]
    attendee_ids = _ensure_attendees(event, attendees, password_hash)
    load_demo_legal_texts(event, account_domain=DEMO_DOMAIN)
    commit()
    ensure_demo_release(event)  # the first agenda release, so public pages and exports work at once
    commit()
    load_demo_presentations(event)
    tokens = _ensure_tokens(attendee_ids) if with_tokens else []
    return DemoResult(event.slug, event.title, DEMO_PASSWORD, logins, tokens)


def _user(email: str, name: str, password_hash: str, is_admin: bool = False) -> User:
    # The demo's operator made these accounts, so their (invented) addresses count as confirmed.
    user = User(email=email, name=name, password_hash=password_hash, is_admin=is_admin, email_verified_at=utcnow())
    db.session.add(user)
    return user


def _create_event_with_programme(password_hash: str) -> Event:
    event = Event(
        slug=DEMO_SLUG, title="Digitalkonferenz Revier 2027: Strukturwandel digital gestalten",
        description=(
            "Die Online-Konferenz für Unternehmen, Wissenschaft und Politik im Mittleren Revier. "
            "Nach dem Ende des Braunkohleabbaus fragen wir: Welche Chancen bietet die Digitalisierung "
            "für Unternehmen, Arbeit und Städte der Region?\n\n"
            "Veranstaltet vom **IT-Cluster Revier Digital e.V.** gemeinsam mit dem "
            "**Unternehmerverband Mittleres Revier** und dem **Digitalisierungszentrum Kohlhaven**."
        ),
        timezone="Europe/Berlin", start_date=DEMO_DATE, end_date=DEMO_DATE, language="de", is_published=True,
    )
    db.session.add(event)
    admin = _user(f"admin@{DEMO_DOMAIN}", "Site Admin", password_hash, is_admin=True)
    people: list[tuple[User, Role]] = [(admin, Role.ORGANISER)]
    for name, email, _position in ORGANISERS:
        people.append((_user(email, name, password_hash), Role.ORGANISER))
    for name, email in MODERATORS:
        people.append((_user(email, name, password_hash), Role.MODERATOR))
    db.session.flush()
    for user, role in people:
        db.session.add(EventMembership(event_id=event.id, user_id=user.id, role=role))

    profiles: dict[str, SpeakerProfile] = {}
    for key, title, name, job, organisation, bio in SPEAKERS:
        account = _user(f"sprecher.{key}@{DEMO_DOMAIN}", name, password_hash)
        db.session.flush()
        db.session.add(EventMembership(event_id=event.id, user_id=account.id, role=Role.SPEAKER))
        profiles[key] = SpeakerProfile(event_id=event.id, user_id=account.id, name=name, academic_title=title,
                                       position=job, organisation=organisation, bio=bio)
        db.session.add(profiles[key])
    rooms = [Room(event_id=event.id, name=name, position=i, stream_kind=kind, stream_url=url)
             for i, (name, kind, url) in enumerate(ROOMS)]
    tracks = {name: Track(event_id=event.id, name=name, color=color) for name, color in TRACKS.items()}
    db.session.add_all([*rooms, *tracks.values()])
    db.session.flush()

    zone = ZoneInfo(event.timezone)

    def at(clock: str) -> datetime:
        hour, minute = map(int, clock.split(":"))
        return datetime.combine(DEMO_DATE, time(hour, minute), zone)

    for start, end, room_index, kind, title, abstract, speakers, track in PROGRAMME:
        session = ConferenceSession(event_id=event.id, title=title, abstract=abstract, kind=kind, language="de",
                                    track_id=tracks[track].id if track else None)
        db.session.add(session)
        db.session.flush()
        for order, (key, speaker_role) in enumerate(speakers):
            db.session.add(SessionSpeaker(session_id=session.id, speaker_id=profiles[key].id, role=speaker_role,
                                          position=order))
        for room in rooms if room_index is None else [rooms[room_index]]:
            db.session.add(TimetableSlot(session_id=session.id, room_id=room.id, start_at=at(start),
                                         end_at=at(end)))
    db.session.flush()
    return event


def _ensure_attendees(event: Event, count: int, password_hash: str) -> list[int]:
    """Bulk-create missing demo attendees 1..count with memberships; returns their ids in order."""
    wanted = [attendee_email(n) for n in range(1, count + 1)]
    existing = dict(db.session.execute(
        select(User.email, User.id).where(User.email.like(f"teilnehmer%@{DEMO_DOMAIN}"))).all())
    missing = [(n, email) for n, email in enumerate(wanted, start=1) if email not in existing]
    now = utcnow()
    if missing:
        db.session.execute(insert(User), [
            {"email": email, "name": f"{FIRST_NAMES[n % len(FIRST_NAMES)]} "
                                     f"{LAST_NAMES[(n // len(FIRST_NAMES)) % len(LAST_NAMES)]} ({n})",
             "password_hash": password_hash, "is_admin": False, "is_disabled": False, "email_verified_at": now}
            for n, email in missing])
        existing = dict(db.session.execute(
            select(User.email, User.id).where(User.email.like(f"teilnehmer%@{DEMO_DOMAIN}"))).all())
    ids = [existing[email] for email in wanted]
    members = set(db.session.scalars(select(EventMembership.user_id).where(EventMembership.event_id == event.id)))
    new_members = [uid for uid in ids if uid not in members]
    if new_members:
        db.session.execute(insert(EventMembership), [
            {"event_id": event.id, "user_id": uid, "role": Role.ATTENDEE} for uid in new_members])
    return ids


def _ensure_tokens(user_ids: list[int]) -> list[str]:
    tokens = {uid: demo_token(uid) for uid in user_ids}
    known = set(db.session.scalars(select(ApiToken.token_hash).where(ApiToken.name == "demo-load")))
    rows = [{"user_id": uid, "name": "demo-load", "token_hash": hash_secret(token), "prefix": token[:10]}
            for uid, token in tokens.items() if hash_secret(token) not in known]
    if rows:
        db.session.execute(insert(ApiToken), rows)
    commit()
    return [tokens[uid] for uid in user_ids]
