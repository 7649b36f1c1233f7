"""The hostile-PDF benchmark in smoke mode: 8 files at once against a real server, every goal met."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

PROJECT_ROOT = Path(__file__).resolve().parent.parent.parent


@pytest.mark.server
@pytest.mark.parametrize("mode", ["eventlet", "gevent"])
def test_jobs_bench_smoke_meets_goals(mode: str) -> None:
    result = subprocess.run([sys.executable, "bench/jobs_bench.py", "--smoke", "--mode", mode], cwd=PROJECT_ROOT,
                            capture_output=True, text=True, timeout=600, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "uploads: {201: 8}" in result.stdout  # active content is cleaned, not refused
    assert "'failed': 1" in result.stdout and "content_bomb    {'failed': 1}" in result.stdout  # killed by its limit
    assert "MISSED" not in result.stdout
