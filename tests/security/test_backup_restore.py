"""A backup restored onto another machine-like instance works there: logins, feeds, invitations, tokens, slides,
chat. Instance A is built in this process (its secret key generated into instance/secret_key, as in production);
`conference backup` and `conference restore` run as their own processes; instance B is a new `conference run`
process on a different instance path, asked over HTTP."""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
import sqlite3
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
import requests
from sqlalchemy import select

from conference import create_app
from conference.agenda.models import ConferenceSession
from conference.agenda.personal import calendar_feed_token, create_calendar_feed, star_session
from conference.auth import logins
from conference.auth.models import User
from conference.events.models import Event
from conference.extensions import db, socketio
from conference.speakers import services as speaker_services
from tests.fixtures.presentations import pdf_bytes
from tests.security.drill_client import Participant
from tests.support.server import CONFERENCE, PROJECT_ROOT, run_cli, running_server, server_env

pytestmark = [pytest.mark.server]

SLUG = "digitalkonferenz-2027"
PASSWORD = "demo-passwort-2027"
ATTENDEE = "teilnehmer00001@demo.invalid"
PASSPHRASE = "korrekt Pferd Batterie Heftklammer"
LOBBY = f"lobby:{SLUG}"


def build_instance_a(tmp_path: Path) -> tuple[dict[str, str], dict[str, Any]]:
    """The demo plus one of everything that depends on the secret key or the files; returns A's environment and
    what to check on B."""
    instance = tmp_path / "a"
    env = server_env(instance, "threading")
    instance.mkdir()
    run_cli(["demo", "--attendees", "3"], env)
    app = create_app({"INSTANCE_PATH": str(instance), "ASYNC_MODE": "threading", "TESTING": True,
                      "EXTERNAL_URL": "http://localhost", "MESSAGE_QUEUE": None})
    assert (instance / "secret_key").read_text().strip() == app.config["SECRET_KEY"]
    facts: dict[str, Any] = {}
    with app.app_context():
        event = db.session.scalar(select(Event).where(Event.slug == SLUG))
        attendee = db.session.scalar(select(User).where(User.email == ATTENDEE))
        organiser = db.session.scalar(select(User).where(User.email == "orga@demo.invalid"))
        assert event is not None and attendee is not None and organiser is not None
        talk = db.session.scalars(select(ConferenceSession).where(ConferenceSession.event_id == event.id,
                                                                  ConferenceSession.kind == "talk")).first()
        assert talk is not None
        star_session(talk, user=attendee)
        feed = create_calendar_feed(event, user=attendee)
        invitation = speaker_services.invite_speaker(event, session=talk, email="neu.sprecherin@example.org",
                                                     actor=organiser, name="Neue Sprecherin")
        db.session.flush()
        facts.update(feed=f"/events/{SLUG}/calendar/{calendar_feed_token(feed)}.ics",
                     invitation=f"/events/{SLUG}/invitations/{speaker_services.invitation_token(invitation)}",
                     token=logins.issue_api_token(attendee, name="backup test"),
                     organiser_token=logins.issue_api_token(organiser, name="backup test"),
                     talk=talk.id, talk_title=talk.title)
        db.session.commit()
    client = app.test_client()
    login_page = client.get("/login").get_data(as_text=True)
    csrf = login_page.split('name="csrf_token" type="hidden" value="', 1)[1].split('"', 1)[0]
    assert client.post("/login", data={"email": ATTENDEE, "password": PASSWORD, "csrf_token": csrf}).status_code in (302, 303)
    cookie = client.get_cookie("conference_session")
    assert cookie is not None
    facts["cookie"] = cookie.value
    slides = pdf_bytes("Folien zur Sicherung")
    response = client.post(f"/api/v1/sessions/{facts['talk']}/presentations",
                           headers={"Authorization": f"Bearer {facts['organiser_token']}"},
                           data={"file": (io.BytesIO(slides), "folien.pdf")},
                           content_type="multipart/form-data")
    assert response.status_code == 201, response.get_data(as_text=True)
    facts["slides"] = (response.get_json()["id"], hashlib.sha256(slides).hexdigest())
    chat = socketio.test_client(app, auth={"token": facts["token"]})
    assert chat.emit("join", {"room": f"lobby:{SLUG}"}, callback=True)["ok"] is True
    facts["chat"] = [f"Nachricht vor der Sicherung {i}" for i in range(3)]
    for i, text in enumerate(facts["chat"]):
        assert chat.emit("chat:send", {"room": f"lobby:{SLUG}", "text": text, "client_id": f"bk-{i}"},
                         callback=True)["ok"] is True
    chat.disconnect()
    with app.app_context():
        db.engine.dispose()
    return env, facts


def check_instance(url: str, facts: dict[str, Any]) -> dict[str, bool]:
    """Which of the key-bound and file-bound things work on the instance at `url`."""
    account = requests.get(f"{url}/account", cookies={"conference_session": facts["cookie"]},
                           allow_redirects=False, timeout=10)
    feed = requests.get(f"{url}{facts['feed']}", timeout=10)
    invitation = requests.get(f"{url}{facts['invitation']}", timeout=10)
    auth = {"Authorization": f"Bearer {facts['token']}"}
    history = requests.get(f"{url}/api/v1/events/{SLUG}/chat", params={"room": f"lobby:{SLUG}"}, headers=auth,
                           timeout=10)
    presentation_id, digest = facts["slides"]
    slides = requests.get(f"{url}/api/v1/sessions/{facts['talk']}/presentations/{presentation_id}/download",
                          headers={"Authorization": f"Bearer {facts['organiser_token']}"}, timeout=10)
    texts = [m["text"] for m in history.json().get("messages", [])] if history.status_code == 200 else []
    return {
        "login": account.status_code == 200 and ATTENDEE in account.text,
        "feed": feed.status_code == 200 and "BEGIN:VCALENDAR" in feed.text and facts["talk_title"] in feed.text,
        "invitation": invitation.status_code == 200 and "neu.sprecherin@example.org" in invitation.text,
        "token": history.status_code == 200,
        "chat": all(text in texts for text in facts["chat"]),
        "slides": slides.status_code == 200 and hashlib.sha256(slides.content).hexdigest() == digest,
    }


def test_restore_on_a_fresh_instance_keeps_logins_feeds_invitations_tokens_slides_and_chat(tmp_path: Path) -> None:
    env_a, facts = build_instance_a(tmp_path)
    passphrase_file = tmp_path / "passphrase"
    passphrase_file.write_text(PASSPHRASE + "\n")
    backup = run_cli(["backup", str(tmp_path / "backup"), "--passphrase-file", str(passphrase_file)], env_a)
    assert "secret key encrypted" in backup.stdout
    assert (tmp_path / "a" / "secret_key").read_text() not in (tmp_path / "backup" / "secrets.enc").read_text()
    # B: another instance path, its own freshly generated key, nothing of A but the backup.
    env_b = server_env(tmp_path / "b", "eventlet")
    (tmp_path / "b").mkdir()
    wrong = tmp_path / "wrong"
    wrong.write_text("not the passphrase at all\n")
    refused = subprocess.run([*CONFERENCE, "restore", str(tmp_path / "backup"), "--passphrase-file", str(wrong)],
                             env=env_b, cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=60, check=False)
    assert refused.returncode != 0 and "wrong passphrase" in refused.stderr
    assert not (tmp_path / "b" / "conference.sqlite3").exists() or \
        (tmp_path / "b" / "conference.sqlite3").stat().st_size == 0
    restored = run_cli(["restore", str(tmp_path / "backup")],
                       {**env_b, "CONFERENCE_BACKUP_PASSPHRASE": PASSPHRASE})
    assert "and the secret key" in restored.stdout
    assert (tmp_path / "b" / "secret_key").read_text() == (tmp_path / "a" / "secret_key").read_text()
    assert oct((tmp_path / "b" / "secret_key").stat().st_mode & 0o777) == "0o600"
    with running_server(tmp_path / "b", demo_attendees=None) as server_b:
        assert check_instance(server_b.url, facts) == dict.fromkeys(
            ("login", "feed", "invitation", "token", "chat", "slides"), True)
    # The same backup restored without its secrets: what the documentation says dies, dies (and the check
    # above could fail).
    env_c = server_env(tmp_path / "c", "eventlet")
    (tmp_path / "c").mkdir()
    without = run_cli(["restore", str(tmp_path / "backup"), "--without-secrets"], env_c)
    assert "secret key is NOT" in without.stderr
    with running_server(tmp_path / "c", demo_attendees=None) as server_c:
        assert check_instance(server_c.url, facts) == {"login": False, "feed": False, "invitation": False,
                                                       "token": True, "chat": True, "slides": True}


def test_backup_without_passphrase_says_plainly_that_secrets_are_missing(tmp_path: Path) -> None:
    instance = tmp_path / "a"
    env = server_env(instance, "threading")  # no CONFERENCE_* variable of the test's own environment
    instance.mkdir()
    run_cli(["demo", "--attendees", "1"], env)
    result = run_cli(["backup", str(tmp_path / "backup")], env)
    assert "secret key is NOT in this backup" in result.stderr and "calendar feed" in result.stderr
    assert not (tmp_path / "backup" / "secrets.enc").exists()
    needs = subprocess.run([*CONFERENCE, "backup", str(tmp_path / "other"), "--with-secrets"], env=env,
                           cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=60, check=False)
    assert needs.returncode != 0 and "needs a passphrase" in needs.stderr and not (tmp_path / "other").exists()


# --- a backup taken while 130 clients chat ------------------------------------------------------------------


def table_digests(database: Path) -> dict[str, tuple[int, str]]:
    """Every table's row count and a hash of all its rows (in primary key order)."""
    connection = sqlite3.connect(database)
    try:
        tables = [row[0] for row in connection.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")]
        result = {}
        for table in tables:
            rows = connection.execute(f'SELECT * FROM "{table}" ORDER BY 1').fetchall()  # noqa: S608 - own names
            result[table] = (len(rows), hashlib.sha256(repr(rows).encode()).hexdigest())
        return result
    finally:
        connection.close()


async def chat_during_backup(port: int, tokens: list[str], take_backup: Any) -> dict[str, Any]:
    loop = asyncio.get_running_loop()
    people = [Participant(port, token, LOBBY) for token in tokens]
    semaphore = asyncio.Semaphore(40)

    async def start(person: Participant) -> None:
        async with semaphore:
            await person.start()

    await asyncio.gather(*(start(p) for p in people))
    acked: list[tuple[float, int]] = []
    stop = asyncio.Event()

    async def chatter(index: int, person: Participant) -> None:
        seq = 0
        while not stop.is_set():
            assert person.client is not None
            ack = await person.client.call("chat:send", {"room": LOBBY, "text": f"während {index}/{seq}",
                                                         "client_id": f"live-{index}-{seq}"}, timeout=10)
            if ack.get("ok") is True:
                acked.append((time.monotonic(), ack["message"]["id"]))
            seq += 1
            await asyncio.sleep(0.05)

    async def backup_midway() -> tuple[float, float]:
        while len(acked) < 100:
            await asyncio.sleep(0.02)
        started = time.monotonic()
        await loop.run_in_executor(None, take_backup)
        finished = time.monotonic()
        while len([a for a in acked if a[0] > finished]) < 50:  # the chat goes on after the backup too
            await asyncio.sleep(0.02)
        stop.set()
        return started, finished

    results = await asyncio.gather(backup_midway(), *(chatter(i, p) for i, p in enumerate(people[:20])))
    started, finished = results[0]
    for person in people:
        if person.client is not None:
            person.client.close()
    return {"acked": acked, "started": started, "finished": finished, "connected": len(people)}


def test_backup_during_chat_with_130_clients_restores_consistently(tmp_path: Path) -> None:
    passphrase_file = tmp_path / "passphrase"
    passphrase_file.write_text(PASSPHRASE)
    backup = tmp_path / "backup"
    with running_server(tmp_path / "live", demo_attendees=130, tokens=True,
                        CONFERENCE_LIVE_CHAT_RATE_LIMIT="1000/10") as server:
        assert len(server.tokens) == 130
        port = int(server.url.rsplit(":", 1)[1])
        outcome = asyncio.run(chat_during_backup(port, server.tokens, lambda: run_cli(
            ["backup", str(backup), "--passphrase-file", str(passphrase_file)], server.env)))
    source = table_digests(tmp_path / "live" / "conference.sqlite3")
    env_b = server_env(tmp_path / "restored", "eventlet")
    (tmp_path / "restored").mkdir()
    run_cli(["restore", str(backup)], {**env_b, "CONFERENCE_BACKUP_PASSPHRASE": PASSPHRASE})
    restored_db = tmp_path / "restored" / "conference.sqlite3"
    restored = table_digests(restored_db)
    # Every table but the chat is exactly the source's; the chat is a clean prefix of it: every message
    # acknowledged before the backup began, nothing torn, nothing that was not in the source.
    # The presence sampler writes a row per person and minute while the server runs: a minute that ends after
    # the backup adds rows to the source only, so the backup's presence is a subset of the source's.
    growing = {"chat_messages", "attendance_minutes"}
    assert set(restored) == set(source)
    assert {t: v for t, v in restored.items() if t not in growing} == \
        {t: v for t, v in source.items() if t not in growing}
    with sqlite3.connect(restored_db) as connection:
        restored_presence = set(connection.execute("SELECT * FROM attendance_minutes").fetchall())
    with sqlite3.connect(tmp_path / "live" / "conference.sqlite3") as connection:
        assert restored_presence <= set(connection.execute("SELECT * FROM attendance_minutes").fetchall())
    with sqlite3.connect(restored_db) as connection:
        restored_rows = connection.execute("SELECT * FROM chat_messages ORDER BY id").fetchall()
    with sqlite3.connect(tmp_path / "live" / "conference.sqlite3") as connection:
        newest = restored_rows[-1][0]
        source_prefix = connection.execute("SELECT * FROM chat_messages WHERE id <= ? ORDER BY id",
                                           (newest,)).fetchall()
        source_count = connection.execute("SELECT count(*) FROM chat_messages").fetchone()[0]
    assert restored_rows == source_prefix
    acked_before = {mid for at, mid in outcome["acked"] if at < outcome["started"]}
    acked_after = {mid for at, mid in outcome["acked"] if at > outcome["finished"]}
    restored_ids = {row[0] for row in restored_rows}
    assert acked_before <= restored_ids and not acked_after & restored_ids
    assert source_count > len(restored_rows) >= len(acked_before) >= 100
    manifest = json.loads((backup / "manifest.json").read_text())
    uploads = tmp_path / "restored" / "uploads"
    assert {str(p.relative_to(uploads)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in uploads.rglob("*") if p.is_file()} == {k: v["sha256"] for k, v in manifest["files"].items()}
    assert (tmp_path / "restored" / "secret_key").read_text() == (tmp_path / "live" / "secret_key").read_text()
    print(f"\n130 clients, 20 chatting: {len(outcome['acked'])} messages acknowledged, backup took "
          f"{outcome['finished'] - outcome['started']:.2f} s, {len(restored_rows)} restored, "
          f"{len(restored)} tables compared")
