"""Schemathesis against a real `conference run` with the demo: every check, a fixed seed, with and without an
organiser API token; zero failures. `make fuzz` runs the same with many more examples (FUZZ_EXAMPLES)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.archive_load import organiser_token
from tests.support.server import running_server

pytestmark = pytest.mark.server
CONFIG = Path(__file__).with_name("schemathesis.toml")
EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "5"))
SEED = int(os.environ.get("FUZZ_SEED", "20271"))


def _schemathesis(url: str, report: Path, *extra: str) -> tuple[int, dict, str]:
    command = [str(Path(sys.executable).with_name("st")), "--config-file", str(CONFIG), "run",
               f"{url}/api/v1/openapi.json", "--checks", "all", "--seed", str(SEED), "--max-examples", str(EXAMPLES),
               "--workers", "1", "--report", "ndjson", "--report-ndjson-path", str(report), *extra]
    done = subprocess.run(command, capture_output=True, text=True, timeout=900, check=False)
    summary = done.stdout[done.stdout.rfind("SUMMARY"):]
    return done.returncode, {"report": report}, summary or done.stdout[-3000:] + done.stderr[-2000:]


def _cases(summary: str) -> int:
    found = re.search(r"(\d+) generated", summary)
    assert found is not None, summary
    return int(found.group(1))


def test_schemathesis_finds_nothing_with_and_without_token(tmp_path: Path) -> None:
    with running_server(tmp_path / "instance", demo_attendees=5) as server:
        token = organiser_token(server)
        code, _report, anonymous = _schemathesis(server.url, tmp_path / "anonymous.ndjson")
        print(f"\nwithout token: {anonymous}")
        assert code == 0, anonymous
        # With the token every operation runs as an organiser; revoking tokens is left out, since the fuzzer
        # would revoke its own token and the rest of the run would test 401s only (the anonymous run covers it).
        code, _report, organiser = _schemathesis(server.url, tmp_path / "organiser.ndjson",
                                                 "--header", f"Authorization: Bearer {token}",
                                                 "--exclude-path", "/api/v1/auth/tokens/{token_id}")
        print(f"with organiser token: {organiser}")
        assert code == 0, organiser
        print(json.dumps({"cases_without_token": _cases(anonymous), "cases_with_token": _cases(organiser),
                          "failures": 0}))
        assert _cases(anonymous) > 200 and _cases(organiser) > 200
