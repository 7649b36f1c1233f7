"""The resource battery: hostile requests, one at a time, against a real `conference run`.

Each entry is measured on the server process itself. Its memory growth is the peak resident size while the
request or connection was served (the kernel's high-water mark, reset before each entry, and a 2 ms sampler)
minus the resident size before; its stall is the longest event-loop lag the server's loop probe
(`conference/core/loop_probe.py`) noticed meanwhile, with the requests it names. Goals (issue 14): an
unauthenticated request or connection grows the server by less than 5 MB, an authenticated non-upload
request by less than 20 MB, and no request holds the loop for 100 ms or more. Every entry also has the
outcome the fixed server gives (a refusal before the body is read, a closed connection, a 4xx), and the
server must still answer /healthz afterwards.

All entries run under eventlet (the default server); the websocket and Engine.IO entries, which are the
async server's own code, under gevent too. Memory the allocator keeps after an entry would hide the next
entry's growth, so an entry that grew the server by 1 MB or more is followed by a fresh server process.

The figures go into the evidence (`max_rss_growth_unauth_kb`, `max_rss_growth_auth_kb`, `max_loop_stall_ms`,
each with the entry that caused it) and, entry by entry, into test-artifacts/resource-battery.json.
"""
from __future__ import annotations

import json
import os
import re
import signal
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.security.conftest import PROJECT_ROOT, Evidence
from tests.security.resource_client import (
    BINARY,
    CONTINUATION,
    Answer,
    RawWebSocket,
    flat_json,
    http,
    multipart,
    nested_json,
    urlencoded_fields,
)
from tests.support.pdfs import padded_pdf
from tests.support.server import RunningServer, running_server

pytestmark = [pytest.mark.server]

SLUG = "digitalkonferenz-2027"
LOBBY = f"lobby:{SLUG}"
PASSWORD = "demo-passwort-2027"
ATTENDEE = "teilnehmer00001@demo.invalid"
MB = 1024 * 1024
LIMIT_KB = {"unauth": 5 * 1024, "auth": 20 * 1024}
STALL_LIMIT_MS = 100.0
SETTLE = 0.4  # seconds after an entry before the RSS is read again
DIGITS_25 = "1" * 25
PAGE_KB = os.sysconf("SC_PAGE_SIZE") // 1024
RESTART_AFTER_KB = 1024  # an entry that grew the server by this much is followed by a fresh server process
ARTIFACT = PROJECT_ROOT / "test-artifacts" / "resource-battery.json"


@dataclass(frozen=True)
class Outcome:
    text: str  # what the server did, e.g. "413 after 2048 of 30720 KB"
    ok: bool  # what the fixed server does


@dataclass
class Measured:
    name: str
    who: str
    what: str
    outcome: str
    outcome_ok: bool
    growth_kb: int  # peak RSS during the entry minus RSS before
    retained_kb: int  # RSS after the settle minus RSS before
    stall_ms: float  # the longest stall, less the time the loop's thread waited for a CPU (a busy host)
    stall_lag_ms: float  # ... as the probe measured it
    stall_cpu_ms: float
    stall_requests: list[str]
    healthy: bool
    seconds: float


# --- the server and its measurements ---------------------------------------------------------------------------


@dataclass
class Battery:
    root: Path
    mode: str
    stack: ExitStack = field(default_factory=ExitStack)
    server: RunningServer | None = None
    fresh: bool = False  # no entry has run on this server process yet
    orga_token: str = ""
    attendee_token: str = ""
    attendee: requests.Session = field(default_factory=requests.Session)
    csrf: str = ""
    session_ids: list[int] = field(default_factory=list)
    published: tuple[int, int] = (0, 0)  # (session id, presentation id) of a published deck
    feed_path: str = ""
    rows: list[Measured] = field(default_factory=list)

    @property
    def figures(self) -> Path:
        return self.root / "loop.json"

    def start(self) -> None:
        """A new server process on the same instance (the demo is loaded by the first one)."""
        if self.server is not None:
            self.stack.close()
            self.stack = ExitStack()
        first = self.server is None
        self.server = self.stack.enter_context(running_server(
            self.root / "instance", self.mode, demo_attendees=3 if first else None, tokens=first,
            CONFERENCE_LOOP_PROBE="1", CONFERENCE_LOOP_PROBE_FILE=str(self.figures),
            CONFERENCE_LOOP_PROBE_INTERVAL_MS="5", CONFERENCE_LOOP_PROBE_STALL_MS="5"))
        self.fresh = True
        if first:
            self.attendee_token = self.server.tokens[0]

    @property
    def running(self) -> RunningServer:
        assert self.server is not None
        return self.server

    @property
    def url(self) -> str:
        return self.running.url

    @property
    def port(self) -> int:
        return self.running.ports[0]

    @property
    def pid(self) -> int:
        return self.running.process.pid

    # --- the process -------------------------------------------------------------------------------------

    def status_kb(self, key: str) -> int:
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith(f"{key}:"):
                return int(line.split()[1])
        raise LookupError(key)

    def reset_peak(self) -> None:
        """Reset the kernel's RSS high-water mark (VmHWM) of the server to its current RSS."""
        Path(f"/proc/{self.pid}/clear_refs").write_text("5")

    def resident_kb(self) -> int:
        return int(Path(f"/proc/{self.pid}/statm").read_text().split()[1]) * PAGE_KB

    def deleted_files(self) -> tuple[int, int]:
        """Files the server holds open that no directory lists any more: (count, bytes)."""
        count = size = 0
        for fd in Path(f"/proc/{self.pid}/fd").iterdir():
            try:
                if os.readlink(fd).endswith(" (deleted)"):
                    count += 1
                    size += fd.stat().st_size
            except OSError:
                continue
        return count, size

    def stalls_since(self, moment: float) -> list[dict[str, Any]]:
        """Stalls the probe noticed after `moment` that named a request (waits for figures written now)."""
        now = time.time()
        deadline = time.monotonic() + 10
        while True:
            data = json.loads(self.figures.read_text())
            if data["written_at"] > now:
                return [s for s in data["stalls"] if s["at"] > moment and s["requests"]]
            assert time.monotonic() < deadline, "the loop probe stopped writing its figures"
            time.sleep(0.05)

    def healthy(self) -> bool:
        try:
            return requests.get(f"{self.url}/healthz", timeout=5).status_code == 200
        except requests.RequestException:
            return False

    def measure(self, entry: Entry) -> Measured:
        last = self.rows[-1] if self.rows else None
        if not self.fresh and last is not None and (last.growth_kb >= RESTART_AFTER_KB or not last.healthy):
            # The allocator keeps memory the last entry freed and would hand it to this one unseen.
            self.start()
        self.fresh = False
        if entry.warm is not None:
            entry.warm(self)
        time.sleep(0.2)
        before = self.status_kb("VmRSS")
        self.reset_peak()
        began, started = time.time(), time.monotonic()
        with PeakSampler(self.resident_kb) as sampler:
            outcome = entry.attack(self)
            seconds = time.monotonic() - started
            after = self.status_kb("VmRSS")
            time.sleep(SETTLE)
        settled = self.status_kb("VmRSS")
        # The kernel's high-water mark misses memory given back without an unmap (glibc trimming its heap),
        # the sampler misses peaks shorter than its period: the larger of the two.
        peak = max(self.status_kb("VmHWM"), sampler.peak)
        stalls = self.stalls_since(began)
        quiet: dict[str, Any] = {"lag_ms": 0.0, "wait_ms": 0.0, "cpu_ms": 0.0, "requests": []}
        worst = max(stalls, key=held, default=quiet)
        measured = Measured(entry.name, entry.who, entry.what, outcome.text, outcome.ok,
                            max(peak, after, settled) - before, settled - before, round(held(worst), 1),
                            worst["lag_ms"], worst["cpu_ms"], worst["requests"], self.healthy(), round(seconds, 2))
        self.rows.append(measured)
        return measured

    # --- set-up ------------------------------------------------------------------------------------------

    def prepare(self, *, archive: bool) -> None:
        self.orga_token = self.token_for("orga@demo.invalid")
        sessions = requests.get(f"{self.url}/api/v1/events/{SLUG}/sessions", timeout=10).json()["sessions"]
        self.session_ids = [int(s["id"]) for s in sessions if s.get("speakers")]
        bare = []
        for session_id in self.session_ids:
            decks = requests.get(f"{self.url}/api/v1/sessions/{session_id}/presentations", timeout=10).json()
            if decks["presentations"]:
                self.published = (session_id, int(decks["presentations"][0]["id"]))
            else:
                bare.append(session_id)
        assert self.published != (0, 0) and len(bare) >= 2
        # Two decks of 8 MB (random bytes: slides are compressed already), published: a 16 MB archive.zip.
        for session_id in bare[:2] if archive else []:
            data = padded_pdf(8 * MB, os.urandom(8).hex())
            response = requests.post(f"{self.url}/api/v1/sessions/{session_id}/presentations", timeout=60,
                                     headers={"Authorization": f"Bearer {self.orga_token}"},
                                     files={"file": ("gross.pdf", data, "application/pdf")})
            assert response.status_code == 201, response.text[:300]
            deck = response.json()["id"]
            response = requests.patch(f"{self.url}/api/v1/sessions/{session_id}/presentations/{deck}", timeout=10,
                                      headers={"Authorization": f"Bearer {self.orga_token}"},
                                      json={"visibility_mode": "published"})
            assert response.status_code == 200, response.text[:300]
        # The attendee in a browser (cookie login) with a personal calendar feed of two starred sessions.
        html = self.attendee.get(f"{self.url}/login", timeout=10).text
        response = self.attendee.post(f"{self.url}/login", timeout=10, allow_redirects=False,
                                      data={"email": ATTENDEE, "password": PASSWORD, "csrf_token": csrf_in(html)})
        assert response.status_code == 302, response.text[:300]
        self.csrf = csrf_in(self.attendee.get(f"{self.url}/account", timeout=10).text)
        for session_id in self.session_ids[:2]:
            response = requests.put(f"{self.url}/api/v1/events/{SLUG}/sessions/{session_id}/star", timeout=10,
                                    headers={"Authorization": f"Bearer {self.attendee_token}"})
            assert response.status_code in (200, 204), response.text[:300]
        response = self.attendee.post(f"{self.url}/events/{SLUG}/my-agenda/feed", data={"csrf_token": self.csrf},
                                      timeout=10)
        assert response.status_code == 200, response.text[:300]
        match = re.search(rf"/events/{SLUG}/calendar/([A-Za-z0-9_-]+)\.ics", response.text)
        assert match, "no calendar feed address on the personal agenda page"
        self.feed_path = match.group(0)

    def token_for(self, email: str) -> str:
        response = requests.post(f"{self.url}/api/v1/auth/token", json={"email": email, "password": PASSWORD},
                                 timeout=10)
        assert response.status_code == 201, response.text
        return str(response.json()["token"])

    def cookie_headers(self) -> dict[str, str]:
        cookies = "; ".join(f"{name}={value}" for name, value in self.attendee.cookies.items())
        return {"Cookie": cookies, "X-CSRFToken": self.csrf, "Origin": self.url}

    def bearer(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.attendee_token}"}


def held(stall: dict[str, Any]) -> float:
    """How long the server held its loop: the lag less the time its thread waited for a CPU (another
    process's doing on a shared machine)."""
    return float(stall["lag_ms"]) - float(stall["wait_ms"])


class PeakSampler:
    """Reads the server's resident size every 2 ms in a thread while the `with` block runs; keeps the peak."""

    def __init__(self, read: Callable[[], int]) -> None:
        self.read = read
        self.peak = 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self.stop.is_set():
            self.peak = max(self.peak, self.read())
            self.stop.wait(0.002)

    def __enter__(self) -> PeakSampler:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join()


def csrf_in(html: str) -> str:
    match = re.search(r'name="csrf_token" (?:type="hidden" )?value="([^"]+)"', html)
    assert match, "no CSRF token in the page"
    return match.group(1)


@dataclass(frozen=True)
class Entry:
    name: str
    who: str  # "unauth" or "auth"
    what: str
    attack: Callable[[Battery], Outcome]
    warm: Callable[[Battery], object] | None = None  # the same route once, harmless, so lazy set-up is not counted
    # Websocket framing and Engine.IO are the async server's own code: those entries run under gevent too.
    modes: tuple[str, ...] = ("eventlet",)


BOTH = ("eventlet", "gevent")


# --- the attacks ---------------------------------------------------------------------------------------------


def refused_unread(answer: Answer, *statuses: int) -> Outcome:
    """A refusal before the body was read: one of `statuses` (413 by default) or the connection closed."""
    expected = statuses or (413,)
    return Outcome(answer.describe(), answer.status in expected or answer.closed_unread)


def refused(answer: Answer, *statuses: int) -> Outcome:
    return Outcome(answer.describe(), answer.status in statuses)


def json_headers(extra: dict[str, str] | None = None) -> dict[str, str]:
    return {"Content-Type": "application/json", **(extra or {})}


def form_headers(extra: dict[str, str] | None = None) -> dict[str, str]:
    return {"Content-Type": "application/x-www-form-urlencoded", **(extra or {})}


def warm_token(b: Battery) -> None:
    # A malformed field: refused before any password check, so no failed login is counted.
    http(b.port, "POST", "/api/v1/auth/token", b'{"email": 1, "password": 1}', headers=json_headers())


def warm_register(b: Battery) -> None:
    http(b.port, "POST", f"/events/{SLUG}/register", b"csrf_token=" + b.csrf.encode(),
         headers=form_headers(b.cookie_headers()))


def warm_login(b: Battery) -> None:
    requests.get(f"{b.url}/login", timeout=10)
    requests.get(f"{b.url}/register", timeout=10)
    http(b.port, "POST", "/login", b"email=&password=", headers=form_headers())


def websocket_bomb(b: Battery, *, token: str | None, first: bytes, opcode_rest: int, total: int,
                   frame: int = 60 * 1024) -> Outcome:
    """`first` frame, then `frame`-sized frames of `opcode_rest` up to `total` bytes or until the server closes."""
    ws = RawWebSocket(b.port)
    try:
        if token:
            ws.connect(token)
        sent = len(first)
        is_fragment = opcode_rest == CONTINUATION
        if not ws.send(first, fin=not is_fragment):
            return Outcome("closed at once", True)
        piece = ws.frame(b"x" * frame, opcode=opcode_rest, fin=not is_fragment)
        while sent < total:
            if not ws.send_raw(piece):
                break
            sent += frame
        closed = ws.server_closed(wait=1.0)
        text = (f"closed by the server after {sent // 1024} KB" if closed
                else f"all {sent // 1024} KB taken, connection still open")
        return Outcome(text, closed and sent < total)
    finally:
        ws.close()


def warm_websocket(b: Battery) -> None:
    RawWebSocket(b.port).close()


def warm_socket_session(b: Battery) -> None:
    ws = RawWebSocket(b.port)
    try:
        ws.connect(b.attendee_token)
        ws.call("join", {"room": LOBBY})
        ws.call("chat:history", {"room": LOBBY}, ack=2)
    finally:
        ws.close()


def sio_binary(b: Battery, token: str | None) -> Outcome:
    # A binary event announcing 1,234,567 attachments, then binary frames that are kept until all arrived.
    header = b'451234567-["chat:send",{"room":"' + LOBBY.encode() + b'","text":{"_placeholder":true,"num":0}}]'
    return websocket_bomb(b, token=token, first=header, opcode_rest=BINARY, total=4 * MB)


def fragment_bomb(b: Battery, token: str | None) -> Outcome:
    return websocket_bomb(b, token=token, first=b"4" + b"x" * 60 * 1024, opcode_rest=CONTINUATION, total=8 * MB)


def warm_polling(b: Battery) -> None:
    sid = json.loads(requests.get(f"{b.url}/socket.io/?EIO=4&transport=polling", timeout=10).text[1:])["sid"]
    http(b.port, "POST", f"/socket.io/?EIO=4&transport=polling&sid={sid}", b"1",
         headers={"Content-Type": "text/plain;charset=UTF-8"}, timeout=5)


def polling_post(b: Battery) -> Outcome:
    handshake = requests.get(f"{b.url}/socket.io/?EIO=4&transport=polling", timeout=10)
    sid = json.loads(handshake.text[1:])["sid"]
    answer = http(b.port, "POST", f"/socket.io/?EIO=4&transport=polling&sid={sid}", b"4" + b"x" * 4 * MB,
                  headers={"Content-Type": "text/plain;charset=UTF-8"}, timeout=5)
    return refused_unread(answer, 400, 413)


def archive_slow_readers(b: Battery) -> Outcome:
    """Three downloads of the 16 MB archive that read 64 KB and then stop reading (held for a second)."""
    import socket

    readers = []
    for _ in range(3):
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16 * 1024)  # the server's writes stall early
        sock.settimeout(10)
        sock.connect(("127.0.0.1", b.port))
        sock.sendall(f"GET /events/{SLUG}/presentations/archive.zip HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
        readers.append(sock)
    statuses, got = [], 0
    for sock in readers:
        data = b""
        while len(data) < 64 * 1024:
            chunk = sock.recv(16 * 1024)
            if not chunk:
                break
            data += chunk
        got += len(data)
        statuses.append(data[9:12].decode(errors="replace"))
    time.sleep(1.0)
    held, held_bytes = b.deleted_files()
    for sock in readers:
        sock.close()
    text = f"statuses {'/'.join(statuses)}; {held} deleted temp files held ({held_bytes // MB} MB)"
    return Outcome(text, statuses == ["200"] * 3 and held == 0)


def warm_archive(b: Battery) -> None:
    response = requests.get(f"{b.url}/events/{SLUG}/presentations/archive.zip", timeout=60)
    assert response.status_code == 200 and len(response.content) > 16 * MB


def malformed_ids(b: Battery) -> Outcome:
    paths = [f"/events/{SLUG}/sessions/{DIGITS_25}", f"/api/v1/events/{SLUG}/sessions/{DIGITS_25}",
             f"/events/{SLUG}/agenda?track=%C2%B2", f"/events/{SLUG}/calendar/%C2%B2-x.ics",
             f"/api/v1/sessions/{DIGITS_25}/presentations", f"/events/{SLUG}/sessions/{DIGITS_25}/slides",
             f"/api/v1/events/{SLUG}/chat?room={LOBBY}&after_id={DIGITS_25}"]
    statuses = [http(b.port, "GET", path).status for path in paths]
    # A malformed `?track=` filter narrows nothing: the public agenda answers unfiltered, as for `track=abc`
    # (tests/agenda/test_routes.py, tests/security/test_ids.py); everything else is refused with 4xx.
    expected_ok = [path.endswith("track=%C2%B2") for path in paths]
    return Outcome("/".join(str(s) for s in statuses),
                   all(s is not None and (400 <= s < 500 or (ok and s == 200))
                       for s, ok in zip(statuses, expected_ok, strict=True)))


def chat_flood(b: Battery) -> Outcome:
    """2,000 chat messages in one write; the server answers each (most with rate_limited) and stays free."""
    ws = RawWebSocket(b.port)
    try:
        ws.connect(b.attendee_token)
        joined = ws.call("join", {"room": LOBBY})
        assert joined and joined.get("ok") is True, joined
        count = 2000
        burst = b"".join(ws.frame(f"42{n}".encode() + json.dumps(
            ["chat:send", {"room": LOBBY, "text": f"flut {n}", "client_id": f"flood-{n}"}]).encode())
            for n in range(2, count + 2))
        ws.send_raw(burst)
        acks = ws.acks(set(range(2, count + 2)), timeout=30)
        accepted = sum(1 for a in acks.values() if a.get("ok") is True)
        limited = sum(1 for a in acks.values() if a.get("error") == "rate_limited")
        # 20 per fixed 10-second window: a burst that crosses a window boundary meets two windows (seen: 40).
        return Outcome(f"{len(acks)} acks: {accepted} accepted, {limited} rate_limited",
                       len(acks) == count and accepted <= 2 * 20 and accepted + limited == count)
    finally:
        ws.close()


def huge_chat_message(b: Battery) -> Outcome:
    ws = RawWebSocket(b.port)
    try:
        ws.connect(b.attendee_token)
        ws.call("join", {"room": LOBBY})
        ack = ws.call("chat:send", {"room": LOBBY, "text": "x" * 2 * MB, "client_id": "huge-1"})
        if ack is None:
            return Outcome("connection closed by the server", True)
        return Outcome(f"ack {ack.get('error') or ack.get('ok')}", ack.get("ok") is False)
    finally:
        ws.close()


def history_after_huge_id(b: Battery) -> Outcome:
    ws = RawWebSocket(b.port)
    try:
        ws.connect(b.attendee_token)
        ws.call("join", {"room": LOBBY})
        ack = ws.call("chat:history", {"room": LOBBY, "after_id": int(DIGITS_25)}) or {}
    finally:
        ws.close()
    answer = http(b.port, "GET", f"/api/v1/events/{SLUG}/chat?room={LOBBY}&after_id={DIGITS_25}",
                  headers=b.bearer())
    return Outcome(f"socket ack {ack.get('error')}, HTTP {answer.status}",
                   ack.get("ok") is False and answer.status == 400)


def calendar_feeds(b: Battery) -> Outcome:
    statuses = [http(b.port, "GET", path, headers=b.bearer()).status
                for path in (b.feed_path, f"/events/{SLUG}/schedule.ics", f"/events/{SLUG}/schedule.xml",
                             f"/events/{SLUG}/schedule.json")]
    return Outcome("/".join(str(s) for s in statuses), statuses == [200] * 4)


def public_exports(b: Battery) -> Outcome:
    statuses = [http(b.port, "GET", path).status
                for path in (f"/events/{SLUG}/schedule.ics", f"/events/{SLUG}/schedule.xml",
                             f"/events/{SLUG}/schedule.json", f"/api/v1/events/{SLUG}/sessions")]
    return Outcome("/".join(str(s) for s in statuses), statuses == [200] * 4)


def warm_exports(b: Battery) -> None:
    public_exports(b)


def upload(b: Battery, headers: dict[str, str], size: int, *statuses: int) -> Outcome:
    body, content_type = multipart(size)
    answer = http(b.port, "POST", f"/api/v1/sessions/{b.published[0]}/presentations", body,
                  headers={"Content-Type": content_type, **headers})
    return refused_unread(answer, *statuses)


def warm_upload(b: Battery) -> None:
    upload(b, {"Authorization": f"Bearer {b.attendee_token}"}, 1024)
    upload(b, {}, 1024)


def presentation_patch(b: Battery) -> str:
    return f"/api/v1/sessions/{b.published[0]}/presentations/{b.published[1]}"


def warm_patch(b: Battery) -> None:
    http(b.port, "PATCH", presentation_patch(b), b'{"visibility_mode": 1}', headers=json_headers(b.bearer()))


ENTRIES = [
    # --- anyone --------------------------------------------------------------------------------------------
    Entry("json-bomb-token", "unauth", "POST /api/v1/auth/token, 30 MB of [[],[],...]",
          lambda b: refused_unread(http(b.port, "POST", "/api/v1/auth/token", flat_json(30 * MB),
                                        headers=json_headers())), warm_token),
    Entry("json-flat-1mb-token", "unauth", "POST /api/v1/auth/token, 1 MB of [[],[],...] (within the JSON limit)",
          lambda b: refused(http(b.port, "POST", "/api/v1/auth/token", flat_json(MB - 1024),
                                 headers=json_headers()), 400, 413), warm_token),
    Entry("json-deep-1mb-token", "unauth", "POST /api/v1/auth/token, 1 MB of [[[[...]]]]",
          lambda b: refused(http(b.port, "POST", "/api/v1/auth/token", nested_json(MB - 1024),
                                 headers=json_headers()), 400, 413), warm_token),
    Entry("form-bomb-login", "unauth", "POST /login, 4 MB urlencoded",
          lambda b: refused_unread(http(b.port, "POST", "/login", urlencoded_fields(4 * MB),
                                        headers=form_headers())), warm_login),
    Entry("form-fields-login", "unauth", "POST /login, 450 KB of empty fields (f=&f=&...)",
          lambda b: refused(http(b.port, "POST", "/login", urlencoded_fields(450 * 1024),
                                 headers=form_headers()), 400, 413), warm_login),
    Entry("form-bomb-register", "unauth", "POST /register, 4 MB urlencoded",
          lambda b: refused_unread(http(b.port, "POST", "/register", urlencoded_fields(4 * MB),
                                        headers=form_headers())), warm_login),
    Entry("ws-fragment-bomb", "unauth", "websocket before the Socket.IO connect: a non-final frame + 8 MB of "
          "60 KB continuation frames", lambda b: fragment_bomb(b, None), warm_websocket, BOTH),
    Entry("sio-binary-attachments", "unauth", "websocket: 451234567-[...] then 4 MB of 60 KB binary frames",
          lambda b: sio_binary(b, None), warm_websocket, BOTH),
    Entry("polling-post", "unauth", "Engine.IO long-polling POST of 4 MB", polling_post, warm_polling, BOTH),
    Entry("archive-slow-readers", "unauth", "3 x GET archive.zip (16 MB), each reads 64 KB then stops",
          archive_slow_readers, warm_archive),
    Entry("ids-25-digits", "unauth", "25-digit ids and non-ASCII digits in paths and queries (7 GETs)",
          malformed_ids, malformed_ids),
    Entry("upload-no-login", "unauth", "POST a 16 MB multipart upload without a login",
          lambda b: upload(b, {}, 16 * MB, 401, 413), warm_upload),
    Entry("public-exports", "unauth", "GET schedule.ics/.xml/.json and the sessions API", public_exports,
          warm_exports),
    # --- an attendee ---------------------------------------------------------------------------------------
    Entry("json-bomb-api", "auth", "PATCH a presentation (attendee token), 16 MB of [[],[],...]",
          lambda b: refused_unread(http(b.port, "PATCH", presentation_patch(b), flat_json(16 * MB),
                                        headers=json_headers(b.bearer())), 403, 413), warm_patch),
    Entry("json-flat-1mb-api", "auth", "PATCH a presentation (attendee token), 1 MB of [[],[],...]",
          lambda b: refused(http(b.port, "PATCH", presentation_patch(b), flat_json(MB - 1024),
                                 headers=json_headers(b.bearer())), 400, 403, 413), warm_patch),
    Entry("form-bomb-account", "auth", "POST /events/<slug>/register (attendee cookie), 4 MB urlencoded",
          lambda b: refused_unread(http(b.port, "POST", f"/events/{SLUG}/register", urlencoded_fields(4 * MB),
                                        headers=form_headers(b.cookie_headers()))), warm_register),
    Entry("ws-fragment-bomb-auth", "auth", "connected socket (attendee): a non-final frame + 8 MB of "
          "continuation frames", lambda b: fragment_bomb(b, b.attendee_token), warm_socket_session, BOTH),
    Entry("sio-binary-attachments-auth", "auth", "connected socket (attendee): 451234567-[...] then 4 MB of "
          "binary frames", lambda b: sio_binary(b, b.attendee_token), warm_socket_session, BOTH),
    Entry("chat-huge-message", "auth", "chat:send with 2 MB of text", huge_chat_message, warm_socket_session,
          BOTH),
    Entry("chat-flood", "auth", "2,000 chat:send events in one write", chat_flood, warm_socket_session),
    Entry("after-id-25-digits", "auth", "chat:history and the chat API with a 25-digit after_id",
          history_after_huge_id, warm_socket_session),
    Entry("calendar-feeds", "auth", "personal calendar feed and schedule exports", calendar_feeds,
          calendar_feeds),
    Entry("upload-not-allowed", "auth", "POST a 16 MB upload to a session the attendee does not speak in",
          lambda b: upload(b, {"Authorization": f"Bearer {b.attendee_token}"}, 16 * MB, 403, 413), warm_upload),
]


@pytest.fixture(scope="module")
def batteries(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Battery]]:
    """One server (and its successors) per async mode, started when its first entry runs."""
    started: dict[str, Battery] = {}
    try:
        yield started
    finally:
        for battery in started.values():
            battery.stack.close()
        ARTIFACT.parent.mkdir(parents=True, exist_ok=True)
        ARTIFACT.write_text(json.dumps({mode: [asdict(row) for row in battery.rows]
                                        for mode, battery in started.items()}, indent=2))


def battery_for(batteries: dict[str, Battery], mode: str, tmp_path_factory: pytest.TempPathFactory) -> Battery:
    if mode not in batteries:
        battery = batteries[mode] = Battery(tmp_path_factory.mktemp(f"battery-{mode}"), mode)
        battery.start()
        battery.prepare(archive=any(mode in entry.modes for entry in ENTRIES if entry.name.startswith("archive")))
    return batteries[mode]


CASES = [(mode, entry) for mode in BOTH for entry in ENTRIES if mode in entry.modes]


def test_the_battery_sees_a_stall_it_causes_and_names_the_request(
        batteries: dict[str, Battery], tmp_path_factory: pytest.TempPathFactory) -> None:
    """The measurement itself: the server stopped (SIGSTOP) for 300 ms while a long poll waits is one stall of
    at least 300 ms, named after the long poll. A probe that saw nothing would let every entry pass."""
    battery = battery_for(batteries, "eventlet", tmp_path_factory)
    sid = json.loads(requests.get(f"{battery.url}/socket.io/?EIO=4&transport=polling", timeout=10).text[1:])["sid"]
    poll = f"{battery.url}/socket.io/?EIO=4&transport=polling&sid={sid}"
    waiting = threading.Thread(target=requests.get, args=(poll,), kwargs={"timeout": 30}, daemon=True)
    waiting.start()
    time.sleep(0.3)
    began = time.time()
    battery.running.process.send_signal(signal.SIGSTOP)
    time.sleep(0.3)
    battery.running.process.send_signal(signal.SIGCONT)
    time.sleep(0.1)
    stalls = battery.stalls_since(began)
    requests.post(poll, data="1", timeout=10)  # close the Engine.IO session: the long poll returns
    waiting.join(timeout=10)
    assert [s["requests"] for s in stalls if held(s) >= 250] == [["GET /socket.io/ (polling)"]], stalls


@pytest.mark.parametrize(("mode", "entry"), CASES, ids=[f"{mode}-{entry.name}" for mode, entry in CASES])
def test_hostile_request_stays_within_the_resource_goals(batteries: dict[str, Battery], mode: str, entry: Entry,
                                                         evidence: Evidence,
                                                         tmp_path_factory: pytest.TempPathFactory) -> None:
    m = battery_for(batteries, mode, tmp_path_factory).measure(entry)

    evidence.add(f"resource_checks_{entry.who}")
    evidence.record_max(f"max_rss_growth_{entry.who}_kb", m.growth_kb,
                        f"{m.name} ({mode}): {m.what} -> {m.outcome} (retained {m.retained_kb} KB)")
    stall_by = (f"{m.name} ({mode}): {m.what} -> {m.outcome}; lag {m.stall_lag_ms:.0f} ms, "
                f"{m.stall_cpu_ms:.0f} ms CPU; in flight: " + "; ".join(m.stall_requests))
    evidence.record_max("max_loop_stall_ms", m.stall_ms, stall_by)
    figures = (f"{m.name}: outcome {m.outcome}; memory +{m.growth_kb} KB peak, +{m.retained_kb} KB retained; "
               f"loop held {m.stall_ms:.0f} ms (lag {m.stall_lag_ms:.0f} ms, {m.stall_cpu_ms:.0f} ms CPU) by "
               f"{m.stall_requests}")
    assert m.healthy, f"the server no longer answers /healthz - {figures}"
    assert m.growth_kb < LIMIT_KB[entry.who], figures
    assert m.stall_ms < STALL_LIMIT_MS, figures
    assert m.outcome_ok, figures
