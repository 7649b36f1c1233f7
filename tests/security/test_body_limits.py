"""Request bodies by route class: JSON and forms at most MAX_FORM_BYTES (1 MB), bounded in depth, values and
fields before they are parsed; large bodies only on the upload routes, and only from callers those routes
have authenticated and allowed. Everything else is refused unread (413, or the refusal of the view).

In-process with a body stream that counts what is read, then against a real `conference run` under eventlet
and gevent: the JSON bomb of the issue (99 MB of `[[],[],...]` to the token endpoint, unauthenticated).
"""

from __future__ import annotations

import http.client
import io
import json
import os
import socket
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import requests
from PIL import Image

from conference.core.security import MAX_JSON_DEPTH, MAX_JSON_VALUES
from tests.conftest import require_service
from tests.fixtures.presentations import pdf_bytes
from tests.security.conftest import Evidence, StateGuard, World, assert_refused
from tests.support.nginx import NGINX, running_nginx
from tests.support.server import run_cli, running_server

MB = 1024 * 1024


class CountingBody(io.RawIOBase):
    """A request body of `size` bytes of `fill` that counts how much of it the application reads."""

    def __init__(self, size: int, fill: bytes = b"x") -> None:
        self.size, self.fill, self.taken, self.position = size, fill, 0, 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:  # werkzeug's test client measures the stream; that reads nothing
        return True

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        self.position = {io.SEEK_SET: 0, io.SEEK_CUR: self.position, io.SEEK_END: self.size}[whence] + offset
        return self.position

    def tell(self) -> int:
        return self.position

    def readinto(self, buffer: Any) -> int:
        count = max(0, min(len(buffer), self.size - self.position))
        buffer[:count] = (self.fill * (count // len(self.fill) + 1))[:count]
        self.position += count
        self.taken += count
        return count


def _send(world: World, principal: str, method: str, url: str, body: CountingBody, content_type: str, *,
          bearer: bool = False, declared: bool = True) -> Any:
    headers = {"Authorization": f"Bearer {world.tokens[principal]}"} if bearer else {}
    client = world.client(principal) if not bearer else world.app.test_client()
    extra = {"content_length": body.size} if declared else {"environ_overrides": {"wsgi.input_terminated": True}}
    return client.open(url, method=method, input_stream=body, content_type=content_type, headers=headers,
                       **extra)


# --- JSON and forms ----------------------------------------------------------------------------------------


def test_json_over_the_form_limit_is_413_unread(world: World, evidence: Evidence) -> None:
    body = CountingBody(2 * MB, b"[],")
    response = _send(world, "anonymous", "POST", "/api/v1/auth/token", body, "application/json")
    assert_refused(response, 413, evidence, "2 MB JSON, declared")
    assert response.get_json()["error"] == "too_large"
    assert "1 MB" in response.get_json()["message"]
    assert body.taken == 0


def test_chunked_json_over_the_form_limit_stops_at_the_limit(world: World, evidence: Evidence) -> None:
    body = CountingBody(50 * MB, b"[],")
    response = _send(world, "anonymous", "POST", "/api/v1/auth/token", body, "application/json", declared=False)
    assert_refused(response, 413, evidence, "50 MB JSON, chunked")
    assert body.taken <= MB + 64 * 1024


def test_form_over_the_limit_is_413_for_a_logged_in_organiser_too(world: World, evidence: Evidence) -> None:
    body = CountingBody(3 * MB, b"text=a&")
    response = _send(world, "organiser", "POST", "/manage/events/alpha/live/announcements", body,
                     "application/x-www-form-urlencoded")
    assert_refused(response, 413, evidence, "3 MB form")
    assert "1 MB" in response.get_data(as_text=True)
    assert body.taken == 0


@pytest.mark.parametrize(("what", "body"), [
    ("deep arrays", b"[" * (MB // 2 - 1) + b"]" * (MB // 2 - 1)),
    ("deep objects", b'{"a":' * (MB // 6) + b"1" + b"}" * (MB // 6)),
    ("unclosed", b"[" * (MB - 1)),
    ("one level too deep", b"[" * (MAX_JSON_DEPTH + 1) + b"]" * (MAX_JSON_DEPTH + 1)),
    ("many empty lists", b"[" + b"[]," * (MB // 3 - 2) + b"[]]"),
    ("many numbers", b"[" + b"0," * (MB // 2 - 2) + b"0]"),
    ("many keys", b"{" + b",".join(b'"k%d":0' % i for i in range(MAX_JSON_VALUES // 2 + 1)) + b"}"),
])
def test_json_refused_before_parsing(what: str, body: bytes, world: World, guard: StateGuard,
                                     evidence: Evidence) -> None:
    """Python's parser recurses per level (a RecursionError past ~1000) and builds an object per value."""
    assert len(body) <= MB
    guard.take()
    for principal, url in (("anonymous", "/api/v1/auth/token"), ("organiser", "/api/v1/events/alpha/sessions")):
        headers = {"Authorization": f"Bearer {world.tokens[principal]}"} if principal != "anonymous" else {}
        response = world.app.test_client().post(url, data=body, content_type="application/json", headers=headers)
        assert_refused(response, 400, evidence, f"{what} to {url}")
        assert response.get_json()["error"] == "invalid_body", response.get_json()
    guard.assert_unchanged(what)


def test_json_at_the_bounds_is_parsed(world: World, evidence: Evidence) -> None:
    deep = {"title": "Tief", "abstract": "", "kind": "talk"}
    nested: Any = "x"
    for _level in range(MAX_JSON_DEPTH - 1):
        nested = [nested]
    deep["speakers"] = nested  # 32 levels with the outer object: parsed, then refused by the field rule
    headers = {"Authorization": f"Bearer {world.tokens['organiser']}"}
    response = world.app.test_client().post("/api/v1/events/alpha/sessions", json=deep, headers=headers)
    assert_refused(response, 400, evidence, "32 levels")
    assert response.get_json()["field"] == "speakers"
    # Keys count as values: an object of n members counts as 2n + 1.
    many = {"email": "orga@example.org", "password": "x", "name": "n",
            **{f"k{i}": 0 for i in range(MAX_JSON_VALUES // 2 - 4)}}
    response = world.app.test_client().post("/api/v1/auth/token", json=many)
    assert_refused(response, 401, evidence, f"{MAX_JSON_VALUES} values")


def test_a_tighter_limit_for_one_endpoint_holds_before_the_csrf_check(world: World, evidence: Evidence,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    from conference.core import security

    monkeypatch.setitem(security._body_limits, "auth.login", 16 * 1024)
    body = CountingBody(20 * 1024, b"a=b&")
    response = _send(world, "anonymous", "POST", "/login", body, "application/x-www-form-urlencoded")
    assert_refused(response, 413, evidence, "20 KB to a 16 KB endpoint")
    assert "at most 16 KB" in response.get_data(as_text=True)
    assert body.taken == 0


def test_form_with_too_many_fields_is_refused_before_parsing(world: World, evidence: Evidence) -> None:
    client = world.app.test_client()
    for count in (101, 200_000):
        body = "&".join(f"f{i}=x" for i in range(count)).encode()[:MB]
        response = client.post("/login", data=body, content_type="application/x-www-form-urlencoded")
        assert_refused(response, 400, evidence, f"{count} fields")
        assert "more than 100 fields" in response.get_data(as_text=True)
    token = world.csrf("anonymous")
    fine = "&".join([f"csrf_token={token}", "email=nobody%40example.org", "password=x",
                     *(f"f{i}=x" for i in range(97))])
    response = world.client("anonymous").post("/login", data=fine, content_type="application/x-www-form-urlencoded")
    evidence.response(response, refused=True, what="100 fields")
    assert response.status_code == 400 and "not correct" in response.get_data(as_text=True)


# --- uploads: large bodies only for allowed callers ---------------------------------------------------------


def _photo_form(world: World, principal: str) -> tuple[bytes, str]:
    """A real PNG of noise (it does not compress): 3.3 MB, more than three times the form limit."""
    image = Image.frombytes("RGB", (1100, 1000), os.urandom(1100 * 1000 * 3))
    out = io.BytesIO()
    image.save(out, format="PNG")
    data = out.getvalue()
    parts = [("csrf_token", None, world.csrf(principal).encode()), ("name", None, b"Sam Speaker"),
             ("bio", None, b""), ("links", None, b""), ("photo", "bild.png", data)]
    body = bytearray()
    for name, filename, value in parts:
        disposition = f'form-data; name="{name}"' + (f'; filename="{filename}"' if filename else "")
        body += f"--XyZ\r\nContent-Disposition: {disposition}\r\n\r\n".encode() + value + b"\r\n"
    body += b"--XyZ--\r\n"
    return bytes(body), "multipart/form-data; boundary=XyZ"


def test_allowed_speaker_uploads_a_photo_larger_than_the_form_limit(world: World, evidence: Evidence) -> None:
    body, content_type = _photo_form(world, "speaker")
    assert len(body) > 3 * MB
    response = world.client("speaker").post(f"/events/alpha/speakers/{world.own_profile.id}/edit", data=body,
                                            content_type=content_type)
    evidence.response(response, refused=False, what="3 MB photo by its speaker")
    assert response.status_code == 303, response.get_data(as_text=True)[:500]
    photo = world.app.test_client().get(f"/events/alpha/speakers/{world.own_profile.id}/photo")
    assert photo.status_code == 200 and photo.data.startswith(b"\xff\xd8")
    photo.close()


def test_photo_form_over_its_limit_is_413_unread(world: World, evidence: Evidence) -> None:
    body = CountingBody(7 * MB)
    response = _send(world, "speaker", "POST", f"/events/alpha/speakers/{world.own_profile.id}/edit", body,
                     "multipart/form-data; boundary=XyZ")
    assert_refused(response, 413, evidence, "7 MB photo form")
    assert body.taken == 0


UPLOAD_REFUSALS = [
    # (who, bearer?, method, url template, expected statuses)
    ("anonymous", False, "/api/v1/sessions/{own_session}/presentations", (401,)),
    ("attendee", True, "/api/v1/sessions/{own_session}/presentations", (403,)),
    ("speaker", True, "/api/v1/sessions/{foreign_session}/presentations", (403,)),
    ("outsider", False, "/api/v1/sessions/{own_session}/presentations", (403,)),
    ("anonymous", False, "/events/alpha/sessions/{own_session}/slides", (302,)),
    ("attendee", False, "/events/alpha/sessions/{own_session}/slides", (403,)),
    ("anonymous", False, "/events/alpha/speakers/{own_profile}/edit", (302,)),
    ("outsider", False, "/events/alpha/speakers/{own_profile}/edit", (404,)),
    ("speaker", False, "/events/alpha/speakers/{foreign_profile}/edit", (404,)),
    ("anonymous", False, "/manage/events/alpha/speakers/new", (302,)),
    ("speaker", False, "/manage/events/alpha/speakers/new", (403,)),
]


@pytest.mark.parametrize(("who", "bearer", "template", "statuses"), UPLOAD_REFUSALS,
                         ids=[f"{w} {t}" for w, _b, t, _s in UPLOAD_REFUSALS])
def test_upload_routes_refuse_callers_without_the_right_unread(who: str, bearer: bool, template: str,
                                                               statuses: tuple[int, ...], world: World,
                                                               guard: StateGuard, evidence: Evidence) -> None:
    url = template.format(own_session=world.own_session.id, foreign_session=world.foreign_session.id,
                          own_profile=world.own_profile.id, foreign_profile=world.foreign_profile.id)
    world.csrf(who)  # logged in before the snapshot
    guard.take()
    for size in (4 * MB, 90 * MB):
        body = CountingBody(size)
        response = _send(world, who, "POST", url, body, "multipart/form-data; boundary=XyZ", bearer=bearer)
        if 302 in statuses:
            evidence.response(response, refused=True, what=f"{who} {size} bytes to {url}")
            assert response.status_code == 302 and "/login" in response.headers["Location"]
        else:
            assert_refused(response, statuses, evidence, f"{who} {size} bytes to {url}")
        assert body.taken == 0, (who, url, body.taken)
    guard.assert_unchanged(f"{who} {url}")


# --- a real server: the JSON bomb of the issue --------------------------------------------------------------


def _rss(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise LookupError("VmRSS")


def _raw_post(url: str, path: str, declared: int, sent: bytes, *, timeout: float = 5.0) -> tuple[int, bytes]:
    """POST with `Content-Length: declared` but only `sent` of the body; the answer's status and body."""
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=timeout) as sock:
        sock.sendall(f"POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
                     f"Content-Length: {declared}\r\n\r\n".encode())
        sock.sendall(sent)
        answer = b""
        while b"\r\n\r\n" not in answer:
            chunk = sock.recv(65536)
            if not chunk:
                break
            answer += chunk
        head, _sep, rest = answer.partition(b"\r\n\r\n")
        length = next(int(line.split(b":")[1]) for line in head.split(b"\r\n")
                      if line.lower().startswith(b"content-length:"))
        while len(rest) < length:
            chunk = sock.recv(65536)
            if not chunk:
                break
            rest += chunk
    return int(head.split(b" ")[1]), rest


class HealthProbe:
    """Polls /healthz every 20 ms in a thread; the longest answer time is the longest stall of the loop."""

    def __init__(self, url: str) -> None:
        self.url, self.longest, self.stop = url, 0.0, threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        with requests.Session() as session:
            while not self.stop.is_set():
                began = time.monotonic()
                session.get(f"{self.url}/healthz", timeout=30)
                self.longest = max(self.longest, time.monotonic() - began)
                time.sleep(0.02)

    def __enter__(self) -> HealthProbe:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(timeout=35)


def _refused(response: requests.Response, statuses: tuple[int, ...], evidence: Evidence, what: str) -> None:
    evidence.add("variants")
    if response.status_code >= 500:
        evidence.note("server_errors", f"{response.status_code} {what}")
    assert response.status_code in statuses, (what, response.status_code, response.text[:300])
    assert "Traceback" not in response.text


@pytest.mark.server
@pytest.mark.parametrize("async_mode", ["eventlet", "gevent"])
def test_json_bomb_to_the_token_endpoint_under_a_real_server(tmp_path: Path, async_mode: str,
                                                            evidence: Evidence) -> None:
    with running_server(tmp_path / "instance", async_mode, demo_attendees=None) as server:
        pid = server.worker_pid(0)
        url = f"{server.url}/api/v1/auth/token"
        flat = b"[" + b"[]," * (MB // 3 - 2) + b"[]]"
        deep = b"[" * (MB // 2) + b"]" * (MB // 2)
        for _warm in range(3):  # allocator and caches settle first
            requests.post(url, data=b"[1]", headers={"Content-Type": "application/json"}, timeout=10)
            requests.post(url, data=flat[:4096], headers={"Content-Type": "application/json"}, timeout=10)
        before = _rss(pid)
        with HealthProbe(server.url) as probe:
            began = time.monotonic()
            status, body = _raw_post(server.url, "/api/v1/auth/token", 99 * MB, flat[:256 * 1024])
            refused_after = time.monotonic() - began
            evidence.add("variants")
            assert status == 413 and json.loads(body)["error"] == "too_large", (status, body[:200])
            assert refused_after < 2.0
            for what, data in (("1 MB of empty lists", flat), ("1 MB deep", deep)):
                response = requests.post(url, data=data, headers={"Content-Type": "application/json"}, timeout=10)
                _refused(response, (400,), evidence, what)
                assert response.json()["error"] == "invalid_body"

            def chunked() -> Any:
                for _ in range(64):  # 64 MB without a declared length
                    yield flat

            response = requests.post(url, data=chunked(), headers={"Content-Type": "application/json"}, timeout=30)
            _refused(response, (400, 413), evidence, "64 MB chunked")  # eventlet: unterminated input is empty
        growth = _rss(pid) - before
        assert growth < 5 * MB, f"RSS grew by {growth / MB:.1f} MB"
        assert probe.longest < 0.5, f"/healthz waited {probe.longest:.2f} s"


# --- the shipped nginx configuration mirrors the classes ------------------------------------------------------


@pytest.mark.server
def test_shipped_nginx_config_takes_large_bodies_only_on_the_upload_locations(tmp_path: Path,
                                                                               evidence: Evidence) -> None:
    require_service("nginx", NGINX is not None, "Debian package nginx-light not installed")
    with running_server(tmp_path / "instance", "eventlet", demo_attendees=2,
                        CONFERENCE_TRUSTED_PROXY_COUNT="1") as server, \
            running_nginx(tmp_path / "nginx", server.ports) as proxy:
        token = run_cli(["users", "token", "--email", "orga@demo.invalid"], server.env).stdout.split()[-1]
        sessions = requests.get(f"{proxy}/api/v1/events/digitalkonferenz-2027/sessions", timeout=10).json()
        session_id = next(s["id"] for s in sessions["sessions"] if s.get("speakers"))
        form = {"Content-Type": "application/x-www-form-urlencoded"}

        def nginx_refused(response: requests.Response, what: str) -> None:
            _refused(response, (413,), evidence, what)
            assert response.json() == {"ok": False, "error": "too_large",
                                       "message": "The request is larger than allowed here."}, what

        nginx_refused(requests.post(f"{proxy}/api/v1/auth/token", data=b"[]," * MB,
                                    headers={"Content-Type": "application/json"}, timeout=30), "token 3 MB")
        nginx_refused(requests.post(f"{proxy}/login", data=b"a=b&" * MB, headers=form, timeout=30), "login 4 MB")
        nginx_refused(requests.post(f"{proxy}/events/digitalkonferenz-2027/speakers/1/edit", data=b"a" * 7 * MB,
                                    headers=form, timeout=30), "photo form 7 MB")
        # Dot segments are resolved before nginx picks the location (and so the limit).
        connection = http.client.HTTPConnection(proxy.removeprefix("http://"), timeout=30)
        connection.request("POST", f"/api/v1/sessions/{session_id}/presentations/../../../auth/token",
                           body=b"[]," * MB, headers={"Content-Type": "application/json"})
        dotted = connection.getresponse()
        evidence.add("variants")
        assert dotted.status == 413, dotted.status
        connection.close()

        # The upload locations pass large bodies to the app, which decides (here: log in first).
        for path in (f"/events/digitalkonferenz-2027/sessions/{session_id}/slides",
                     "/events/digitalkonferenz-2027/speakers/1/edit", "/manage/events/digitalkonferenz-2027/speakers/new",
                     "/manage/events/digitalkonferenz-2027/agenda/import"):
            response = requests.post(f"{proxy}{path}", data=b"a" * 3 * MB, headers=form, timeout=30,
                                     allow_redirects=False)
            evidence.response(response, refused=True, what=f"anonymous 3 MB to {path}")
            assert response.status_code == 302 and "/login" in response.headers["Location"], (path, response.status_code)
        pdf = pdf_bytes()
        content = pdf[:9] + b"%" + b"0" * 5 * MB + b"\n" + pdf[9:]
        upload = requests.post(f"{proxy}/api/v1/sessions/{session_id}/presentations", timeout=60,
                               headers={"Authorization": f"Bearer {token}"}, files={"file": ("Folien.pdf", content)})
        evidence.response(upload, refused=False, what="5 MB slides through nginx")
        assert upload.status_code == 201, upload.text[:300]
        assert upload.json()["size"] == len(content)
