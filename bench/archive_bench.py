"""Slide archive under load against the real server (`conference run`, temporary instance with the demo).

Publishes generated decks, then starts parallel downloads of `archive.zip` and readers that stop after 64 KB,
while /healthz is asked every 20 ms. Prints the /healthz latencies during the downloads and the server's open
files below the instance folder (deleted temporary files are what stalled readers used to pin).

    .venv/bin/python bench/archive_bench.py                      # eventlet, 4 decks of 50 MB, 6 + 5 readers
    .venv/bin/python bench/archive_bench.py --mode gevent --decks 8 --size-mb 50
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT_ROOT))

from tests.support.archive_load import publish_decks, run_load  # noqa: E402 - the project root is on the path only now
from tests.support.server import running_server  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mode", choices=("eventlet", "gevent"), default="eventlet")
    parser.add_argument("--decks", type=int, default=4)
    parser.add_argument("--size-mb", type=int, default=50)
    parser.add_argument("--readers", type=int, default=6)
    parser.add_argument("--stalled", type=int, default=5)
    args = parser.parse_args()
    size = args.size_mb * 1024 * 1024
    with tempfile.TemporaryDirectory(prefix="archive-bench-") as folder, \
            running_server(Path(folder) / "instance", args.mode, demo_attendees=2,
                           CONFERENCE_PRESENTATION_MAX_BYTES=str(size + 1024)) as server:
        publish_decks(server, count=args.decks, size=size)
        result = run_load(server, readers=args.readers, stalled=args.stalled)
        deleted = [name for name in result.open_during if name.endswith("(deleted)")]
        print(f"{args.mode}: {args.decks} decks of {args.size_mb} MB, {args.readers} downloads, "
              f"{args.stalled} stalled readers")
        print(result.summary())
        print(f"server's open files below the instance while readers stall: {len(result.open_during)} "
              f"({len(deleted)} deleted, distinct: {sorted(set(result.open_during))})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
