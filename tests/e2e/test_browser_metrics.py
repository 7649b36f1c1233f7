"""bench/browser_metrics.py runs end to end in smoke mode: real server, Chromium, figures within the goals."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import require_service
from tests.e2e.conftest import CHROMIUM

PROJECT_ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.browser


def test_browser_metrics_smoke() -> None:
    require_service("Chromium", Path(CHROMIUM).exists(), "Debian package chromium not installed")
    result = subprocess.run([sys.executable, str(PROJECT_ROOT / "bench" / "browser_metrics.py"), "--smoke", "--json"],
                            capture_output=True, text=True, timeout=240, cwd=PROJECT_ROOT)
    print(result.stdout)  # noqa: T201 - the figures are meant to be read
    figures = json.loads(result.stdout.splitlines()[-1])
    pages = {(r["page"], r["who"]): r for r in figures["results"]}
    assert set(pages) == {(page, who) for page in ("agenda", "session") for who in ("visitor", "attendee")}
    for row in pages.values():
        assert 0 < row["fcp"] <= row["load_end"] + 500, row
        assert row["dom_interactive"] <= row["interactive"] <= row["load_end"] + 1, row
        assert row["bytes"] < 200 * 1024, row  # the byte goal does not depend on the machine's load
        assert row["requests"] >= 3, row
    assert pages[("session", "attendee")]["live_connected"] is not None
    # Timing goals are reported (exit code 1 if missed); on a busy shared CI machine allow some slack here.
    assert all(row["interactive"] < 3000 for row in pages.values()), result.stdout
    assert result.returncode in (0, 1), result.stderr
