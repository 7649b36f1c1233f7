"""bench/scaleout_bench.py --smoke runs the whole setup (1 and 2 workers) and loses nothing."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.server, pytest.mark.postgres, pytest.mark.redis]


def test_scaleout_bench_smoke(postgres_url: str, redis_url: str) -> None:
    result = subprocess.run([sys.executable, str(ROOT / "bench" / "scaleout_bench.py"), "--smoke",
                             "--postgres", postgres_url, "--redis", redis_url],
                            capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    rows = re.findall(r"workers=(\d) connected=(\d+)/(\d+).*lost=(\d+) dup=(\d+) refused=(\d+)", result.stdout)
    assert [(w, c, t, lost, refused) for w, c, t, lost, _dup, refused in rows] == [
        ("1", "200", "200", "0", "0"), ("2", "200", "200", "0", "0")]
    assert "ratio 2 vs 1 workers" in result.stdout
