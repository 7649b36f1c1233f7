"""`make run` stays quiet: the demo prints its logins and nothing else, `conference run` one line, as on a fresh
machine (no alembic progress lines, no warnings; PYTHONWARNINGS as a user has it: unset)."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest

from tests.support.server import CONFERENCE, PROJECT_ROOT, free_port, wait_until_up

pytestmark = pytest.mark.server


def test_demo_and_run_print_only_the_logins_and_the_address(tmp_path: Path) -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONFERENCE_") and k != "PYTHONWARNINGS"}
    env.update({"CONFERENCE_INSTANCE_PATH": str(tmp_path / "instance"),
                "CONFERENCE_EXTERNAL_URL": f"http://127.0.0.1:{port}"})
    demo = subprocess.run([*CONFERENCE, "demo"], env=env, cwd=PROJECT_ROOT, capture_output=True, text=True,
                          timeout=180, check=True)
    lines = (demo.stdout + demo.stderr).splitlines()
    assert lines[0].startswith("Demo conference: ") and lines[1].startswith("Demo logins"), lines
    assert len(lines) == 6 and all("@demo.invalid" in line for line in lines[2:]), lines
    log = tmp_path / "run.log"
    with log.open("wb") as output:
        process = subprocess.Popen([*CONFERENCE, "run", "--port", str(port)], env=env, cwd=PROJECT_ROOT,
                                   stdout=output, stderr=subprocess.STDOUT)
    try:
        wait_until_up(f"http://127.0.0.1:{port}", process, timeout=60)
        time.sleep(0.5)
    finally:
        process.terminate()
        process.wait(timeout=10)
    assert log.read_text().splitlines() == [f"Serving on http://127.0.0.1:{port}/ (eventlet). Stop with Ctrl+C."]
