"""The published security figures: runs the adversarial suite (tests/security) and the dependency audit.

    python bench/evidence.py              # suite + audit, prints the figures (make evidence)
    python bench/evidence.py --audit-only # only the dependency audit (make audit)

The suite's tests count what they try into a JSON file (tests/security/conftest.py: `Evidence`); every
failure figure (goal 0) is also asserted by the test that counts it, so a non-zero figure comes with a failed
test. A goal nothing measured (its checks counter is 0, e.g. a test that did not run) shows "n/a" and counts
as missed. The resource figures (memory growth, loop stalls) are maxima over the hostile requests of
tests/security/test_resource_limits.py, each printed with the request that caused it.
Exit status: 0 when every goal is met, 1 when one is missed, 2 when the audit could not run at all.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent

GOALS = [  # (label, counter, goal, checks) - goal None: a size, not a failure figure. A goal whose `checks`
    # counter is 0 was not measured at all: it shows "n/a" and counts as missed, never as met.
    ("test cases run", "cases", None, None),
    ("  passed / failed / expected failures (open bugs, routed)", None, None, None),
    ("input variants tried", "variants", None, None),
    ("variants wrongly accepted", "wrongly_accepted", 0, "variants"),
    ("5xx responses", "server_errors", 0, "variants"),
    ("tracebacks in answers", "tracebacks", 0, "variants"),
    ("rows or files created by rejected requests", "rejected_writes", 0, "state_checks"),
    ("state snapshots compared (every table + upload folder)", "state_checks", None, None),
    ("authorization cells checked", "authz_cells", None, None),
    ("authorization: unexpected successes", "authz_unexpected", 0, "authz_cells"),
    ("browser pages checked with the canary", "browser_pages", None, None),
    ("canary executions", "canary_executions", 0, "browser_pages"),
    ("CSP violations attempted", "csp_violations", 0, "browser_pages"),
    ("fault drills run", "fault_drills", None, None),
    ("acknowledged messages in the drills", "acked_messages", None, None),
    ("acknowledged messages lost", "acked_lost", 0, "acked_messages"),
    ("acknowledged messages duplicated", "acked_duplicated", 0, "acked_messages"),
    ("draft checks (a unique unreleased title, every public read)", "draft_checks", None, None),
    ("drafts leaked", "drafts_leaked", 0, "draft_checks"),
    ("account takeover attempts", "takeover_attempts", None, None),
    ("accounts taken over", "accounts_taken_over", 0, "takeover_attempts"),
    ("correct logins tried (many people, one address)", "correct_logins", None, None),
    ("correct logins refused", "correct_logins_refused", 0, "correct_logins"),
    ("stream-link checks (members-only events, every reader)", "link_checks", None, None),
    ("stream links shown to non-members", "links_leaked", 0, "link_checks"),
    ("hostile requests measured: unauthenticated", "resource_checks_unauth", None, None),
    ("hostile requests measured: authenticated", "resource_checks_auth", None, None),
]

MAXIMA = [  # (label, maximum, unit, goal: below this, checks) - the largest value seen, with what caused it
    ("largest memory growth, one unauthenticated request", "max_rss_growth_unauth_kb", "MB", 5.0,
     "resource_checks_unauth"),
    ("largest memory growth, one authenticated request", "max_rss_growth_auth_kb", "MB", 20.0,
     "resource_checks_auth"),
    ("longest event-loop stall caused by one request", "max_loop_stall_ms", "ms", 100.0, "resource_checks_unauth"),
]


# --- dependency audit ------------------------------------------------------------------------------------


def dependency_audit() -> tuple[str, str]:
    """("clean" | "vulnerable" | "unavailable", detail). Never reports a result it did not get."""
    pip_audit = VENV_BIN / "pip-audit"
    if not pip_audit.exists():
        return "unavailable", "pip-audit is not installed (pip install -e '.[test]')"
    with tempfile.TemporaryDirectory() as work:
        requirements = Path(work) / "requirements.txt"
        frozen = subprocess.run([str(VENV_BIN / "python"), "-m", "pip", "freeze", "--exclude-editable"],
                                capture_output=True, text=True, check=True).stdout
        requirements.write_text(frozen)
        packages = len([line for line in frozen.splitlines() if line.strip() and not line.startswith("#")])
        reasons = []
        for service in ("osv", "pypi"):
            result = subprocess.run(
                [str(pip_audit), "--progress-spinner", "off", "--format", "json", "--no-deps", "--disable-pip",
                 "--requirement", str(requirements), "--vulnerability-service", service],
                capture_output=True, text=True, timeout=300, check=False)
            try:
                report = json.loads(result.stdout or "null")
            except ValueError:
                report = None
            if not isinstance(report, dict):
                host = re.search(r"host='([^']+)'", result.stderr)
                if host and ("NameResolutionError" in result.stderr or "ConnectionError" in result.stderr):
                    reasons.append(f"{service}: {host.group(1)} is not reachable (no DNS/route from this machine)")
                else:
                    last = (result.stderr.strip().splitlines() or ["no output"])[-1]
                    reasons.append(f"{service}: {last[:160]}")
                continue
            dependencies = report.get("dependencies", [])
            audited = [d for d in dependencies if "skip_reason" not in d]
            if not audited:
                reason = next((d["skip_reason"] for d in dependencies if "skip_reason" in d), "nothing audited")
                reasons.append(f"{service}: none of {len(dependencies)} packages could be looked up "
                               f"(e.g. {reason[:90]})")
                continue
            vulnerable = [f"{d['name']} {d['version']}: {', '.join(v['id'] for v in d['vulns'])}"
                          for d in audited if d.get("vulns")]
            skipped = len(dependencies) - len(audited)
            if vulnerable:
                return "vulnerable", f"{len(vulnerable)} of {len(audited)} packages ({service}): " + "; ".join(
                    vulnerable)
            return "clean", f"0 known vulnerabilities in {len(audited)} packages ({service}; {skipped} skipped)"
        return "unavailable", (f"NOT RUN - no vulnerability database reachable from this machine for the "
                               f"{packages} installed packages: " + " | ".join(reasons))


# --- the suite ---------------------------------------------------------------------------------------------


def run_suite(extra: list[str]) -> tuple[dict[str, Any], int, float]:
    with tempfile.TemporaryDirectory() as work:
        evidence_file = Path(work) / "evidence.json"
        env = {**os.environ, "CONFERENCE_EVIDENCE_FILE": str(evidence_file)}
        started = time.monotonic()
        result = subprocess.run([str(VENV_BIN / "python"), "-m", "pytest", "-q", "-p", "no:cacheprovider",
                                 "tests/security", *extra], cwd=ROOT, env=env, check=False,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        seconds = time.monotonic() - started
        tail = [line for line in result.stdout.splitlines() if line.strip()][-12:]
        print("\n".join(tail))  # noqa: T201 - the last lines of pytest (failures, summary)
        if not evidence_file.exists():
            return {"counts": {}, "failures": ["the suite wrote no evidence (did it start?)"]}, result.returncode, \
                seconds
        return json.loads(evidence_file.read_text()), result.returncode, seconds


def print_figures(evidence: dict[str, Any], returncode: int, seconds: float, audit: tuple[str, str]) -> bool:
    counts = evidence.get("counts", {})
    maxima = evidence.get("maxima", {})
    met = returncode == 0
    print(f"\nSecurity evidence ({time.strftime('%Y-%m-%d %H:%M')} UTC, suite {seconds:.0f} s)")  # noqa: T201
    print("-" * 78)  # noqa: T201
    for label, counter, goal, checks in GOALS:
        if counter is None:
            value = (f"{counts.get('outcome_passed', 0)} / {counts.get('outcome_failed', 0)} / "
                     f"{counts.get('outcome_xfailed', 0)}")
            print(f"{label:<62}{value:>16}")  # noqa: T201
            continue
        shown, mark = str(int(counts.get(counter, 0))), ""
        if goal is not None:
            if checks is not None and not counts.get(checks):
                shown, mark, ok = "n/a", f"  (goal {goal}: NOT MEASURED, 0 {checks})", False
            else:
                ok = int(counts.get(counter, 0)) <= goal
                mark = f"  (goal {goal})" if ok else f"  (goal {goal}: MISSED)"
            met = met and ok
        print(f"{label:<62}{shown:>16}{mark}")  # noqa: T201
    for label, name, unit, below, checks in MAXIMA:
        figure = maxima.get(name)
        if figure is None or not counts.get(checks):
            met = False
            print(f"{label:<62}{'n/a':>16}  (goal < {below:g} {unit}: NOT MEASURED)")  # noqa: T201
            continue
        value = figure["value"] / 1024 if unit == "MB" else figure["value"]
        ok = value < below
        met = met and ok
        shown = f"{value:,.1f} {unit}"
        print(f"{label:<62}{shown:>16}  (goal < {below:g} {unit}{'' if ok else ': MISSED'})")  # noqa: T201
        print(f"    by {figure['by'][:300]}")  # noqa: T201
    status, detail = audit
    print(f"{'dependency audit (pip-audit)':<62}{status.upper():>16}")  # noqa: T201
    print(f"  {detail}")  # noqa: T201
    failures = evidence.get("failures", [])
    if failures:
        print("\nWhat failed:")  # noqa: T201
        for line in failures[:30]:
            print(f"  {line}")  # noqa: T201
    met = met and status != "vulnerable"
    print("-" * 78)  # noqa: T201
    if not met:
        print("Goals MISSED or NOT MEASURED (see above).")  # noqa: T201
    elif status == "unavailable":
        print("All measured goals met; the dependency audit could NOT run here (see above).")  # noqa: T201
    else:
        print("All goals met.")  # noqa: T201
    return met


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--audit-only", action="store_true")
    parser.add_argument("pytest_args", nargs="*", help="extra arguments for pytest (e.g. -k sockets)")
    args = parser.parse_args()
    if args.audit_only:
        status, detail = dependency_audit()
        print(f"dependency audit: {status.upper()}\n  {detail}")  # noqa: T201
        return {"clean": 0, "vulnerable": 1}.get(status, 2)
    evidence, returncode, seconds = run_suite(args.pytest_args)
    audit = dependency_audit()
    return 0 if print_figures(evidence, returncode, seconds, audit) else 1


if __name__ == "__main__":
    sys.exit(main())
