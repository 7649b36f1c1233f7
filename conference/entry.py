"""The `conference` console script. Patches the async server's I/O before anything else is imported."""

from __future__ import annotations

import os
import sys
import warnings


def main() -> None:
    # Eventlet announces its bugfix-only status on every import; we know (gevent is the alternative).
    warnings.filterwarnings("ignore", message=r"\s*Eventlet is deprecated")
    if len(sys.argv) > 1 and sys.argv[1] == "run":
        from conference.serving.server import prepare_async

        prepare_async(os.environ.get("CONFERENCE_ASYNC_MODE", "eventlet"),
                      os.environ.get("CONFERENCE_DATABASE_URL", ""))
    from conference.cli import cli

    cli(prog_name="conference")


if __name__ == "__main__":
    main()
