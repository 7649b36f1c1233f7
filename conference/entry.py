"""The `conference` console script. Patches the async server's I/O before anything else is imported."""

from __future__ import annotations

import sys
import warnings


def main() -> None:
    # Eventlet announces its bugfix-only status on every import; we know (gevent is the alternative).
    warnings.filterwarnings("ignore", message=r"\s*Eventlet is deprecated")
    from conference.settings import SettingError, environment_settings

    try:  # every CONFERENCE_* variable, before anything starts: a bad one is one line, not a traceback
        settings = environment_settings()
    except SettingError as error:
        print(f"conference: {error}", file=sys.stderr)
        sys.exit(2)
    if len(sys.argv) > 1 and sys.argv[1] == "run":
        from conference.serving.server import prepare_async

        prepare_async(settings.async_mode, settings.database_url or "")
    from conference.cli import cli

    cli(prog_name="conference")


if __name__ == "__main__":
    main()
