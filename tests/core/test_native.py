"""Native threads: file-system work that can wait for the disk is done beside the event loop, not on it."""

from __future__ import annotations

import shutil
import tempfile
import threading
from typing import Any

import pytest

from conference.core import native


def test_a_temporary_directory_is_made_and_removed_by_another_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    threads: dict[str, int] = {}
    make, remove = tempfile.mkdtemp, shutil.rmtree

    def recording_make(*args: Any) -> str:
        threads["made"] = threading.get_ident()
        return make(*args)

    def recording_remove(*args: Any) -> None:
        threads["removed"] = threading.get_ident()
        remove(*args)

    monkeypatch.setattr(tempfile, "mkdtemp", recording_make)
    monkeypatch.setattr(shutil, "rmtree", recording_remove)
    with native.temporary_directory("conference-test-") as work:
        assert work.is_dir() and work.name.startswith("conference-test-")
        (work / "clean.pdf").write_bytes(b"%PDF-1.7\n" * 1000)

    assert not work.exists()
    assert set(threads) == {"made", "removed"}
    assert threading.get_ident() not in threads.values()


def test_a_temporary_directory_is_removed_when_the_work_fails() -> None:
    with pytest.raises(RuntimeError), native.temporary_directory("conference-test-") as work:
        (work / "half").write_bytes(b"x")
        raise RuntimeError("the child failed")
    assert not work.exists()
