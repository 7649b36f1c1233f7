"""Chat load test over the public protocol with a light raw Engine.IO v4 / Socket.IO v5 websocket client.

N clients join one room, S of them send M messages each at R messages/s. Prints delivered, lost,
duplicates, p50/p99 send-to-receive latency, deliveries/s, server CPU per delivery and memory per
connection, for the platform (persistence, auth, permissions on) and a plain Flask-SocketIO baseline
(bench/baseline_server.py) in the same run, under eventlet and gevent. Optionally a reconnect storm.

    python bench/chat_load.py --smoke
    python bench/chat_load.py --clients 130 --senders 10 --messages 100 --rate 20
    python bench/chat_load.py --clients 1000 --senders 10 --messages 50 --rate 10 --procs 2 --storm
    python bench/chat_load.py --clients 5000 --senders 5 --messages 20 --rate 1 --procs 2
    python bench/chat_load.py ... --set LIVE_GROUP_WINDOW=0.05   (platform settings for tuning runs)

Server CPU per delivery is measured over the send phase only; with --storm the reconnect storm's CPU is
printed apart (storm_cpu). Only 127.0.0.1; every run is bounded in clients (<= 6,000) and in time
(--time-limit, default 20 minutes; servers are stopped and load processes end with it). The open-files and
process limits are raised to what the run needs (up to the hard limit) before anything starts.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import multiprocessing as mp
import os
import re
import resource
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from raw_socketio import RawSocketIOClient  # noqa: E402 - the light client beside this file

ROOT = Path(__file__).resolve().parent.parent
SLUG = "digitalkonferenz-2027"
ROOM = f"lobby:{SLUG}"
MARK = re.compile(rb"b\|(\d+)\|(\d+)\|([\d.]+)")
MAX_CLIENTS = 6000


# --- the load client (raw websocket, see raw_socketio.py) ----------------------------------------------

def new_stats() -> dict[str, Any]:
    """What the load clients of one process count together (`RawClient.on_event`)."""
    return {"seen": {}, "latencies": [], "delivered": 0, "duplicates": 0, "frames": 0}


class RawClient(RawSocketIOClient):
    """A load client: only the benchmark's marker is searched in event packets, nothing else is decoded."""

    def __init__(self, stats: dict[str, Any], token: str | None) -> None:
        super().__init__(token)
        self.stats = stats

    def on_event(self, packet: bytes) -> None:
        marks = MARK.findall(packet)
        if not marks:
            return
        self.stats["frames"] += 1
        now = time.time()
        seen = self.stats["seen"].setdefault(id(self), set())
        latencies = self.stats["latencies"]
        for sender, seq, sent in marks:
            key = (int(sender), int(seq))
            if key in seen:
                self.stats["duplicates"] += 1
                continue
            seen.add(key)
            self.stats["delivered"] += 1
            latencies.append(now - float(sent))


async def open_client(port: int, token: str | None, stats: dict[str, Any]) -> RawClient:
    loop = asyncio.get_running_loop()
    _transport, client = await loop.create_connection(lambda: RawClient(stats, token), "127.0.0.1", port)
    sock = _transport.get_extra_info("socket")
    if sock is not None:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    if not await asyncio.wait_for(client.connected, 30):
        raise RuntimeError("connection refused")
    return client


async def connect_and_join(port: int, tokens: list[str | None], stats: dict[str, Any],
                           history: bool = False) -> list[RawClient]:
    semaphore = asyncio.Semaphore(200)

    async def one(token: str | None) -> RawClient:
        async with semaphore:
            client = await open_client(port, token, stats)
            ack = await asyncio.wait_for(client.send_call("join", {"room": ROOM}), 60)
            if b'"ok":true' not in ack:
                raise RuntimeError(f"join failed: {ack[:200]!r}")
            if history:
                await asyncio.wait_for(client.send_call("chat:history", {"room": ROOM, "after_id": 0}), 60)
            return client

    return list(await asyncio.gather(*(one(t) for t in tokens)))


async def warm_up(port: int, token: str | None) -> None:
    """One client joins (with the room's recent history), sends and leaves: the first use of each code path
    (imports, query compilation, connection pools, caches) is paid before memory is measured, so memory per
    connection is what each further connection costs."""
    stats = new_stats()
    client = (await connect_and_join(port, [token], stats))[0]
    message = {"room": ROOM, "text": "warm-up", "client_id": "warm-up"}
    ack = await asyncio.wait_for(client.send_call("chat:send", message), 30)
    if b'"ok":true' not in ack:
        raise RuntimeError(f"warm-up message refused: {ack[:200]!r}")
    client.close()
    await asyncio.sleep(0.5)


# --- worker processes -----------------------------------------------------------------------------------

def freeze_client_heap() -> None:
    """Keep the open connections out of this load process's own garbage collections.

    They live until the end of the run; a full collection over them (~150 ms at 2,500 connections) stalls
    the process's reads and would be counted as the server's latency.
    """
    gc.collect()
    gc.freeze()


def worker(conn: Any, port: int, tokens: list[str | None], sender_ids: list[tuple[int, int]], messages: int,
           rate: float,
           expected_each: int, storm: bool) -> None:
    asyncio.run(_worker(conn, port, tokens, sender_ids, messages, rate, expected_each, storm))


async def _worker(conn: Any, port: int, tokens: list[str | None], sender_ids: list[tuple[int, int]], messages: int,
                  rate: float, expected_each: int, storm: bool) -> None:
    loop = asyncio.get_running_loop()
    stats = new_stats()
    try:
        clients = await connect_and_join(port, tokens, stats)
    except Exception as error:  # noqa: BLE001 - reported to the parent
        conn.send(("error", str(error)))
        return
    freeze_client_heap()
    conn.send(("ready", len(clients)))
    start_at = await loop.run_in_executor(None, conn.recv)
    await asyncio.sleep(max(0.0, start_at - time.time()))
    cpu_at_start = time.process_time()

    async def sender(index: int, client: RawClient) -> int:
        refused = 0
        begin = time.monotonic()
        pending = []
        for seq in range(messages):
            await asyncio.sleep(max(0.0, begin + seq / rate - time.monotonic()))
            text = f"b|{index}|{seq}|{time.time():.6f}"
            try:
                pending.append(client.send_call("chat:send", {"room": ROOM, "text": text,
                                                              "client_id": f"b{index}-{seq}"}))
            except ConnectionError:
                refused += 1
        for ack in asyncio.as_completed(pending):
            try:
                if b'"ok":true' not in await asyncio.wait_for(ack, 30):
                    refused += 1
            except TimeoutError:
                refused += 1
        return refused

    senders = [sender(global_index, clients[local]) for local, global_index in sender_ids]
    refused = sum(await asyncio.gather(*senders)) if senders else 0
    deadline = time.monotonic() + 15
    target = expected_each * len(clients)
    while stats["delivered"] < target and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    client_cpu = time.process_time() - cpu_at_start
    storm_seconds = None
    if storm:
        conn.send(("sent", {"delivered": stats["delivered"]}))
        await loop.run_in_executor(None, conn.recv)  # the parent has read the CPU counter of the send phase
        for client in clients:
            client.close()
        await asyncio.sleep(1.0)
        began = time.monotonic()
        spread = 5.0 / max(len(tokens), 1)

        async def rejoin(i: int, token: str | None) -> RawClient:
            await asyncio.sleep(i * spread)
            return (await connect_and_join(port, [token], stats, history=True))[0]

        clients = list(await asyncio.gather(*(rejoin(i, t) for i, t in enumerate(tokens))))
        storm_seconds = time.monotonic() - began
    for client in clients:
        client.close()
    conn.send(("done", {"delivered": stats["delivered"], "duplicates": stats["duplicates"],
                        "latencies": stats["latencies"], "refused": refused, "storm": storm_seconds,
                        "frames": stats["frames"], "client_cpu": client_cpu}))


# --- servers -------------------------------------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def wait_http(port: int, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
                s.sendall(b"GET /socket.io/?EIO=4&transport=polling HTTP/1.0\r\n\r\n")
                if s.recv(64).startswith(b"HTTP/1."):
                    return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError("server did not start")


def start_platform(mode: str, clients: int, workdir: Path,
                   settings: dict[str, str] | None = None) -> tuple[subprocess.Popen[bytes], int, list[str]]:
    conference = str(Path(sys.executable).parent / "conference")
    port = free_port()
    env = {**os.environ, "CONFERENCE_INSTANCE_PATH": str(workdir / "instance"), "CONFERENCE_ASYNC_MODE": mode,
           "CONFERENCE_EXTERNAL_URL": f"http://127.0.0.1:{port}",
           # The load senders send far faster than a person; the limit stays on, set above the load.
           "CONFERENCE_LIVE_CHAT_RATE_LIMIT": "100000/10", "CONFERENCE_LIVE_JOIN_RATE_LIMIT": "1000/10",
           "PYTHONWARNINGS": "ignore", **{f"CONFERENCE_{k}": v for k, v in (settings or {}).items()}}
    env.pop("CONFERENCE_DATABASE_URL", None)
    token_file = workdir / "tokens.txt"
    subprocess.run([conference, "demo", "--attendees", str(clients), "--token-file", str(token_file)], env=env,
                   check=True, capture_output=True, cwd=ROOT, timeout=600)
    tokens = token_file.read_text().split()[:clients]
    process = subprocess.Popen([conference, "run", "--host", "127.0.0.1", "--port", str(port)], env=env,
                               stdout=subprocess.DEVNULL, stderr=(workdir / "server.log").open("wb"), cwd=ROOT)
    wait_http(port)
    return process, port, tokens


def start_baseline(mode: str) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    process = subprocess.Popen([sys.executable, str(ROOT / "bench" / "baseline_server.py"), "--mode", mode,
                                "--port", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               env={**os.environ, "PYTHONWARNINGS": "ignore"})
    wait_http(port)
    return process, port


def stop(process: subprocess.Popen[bytes]) -> None:
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


# --- one run ---------------------------------------------------------------------------------------------

def run_load(pid: int, port: int, tokens: list[str | None], args: argparse.Namespace,
             storm: bool = False) -> dict[str, Any]:
    n = len(tokens)
    procs = max(1, min(args.procs, n))
    chunks = [list(range(i, n, procs)) for i in range(procs)]
    asyncio.run(warm_up(port, tokens[-1]))
    rss_before = rss_kb(pid)
    pipes, workers = [], []
    ctx = mp.get_context("fork")
    for chunk in chunks:
        parent, child = ctx.Pipe()
        senders = [(j, i) for j, i in enumerate(chunk) if i < args.senders]
        process = ctx.Process(daemon=True, target=worker,
                              args=(child, port, [tokens[i] for i in chunk], senders, args.messages,
                                    args.rate, args.senders * args.messages, storm))
        process.start()
        pipes.append(parent)
        workers.append(process)
    began = time.monotonic()
    for parent in pipes:
        status, value = parent.recv()
        if status != "ready":
            raise RuntimeError(value)
    connect_seconds = time.monotonic() - began
    time.sleep(1.5)  # presence updates of the joins settle
    rss_after = rss_kb(pid)
    cpu_before = cpu_seconds(pid)
    start_at = time.time() + 0.5
    for parent in pipes:
        parent.send(start_at)
    results = [parent.recv()[1] for parent in pipes]
    send_window = args.messages / args.rate
    cpu_used = cpu_seconds(pid) - cpu_before
    storm_cpu = None
    if storm:  # the send phase is over in every worker: now the reconnect storm, measured on its own
        cpu_before = cpu_seconds(pid)
        for parent in pipes:
            parent.send("storm")
        results = [parent.recv()[1] for parent in pipes]
        storm_cpu = cpu_seconds(pid) - cpu_before
    for process in workers:
        process.join(timeout=10)
    latencies = sorted(x for r in results for x in r["latencies"])
    delivered = sum(r["delivered"] for r in results)
    expected = n * args.senders * args.messages

    def pct(p: float) -> float:
        return latencies[min(len(latencies) - 1, int(p * len(latencies)))] * 1000 if latencies else float("nan")

    storms = [r["storm"] for r in results if r["storm"] is not None]
    return {
        "clients": n, "expected": expected, "delivered": delivered, "lost": expected - delivered,
        "duplicates": sum(r["duplicates"] for r in results), "refused": sum(r["refused"] for r in results),
        "p50_ms": pct(0.50), "p99_ms": pct(0.99), "deliveries_per_s": delivered / send_window,
        "cpu_us_per_delivery": cpu_used / delivered * 1e6 if delivered else float("nan"),
        "kb_per_connection": (rss_after - rss_before) / n, "connect_s": connect_seconds,
        "storm_s": max(storms) if storms else None, "storm_cpu_s": storm_cpu,
        "frames": sum(r["frames"] for r in results), "client_cpu_s": sum(r["client_cpu"] for r in results),
        "server_cpu_s": cpu_used,
    }


def print_row(label: str, r: dict[str, Any]) -> None:
    storm = (f" storm_back={r['storm_s']:.1f}s storm_cpu={r['storm_cpu_s']:.1f}s"
             if r["storm_s"] is not None else "")
    print(f"  {label:<9} clients={r['clients']} delivered={r['delivered']}/{r['expected']} lost={r['lost']} "
          f"dup={r['duplicates']} refused={r['refused']} p50={r['p50_ms']:.1f}ms p99={r['p99_ms']:.1f}ms "
          f"deliveries/s={r['deliveries_per_s']:.0f} cpu/delivery={r['cpu_us_per_delivery']:.1f}us "
          f"mem/conn={r['kb_per_connection']:.1f}KB connect={r['connect_s']:.1f}s{storm}", flush=True)
    print(f"  {'':<9} chat frames={r['frames']} ({r['delivered'] / max(r['frames'], 1):.1f} messages each) "
          f"cpu in the send phase: server={r['server_cpu_s']:.1f}s load clients={r['client_cpu_s']:.1f}s",
          flush=True)


def raise_limits(clients: int) -> None:
    """Open files (sockets) and processes: the load client and the servers it starts inherit these limits."""
    need = 2 * clients + 1024
    for name, limit in (("RLIMIT_NOFILE", need), ("RLIMIT_NPROC", 4096)):
        kind = getattr(resource, name)
        soft, hard = resource.getrlimit(kind)
        wanted = hard if hard == resource.RLIM_INFINITY else max(soft, min(hard, max(limit, soft)))
        if hard != resource.RLIM_INFINITY and hard < limit:
            print(f"warning: {name} hard limit {hard} is below the {limit} this run needs", flush=True)
        if soft != resource.RLIM_INFINITY and wanted > soft:
            resource.setrlimit(kind, (wanted, hard))


def _out_of_time(signum: int, frame: Any) -> None:
    raise TimeoutError("chat_load: time limit reached")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=130)
    parser.add_argument("--senders", type=int, default=10)
    parser.add_argument("--messages", type=int, default=100, help="messages per sender")
    parser.add_argument("--rate", type=float, default=20.0, help="messages per second per sender")
    parser.add_argument("--modes", default="eventlet,gevent")
    parser.add_argument("--procs", type=int, default=1, help="load client processes")
    parser.add_argument("--storm", action="store_true",
                        help="platform only: then close all and rejoin within 5 s with history (its CPU is counted)")
    parser.add_argument("--no-baseline", action="store_true")
    parser.add_argument("--smoke", action="store_true", help="few clients, few seconds (used by the test suite)")
    parser.add_argument("--time-limit", type=int, default=1200, help="seconds; the whole run stops after this")
    parser.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                        help="platform setting for the run, e.g. LIVE_GROUP_WINDOW=0.01 (repeatable)")
    args = parser.parse_args()
    settings = dict(item.split("=", 1) for item in args.set)
    if args.smoke:
        args.clients, args.senders, args.messages, args.rate = 12, 3, 10, 20.0
    if not 1 <= args.clients <= MAX_CLIENTS or not 0 <= args.senders <= args.clients:
        parser.error(f"1 <= clients <= {MAX_CLIENTS}, senders <= clients")
    raise_limits(args.clients)
    signal.signal(signal.SIGALRM, _out_of_time)
    signal.alarm(args.time_limit)  # servers are stopped in the `finally` blocks below; workers are daemons
    print(f"chat_load: {args.clients} clients in one room, {args.senders} senders x {args.messages} messages "
          f"at {args.rate:g}/s", flush=True)
    failures = 0
    for mode in args.modes.split(","):
        print(f"[{mode}]", flush=True)
        with tempfile.TemporaryDirectory(prefix="chat-load-") as tmp:
            process, port, tokens = start_platform(mode, args.clients, Path(tmp), settings)
            try:
                result = run_load(process.pid, port, list(tokens), args, storm=args.storm)
                print_row("platform", result)
                failures += result["lost"] + result["duplicates"] + result["refused"]
            finally:
                stop(process)
        if not args.no_baseline:
            process, port = start_baseline(mode)
            try:
                print_row("baseline", run_load(process.pid, port, [None] * args.clients, args))
            finally:
                stop(process)
    return 1 if failures else 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except TimeoutError as error:
        print(error, flush=True)
        sys.exit(2)
