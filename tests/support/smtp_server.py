"""A real SMTP server process for the mail tests (aiosmtpd), with switchable faults.

    python -m tests.support.smtp_server --state DIR [--port N] [--cert F --key F [--implicit-tls]]
                                         [--auth-user U --auth-password P]

It writes its port to DIR/port once it listens, every message it accepts as one JSON line to
DIR/received.jsonl, and every connection to DIR/connections.jsonl. DIR/mode, read at each step, picks the
behaviour: `ok`, `refuse-4xx` / `refuse-5xx` (MAIL FROM answered 451 / 554), `hang` (accept the connection,
never say a word), `drop-data` (answer DATA with 354, read one line of the message, hang up) or `slow`
(30 ms before accepting each message). Recipients
whose local part starts with `unknown` get 550, with `busy` 452, in every mode.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import ssl
import time
from pathlib import Path
from typing import Any

from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword


class State:
    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def mode(self) -> str:
        try:
            return (self.directory / "mode").read_text().strip() or "ok"
        except FileNotFoundError:
            return "ok"

    def append(self, name: str, record: dict[str, Any]) -> None:
        with (self.directory / name).open("a", encoding="utf-8") as handle:
            handle.write(json.dumps(record) + "\n")
            handle.flush()
            os.fsync(handle.fileno())


class Recorder:
    """aiosmtpd handler: accepts or refuses by mode and recipient, records what it accepted."""

    def __init__(self, state: State) -> None:
        self.state = state

    async def handle_MAIL(self, server: SMTP, session: Any, envelope: Any, address: str,
                          mail_options: list[str]) -> str:
        mode = self.state.mode()
        if mode == "refuse-4xx":
            return "451 4.3.0 Temporary local problem, try again later"
        if mode == "refuse-5xx":
            return "554 5.3.0 Service not available"
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_RCPT(self, server: SMTP, session: Any, envelope: Any, address: str,
                          rcpt_options: list[str]) -> str:
        if address.startswith("unknown"):
            return "550 5.1.1 No such user here"
        if address.startswith("busy"):
            return "452 4.2.2 Mailbox full, try again later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Any, envelope: Any) -> str:
        if self.state.mode() == "slow":
            await asyncio.sleep(0.03)
        login = session.auth_data.login.decode() if isinstance(session.auth_data, LoginPassword) else None
        self.state.append("received.jsonl", {
            "at": time.time(), "mail_from": envelope.mail_from, "rcpt_tos": envelope.rcpt_tos,
            "tls": session.ssl is not None or _implicit_tls(server), "login": login,
            "data": base64.b64encode(envelope.original_content or b"").decode()})
        return "250 2.0.0 Accepted"


def _implicit_tls(server: SMTP) -> bool:
    return server.transport is not None and server.transport.get_extra_info("ssl_object") is not None


class FaultySMTP(SMTP):
    """aiosmtpd's server with two faults no handler hook can make: silence, and hanging up during DATA."""

    def __init__(self, handler: Recorder, **kwargs: Any) -> None:
        super().__init__(handler, **kwargs)
        self.state = handler.state

    async def _handle_client(self) -> None:
        mode = self.state.mode()
        self.state.append("connections.jsonl", {"at": time.time(), "mode": mode})
        if mode == "hang":
            await asyncio.sleep(3600)
            return
        await super()._handle_client()

    async def smtp_DATA(self, arg: str) -> None:
        if self.state.mode() == "drop-data" and self.envelope is not None and self.envelope.rcpt_tos:
            await self.push("354 End data with <CR><LF>.<CR><LF>")
            await self._reader.readuntil(b"\r\n")
            assert self.transport is not None
            self.transport.close()
            return
        await super().smtp_DATA(arg)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--state", type=Path, required=True)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--cert")
    parser.add_argument("--key")
    parser.add_argument("--implicit-tls", action="store_true")
    parser.add_argument("--auth-user")
    parser.add_argument("--auth-password")
    args = parser.parse_args()
    state = State(args.state)
    tls: ssl.SSLContext | None = None
    if args.cert:
        tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        tls.load_cert_chain(args.cert, args.key)

    def authenticator(server: SMTP, session: Any, envelope: Any, mechanism: str, auth_data: Any) -> AuthResult:
        ok = (isinstance(auth_data, LoginPassword) and auth_data.login.decode() == args.auth_user
              and auth_data.password.decode() == args.auth_password)
        return AuthResult(success=ok, handled=False, auth_data=auth_data if ok else None)

    options: dict[str, Any] = {"hostname": "localhost", "enable_SMTPUTF8": True, "timeout": 30}
    if tls is not None and not args.implicit_tls:
        options.update(tls_context=tls, require_starttls=True)
    if args.auth_user:
        options.update(authenticator=authenticator, auth_required=True, auth_require_tls=tls is not None and not args.implicit_tls)
    handler = Recorder(state)
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    server = loop.run_until_complete(loop.create_server(
        lambda: FaultySMTP(handler, loop=loop, **options), "127.0.0.1", args.port,
        ssl=tls if args.implicit_tls else None, reuse_address=True))
    port = server.sockets[0].getsockname()[1]
    (args.state / "port.tmp").write_text(str(port))
    (args.state / "port.tmp").replace(args.state / "port")
    loop.run_forever()


if __name__ == "__main__":
    main()
