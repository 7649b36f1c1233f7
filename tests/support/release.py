"""Build the release artifacts and install them as an operator would (tests/test_release.py).

The wheel and the sdist are built from the checkout without build isolation (setuptools, wheel and Babel come
from the locked test environment), installed into a fresh virtual environment outside the checkout from the
runtime lock file (`pip install --require-hashes -r requirements/lock.txt`, then the wheel with `--no-deps`),
and run from empty folders with an environment that knows nothing of the checkout.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tarfile
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from tests.support.server import PROJECT_ROOT

LOCK = PROJECT_ROOT / "requirements" / "lock.txt"


@dataclass
class Artifacts:
    wheel: Path
    sdist: Path
    sdist_wheel: Path  # the wheel built from the unpacked sdist
    timings: dict[str, float] = field(default_factory=dict)


@dataclass
class Installed:
    venv: Path

    @property
    def conference(self) -> Path:
        return self.venv / "bin" / "conference"

    @property
    def python(self) -> Path:
        return self.venv / "bin" / "python"

    def env(self, instance: Path | None = None, **extra: str) -> dict[str, str]:
        """What an operator's shell has: no PYTHONPATH, no CONFERENCE_* from the test run, the venv first."""
        keep = ("HOME", "LANG", "TMPDIR", "PIP_CACHE_DIR", "PIP_FIND_LINKS", "PIP_CERT", "PIP_DEFAULT_TIMEOUT")
        env = {k: v for k, v in os.environ.items() if k in keep}
        env.update({"PATH": f"{self.venv / 'bin'}:/usr/bin:/bin", "PYTHONWARNINGS": "ignore", **extra})
        if instance is not None:
            env["CONFERENCE_INSTANCE_PATH"] = str(instance)
        return env

    def run(self, args: list[str], cwd: Path, env: dict[str, str], timeout: float = 180,
            stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        result = subprocess.run([str(self.conference), *args], cwd=cwd, env=env, capture_output=True, text=True,
                                timeout=timeout, input=stdin)
        assert result.returncode == 0, f"conference {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}"
        return result


def _run(command: list[str], cwd: Path, timeout: float = 300) -> str:
    result = subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, f"{' '.join(command)} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result.stdout


def build_artifacts(out: Path) -> Artifacts:
    """The wheel and the sdist from the checkout, then a second wheel built from the unpacked sdist."""
    timings: dict[str, float] = {}
    start = time.monotonic()
    shutil.rmtree(PROJECT_ROOT / "build", ignore_errors=True)  # no stale files from an earlier build
    _run([sys.executable, "-m", "build", "--no-isolation", "--sdist", "--wheel", "--outdir", str(out / "dist"),
          str(PROJECT_ROOT)], cwd=PROJECT_ROOT)
    wheel = next((out / "dist").glob("conference-*.whl"))
    sdist = next((out / "dist").glob("conference-*.tar.gz"))
    _run([sys.executable, "-m", "twine", "check", "--strict", str(wheel), str(sdist)], cwd=out)
    timings["build wheel + sdist, twine check"] = time.monotonic() - start

    start = time.monotonic()
    with tarfile.open(sdist) as archive:
        archive.extractall(out / "unpacked", filter="data")
    source = next((out / "unpacked").iterdir())
    _run([sys.executable, "-m", "build", "--no-isolation", "--wheel", "--outdir", str(out / "from-sdist"),
          str(source)], cwd=source)
    sdist_wheel = next((out / "from-sdist").glob("conference-*.whl"))
    timings["wheel from the sdist"] = time.monotonic() - start
    return Artifacts(wheel, sdist, sdist_wheel, timings)


def wheel_files(wheel: Path) -> set[str]:
    with zipfile.ZipFile(wheel) as archive:
        return {name for name in archive.namelist() if ".dist-info/" not in name}


def install_release(venv: Path, wheel: Path, timings: dict[str, float]) -> Installed:
    """A fresh venv (no system site-packages), the locked dependencies with their hashes, then the wheel."""
    start = time.monotonic()
    _run([sys.executable, "-m", "venv", "--clear", str(venv)], cwd=venv.parent)
    pip = [str(venv / "bin" / "python"), "-m", "pip", "--disable-pip-version-check", "--quiet"]
    _run([*pip, "install", "--require-hashes", "-r", str(LOCK)], cwd=venv.parent, timeout=900)
    timings["venv + locked dependencies"] = time.monotonic() - start
    installed = Installed(venv)
    replace_wheel(installed, wheel)
    _run([*pip, "check"], cwd=venv.parent)
    return installed


def replace_wheel(installed: Installed, wheel: Path) -> None:
    _run([str(installed.python), "-m", "pip", "--disable-pip-version-check", "--quiet", "install",
          "--force-reinstall", "--no-deps", str(wheel)], cwd=installed.venv.parent)
