"""The `conference` console script. Patches the async server's I/O before anything else is imported."""

from __future__ import annotations

import os
import sys


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "run":
        from conference.wsgi import prepare_async

        prepare_async(os.environ.get("CONFERENCE_ASYNC_MODE", "eventlet"),
                      os.environ.get("CONFERENCE_DATABASE_URL", ""))
    from conference.cli import cli

    cli(prog_name="conference")


if __name__ == "__main__":
    main()
