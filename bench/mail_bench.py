"""How long a mail takes from the commit that queued it to the local SMTP server, p50/p99.

    .venv/bin/python bench/mail_bench.py              # 200 mails each way
    .venv/bin/python bench/mail_bench.py --smoke      # 20 mails each way
    .venv/bin/python bench/mail_bench.py --mode gevent

Two measurements, both against a real aiosmtpd process on 127.0.0.1 (tests/support/smtp_server.py):
1. commit -> delivery: `send_mail` + commit in this process (one mail every --interval seconds), the
   background sender in a thread (as under `ASYNC_MODE=threading`); from just after the commit to the
   server's acceptance of the message.
2. request -> delivery: `conference run` (eventlet or gevent) with the demo; an organiser invites speakers
   through the form, one request after the other with --request-interval between them; from sending the
   request to the server's acceptance. Back to back (0) the one process is busy with the pages (about 40 ms of
   CPU each), and the sender's turns come between them: that measures saturation, not the mail path.
Both count each mail by its recipient and check that every one arrived exactly once.
"""

from __future__ import annotations

import argparse
import http.cookiejar
import re
import statistics
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request
from collections import Counter
from pathlib import Path
from typing import Any

PROJECT_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT_ROOT))

from tests.fixtures.smtp import SmtpServer  # noqa: E402 - the project root is on the path only now
from tests.support.server import running_server  # noqa: E402

SLUG = "digitalkonferenz-2027"
ORGANISER = "orga@demo.invalid"
PASSWORD = "demo-passwort-2027"
CSRF = re.compile(r'name="csrf_token" type="hidden" value="([^"]+)"|name="csrf_token" value="([^"]+)"')


def percentiles(values: list[float]) -> str:
    ordered = sorted(values)
    p99 = ordered[max(0, int(round(len(ordered) * 0.99)) - 1)]
    return (f"p50 {statistics.median(ordered) * 1000:.1f} ms, p99 {p99 * 1000:.1f} ms, "
            f"max {ordered[-1] * 1000:.1f} ms")


def delivery_times(server: SmtpServer, started: dict[str, float], timeout: float = 60) -> list[float]:
    """Seconds from `started[recipient]` to the server's acceptance; each recipient exactly once."""
    deadline = time.monotonic() + timeout
    while True:
        received = server.received()
        if len(received) >= len(started) or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    counts = Counter(mail.rcpt_tos[0] for mail in received)
    missing = [address for address in started if counts[address] == 0]
    doubled = [address for address, count in counts.items() if count > 1]
    if missing or doubled:
        raise SystemExit(f"delivery wrong: {len(missing)} missing, {len(doubled)} twice")
    return [mail.at - started[mail.rcpt_tos[0]] for mail in received]


def commit_to_delivery(count: int, workdir: Path, interval: float) -> list[float]:
    from conference import create_app
    from conference.core.after_commit import commit
    from conference.core.mail import send_mail
    from conference.core.mail_queue import start_mail_sender
    from conference.extensions import db

    server = SmtpServer(workdir / "smtp-inprocess").start()
    try:
        app = create_app({"INSTANCE_PATH": str(workdir / "instance"), "SECRET_KEY": "bench",
                          "DATABASE_URL": f"sqlite:///{workdir / 'bench.sqlite3'}", "ASYNC_MODE": "threading",
                          "EXTERNAL_URL": "http://127.0.0.1", **server.settings()})
        with app.app_context():
            db.create_all()
        start_mail_sender(app, lambda target: threading.Thread(target=target, daemon=True).start())
        started: dict[str, float] = {}
        for number in range(count):
            with app.app_context():
                address = f"commit{number}@example.org"
                send_mail(to=address, subject=f"Bench {number}", body="Hallo\n")
                commit()
                started[address] = time.time()
            time.sleep(interval)  # one mail after the other, as requests come in, not one batch
        return delivery_times(server, started)
    finally:
        server.stop()


def request_to_delivery(count: int, workdir: Path, mode: str, interval: float) -> list[float]:
    server = SmtpServer(workdir / "smtp-server").start()
    try:
        with running_server(workdir / "server", mode, demo_attendees=2, **server.env()) as running:
            opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))

            def page(path: str, data: dict[str, Any] | None = None) -> str:
                body = urllib.parse.urlencode(data).encode() if data is not None else None
                with opener.open(f"{running.url}{path}", data=body, timeout=30) as response:
                    return str(response.read().decode())

            def csrf(html: str) -> str:
                match = CSRF.search(html)
                assert match, "no CSRF token"
                return match.group(1) or match.group(2)

            page("/login", {"email": ORGANISER, "password": PASSWORD, "csrf_token": csrf(page("/login"))})
            manage = f"/manage/events/{SLUG}/speakers"
            html = page(manage)
            session_id = re.search(r'<select[^>]*id="session_id"[^>]*>\s*<option value="(\d+)"', html)
            assert session_id, "no session to invite to"
            started: dict[str, float] = {}
            for number in range(count):
                address = f"request{number}@example.org"
                form = {"csrf_token": csrf(html), "session_id": session_id.group(1), "speaker_id": "0",
                        "name": f"Gast {number}", "email": address, "role": "speaker"}
                started[address] = time.time()
                html = page(f"{manage}/invite", form)  # 303 to the speakers page, which has the next token
                time.sleep(interval)
            return delivery_times(server, started)
    finally:
        server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mails", type=int, default=200)
    parser.add_argument("--smoke", action="store_true", help="20 mails each way")
    parser.add_argument("--mode", choices=["eventlet", "gevent"], default="eventlet")
    parser.add_argument("--interval", type=float, default=0.05, help="seconds between two commits (in-process)")
    parser.add_argument("--request-interval", type=float, default=0.2,
                        help="seconds between the end of one invitation request and the next (0: back to back)")
    args = parser.parse_args()
    count = 20 if args.smoke else args.mails
    with tempfile.TemporaryDirectory(prefix="mail-bench-") as tmp:
        workdir = Path(tmp)
        committed = commit_to_delivery(count, workdir, args.interval)
        print(f"commit -> delivery ({count} mails, one every {args.interval * 1000:.0f} ms, sender thread): "
              f"{percentiles(committed)}")
        requested = request_to_delivery(count, workdir, args.mode, args.request_interval)
        print(f"request -> delivery ({count} invitations, {args.request_interval * 1000:.0f} ms apart, conference "
              f"run with {args.mode}): {percentiles(requested)}")


if __name__ == "__main__":
    main()
