"""The agenda benchmark runs end to end against the real server (smoke mode, a few seconds)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

PROJECT_ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.server
def test_agenda_bench_smoke() -> None:
    result = subprocess.run([sys.executable, str(PROJECT_ROOT / "bench" / "agenda_bench.py"), "--smoke"],
                            capture_output=True, text=True, timeout=240, cwd=PROJECT_ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    for page in ("day grid", "session page", "schedule.xml", "sessions API"):
        assert any(line.startswith(page) for line in lines), result.stdout
    assert "FAIL" not in result.stdout
