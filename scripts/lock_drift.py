"""Print the installed packages whose version differs from a lock file (`make test-latest` shows the drift).

    python scripts/lock_drift.py requirements/lock-test.txt
"""

from __future__ import annotations

import re
import sys
from importlib import metadata
from pathlib import Path

PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)(?:\[[^\]]*\])?==([^\s;\\]+)")


def normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def locked_versions(lock: Path) -> dict[str, str]:
    pins = {}
    for line in lock.read_text(encoding="utf-8").splitlines():
        match = PIN.match(line)
        if match:
            pins[normalise(match.group(1))] = match.group(2)
    return pins


def drift(lock: Path) -> list[str]:
    installed = {normalise(d.metadata["Name"]): d.version for d in metadata.distributions()}
    return [f"{name}: locked {version}, newest allowed {installed[name]}"
            for name, version in sorted(locked_versions(lock).items())
            if name in installed and installed[name] != version]


def main() -> int:
    lines = drift(Path(sys.argv[1]))
    print("\n".join(lines) if lines else "none: the lock holds the newest allowed versions")
    return 0


if __name__ == "__main__":
    sys.exit(main())
