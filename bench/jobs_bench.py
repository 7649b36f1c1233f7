"""Hostile PDFs uploaded at once against a real `conference run`: memory, event-loop stalls, every preview's end.

    python bench/jobs_bench.py [--count 50] [--mode eventlet|gevent] [--workers 2] [--memory-mb 512] [--smoke]

Builds `count` PDFs made to hurt a renderer (tests/support/hostile_pdfs.py: huge pages, 20,000 pages, nesting
100,000 deep, a 60,000-pixel image, 400,000 paths, a content stream inflating to 768 MB, active content),
uploads them all at once as the demo organiser (one thread each), and waits until every deck's preview is
ready or failed. Meanwhile it samples the resident memory of the server and all its children from /proc every
20 ms, and reads the server's loop probe (CONFERENCE_LOOP_PROBE_FILE). Prints the figures; exits 1 when a goal
is missed: total memory under 2 GB, no loop stall over 100 ms that the server itself caused (lag minus time
spent waiting for a CPU), every upload answered 201 or a clean 4xx, every preview ready or failed.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

PROJECT_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT_ROOT))

import requests  # noqa: E402

from tests.support.archive_load import DEMO_SLUG, organiser_token  # noqa: E402 - the project root is on the path only now
from tests.support.hostile_pdfs import hostile_set  # noqa: E402
from tests.support.server import running_server  # noqa: E402

MEMORY_GOAL = 2 * 1024 ** 3
STALL_GOAL_MS = 100.0


def tree_rss(pid: int) -> tuple[int, int]:
    """Resident bytes of `pid` and all its descendants, and how many descendants there are."""
    total, count, stack = 0, -1, [pid]
    while stack:
        current = stack.pop()
        try:
            for line in Path(f"/proc/{current}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) * 1024
            count += 1
            for task in Path(f"/proc/{current}/task").iterdir():
                stack.extend(int(child) for child in (task / "children").read_text().split())
        except (FileNotFoundError, ProcessLookupError, ValueError):
            continue
    return total, count


class Sampler(threading.Thread):
    def __init__(self, pid: int, probe_file: Path) -> None:
        super().__init__(daemon=True)
        self.pid, self.probe_file = pid, probe_file
        self.peak_rss = self.peak_children = 0
        self.stalls: dict[float, dict[str, Any]] = {}
        self.stop = threading.Event()
        self.since = time.time()

    def run(self) -> None:
        last_read = 0.0
        while not self.stop.is_set():
            rss, count = tree_rss(self.pid)
            self.peak_rss, self.peak_children = max(self.peak_rss, rss), max(self.peak_children, count)
            if time.monotonic() - last_read > 0.2:
                self.read_probe()
                last_read = time.monotonic()
            time.sleep(0.02)
        self.read_probe()

    def read_probe(self) -> None:
        try:
            data = json.loads(self.probe_file.read_text())
        except (FileNotFoundError, ValueError):
            return
        for stall in data.get("stalls", []):
            if stall["at"] >= self.since:
                self.stalls[stall["at"]] = stall


def upload_all(url: str, token: str, sessions: list[int], files: list[tuple[str, bytes]]) -> list[dict[str, Any]]:
    results: list[dict[str, Any]] = [{} for _ in files]
    barrier = threading.Barrier(len(files))

    def one(index: int) -> None:
        kind, data = files[index]
        session_id = sessions[index % len(sessions)]
        barrier.wait()
        started = time.monotonic()
        try:
            response = requests.post(f"{url}/api/v1/sessions/{session_id}/presentations", timeout=600,
                                     headers={"Authorization": f"Bearer {token}"},
                                     files={"file": (f"{kind}-{index}.pdf", data, "application/pdf")})
            body = response.json() if response.headers.get("Content-Type", "").startswith("application/json") \
                else {}
            results[index] = {"kind": kind, "status": response.status_code, "body": body, "session": session_id,
                              "seconds": time.monotonic() - started}
        except requests.RequestException as error:
            results[index] = {"kind": kind, "status": 0, "error": str(error), "session": session_id,
                              "seconds": time.monotonic() - started}

    threads = [threading.Thread(target=one, args=(n,)) for n in range(len(files))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def wait_for_previews(url: str, token: str, results: list[dict[str, Any]], timeout: float) -> dict[int, str]:
    """Presentation id -> final preview state ("ready"/"failed"), or "pending" when the time ran out."""
    wanted = {r["body"]["id"]: r["session"] for r in results if r["status"] == 201}
    states: dict[int, str] = {}
    deadline = time.monotonic() + timeout
    while True:
        for session_id in sorted(set(wanted.values())):
            decks = requests.get(f"{url}/api/v1/sessions/{session_id}/presentations", timeout=30,
                                 headers={"Authorization": f"Bearer {token}"}).json()["presentations"]
            states.update({deck["id"]: deck["thumbnail"] for deck in decks if deck["id"] in wanted})
        if all(states.get(i) in ("ready", "failed") for i in wanted) or time.monotonic() > deadline:
            return states
        time.sleep(0.5)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=50)
    parser.add_argument("--mode", default="eventlet", choices=["eventlet", "gevent"])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--memory-mb", type=int, default=512)
    parser.add_argument("--smoke", action="store_true", help="8 files (the test suite's run)")
    args = parser.parse_args()
    count = 8 if args.smoke else args.count
    built = time.monotonic()
    files = hostile_set(count)
    print(f"built {count} hostile PDFs ({sum(len(d) for _k, d in files) / 1e6:.1f} MB) in "
          f"{time.monotonic() - built:.1f} s: {dict(Counter(kind for kind, _d in files))}", flush=True)
    with tempfile.TemporaryDirectory(prefix="jobs-bench-") as temp:
        probe_file = Path(temp) / "loop.json"
        with running_server(Path(temp) / "instance", args.mode, demo_attendees=5,
                            CONFERENCE_LOOP_PROBE_FILE=str(probe_file), CONFERENCE_LOOP_PROBE_STALL_MS="20",
                            CONFERENCE_LOOP_PROBE_STACKS="1",
                            CONFERENCE_JOB_WORKERS=str(args.workers),
                            CONFERENCE_JOB_MEMORY_MB=str(args.memory_mb)) as server:
            token = organiser_token(server)
            sessions = [s["id"] for s in requests.get(f"{server.url}/api/v1/events/{DEMO_SLUG}/sessions",
                                                      timeout=30).json()["sessions"]
                        if s["kind"] != "break" and not s["cancelled"]]
            idle_rss, _ = tree_rss(server.process.pid)
            sampler = Sampler(server.process.pid, probe_file)
            sampler.start()
            started = time.monotonic()
            results = upload_all(server.url, token, sessions, files)
            uploaded = time.monotonic() - started
            states = wait_for_previews(server.url, token, results, timeout=900)
            finished = time.monotonic() - started
            sampler.stop.set()
            sampler.join(10)
            health = requests.get(f"{server.url}/healthz", timeout=10).status_code
    statuses = Counter(r["status"] for r in results)
    refusals = Counter(r["body"].get("error", "?") for r in results if 400 <= r["status"] < 500)
    outcome = Counter(states.values())
    by_kind: dict[str, Counter[str]] = {}
    for r in results:
        final = states.get(r["body"]["id"], "?") if r["status"] == 201 else f"refused:{r['body'].get('error')}"
        by_kind.setdefault(r["kind"], Counter())[final] += 1
    stalls = list(sampler.stalls.values())
    worst = max(stalls, key=lambda s: s["lag_ms"], default=None)
    held = max((s["lag_ms"] - s["wait_ms"] for s in stalls), default=0.0)
    print(f"mode {args.mode}, JOB_WORKERS {args.workers}, JOB_MEMORY_MB {args.memory_mb} "
          f"(budget {args.workers * args.memory_mb} MB of address space for children)")
    print(f"uploads: {dict(statuses)} in {uploaded:.1f} s (slowest answer "
          f"{max(r['seconds'] for r in results):.1f} s); refusals: {dict(refusals)}")
    print(f"previews: {dict(outcome)}; all settled after {finished:.1f} s")
    for kind, counts in sorted(by_kind.items()):
        print(f"  {kind:15} {dict(counts)}")
    print(f"memory: server idle {idle_rss / 1e6:.0f} MB, peak server + children {sampler.peak_rss / 1e6:.0f} MB, "
          f"peak children at once {sampler.peak_children}")
    print(f"event loop: {len(stalls)} stalls >= 20 ms; longest {worst['lag_ms'] if worst else 0:.1f} ms "
          f"(cpu {worst['cpu_ms'] if worst else 0:.1f}, waiting for a CPU {worst['wait_ms'] if worst else 0:.1f}); "
          f"longest held by the server (lag - wait) {held:.1f} ms")
    if worst:
        print(f"  longest stall during: {worst['requests'][:3]}")
        for line in worst.get("code", [])[:8]:
            print(f"    {line}")
    print(f"/healthz after the flood: {health}")
    clean = all(r["status"] == 201 or (400 <= r["status"] < 500 and r["body"].get("error")) for r in results)
    goals = {
        "memory under 2 GB": sampler.peak_rss < MEMORY_GOAL,
        "no stall over 100 ms held by the server": held < STALL_GOAL_MS,
        "every upload 201 or a clean 4xx": clean,
        "every preview ready or failed": all(state in ("ready", "failed") for state in states.values()),
        "server healthy": health == 200,
    }
    for goal, met in goals.items():
        print(f"  {'met ' if met else 'MISSED'} {goal}")
    return 0 if all(goals.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
