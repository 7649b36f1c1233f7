"""Figures for compression and conditional requests against a running server (`conference run`).

    python bench/http_figures.py http://127.0.0.1:5000 [SLUG]

Prints the bytes of the agenda page and the socket.io client as sent plain, gzip and brotli, and what a poller
of the exports and the read API pays for its second request (If-None-Match: 304, bytes on the wire, ms).
"""

from __future__ import annotations

import http.client
import statistics
import sys
import time
from typing import Any
from urllib.parse import urlsplit

PATHS_COMPRESSED = ("/events/{slug}/agenda", "/static/vendor/socket.io/socket.io.min.js",
                    "/events/{slug}/schedule.json")
PATHS_POLLED = ("/events/{slug}/schedule.ics", "/events/{slug}/schedule.xml", "/events/{slug}/schedule.json",
                "/api/v1/events/{slug}/sessions")
ROUNDS = 20


def fetch(base: str, path: str, headers: dict[str, str]) -> tuple[int, Any, int, int, float]:
    """(status, headers, body bytes, header bytes, ms) of one GET on a fresh connection."""
    parts = urlsplit(base)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    began = time.perf_counter()
    connection.request("GET", path, headers=headers)
    response = connection.getresponse()
    body = response.read()
    elapsed = (time.perf_counter() - began) * 1000
    head = sum(len(k) + len(v) + 4 for k, v in response.getheaders()) + len("HTTP/1.1 200 OK\r\n\r\n")
    connection.close()
    return response.status, response.msg, len(body), head, elapsed  # msg: case-insensitive headers


def main() -> None:
    base = sys.argv[1] if len(sys.argv) > 1 else "http://127.0.0.1:5000"
    slug = sys.argv[2] if len(sys.argv) > 2 else "digitalkonferenz-2027"
    print("compression (body bytes):")
    for template in PATHS_COMPRESSED:
        path = template.format(slug=slug)
        sizes = {coding: fetch(base, path, {"Accept-Encoding": coding})[2] for coding in ("identity", "gzip", "br")}
        plain = sizes["identity"]
        print(f"  {path}: plain {plain}, gzip {sizes['gzip']} (-{100 - 100 * sizes['gzip'] // plain}%), "
              f"br {sizes['br']} (-{100 - 100 * sizes['br'] // plain}%)")
    print(f"second request of a poller (median of {ROUNDS}, Accept-Encoding: gzip):")
    for template in PATHS_POLLED:
        path = template.format(slug=slug)
        first = [fetch(base, path, {"Accept-Encoding": "gzip"}) for _ in range(ROUNDS)]
        etag = first[-1][1]["ETag"]
        again = [fetch(base, path, {"Accept-Encoding": "gzip", "If-None-Match": etag}) for _ in range(ROUNDS)]
        assert all(status == 304 and size == 0 for status, _h, size, _head, _ms in again), again[0]
        full = statistics.median(b + h for _s, _h, b, h, _ms in first)
        short = statistics.median(b + h for _s, _h, b, h, _ms in again)
        print(f"  {path}: 200 {full:.0f} B in {statistics.median(m for *_r, m in first):.1f} ms -> "
              f"304 {short:.0f} B in {statistics.median(m for *_r, m in again):.1f} ms "
              f"(Cache-Control: {first[-1][1].get('Cache-Control')})")
    path = f"/events/{slug}/agenda"
    status, headers, size, head, ms = fetch(base, path, {"Accept-Encoding": "br"})
    cookie = (headers.get("Set-Cookie") or "").split(";", 1)[0]
    again = fetch(base, path, {"Accept-Encoding": "br", "Cookie": cookie, "If-None-Match": headers["ETag"]})
    print(f"  {path} (a browser revalidating, its cookie sent): {status} {size + head} B in {ms:.1f} ms -> "
          f"{again[0]} {again[2] + again[3]} B in {again[4]:.1f} ms (Cache-Control: {headers.get('Cache-Control')})")


if __name__ == "__main__":
    main()
