"""The chat benchmark runs end to end in its smoke size and reports no loss against the real servers."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.server
def test_chat_load_smoke() -> None:
    result = subprocess.run([sys.executable, str(ROOT / "bench" / "chat_load.py"), "--smoke"], cwd=ROOT,
                            capture_output=True, text=True, timeout=240)
    assert result.returncode == 0, result.stdout + result.stderr
    platform_rows = [line for line in result.stdout.splitlines() if line.strip().startswith("platform")]
    baseline_rows = [line for line in result.stdout.splitlines() if line.strip().startswith("baseline")]
    assert len(platform_rows) == 2 and len(baseline_rows) == 2  # eventlet and gevent
    for row in platform_rows + baseline_rows:
        assert "delivered=360/360 lost=0 dup=0 refused=0" in row, row
