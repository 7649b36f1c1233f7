"""Start the real `conference` server process for integration tests, and stop it again."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent.parent
# tests.support.seams_away acts only when TEST_SEAMS_AWAY is set (the seam fallback tests)
CONFERENCE = [sys.executable, "-c", "import tests.support.seams_away; from conference.entry import main; main()"]


def free_port(count: int = 1) -> int:
    """A free port, or the first of `count` consecutive free ports."""
    for _ in range(100):
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            first = int(sock.getsockname()[1])
        if count == 1 or all(_port_free(first + i) for i in range(1, count)):
            return first
    raise RuntimeError("no free consecutive ports")


def _port_free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


@dataclass
class RunningServer:
    url: str
    process: subprocess.Popen[bytes]
    instance: Path
    env: dict[str, str]
    log: Path
    ports: list[int]
    tokens: list[str]

    def worker_url(self, index: int) -> str:
        return f"http://127.0.0.1:{self.ports[index]}"

    def worker_pid(self, index: int) -> int:
        """The pid of the worker process on `ports[index]` (a child of the supervisor when workers > 1)."""
        if len(self.ports) == 1:
            return self.process.pid
        port = str(self.ports[index])
        children = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children").read_text().split()
        for child in children:
            args = Path(f"/proc/{child}/cmdline").read_bytes().split(b"\0")
            if b"--port" in args and args[args.index(b"--port") + 1].decode() == port:
                return int(child)
        raise LookupError(f"no worker on port {port}")


def server_env(instance: Path, async_mode: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONFERENCE_")}
    # Development mode: `conference run` starts without EXTERNAL_URL (mail links point at the local address).
    env.update({"CONFERENCE_INSTANCE_PATH": str(instance), "CONFERENCE_ASYNC_MODE": async_mode,
                "CONFERENCE_DEVELOPMENT": "1", "PYTHONWARNINGS": "ignore", **extra})
    return env


def run_cli(args: list[str], env: dict[str, str], timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CONFERENCE, *args], env=env, cwd=PROJECT_ROOT, capture_output=True, text=True,
                          timeout=timeout, check=True)


def wait_until_up(url: str, process: subprocess.Popen[bytes], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}")
        try:
            with urllib.request.urlopen(f"{url}/healthz", timeout=2) as response:  # noqa: S310 - loopback
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            time.sleep(0.1)
    raise TimeoutError(f"server at {url} did not come up in {timeout}s")


@contextmanager
def running_server(instance: Path, async_mode: str = "eventlet", *, demo_attendees: int | None = 130,
                   workers: int = 1, tokens: bool = False, **extra_env: str) -> Iterator[RunningServer]:
    """Load the demo (unless None; with attendee API tokens if `tokens`), start `conference run` on a free
    port, yield, then stop it."""
    env = server_env(instance, async_mode, **extra_env)
    instance.mkdir(parents=True, exist_ok=True)
    token_list: list[str] = []
    if demo_attendees is not None:
        token_args = ["--token-file", str(instance / "tokens.txt")] if tokens else []
        run_cli(["demo", "--attendees", str(demo_attendees), *token_args], env)
        if tokens:
            token_list = (instance / "tokens.txt").read_text().split()
    port = free_port(workers)
    log = instance / f"server-{port}.log"
    with log.open("wb") as log_file:
        process = subprocess.Popen([*CONFERENCE, "run", "--host", "127.0.0.1", "--port", str(port),
                                    "--workers", str(workers)], env=env,
                                   cwd=PROJECT_ROOT, stdout=log_file, stderr=subprocess.STDOUT)
    ports = [port + i for i in range(workers)]
    url = f"http://127.0.0.1:{port}"
    try:
        for worker_port in ports:
            wait_until_up(f"http://127.0.0.1:{worker_port}", process)
        yield RunningServer(url, process, instance, env, log, ports, token_list)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
