"""`conference run --workers N`: N single-process servers on consecutive ports, restarted when one dies."""

from __future__ import annotations

import logging
from typing import Any

log = logging.getLogger("conference.serving")


def supervise_workers(*, host: str, port: int, workers: int) -> int:
    """Run `workers` single-process servers on ports port..port+workers-1 and restart any that dies.

    The workers share state through the database and the Redis message queue; a reverse proxy in front
    spreads clients over the ports (see docs/deployment.md). Returns when interrupted (SIGTERM/SIGINT).
    """
    import signal
    import subprocess
    import sys
    import time

    command = [sys.executable, "-m", "conference.entry", "run", "--workers", "1", "--no-upgrade", "--host", host]
    processes: dict[int, subprocess.Popen[bytes]] = {}
    # One metrics directory for this run's workers, so that any of them answers /metrics for all (it must be
    # in the environment before prometheus-client is imported, hence set here for the children).
    import os
    import tempfile

    from conference.core.metrics import prepare_worker_directory, worker_exited

    metrics_dir = os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", tempfile.mkdtemp(prefix="conference-metrics-"))
    prepare_worker_directory(metrics_dir)
    stopping = False

    def start(worker_port: int) -> None:
        processes[worker_port] = subprocess.Popen([*command, "--port", str(worker_port)])
        log.info("worker on port %s started (pid %s)", worker_port, processes[worker_port].pid)

    def stop(signum: int, frame: Any) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    for offset in range(workers):
        start(port + offset)
    while not stopping:
        time.sleep(0.5)
        for worker_port, process in list(processes.items()):
            if process.poll() is not None and not stopping:
                log.warning("worker on port %s exited with %s; restarting", worker_port, process.returncode)
                worker_exited(process.pid)
                start(worker_port)
    for process in processes.values():
        process.terminate()
    for process in processes.values():
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
    return 0
