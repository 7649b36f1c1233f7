"""Fault drills against the real server process (eventlet) and the real CLI, each bounded to seconds.

- the server SIGKILLed in the middle of an upload: no half file, no orphan row, a retry succeeds;
- the server killed and restarted during a chat with 130 clients: every acknowledged message is delivered
  exactly once to every client (live or via chat:history after the reconnect), in order, stored once;
- the disk full during an upload (a 2 MB tmpfs as UPLOAD_DIR): a clear 507, nothing left behind;
- a migration that fails halfway: the database stays at the previous revision and the app still serves;
- a backup taken during live chat, restored into a fresh instance: every file hash matches.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import shutil
import signal
import socket
import sqlite3
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.conftest import require_service, settings_for_tests
from tests.fixtures.presentations import pdf_bytes
from tests.security.conftest import Evidence
from tests.security.drill_client import Participant
from tests.support.server import CONFERENCE, PROJECT_ROOT, free_port, run_cli, server_env, wait_until_up

pytestmark = [pytest.mark.server]

SLUG = "digitalkonferenz-2027"
LOBBY = f"lobby:{SLUG}"
PASSWORD = "demo-passwort-2027"


class Server:
    """`conference run` on a fixed port, so it can be killed and started again at the same address."""

    def __init__(self, instance: Path, **env: str) -> None:
        self.instance = instance
        self.env = server_env(instance, "eventlet", CONFERENCE_LIVE_CHAT_RATE_LIMIT="1000/10", **env)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def load_demo(self, attendees: int) -> list[str]:
        self.instance.mkdir(parents=True, exist_ok=True)
        run_cli(["demo", "--attendees", str(attendees), "--token-file", str(self.instance / "tokens.txt")],
                self.env)
        return (self.instance / "tokens.txt").read_text().split()

    def start(self) -> None:
        self.starts += 1
        log = (self.instance / f"server-{self.starts}.log").open("wb")
        self.process = subprocess.Popen([*CONFERENCE, "run", "--host", "127.0.0.1", "--port", str(self.port)],
                                        env=self.env, cwd=PROJECT_ROOT, stdout=log, stderr=subprocess.STDOUT)
        log.close()
        wait_until_up(self.url, self.process, timeout=40)

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)

    def cli(self, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        return run_cli(list(args), env or self.env)

    def database(self) -> sqlite3.Connection:
        return sqlite3.connect(self.instance / "conference.sqlite3", timeout=10)

    def token_for(self, email: str) -> str:
        response = requests.post(f"{self.url}/api/v1/auth/token", json={"email": email, "password": PASSWORD},
                                 timeout=10)
        assert response.status_code == 201, response.text
        return str(response.json()["token"])


@contextmanager
def server(tmp_path: Path, **env: str) -> Iterator[Server]:
    running = Server(tmp_path / "instance", **env)
    try:
        yield running
    finally:
        running.stop()


def uploads(instance: Path) -> dict[str, str]:
    root = instance / "uploads"
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def big_pdf(megabytes: float) -> bytes:
    data = pdf_bytes()
    return data[:9] + b"%" + b"x" * int(megabytes * 1024 * 1024) + b"\n" + data[9:]


def multipart(data: bytes, name: str = "folien.pdf") -> tuple[bytes, str]:
    boundary = "drill0boundary"
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{name}\"\r\n"
            f"Content-Type: application/pdf\r\n\r\n").encode() + data + f"\r\n--{boundary}--\r\n".encode()
    return body, f"multipart/form-data; boundary={boundary}"


def first_talk(url: str) -> int:
    sessions = requests.get(f"{url}/api/v1/events/{SLUG}/sessions", timeout=10).json()["sessions"]
    return int(next(s["id"] for s in sessions if s.get("speakers")))


# --- 1. killed during an upload ------------------------------------------------------------------------------


def test_server_killed_during_upload_leaves_nothing_and_retry_succeeds(tmp_path: Path, evidence: Evidence) -> None:
    with server(tmp_path) as srv:
        srv.load_demo(2)
        srv.start()
        token = srv.token_for("orga@demo.invalid")
        session_id = first_talk(srv.url)
        before_files = uploads(srv.instance)
        with srv.database() as db:
            before_rows = db.execute("SELECT count(*) FROM presentations").fetchone()[0]
        data = big_pdf(12)  # the server writes in batches of 4 MB: 9 MB sent puts some of it on the disk
        body, content_type = multipart(data)
        path = f"/api/v1/sessions/{session_id}/presentations"
        raw = socket.create_connection(("127.0.0.1", srv.port), timeout=10)
        raw.sendall((f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\n"
                     f"Content-Type: {content_type}\r\nContent-Length: {len(body)}\r\n\r\n").encode())
        raw.sendall(body[:len(body) * 3 // 4])
        deadline = time.monotonic() + 10
        presentations = srv.instance / "uploads" / "presentations"
        while not any(p.name.endswith(".part") and p.stat().st_size > 1024 * 1024
                      for p in presentations.glob(".upload-*")):
            assert time.monotonic() < deadline, "the server never started writing the upload"
            time.sleep(0.05)
        srv.kill()  # SIGKILL: no handler, no cleanup, mid-write
        raw.close()
        srv.start()
        with srv.database() as db:
            rows = db.execute("SELECT count(*) FROM presentations").fetchone()[0]
        after_files = uploads(srv.instance)
        evidence.add("fault_drills")
        leftovers = sorted(set(after_files) - set(before_files))
        if rows != before_rows or leftovers:
            evidence.note("rejected_writes", f"killed upload left {rows - before_rows} rows, files {leftovers}")
        assert rows == before_rows
        assert leftovers == []  # neither a final file nor the temporary part survives the restart
        response = requests.post(f"{srv.url}{path}", data=body, timeout=60,
                                 headers={"Authorization": f"Bearer {token}", "Content-Type": content_type})
        assert response.status_code == 201, response.text[:300]
        stored = response.json()
        assert stored["sha256"] == hashlib.sha256(data).hexdigest()
        new_files = set(uploads(srv.instance)) - set(before_files)
        assert any(uploads(srv.instance)[f] == stored["sha256"] for f in new_files)


# --- 2. restarted during a chat with 130 clients ---------------------------------------------------------------


async def _chat_through_restart(srv: Server, tokens: list[str], senders: int, per_sender: int,
                                restart: Any) -> dict[str, Any]:
    loop = asyncio.get_running_loop()
    people = [Participant(srv.port, token, LOBBY) for token in tokens]
    semaphore = asyncio.Semaphore(40)

    async def start(person: Participant) -> None:
        async with semaphore:
            await person.start()

    await asyncio.gather(*(start(p) for p in people))
    acked: dict[tuple[int, int], int] = {}  # (sender, seq) -> message id
    deadline = loop.time() + 90

    async def send_all(index: int, person: Participant) -> None:
        for seq in range(per_sender):
            payload = {"room": LOBBY, "text": f"drill {index}/{seq}", "client_id": f"drill-{index}-{seq}"}
            while True:
                try:
                    client = await person.ensure(deadline)
                    ack = await client.call("chat:send", payload, timeout=5)
                except (TimeoutError, ConnectionError, OSError):
                    assert loop.time() < deadline, "no recovery within the drill's time bound"
                    await asyncio.sleep(0.1)
                    continue  # resend with the same client_id: the server stores it once
                if ack.get("ok") is True:
                    acked[(index, seq)] = ack["message"]["id"]
                    break
                assert ack.get("error") in ("unavailable",), ack
                await asyncio.sleep(0.2)
            await asyncio.sleep(0.08)

    async def restart_midway() -> None:
        while len(acked) < senders * per_sender // 3:
            await asyncio.sleep(0.02)
        await loop.run_in_executor(None, restart)

    await asyncio.gather(restart_midway(), *(send_all(i, p) for i, p in enumerate(people[:senders])))
    # Everyone who lost the connection reconnects and catches up (even if nothing else happens).
    await asyncio.gather(*(p.ensure(deadline) for p in people))
    wanted = set(acked.values())
    settle = loop.time() + 10
    while loop.time() < settle and not all(wanted <= p.seen() for p in people):
        await asyncio.sleep(0.05)
    result = {
        "acked": acked,
        "lost": sum(len(wanted - p.seen()) for p in people),
        "live_duplicates": sum(p.live_duplicates() for p in people),
        "reconnected": sum(1 for p in people if p.reconnects),
    }
    for person in people:
        for client in [*person.previous, person.client]:
            if client is not None:
                client.close()
    return result


def test_server_restart_during_chat_with_130_clients_loses_nothing(tmp_path: Path, evidence: Evidence) -> None:
    with server(tmp_path) as srv:
        tokens = srv.load_demo(130)
        assert len(tokens) == 130
        srv.start()

        def restart() -> None:
            srv.kill()
            srv.start()

        result = asyncio.run(_chat_through_restart(srv, tokens, senders=10, per_sender=12, restart=restart))
        acked = result["acked"]
        with srv.database() as db:
            stored = db.execute("SELECT author_id, client_id, id FROM chat_messages WHERE room = ? AND "
                                "client_id LIKE 'drill-%'", (LOBBY,)).fetchall()
    evidence.add("fault_drills")
    evidence.add("acked_messages", len(acked))
    stored_duplicates = len(stored) - len({(a, c) for a, c, _ in stored})
    evidence.add("acked_lost", result["lost"])
    evidence.add("acked_duplicated", result["live_duplicates"] + stored_duplicates)
    assert len(acked) == 120
    assert result["reconnected"] == 130  # the restart really cut every connection
    assert result["lost"] == 0
    assert result["live_duplicates"] == 0 and stored_duplicates == 0
    assert sorted(i for _a, _c, i in stored) == sorted(acked.values())
    for sender in range(10):  # order kept: each sender's messages got increasing ids in send order
        ids = [acked[(sender, seq)] for seq in range(12)]
        assert ids == sorted(ids)


# --- 3. disk full during an upload -------------------------------------------------------------------------


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    mount_point = tmp_path / "tiny-uploads"
    mount_point.mkdir()
    mounted = shutil.which("mount") is not None and subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mount_point)], capture_output=True,
        check=False).returncode == 0
    require_service("tmpfs mount", mounted, "mounting a small tmpfs needs root (CAP_SYS_ADMIN)")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], capture_output=True, check=False)


def test_disk_full_during_upload_is_a_clear_error_and_leaves_nothing(small_disk: Path, tmp_path: Path,
                                                                    evidence: Evidence) -> None:
    from conference import create_app
    from conference.extensions import db
    from tests.fixtures.presentations import upload

    app = create_app(settings_for_tests(tmp_path, UPLOAD_DIR=str(small_disk)))
    with app.app_context():
        db.create_all()
        from datetime import date

        from conference.agenda.models import ConferenceSession
        from conference.auth import accounts, logins
        from conference.core.after_commit import commit
        from conference.events.models import Event
        from conference.events.services import set_role

        event = Event(slug="voll", title="Voll", start_date=date(2099, 1, 1), end_date=date(2099, 1, 1),
                      is_published=True)
        db.session.add(event)
        db.session.flush()
        user = accounts.create_user(email="orga@example.org", name="Orga", password="long-enough-pass-1",
                                         verified=True)
        set_role(event, user=user, role="organiser")
        session = ConferenceSession(event_id=event.id, title="Vortrag")
        db.session.add(session)
        commit()
        token = logins.issue_api_token(user, name="t")
        commit()
        client = app.test_client()
        before = sorted(p.name for p in small_disk.rglob("*") if p.is_file())
        body, content_type = multipart(big_pdf(3))  # bytes: the test client would spool to an unclosed file
        response = client.post(f"/api/v1/sessions/{session.id}/presentations", data=body,
                               headers={"Authorization": f"Bearer {token}", "Content-Type": content_type})
        body = response.get_data(as_text=True)
        evidence.add("fault_drills")
        evidence.add("variants")  # 507 is the right answer to a full disk (a fault, not bad input)
        assert response.status_code == 507, (response.status_code, body[:300])
        assert response.get_json()["error"] == "storage_full"
        from sqlalchemy import func, select

        from conference.presentations.models import Presentation

        assert db.session.scalar(select(func.count()).select_from(Presentation)) == 0
        assert sorted(p.name for p in small_disk.rglob("*") if p.is_file()) == before
        retry = upload(client, session.id, "folien.pdf", pdf_bytes(), token=token)  # fits: works again
        assert retry.status_code == 201, retry.get_data(as_text=True)[:300]
        db.session.remove()
        db.engine.dispose()


# --- 4. a migration that fails halfway ---------------------------------------------------------------------

BROKEN_REVISION = '''"""A drill: creates a table, changes a column, then fails."""

import sqlalchemy as sa
from alembic import op

revision = "9999_broken"
down_revision = "{head}"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table("drill_half_done", sa.Column("id", sa.Integer, primary_key=True))
    op.add_column("events", sa.Column("drill_flag", sa.Boolean, nullable=True))
    op.execute("UPDATE events SET title = 'half migrated'")
    op.execute("SELECT no_such_column FROM no_such_table")


def downgrade():
    pass
'''


def _fail_a_migration(tmp_path: Path) -> dict[str, Any]:
    """Upgrade a copy of the migrations to head, add a revision that fails halfway, run it, report the state."""
    from alembic.config import Config as AlembicConfig
    from alembic.script import ScriptDirectory
    from flask_migrate import upgrade
    from sqlalchemy import inspect, text

    from conference import create_app
    from conference.extensions import db

    migrations = tmp_path / "migrations"
    shutil.copytree(PROJECT_ROOT / "migrations", migrations, ignore=shutil.ignore_patterns("__pycache__"))
    app = create_app(settings_for_tests(tmp_path))
    with app.app_context():
        upgrade(directory=str(migrations), revision="heads")
        config = AlembicConfig(str(migrations / "alembic.ini"))
        config.set_main_option("script_location", str(migrations))
        head = ScriptDirectory.from_config(config).get_current_head()
        (migrations / "versions" / "9999_broken.py").write_text(BROKEN_REVISION.format(head=head))
        from datetime import date

        from conference.core.after_commit import commit
        from conference.events.models import Event

        db.session.add(Event(slug="bleibt", title="Bleibt", start_date=date(2099, 1, 1), end_date=date(2099, 1, 1),
                             is_published=True))
        commit()
        with pytest.raises(Exception, match="no_such"):
            upgrade(directory=str(migrations), revision="heads")
        db.session.rollback()
        with db.engine.connect() as connection:
            version = connection.execute(text("SELECT version_num FROM alembic_version")).scalar()
            title = connection.execute(text("SELECT title FROM events WHERE slug = 'bleibt'")).scalar()
        state = {
            "head": head, "version": version, "title": title,
            "tables": set(inspect(db.engine).get_table_names()),
            "columns": {c["name"] for c in inspect(db.engine).get_columns("events")},
        }
        client = app.test_client()
        state["page"] = client.get("/events/bleibt/").status_code
        state["health"] = client.get("/healthz").status_code
        db.session.remove()
        db.engine.dispose()
    return state


def test_failed_migration_keeps_previous_revision_and_app_serves(tmp_path: Path, evidence: Evidence) -> None:
    state = _fail_a_migration(tmp_path)
    evidence.add("fault_drills")
    assert state["version"] == state["head"]
    assert state["title"] == "Bleibt"  # the data change of the failed revision was rolled back
    assert state["page"] == 200 and state["health"] == 200


def test_failed_migration_leaves_no_partial_schema(tmp_path: Path, evidence: Evidence) -> None:
    state = _fail_a_migration(tmp_path)
    assert "drill_half_done" not in state["tables"] and "drill_flag" not in state["columns"]


# --- 5. backup during live chat, restored into a fresh instance ------------------------------------------------


def test_backup_during_live_chat_restores_with_every_hash_matching(tmp_path: Path, evidence: Evidence) -> None:
    import socketio as sio

    with server(tmp_path) as srv:
        tokens = srv.load_demo(6)
        srv.start()
        organiser = srv.token_for("orga@demo.invalid")
        session_id = first_talk(srv.url)
        for index in range(3):
            body, content_type = multipart(big_pdf(0.3 + index * 0.1))
            response = requests.post(f"{srv.url}/api/v1/sessions/{session_id}/presentations", data=body, timeout=30,
                                     headers={"Authorization": f"Bearer {organiser}", "Content-Type": content_type})
            assert response.status_code == 201
        acked: list[tuple[float, int]] = []
        stop = threading.Event()

        def chatter(token: str, index: int) -> None:
            client = sio.Client(reconnection=False)
            client.connect(srv.url, auth={"token": token}, transports=["websocket"], wait_timeout=10)
            assert client.call("join", {"room": LOBBY}, timeout=10)["ok"] is True
            seq = 0
            while not stop.is_set():
                ack = client.call("chat:send", {"room": LOBBY, "text": f"live {index}/{seq}",
                                                "client_id": f"bk-{index}-{seq}"}, timeout=10)
                if ack.get("ok"):
                    acked.append((time.monotonic(), ack["message"]["id"]))
                seq += 1
                time.sleep(0.02)
            client.disconnect()

        threads = [threading.Thread(target=chatter, args=(token, i)) for i, token in enumerate(tokens[:4])]
        for thread in threads:
            thread.start()
        while len(acked) < 40:
            time.sleep(0.02)
        backup_started = time.monotonic()
        backup = tmp_path / "backup"
        result = srv.cli("backup", str(backup))
        stop.set()
        for thread in threads:
            thread.join(timeout=20)
        assert "Backup written" in result.stdout
        acked_before = {mid for at, mid in acked if at < backup_started}
        original_files = uploads(srv.instance)
        manifest = json.loads((backup / "manifest.json").read_text())
        # A fresh instance, restored from the backup while the original keeps running.
        fresh_env = server_env(tmp_path / "fresh", "eventlet")
        (tmp_path / "fresh").mkdir()
        restore = run_cli(["restore", str(backup)], fresh_env)
        assert "every hash matches" in restore.stdout
        fresh = uploads(tmp_path / "fresh")
        assert fresh == {name: info["sha256"] for name, info in manifest["files"].items()}
        assert all(original_files.get(name) == digest for name, digest in fresh.items())
        assert sum(1 for name in fresh if name.startswith("presentations/") and name.endswith(".pdf")) >= 3
        restored = sqlite3.connect(tmp_path / "fresh" / "conference.sqlite3")
        assert restored.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        restored_ids = {row[0] for row in restored.execute("SELECT id FROM chat_messages")}
        stored_files = {row[0] for row in restored.execute("SELECT stored_filename FROM presentations")}
        restored.close()
        lost = len(acked_before - restored_ids)
        evidence.add("fault_drills")
        evidence.add("acked_messages", len(acked_before))
        evidence.add("acked_lost", lost)
        assert lost == 0
        assert {f"presentations/{name}" for name in stored_files} <= set(fresh)
        # The restored instance serves, and refuses to be overwritten by accident.
        again = subprocess.run([*CONFERENCE, "restore", str(backup)], env=fresh_env, cwd=PROJECT_ROOT,
                               capture_output=True, text=True, timeout=60, check=False)
        assert again.returncode != 0 and "not empty" in again.stderr
        verify = run_cli(["backup", "--verify", str(backup)], fresh_env)
        assert "intact" in verify.stdout
        # A damaged backup is refused before anything is written.
        victim = next((backup / "uploads").rglob("*.pdf"))
        victim.write_bytes(victim.read_bytes()[:-1] + b"!")
        empty_env = server_env(tmp_path / "other", "eventlet")
        (tmp_path / "other").mkdir()
        damaged = subprocess.run([*CONFERENCE, "restore", str(backup)], env=empty_env, cwd=PROJECT_ROOT,
                                 capture_output=True, text=True, timeout=60, check=False)
        assert damaged.returncode != 0 and "damaged" in damaged.stderr


@pytest.mark.postgres
def test_postgres_backup_restores_into_a_fresh_database(tmp_path: Path, postgres_url: str,
                                                        evidence: Evidence) -> None:
    """pg_dump's snapshot restored with pg_restore into an empty database: every table has the same rows."""
    import uuid

    from sqlalchemy import create_engine, text

    require_service("pg_dump", shutil.which("pg_dump") is not None, "postgresql-client not installed")
    source_env = server_env(tmp_path / "source", "eventlet", CONFERENCE_DATABASE_URL=postgres_url)
    (tmp_path / "source").mkdir()
    run_cli(["demo", "--attendees", "5"], source_env)
    run_cli(["backup", str(tmp_path / "backup")], source_env)
    admin = create_engine(postgres_url, isolation_level="AUTOCOMMIT")
    target_name = f"conference_restore_{uuid.uuid4().hex[:8]}"
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{target_name}"'))
    target_url = postgres_url.rsplit("/", 1)[0] + f"/{target_name}"
    try:
        target_env = server_env(tmp_path / "target", "eventlet", CONFERENCE_DATABASE_URL=target_url)
        (tmp_path / "target").mkdir()
        restore = run_cli(["restore", str(tmp_path / "backup")], target_env)
        assert "every hash matches" in restore.stdout

        def counts(url: str) -> dict[str, int]:
            from sqlalchemy import MetaData, func, select

            engine = create_engine(url)
            metadata = MetaData()
            metadata.reflect(engine)
            with engine.connect() as connection:
                result = {t.name: connection.execute(select(func.count()).select_from(t)).scalar() or 0
                          for t in metadata.sorted_tables}
            engine.dispose()
            return result

        source, target = counts(postgres_url), counts(target_url)
        evidence.add("fault_drills")
        assert source == target and source["users"] >= 5
        again = subprocess.run([*CONFERENCE, "restore", str(tmp_path / "backup")], env=target_env,
                               cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=60, check=False)
        assert again.returncode != 0 and "not empty" in again.stderr
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{target_name}" WITH (FORCE)'))
        admin.dispose()
