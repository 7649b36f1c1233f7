"""The soak benchmark's one-minute smoke run: every listener gets every message once, through churn, Q&A,
reactions, page views, slide downloads and an agenda release (the long runs are for the closing notes)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.server
@pytest.mark.timeout(600)
def test_soak_smoke_loses_nothing() -> None:
    result = subprocess.run([sys.executable, str(ROOT / "bench" / "soak.py"), "--smoke"], capture_output=True,
                            text=True, timeout=540, cwd=ROOT)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "goals: all met" in output
    windows = [line.split() for line in result.stdout.splitlines() if line.strip().endswith(tuple("0123456789"))
               and " min " in line]
    assert len(windows) == 2, output
    for row in windows:
        sent, expected, delivered, lost = (int(value) for value in row[2:6])
        assert sent > 0 and expected == delivered > 0 and lost == 0, output
    assert "agenda release in the middle: HTTP 201" in output
    assert "listeners_lost 0" in output and "duplicated 0" in output
