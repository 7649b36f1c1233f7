"""Compression through the shipped nginx config: the app's brotli/gzip passes through untouched, nginx adds no
second coding, a logged-in page stays plain (BREACH) and Engine.IO polling is never compressed."""

from __future__ import annotations

import gzip
import http.client
from pathlib import Path

import brotli
import pytest

from tests.conftest import require_service
from tests.support.nginx import NGINX, running_nginx
from tests.support.server import running_server

pytestmark = [pytest.mark.server]

SOCKET_IO = Path(__file__).resolve().parents[2] / "static" / "vendor" / "socket.io" / "socket.io.min.js"


def get(base: str, path: str, headers: dict[str, str]) -> tuple[int, http.client.HTTPMessage, bytes]:
    host, port = base.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=10)
    connection.request("GET", path, headers=headers)
    response = connection.getresponse()
    body = response.read()
    connection.close()
    return response.status, response.msg, body


def test_compression_behind_nginx(tmp_path: Path) -> None:
    require_service("nginx", NGINX is not None, "Debian package nginx-light not installed")
    with running_server(tmp_path / "instance", "eventlet", demo_attendees=2) as server, \
            running_nginx(tmp_path / "nginx", [server.ports[0], server.ports[0]]) as proxy:
        script = "/static/vendor/socket.io/socket.io.min.js"
        for coding, decode in (("gzip", gzip.decompress), ("br", brotli.decompress)):
            status, headers, body = get(proxy, script, {"Accept-Encoding": coding})
            assert status == 200 and headers["Content-Encoding"] == coding
            assert decode(body) == SOCKET_IO.read_bytes()
        status, headers, body = get(proxy, "/events/digitalkonferenz-2027/schedule.ics", {"Accept-Encoding": "gzip"})
        assert status == 200 and headers["Content-Encoding"] == "gzip" and b"BEGIN:VCALENDAR" in gzip.decompress(body)
        etag = headers["ETag"]
        status, headers, body = get(proxy, "/events/digitalkonferenz-2027/schedule.ics",
                                    {"Accept-Encoding": "gzip", "If-None-Match": etag})
        assert status == 304 and body == b""
        status, headers, body = get(proxy, "/socket.io/?EIO=4&transport=polling", {"Accept-Encoding": "gzip, br"})
        assert status == 200 and "Content-Encoding" not in headers and body.startswith(b"0{")
        # Pages: compressed by the app for anonymous visitors; nginx adds nothing of its own to pages.
        status, headers, body = get(proxy, "/events/digitalkonferenz-2027/agenda", {"Accept-Encoding": "gzip"})
        assert status == 200 and headers["Content-Encoding"] == "gzip"
