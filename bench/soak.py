"""Soak benchmark: a conference day compressed into `--minutes`, against a real `conference run`.

Clients (the light raw client, several load processes) sit in the lobby and 20 session rooms. Half of them
stay for the whole run and are the ones checked for every message ("listeners"); the others come and go all
the time (10 % of everyone per minute: close, reconnect, join with history), one sender per room chats at a
realistic rate, and the third minute of every window is an "applause" minute (five times the chat, ten times
the reactions). Beside it: Q&A questions and votes, reactions, agenda page views and slide downloads over
HTTP, and one agenda release (with a changed session) in the middle.

Per window (`--window` minutes, default 5) it prints: messages sent, deliveries expected/delivered, lost,
duplicated, p50/p99/max send-to-receive latency, the longest event-loop stall (the server's own loop probe,
`CONFERENCE_LOOP_PROBE_FILE`, one file per worker), the workers' RSS, open files and database connections.
At the end the goals are checked (0 lost, 0 duplicated, max latency < 1 s and p99 < 100 ms in every window,
no stall over 100 ms, RSS growth < 5 % from minute 5 to the end, files and connections flat); the exit
status is 1 if one is missed (`--smoke`: only lost and duplicated count, it is too short for the rest).

    python bench/soak.py --smoke                                   # 1 minute, 200 clients (part of make test)
    python bench/soak.py --minutes 30 --clients 2000               # eventlet, SQLite, one process
    python bench/soak.py --minutes 30 --clients 2000 --mode gevent
    python bench/soak.py --minutes 30 --clients 2000 --workers 2   # PostgreSQL + Redis (private instances)

Only 127.0.0.1; bounded in clients (<= 6,000) and time (`--minutes` + setup; an alarm ends it).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import os
import random
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from chat_load import freeze_client_heap, rss_kb  # noqa: E402 - beside this file
from raw_socketio import RawSocketIOClient  # noqa: E402
from scaleout_bench import _session_ids, free_ports, raise_nofile, stop, wait_healthy, worker_pids  # noqa: E402

SLUG = "digitalkonferenz-2027"
LOBBY = f"lobby:{SLUG}"
MAX_CLIENTS = 6_000
SHOW_WORST_STALLS = 8  # the longest stalls listed with the code sampled while they lasted
CONFERENCE = str(Path(sys.executable).parent / "conference")
MARK = re.compile(rb"b\|(\d+)\|(\d+)\|([\d.]+)")
QUESTION_ID = re.compile(rb'"question":\{"id":(\d+)')


class SoakClient(RawSocketIOClient):
    """Listeners note every marked chat message once (latency by send time); others only read."""

    def __init__(self, token: str, record: dict[str, Any] | None) -> None:
        super().__init__(token)
        self.record = record
        self.seen: set[tuple[int, int]] = set()

    def on_event(self, packet: bytes) -> None:
        if self.record is None:
            return
        now = time.time()
        for sender, seq, sent in MARK.findall(packet):
            key = (int(sender), int(seq))
            if key in self.seen:
                self.record["duplicates"] += 1
                continue
            self.seen.add(key)
            self.record["deliveries"].append((float(sent), now - float(sent)))


async def connect(port: int, token: str, room: str, record: dict[str, Any] | None,
                  history: bool = False) -> SoakClient | None:
    loop = asyncio.get_running_loop()
    try:
        _transport, client = await loop.create_connection(lambda: SoakClient(token, record), "127.0.0.1", port)
        if not await asyncio.wait_for(client.connected, 30):
            return None
        ack = await asyncio.wait_for(client.send_call("join", {"room": room}), 60)
        if b'"ok":true' not in ack:
            client.close()
            return None
        if history:
            await asyncio.wait_for(client.send_call("chat:history", {"room": room, "after_id": 0}), 60)
        return client
    except (OSError, RuntimeError, TimeoutError, ConnectionError):
        return None


async def http_get(port: int, path: str, headers: str = "") -> int:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n{headers}\r\n".encode())
    await writer.drain()
    status_line = await reader.readline()
    while await reader.read(65536):
        pass
    writer.close()
    return int(status_line.split()[1]) if status_line else 0


def load_proc(conn: Any, plan: list[dict[str, Any]], options: dict[str, Any]) -> None:
    asyncio.run(_load_proc(conn, plan, options))


async def _load_proc(conn: Any, plan: list[dict[str, Any]], options: dict[str, Any]) -> None:
    loop = asyncio.get_running_loop()
    record: dict[str, Any] = {"deliveries": [], "duplicates": 0, "sends": [], "refused": 0, "churned": 0,
                              "churn_failed": 0, "questions": 0, "votes": 0, "reactions": 0, "http": 0,
                              "http_failed": 0, "listeners_lost": 0}
    semaphore = asyncio.Semaphore(100)

    async def first(entry: dict[str, Any]) -> SoakClient | None:
        async with semaphore:
            return await connect(entry["port"], entry["token"], entry["room"],
                                 record if entry["kind"] == "listener" else None)

    clients: list[SoakClient | None] = list(await asyncio.gather(*(first(e) for e in plan)))
    freeze_client_heap()
    conn.send(("ready", sum(c is not None for c in clients)))
    command, start_at = await loop.run_in_executor(None, conn.recv)
    await asyncio.sleep(max(0.0, start_at - time.time()))
    end_at = start_at + options["seconds"]
    window = options["window"]
    rng = random.Random(options["seed"])

    def burst(now: float) -> bool:
        return int((now - start_at) // (window / 5)) % 5 == 2  # the third fifth of every window

    async def sender(entry: dict[str, Any], client: SoakClient) -> None:
        seq = 0
        while (now := time.time()) < end_at:
            rate = entry["rate"] * (5 if burst(now) else 1)
            await asyncio.sleep(rng.expovariate(rate))
            sent = time.time()
            if sent >= end_at:
                break
            text = f"b|{entry['sender']}|{seq}|{sent:.6f}"
            seq += 1
            try:
                ack = await asyncio.wait_for(client.send_call("chat:send", {
                    "room": entry["room"], "text": text, "client_id": f"soak-{entry['sender']}-{seq}"}), 30)
            except (TimeoutError, ConnectionError):
                record["refused"] += 1
                continue
            if b'"ok":true' in ack:
                record["sends"].append((entry["room"], sent))
            else:
                record["refused"] += 1

    churners = [i for i, e in enumerate(plan) if e["kind"] == "churner"]

    async def churn() -> None:
        """`churn` of all clients per minute leave and come back (taken from the churners)."""
        per_second = options["churn"] * len(plan) / 60
        owed = 0.0
        while time.time() < end_at:
            await asyncio.sleep(1.0)
            owed += per_second
            batch, owed = int(owed), owed - int(owed)
            for i in rng.sample(churners, min(batch, len(churners))):
                old = clients[i]
                if old is not None:
                    old.close()
                clients[i] = await connect(plan[i]["port"], plan[i]["token"], plan[i]["room"], None, history=True)
                record["churned" if clients[i] is not None else "churn_failed"] += 1

    async def questions_and_votes() -> None:
        asked: list[tuple[int, int]] = []  # (question id, plan index of a client in its room)
        tick = 0
        while time.time() < end_at:
            await asyncio.sleep(0.5)
            tick += 1
            voters = [i for i in churners if clients[i] is not None and plan[i]["room"].startswith("session:")]
            if not voters:
                continue
            if tick % 20 == 0:
                i = rng.choice(voters)
                try:
                    ack = await asyncio.wait_for(clients[i].send_call("qa:ask", {  # type: ignore[union-attr]
                        "room": plan[i]["room"], "text": f"Frage {tick} aus dem Soak-Test?",
                        "client_id": f"q-{os.getpid()}-{tick}"}), 30)
                    found = QUESTION_ID.search(ack)
                    if found:
                        asked.append((int(found.group(1)), i))
                        record["questions"] += 1
                except (TimeoutError, ConnectionError):
                    pass
            if asked:
                question_id, asker = rng.choice(asked)
                same_room = [i for i in voters if plan[i]["room"] == plan[asker]["room"]]
                i = rng.choice(same_room or voters)
                try:
                    ack = await asyncio.wait_for(clients[i].send_call(  # type: ignore[union-attr]
                        "qa:vote", {"question_id": question_id}), 30)
                    record["votes"] += b'"ok":true' in ack
                except (TimeoutError, ConnectionError):
                    pass

    async def reactions() -> None:
        while time.time() < end_at:
            now = time.time()
            await asyncio.sleep(0.05 if burst(now) else 0.5)
            present = [i for i, c in enumerate(clients)
                       if c is not None and not c.lost.is_set() and plan[i]["kind"] == "churner"]
            if present:
                i = rng.choice(present)
                try:
                    future = clients[i].send_call("react", {  # type: ignore[union-attr]
                        "room": plan[i]["room"], "reaction": rng.choice(["applause", "heart", "thumbs_up"])})
                except ConnectionError:
                    continue
                future.add_done_callback(lambda f: f.cancelled() or f.exception())  # a closed client's ack
                record["reactions"] += 1

    async def page_views() -> None:
        port = plan[0]["port"]
        tick = 0
        while time.time() < end_at:
            await asyncio.sleep(1.0)
            tick += 1
            path = f"/events/{SLUG}/agenda" if tick % 5 else f"/events/{SLUG}/presentations/archive.zip"
            try:
                status = await asyncio.wait_for(http_get(port, path, "Range: bytes=0-262143\r\n"), 30)
                record["http" if status in (200, 206) else "http_failed"] += 1
            except (OSError, TimeoutError):
                record["http_failed"] += 1

    tasks = [sender(e, c) for e, c in zip(plan, clients, strict=True) if e["kind"] == "sender" and c is not None]
    await asyncio.gather(*tasks, churn(), questions_and_votes(), reactions(), page_views())
    await asyncio.sleep(options["drain"])
    record["listeners_lost"] = sum(1 for e, c in zip(plan, clients, strict=True)
                                   if e["kind"] == "listener" and (c is None or c.lost.is_set()))
    for client in clients:
        if client is not None:
            client.close()
    conn.send(("done", record))


# --- the server side ------------------------------------------------------------------------------------

class ServerSampler:
    """Every 2 s: the workers' RSS, open files, database connections and loop-probe stalls."""

    def __init__(self, pids: list[int], probe_dir: Path, database: str) -> None:
        self.pids, self.probe_dir, self.database = pids, probe_dir, database
        self.samples: list[tuple[float, int, int, int]] = []  # (time, rss kB, files, db connections)
        self.stalls: dict[tuple[int, float], tuple[float, float]] = {}  # (pid, at) -> (lag, lag minus CPU wait) ms
        self.stall_code: dict[tuple[int, float], list[str]] = {}  # (pid, at) -> where the loop was sampled
        self.max_lag: dict[int, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)
        self.sample()

    def _run(self) -> None:
        while not self._stop.wait(2.0):
            self.sample()

    def sample(self) -> None:
        self.pids = [pid for pid in self.pids if os.path.exists(f"/proc/{pid}")]
        rss = sum(rss_kb(pid) for pid in self.pids)
        files = sum(len(os.listdir(f"/proc/{pid}/fd")) for pid in self.pids)
        self.samples.append((time.time(), rss, files, self.db_connections()))
        for path in self.probe_dir.glob("probe-*.json"):
            try:
                figures = json.loads(path.read_text())
            except (OSError, ValueError):
                continue
            pid = int(figures["pid"])
            self.max_lag[pid] = float(figures["max_lag_ms"])
            for stall in figures["stalls"]:
                lag = float(stall["lag_ms"])
                self.stalls[(pid, float(stall["at"]))] = (lag, lag - float(stall["wait_ms"]))
                self.stall_code[(pid, float(stall["at"]))] = stall.get("code", [])

    def db_connections(self) -> int:
        if self.database.startswith("postgresql"):
            import psycopg2

            name = self.database.rsplit("/", 1)[1]
            connection = psycopg2.connect(self.database.replace("+psycopg2", "").replace("+psycopg", ""))
            try:
                with connection.cursor() as cursor:
                    cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = %s", (name,))
                    return int(cursor.fetchone()[0]) - 1  # not this one
            finally:
                connection.close()
        count = 0
        for pid in self.pids:
            for fd in os.listdir(f"/proc/{pid}/fd"):
                try:
                    if os.readlink(f"/proc/{pid}/fd/{fd}").endswith(".sqlite3"):
                        count += 1
                except OSError:
                    pass
        return count


def release_agenda(port: int) -> str:
    """Change one session's title and publish a release, as an organiser would in the middle of the day."""
    import requests

    base = f"http://127.0.0.1:{port}"
    token = requests.post(f"{base}/api/v1/auth/token", json={"email": "orga@demo.invalid",
                                                            "password": "demo-passwort-2027"}, timeout=30)
    token.raise_for_status()
    headers = {"Authorization": f"Bearer {token.json()['token']}"}
    sessions = requests.get(f"{base}/api/v1/events/{SLUG}/sessions?state=working", headers=headers, timeout=30)
    sessions.raise_for_status()
    first = sessions.json()["sessions"][0]
    changed = requests.patch(f"{base}/api/v1/events/{SLUG}/sessions/{first['id']}", headers=headers, timeout=30,
                             json={"title": first["title"].rstrip(" *") + " *"})
    changed.raise_for_status()
    release = requests.post(f"{base}/api/v1/events/{SLUG}/releases", headers=headers, timeout=30,
                            json={"name": "Soak-Test"})
    return f"{release.status_code}"


def plan_clients(tokens: list[str], rooms: list[str], ports: list[int], args: argparse.Namespace) -> list[dict]:
    """Half the lobby-heavy crowd are listeners, the rest churners; one sender per room."""
    plan: list[dict[str, Any]] = []
    for index, room in enumerate(rooms):
        plan.append({"token": tokens[index], "room": room, "kind": "sender", "sender": index,
                     "rate": args.lobby_rate if room == LOBBY else args.room_rate})
    for i, token in enumerate(tokens[len(rooms):args.clients]):
        room = LOBBY if i % 2 == 0 else rooms[1 + (i // 2) % (len(rooms) - 1)]
        plan.append({"token": token, "room": room, "kind": "listener" if (i // 2) % 2 == 0 else "churner"})
    for i, entry in enumerate(plan):
        entry["port"] = ports[i % len(ports)]
    return plan


def percentile(values: list[float], p: float) -> float:
    return values[min(len(values) - 1, int(p * len(values)))] * 1000 if values else float("nan")


def report(records: list[dict[str, Any]], plan: list[dict[str, Any]], sampler: ServerSampler, start: float,
           args: argparse.Namespace) -> list[dict[str, Any]]:
    listeners: dict[str, int] = {}
    for entry in plan:
        if entry["kind"] == "listener":
            listeners[entry["room"]] = listeners.get(entry["room"], 0) + 1
    window_s = args.window * 60
    count = max(1, int(round(args.minutes * 60 / window_s)))
    rows = []
    for w in range(count):
        begin, end = start + w * window_s, start + (w + 1) * window_s
        sends = [(room, t) for r in records for room, t in r["sends"] if begin <= t < end]
        expected = sum(listeners.get(room, 0) for room, _t in sends)
        latencies = sorted(lat for r in records for t, lat in r["deliveries"] if begin <= t < end)
        stalls = [lags for (_pid, at), lags in sampler.stalls.items() if begin <= at < end]
        samples = [s for s in sampler.samples if begin <= s[0] < end + 2] or sampler.samples[-1:]
        rows.append({"window": f"{w * args.window:g}-{(w + 1) * args.window:g} min", "sent": len(sends),
                     "expected": expected, "delivered": len(latencies), "lost": expected - len(latencies),
                     "p50": percentile(latencies, 0.5), "p99": percentile(latencies, 0.99),
                     "max": latencies[-1] * 1000 if latencies else float("nan"),
                     "stall": max((lag for lag, _own in stalls), default=0.0),
                     "own": max((own for _lag, own in stalls), default=0.0), "rss_mb": samples[-1][1] / 1024,
                     "files": samples[-1][2], "db": samples[-1][3]})
    duplicates = sum(r["duplicates"] for r in records)
    print(f"  {'window':>12} {'sent':>6} {'expected':>9} {'delivered':>9} {'lost':>5} {'p50 ms':>7} {'p99 ms':>7} "
          f"{'max ms':>7} {'stall ms':>8} {'own ms':>6} {'RSS MB':>7} {'files':>6} {'db conn':>7}")
    for row in rows:
        print(f"  {row['window']:>12} {row['sent']:>6} {row['expected']:>9} {row['delivered']:>9} {row['lost']:>5} "
              f"{row['p50']:>7.1f} {row['p99']:>7.1f} {row['max']:>7.1f} {row['stall']:>8.1f} {row['own']:>6.1f} "
              f"{row['rss_mb']:>7.1f} "
              f"{row['files']:>6} {row['db']:>7}")
    totals = {key: sum(r[key] for r in records) for key in ("refused", "churned", "churn_failed", "questions",
                                                             "votes", "reactions", "http", "http_failed",
                                                             "listeners_lost")}
    print("  (stall: the loop probe's longest lag; own: the part not spent waiting for a CPU, i.e. the server's "
          "own work holding the loop, the figure that matters on a busy machine)")
    print(f"  duplicated {duplicates}; " + ", ".join(f"{k} {v}" for k, v in totals.items()), flush=True)
    worst = sorted(sampler.stalls.items(), key=lambda item: item[1][1], reverse=True)[:SHOW_WORST_STALLS]
    if worst:
        print("  longest stalls of the server's own work (minute, lag/own ms, where the loop was sampled):")
    for (pid, at), (lag, own) in worst:
        code = "; ".join(sampler.stall_code.get((pid, at), [])) or "no samples"
        print(f"    {(at - start) / 60:5.1f}  {lag:6.1f}/{own:6.1f}  {code}")
    print("  each window's longest stall of the server's own work (lag/own ms, where the loop was sampled):")
    for w, row in enumerate(rows):
        begin, end = start + w * window_s, start + (w + 1) * window_s
        inside = [(key, lags) for key, lags in sampler.stalls.items() if begin <= key[1] < end]
        if inside:
            key, (lag, own) = max(inside, key=lambda item: item[1][1])
            code = "; ".join(sampler.stall_code.get(key, [])) or "no samples"
            print(f"    {row['window']:>12}  {lag:6.1f}/{own:6.1f}  {code}")
        else:
            print(f"    {row['window']:>12}  none over the probe's threshold")
    rows.append({"duplicates": duplicates, **totals})
    return rows


def judge(rows: list[dict[str, Any]], sampler: ServerSampler, start: float, args: argparse.Namespace) -> list[str]:
    windows, totals = rows[:-1], rows[-1]
    missed = []
    if sum(r["lost"] for r in windows) or totals["duplicates"] or totals["listeners_lost"]:
        missed.append("messages lost or duplicated, or listeners dropped")
    if args.smoke:
        return missed
    if any(r["max"] >= 1000 or r["p99"] >= 100 for r in windows):
        missed.append("latency (max < 1 s, p99 < 100 ms in every window)")
    if any(r["stall"] > 100 for r in windows):
        missed.append("event-loop stall over 100 ms")
    after_five = [s for s in sampler.samples if s[0] >= start + 300]
    if len(after_five) >= 2:
        growth = (after_five[-1][1] - after_five[0][1]) / after_five[0][1]
        print(f"  RSS growth from minute 5 to the end: {growth * 100:.1f} %")
        if growth >= 0.05:
            missed.append("RSS growth >= 5 %")
        if after_five[-1][2] > after_five[0][2] * 1.05 + 10 or after_five[-1][3] > after_five[0][3] + 2:
            missed.append("open files or database connections grew")
    return missed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=30.0)
    parser.add_argument("--window", type=float, default=5.0, help="minutes per reported window")
    parser.add_argument("--clients", type=int, default=2_000)
    parser.add_argument("--rooms", type=int, default=20, help="session rooms beside the lobby")
    parser.add_argument("--lobby-rate", type=float, default=1.0, help="chat messages per second in the lobby")
    parser.add_argument("--room-rate", type=float, default=0.2, help="chat messages per second per session room")
    parser.add_argument("--churn", type=float, default=0.10, help="share of all clients leaving per minute")
    parser.add_argument("--mode", default="eventlet", choices=["eventlet", "gevent"])
    parser.add_argument("--workers", type=int, default=1, help="2 or more: PostgreSQL + Redis (private)")
    parser.add_argument("--procs", type=int, default=2, help="load client processes")
    parser.add_argument("--drain", type=float, default=5.0)
    parser.add_argument("--seed", type=int, default=2027)
    parser.add_argument("--smoke", action="store_true", help="1 minute, 200 clients, 5 rooms")
    args = parser.parse_args()
    if args.smoke:
        args.minutes, args.window, args.clients, args.rooms, args.drain = 1.0, 0.5, 200, 5, 3.0
    if not 50 <= args.clients <= MAX_CLIENTS or not 0 < args.minutes <= 240:
        parser.error(f"50 <= clients <= {MAX_CLIENTS}, 0 < minutes <= 240")
    signal.alarm(int(args.minutes * 60 + 900))  # setup and drain included; SIGALRM ends the run
    limit = raise_nofile()
    load = os.getloadavg()
    print(f"soak: {args.clients} clients, {args.minutes:g} min, {args.mode}, {args.workers} worker(s), "
          f"{'PostgreSQL + Redis' if args.workers > 1 else 'SQLite'}, churn {args.churn * 100:g} %/min, "
          f"load average before {load[0]:.2f}, RLIMIT_NOFILE {limit}", flush=True)
    with ExitStack() as stack:
        workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="soak-")))
        env = {k: v for k, v in os.environ.items() if not k.startswith("CONFERENCE_")}
        env.update({"CONFERENCE_INSTANCE_PATH": str(workdir / "instance"), "CONFERENCE_ASYNC_MODE": args.mode,
                    "CONFERENCE_LIVE_CHAT_RATE_LIMIT": "100000/10", "CONFERENCE_LIVE_JOIN_RATE_LIMIT": "1000/10",
                    "CONFERENCE_LIVE_ACTION_RATE_LIMIT": "100000/10",
                    "CONFERENCE_LOOP_PROBE_FILE": str(workdir / "probe-{pid}.json"),
                    "CONFERENCE_LOOP_PROBE_STACKS": "1",
                    "CONFERENCE_DEVELOPMENT": "1", "PYTHONWARNINGS": "ignore"})
        database = "sqlite"
        if args.workers > 1:
            from tests.support.private import private_postgres, private_redis

            database = stack.enter_context(private_postgres()).url
            env["CONFERENCE_DATABASE_URL"] = database
            env["CONFERENCE_MESSAGE_QUEUE"] = stack.enter_context(private_redis(workdir / "redis")).url
        token_file = workdir / "tokens.txt"
        subprocess.run([CONFERENCE, "demo", "--attendees", str(args.clients), "--token-file", str(token_file)],
                       env=env, check=True, capture_output=True, cwd=ROOT, timeout=1200)
        tokens = token_file.read_text().split()
        rooms = [LOBBY] + [f"session:{i}" for i in _session_ids(env)[:args.rooms]]
        port = free_ports(args.workers)
        log = (workdir / "server.log").open("wb")
        server = subprocess.Popen([CONFERENCE, "run", "--host", "127.0.0.1", "--port", str(port), "--workers",
                                   str(args.workers)], env=env, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT)
        stack.callback(stop, server)
        ports = [port + i for i in range(args.workers)]
        for worker_port in ports:
            wait_healthy(worker_port)
        plan = plan_clients(tokens, rooms, ports, args)
        ctx = mp.get_context("fork")
        pipes, children = [], []
        options = {"seconds": args.minutes * 60, "window": args.window * 60, "churn": args.churn,
                   "drain": args.drain}
        for index in range(args.procs):
            parent, child = ctx.Pipe()
            process = ctx.Process(target=load_proc, args=(child, plan[index::args.procs],
                                                          {**options, "seed": args.seed + index}))
            process.start()
            pipes.append(parent)
            children.append(process)
        connected = sum(p.recv()[1] for p in pipes)
        print(f"  connected {connected}/{len(plan)}", flush=True)
        sampler = ServerSampler(worker_pids(server.pid), workdir, database)
        sampler.sample()
        sampler.start()
        start = time.time() + 1.0
        for parent in pipes:
            parent.send(("start", start))
        time.sleep(max(0.0, start + args.minutes * 30 - time.time()))
        print(f"  agenda release in the middle: HTTP {release_agenda(ports[0])}", flush=True)
        records = [p.recv()[1] for p in pipes]
        for process in children:
            process.join(timeout=30)
        sampler.stop()
        rows = report(records, plan, sampler, start, args)
        print(f"  longest loop stall over the run: {max(sampler.max_lag.values(), default=0):.1f} ms; "
              f"load average after {os.getloadavg()[0]:.2f}")
        missed = judge(rows, sampler, start, args)
        if connected < len(plan):
            missed.append("not every client connected")
    print("goals: " + ("all met" if not missed else "missed: " + "; ".join(missed)), flush=True)
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
