"""The release test: the wheel (and the wheel built from the sdist) installed as an operator installs it.

Built from the checkout, installed into a fresh venv outside it from the lock file, run from empty folders with
an environment that knows nothing of the checkout: the demo, the German pages, a static file, the exports, a
login, a chat message over Socket.IO, a PDF upload, `db check`, `backup` and `restore`, and the systemd unit's
command line (deploy/conference.service) with two workers on PostgreSQL and Redis.
"""

from __future__ import annotations

import re
import shlex
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from tests.conftest import require_service
from tests.fixtures.presentations import pdf_bytes
from tests.support.nginx import NGINX, running_nginx
from tests.support.release import Artifacts, Installed, build_artifacts, install_release, replace_wheel, wheel_files
from tests.support.server import PROJECT_ROOT, free_port, wait_until_up
from tests.support.services import fresh_postgres_database
from tests.support.sockets import LOBBY, SLUG, LiveClient

pytestmark = [pytest.mark.release, pytest.mark.server, pytest.mark.timeout(900)]

PASSWORD = "demo-passwort-2027"
UNIT = PROJECT_ROOT / "deploy" / "conference.service"
#: Texts of the compiled German catalogue (not of the demo's data) that every page has.
GERMAN = ("Zum Inhalt springen", "Anmelden", "Plattform für virtuelle Konferenzen", "Datenschutzerklärung")


@dataclass
class Release:
    artifacts: Artifacts
    installed: Installed
    root: Path


@pytest.fixture(scope="module")
def release(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Release]:
    root = tmp_path_factory.mktemp("release")
    artifacts = build_artifacts(root)
    installed = install_release(root / "venv", artifacts.wheel, artifacts.timings)
    yield Release(artifacts, installed, root)
    print("\nrelease test timings: " + ", ".join(f"{k} {v:.1f} s" for k, v in artifacts.timings.items()))


@pytest.fixture
def empty_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "empty"
    folder.mkdir()
    return folder


class Server:
    """`conference run` (or any command line) of the installed venv, started in `cwd`, stopped at the end."""

    def __init__(self, command: list[str], cwd: Path, env: dict[str, str], ports: list[int]) -> None:
        self.log = cwd.parent / f"server-{ports[0]}.log"
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(command, cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT)
        self.urls = [f"http://127.0.0.1:{port}" for port in ports]
        try:
            for url in self.urls:
                wait_until_up(url, self.process, timeout=60)
        except Exception:
            self.stop()
            raise AssertionError(self.log.read_text(errors="replace")[-4000:]) from None

    @property
    def url(self) -> str:
        return self.urls[0]

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)


def _csrf(html: str) -> str:
    match = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', html) \
        or re.search(r'name="csrf_token"[^>]*value="([^"]+)"', html)
    assert match, "no CSRF token in the form"
    return match.group(1)


def test_the_installed_package_is_the_wheel_and_knows_its_version(release: Release, empty_folder: Path) -> None:
    installed = release.installed
    env = installed.env()
    where = subprocess.run([str(installed.python), "-c", "import conference, conference.paths as p; "
                            "print(conference.__file__); print(p.is_installed_release()); print(p.data_dir('static'))"],
                           cwd=empty_folder, env=env, capture_output=True, text=True, check=True).stdout.split()
    assert where[0].startswith(str(installed.venv)) and where[1] == "True", where
    assert where[2].startswith(str(installed.venv)), where
    from conference import __version__

    assert installed.run(["--version"], empty_folder, env).stdout.strip() == f"conference {__version__}"
    assert release.artifacts.wheel.name == f"conference-{__version__}-py3-none-any.whl"
    files = wheel_files(release.artifacts.wheel)
    for expected in ("conference/_data/templates/base.html", "conference/_data/static/css/main.css",
                     "conference/_data/migrations/env.py", "conference/translations/de/LC_MESSAGES/messages.mo"):
        assert expected in files
    # The sdist builds the same wheel.
    assert wheel_files(release.artifacts.sdist_wheel) == files


def test_the_demo_runs_from_an_empty_folder_in_german(release: Release, empty_folder: Path) -> None:
    installed = release.installed
    port = free_port()
    env = installed.env(CONFERENCE_EXTERNAL_URL=f"http://127.0.0.1:{port}")  # instance: ./instance
    demo = installed.run(["demo", "--attendees", "3"], empty_folder, env)
    assert "orga@demo.invalid" in demo.stdout
    assert (empty_folder / "instance" / "conference.sqlite3").is_file()
    installed.run(["db", "check"], empty_folder, env)
    server = Server([str(installed.conference), "run", "--host", "127.0.0.1", "--port", str(port)],
                    empty_folder, env, [port])
    try:
        _check_pages(server.url)
        _check_login_chat_and_upload(server.url)
        backup = empty_folder.parent / "backup"
        result = installed.run(["backup", str(backup)], empty_folder, env)
        assert "Backup written" in result.stdout
        installed.run(["backup", str(backup), "--verify"], empty_folder, env)
    finally:
        server.stop()

    # Restore into another empty folder: the same accounts, the uploaded slides.
    other = empty_folder.parent / "restored"
    other.mkdir()
    restored_env = installed.env(CONFERENCE_EXTERNAL_URL=f"http://127.0.0.1:{port}")
    result = installed.run(["restore", str(backup)], other, restored_env)
    assert "every hash matches" in result.stdout
    installed.run(["db", "check"], other, restored_env)
    users = installed.run(["users", "list", "--json"], other, restored_env).stdout
    assert "orga@demo.invalid" in users
    uploads = sorted(p.name for p in (other / "instance" / "uploads").rglob("*") if p.is_file())
    originals = sorted(p.name for p in (empty_folder / "instance" / "uploads").rglob("*") if p.is_file())
    assert uploads == originals and uploads


def _check_pages(url: str) -> None:
    home = requests.get(f"{url}/", timeout=10)
    assert home.status_code == 200 and '<html lang="de">' in home.text
    assert all(text in home.text for text in GERMAN), home.text[:500]
    agenda = requests.get(f"{url}/events/{SLUG}/agenda", timeout=10)
    assert agenda.status_code == 200 and "Agenda" in agenda.text and 'lang="de"' in agenda.text
    css = requests.get(f"{url}/static/css/main.css", timeout=10)
    assert css.status_code == 200 and css.headers["Content-Type"].startswith("text/css") and len(css.content) > 1000
    assert css.content == (PROJECT_ROOT / "static" / "css" / "main.css").read_bytes()
    xml = requests.get(f"{url}/events/{SLUG}/schedule.xml", timeout=10)
    assert xml.status_code == 200 and xml.text.lstrip().startswith("<?xml") and "<schedule" in xml.text
    json_export = requests.get(f"{url}/events/{SLUG}/schedule.json", timeout=10)
    assert json_export.status_code == 200 and json_export.json()["schedule"]["conference"]["acronym"]
    ics = requests.get(f"{url}/events/{SLUG}/schedule.ics", timeout=10)
    assert ics.status_code == 200 and ics.text.startswith("BEGIN:VCALENDAR")
    health = requests.get(f"{url}/healthz", timeout=10).json()
    from conference import __version__

    assert health == {"status": "ok", "database": "ok", "queue": "none", "version": __version__}


def _check_login_chat_and_upload(url: str) -> None:
    from conference import __version__

    browser = requests.Session()
    form = browser.get(f"{url}/login", timeout=10)
    answer = browser.post(f"{url}/login", data={"csrf_token": _csrf(form.text), "email": "orga@demo.invalid",
                                                 "password": PASSWORD}, timeout=10)
    assert answer.status_code == 200 and "Abmelden" in answer.text, answer.text[:500]
    event_page = browser.get(f"{url}/events/{SLUG}/", timeout=10)
    assert f"Version {__version__}" in event_page.text  # the organisers' footer
    assert f"Version {__version__}" not in requests.get(f"{url}/events/{SLUG}/", timeout=10).text

    token = requests.post(f"{url}/api/v1/auth/token", json={"email": "teilnehmer00001@demo.invalid",
                                                             "password": PASSWORD}, timeout=10)
    assert token.status_code == 201, token.text
    chatter = LiveClient(url, token.json()["token"])
    try:
        assert chatter.call("join", {"room": LOBBY})["ok"] is True
        sent = chatter.call("chat:send", {"room": LOBBY, "text": "Grüße aus dem Release-Test", "client_id": "rel-1"})
        assert sent["ok"] is True and sent["message"]["text"] == "Grüße aus dem Release-Test"
        assert sent["message"]["id"] in chatter.wait_for_ids({sent["message"]["id"]})
    finally:
        chatter.close()

    orga = requests.post(f"{url}/api/v1/auth/token", json={"email": "orga@demo.invalid", "password": PASSWORD},
                         timeout=10).json()["token"]
    sessions = requests.get(f"{url}/api/v1/events/{SLUG}/sessions", timeout=10).json()["sessions"]
    session_id = next(s["id"] for s in sessions if s.get("speakers"))
    pdf = pdf_bytes("Release")
    uploaded = requests.post(f"{url}/api/v1/sessions/{session_id}/presentations",
                             headers={"Authorization": f"Bearer {orga}"},
                             files={"file": ("Folien.pdf", pdf, "application/pdf")}, timeout=30)
    assert uploaded.status_code == 201, uploaded.text[:300]
    assert uploaded.json()["size"] == len(pdf)


def unit_settings(text: str) -> dict[str, list[str]]:
    """The [Service] keys of a systemd unit (a key may repeat, as Environment= does)."""
    settings: dict[str, list[str]] = {}
    section = ""
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            section = line.strip("[]")
        elif section == "Service":
            key, _, value = line.partition("=")
            settings.setdefault(key, []).append(value)
    return settings


def test_the_systemd_unit_runs_the_installed_wheel(release: Release, tmp_path: Path, redis_url: str) -> None:
    """deploy/conference.service's ExecStart, with the release venv for /srv/conference/.venv: two workers
    on PostgreSQL and Redis, as the unit has them, behind deploy/nginx-conference.conf."""
    require_service("nginx", NGINX is not None, "Debian package nginx-light not installed")
    settings = unit_settings(UNIT.read_text())
    command = shlex.split(settings["ExecStart"][0])
    working = Path(settings["WorkingDirectory"][0])
    assert command[0] == str(working / ".venv" / "bin" / "conference")
    assert command[1] == "run" and command[command.index("--host") + 1] == "127.0.0.1"
    workers = int(command[command.index("--workers") + 1])
    folder = tmp_path / "srv"
    folder.mkdir()
    port = free_port(workers)
    command[0] = str(release.installed.conference)
    command[command.index("--port") + 1] = str(port)
    unit_env = dict(value.split("=", 1) for value in settings.get("Environment", []))
    with fresh_postgres_database() as database_url:
        env = release.installed.env(CONFERENCE_DATABASE_URL=database_url, CONFERENCE_EXTERNAL_URL=f"http://127.0.0.1:{port}",
                                    CONFERENCE_MESSAGE_QUEUE=redis_url, **unit_env)
        server = Server(command, folder, env, [port + i for i in range(workers)])
        try:
            for url in server.urls:
                health = requests.get(f"{url}/healthz", timeout=10).json()
                assert health["status"] == "ok" and health["queue"] == "ok", health
            # deploy/nginx-conference.conf in front, as shipped (only the ports substituted)
            with running_nginx(tmp_path / "nginx", [port + i for i in range(workers)]) as proxy:
                home = requests.get(f"{proxy}/", timeout=10)
                assert home.status_code == 200 and all(text in home.text for text in GERMAN)
                favicon = requests.get(f"{proxy}/static/favicon.svg", timeout=10)
                assert favicon.content == (PROJECT_ROOT / "static" / "favicon.svg").read_bytes()
                polling = requests.get(f"{proxy}/socket.io/?EIO=4&transport=polling", timeout=10)
                assert polling.status_code == 200 and '"sid"' in polling.text
        finally:
            server.stop()
        assert not (folder / "instance" / "conference.sqlite3").exists()  # the database is PostgreSQL


def test_the_wheel_built_from_the_sdist_serves_the_demo_in_german(release: Release, empty_folder: Path) -> None:
    installed = release.installed
    start = time.monotonic()
    replace_wheel(installed, release.artifacts.sdist_wheel)
    release.artifacts.timings["install the sdist's wheel"] = time.monotonic() - start
    try:
        port = free_port()
        env = installed.env(CONFERENCE_EXTERNAL_URL=f"http://127.0.0.1:{port}")
        installed.run(["demo", "--attendees", "1"], empty_folder, env)
        server = Server([str(installed.conference), "run", "--host", "127.0.0.1", "--port", str(port)],
                        empty_folder, env, [port])
        try:
            home = requests.get(f"{server.url}/", timeout=10)
            assert home.status_code == 200 and '<html lang="de">' in home.text
            assert all(text in home.text for text in GERMAN)
            agenda = requests.get(f"{server.url}/events/{SLUG}/agenda", timeout=10)
            assert agenda.status_code == 200
            assert requests.get(f"{server.url}/static/favicon.svg", timeout=10).status_code == 200
        finally:
            server.stop()
    finally:
        replace_wheel(installed, release.artifacts.wheel)
