"""A crowd of light Socket.IO clients in a process of its own, for browser tests that need an audience.

Each person connects with their API token over a raw websocket (`bench/raw_socketio.py`, asyncio: hundreds per
process, unlike python-socketio's client with its threads), joins the lobby, and every second person also one
session. Then a trickle of chat messages, questions and reactions goes into that session (and some chat into
the lobby) from people who are in it, spread over a few seconds. The process prints JSON lines on stdout:

    {"ready": {"connected": 130, "lobby": 130, "session": 65}}     everyone has joined
    {"sent": {...}, "acked": {...}}                                 the trickle is over; acked: answered ok
    {"closed": 130}                                                 at the end

and stays connected until its stdin closes (or SIGTERM), or by itself after `--limit` seconds. Only 127.0.0.1.

    python -m tests.support.live_crowd --port 5000 --token-file tokens.txt --lobby lobby:slug --session 17

From a test: `with live_crowd(port, token_file, lobby=..., session=...) as crowd:` starts it and waits for
`crowd.ready`; `crowd.report()` waits for the counts.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import queue
import random
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

from bench.raw_socketio import RawSocketIOClient

PROJECT_ROOT = Path(__file__).resolve().parent.parent.parent
REACTIONS = ("applause", "heart", "thumbs_up", "idea")
KINDS = ("chat", "questions", "reactions", "lobby_chat")


def emit(line: dict[str, Any]) -> None:
    print(json.dumps(line), flush=True)  # noqa: T201 - the parent reads these lines


async def connect(port: int, token: str) -> RawSocketIOClient:
    loop = asyncio.get_running_loop()
    _transport, client = await loop.create_connection(lambda: RawSocketIOClient(token), "127.0.0.1", port)
    if not await asyncio.wait_for(client.connected, 30):
        client.close()
        raise ConnectionError(f"connection refused: {client.refused}")
    return client


async def acknowledged(future: asyncio.Future[bytes]) -> bool:
    try:
        answer = json.loads(await asyncio.wait_for(future, 30))[0]
    except (TimeoutError, ConnectionError, ValueError):
        return False
    return isinstance(answer, dict) and answer.get("ok") is True


async def join(client: RawSocketIOClient, room: str) -> None:
    answer = await client.call("join", {"room": room}, timeout=60)
    if answer.get("ok") is not True:
        raise RuntimeError(f"join {room} failed: {answer}")


def plan_trickle(args: argparse.Namespace, members: list[int], others: list[int]) -> list[tuple[float, str, int]]:
    """(second, kind, client index), sorted: each message from a random person who is in the room."""
    rng = random.Random(args.seed)
    plan = [(rng.uniform(0, args.seconds), "chat", rng.choice(members)) for _ in range(args.chat)]
    plan += [(rng.uniform(0, args.seconds), "questions", rng.choice(members)) for _ in range(args.questions)]
    plan += [(rng.uniform(0, args.seconds), "reactions", rng.choice(members)) for _ in range(args.reactions)]
    plan += [(rng.uniform(0, args.seconds), "lobby_chat", rng.choice(others or members))
             for _ in range(args.lobby_chat)]
    return sorted(plan)


async def run(args: argparse.Namespace) -> int:
    loop = asyncio.get_running_loop()
    started = loop.time()
    stop = asyncio.Event()

    def on_stdin() -> None:
        if not os.read(sys.stdin.fileno(), 4096):
            loop.remove_reader(sys.stdin.fileno())
            stop.set()

    loop.add_reader(sys.stdin.fileno(), on_stdin)
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    tokens = Path(args.token_file).read_text().split()[:args.people]
    lobby, session = args.lobby, f"session:{args.session}"
    gate = asyncio.Semaphore(50)

    async def arrive(index: int, token: str) -> RawSocketIOClient:
        async with gate:
            client = await connect(args.port, token)
            await join(client, lobby)
            if index % 2 == 0:  # every second person is in the session now, the others stay in the lobby
                await join(client, session)
            return client

    try:
        clients = list(await asyncio.gather(*(arrive(i, t) for i, t in enumerate(tokens))))
    except (OSError, RuntimeError, TimeoutError) as error:
        emit({"error": str(error)})
        return 1
    members = list(range(0, len(clients), 2))
    emit({"ready": {"connected": len(clients), "lobby": len(clients), "session": len(members)}})

    sent = dict.fromkeys(KINDS, 0)
    pending: list[tuple[str, asyncio.Future[bytes]]] = []
    began = loop.time()
    for at, kind, index in plan_trickle(args, members, list(range(1, len(clients), 2))):
        await asyncio.sleep(max(0.0, began + at - loop.time()))
        number = sent[kind] = sent[kind] + 1
        if kind in ("chat", "lobby_chat"):
            event, data = "chat:send", {"room": session if kind == "chat" else lobby,
                                        "text": f"Beitrag {number} aus dem Publikum",
                                        "client_id": f"crowd-{kind}-{number}"}
        elif kind == "questions":
            event, data = "qa:ask", {"room": session, "text": f"Frage {number}: wie geht es weiter?",
                                     "client_id": f"crowd-question-{number}"}
        else:
            event, data = "react", {"room": session, "reaction": REACTIONS[number % len(REACTIONS)]}
        try:
            pending.append((kind, clients[index].send_call(event, data)))
        except ConnectionError:  # dropped by the server: sent, never acknowledged
            continue
    results = await asyncio.gather(*(acknowledged(future) for _kind, future in pending))
    acked = dict.fromkeys(KINDS, 0)
    for (kind, _future), ok in zip(pending, results, strict=True):
        acked[kind] += ok
    emit({"sent": sent, "acked": acked})

    with suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), max(0.0, args.limit - (loop.time() - started)))
    for client in clients:
        client.close()
    await asyncio.sleep(0.2)  # let the transports close before the loop ends
    emit({"closed": len(clients)})
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--port", type=int, required=True, help="the server on 127.0.0.1")
    parser.add_argument("--token-file", required=True, help="`conference demo --token-file`: one token a line")
    parser.add_argument("--people", type=int, default=130)
    parser.add_argument("--lobby", required=True, help="the lobby room, e.g. lobby:<event slug>")
    parser.add_argument("--session", type=int, required=True, help="the id of the session half of them are in")
    parser.add_argument("--seconds", type=float, default=8.0, help="how long the trickle lasts")
    parser.add_argument("--chat", type=int, default=40, help="chat messages into the session")
    parser.add_argument("--questions", type=int, default=4)
    parser.add_argument("--reactions", type=int, default=60)
    parser.add_argument("--lobby-chat", type=int, default=10, help="chat messages into the lobby")
    parser.add_argument("--limit", type=float, default=120.0, help="seconds until it leaves by itself")
    parser.add_argument("--seed", type=int, default=2027)
    args = parser.parse_args(argv)
    if not 0 < args.people <= 1000 or not 0 < args.limit <= 600:
        parser.error("0 < people <= 1000, 0 < limit <= 600")
    return asyncio.run(run(args))


class Crowd:
    """The parent's side: the process and its JSON lines."""

    def __init__(self, process: subprocess.Popen[str]) -> None:
        self.process = process
        self.lines: queue.Queue[dict[str, Any]] = queue.Queue()
        self.ready: dict[str, int] = {}
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            if line.startswith("{"):
                self.lines.put(json.loads(line))

    def next_line(self, key: str, timeout: float) -> Any:
        line = self.lines.get(timeout=timeout)
        if key not in line:
            raise RuntimeError(f"the crowd said {line}, expected {key!r}")
        return line[key]

    def report(self, timeout: float = 60) -> dict[str, dict[str, int]]:
        """{"sent": {kind: n}, "acked": {kind: n}} once the trickle is over (kinds: see KINDS)."""
        line = self.lines.get(timeout=timeout)
        if "acked" not in line:
            raise RuntimeError(f"the crowd said {line}, expected its counts")
        return line  # type: ignore[no-any-return]


@contextmanager
def live_crowd(port: int, token_file: Path, *, lobby: str, session: int, people: int = 130,
               **options: Any) -> Iterator[Crowd]:
    """Start the crowd against 127.0.0.1:`port`, wait until everyone has joined, yield; then let it leave."""
    flags = [f"--{key.replace('_', '-')}={value}" for key, value in options.items()]
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.support.live_crowd", f"--port={port}", f"--token-file={token_file}",
         f"--people={people}", f"--lobby={lobby}", f"--session={session}", *flags],
        cwd=PROJECT_ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    crowd = Crowd(process)
    try:
        crowd.ready = crowd.next_line("ready", timeout=90)
        yield crowd
    finally:
        assert process.stdin is not None
        process.stdin.close()  # the crowd leaves
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
        crowd.reader.join(timeout=10)
        assert process.stdout is not None
        process.stdout.close()


if __name__ == "__main__":
    sys.exit(main())
