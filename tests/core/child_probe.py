"""A child for tests of `conference.core.children`: `python -m tests.core.child_probe MODE [ARG]`."""

from __future__ import annotations

import json
import os
import resource
import sys
import time


def main(mode: str, arg: str = "") -> int:
    if mode == "env":
        print(json.dumps({"env": dict(os.environ), "nice": os.nice(0),
                          "limits": {name: resource.getrlimit(getattr(resource, name))[0]
                                     for name in ("RLIMIT_AS", "RLIMIT_CPU", "RLIMIT_NOFILE")}}))
    elif mode == "alloc":
        block = bytearray(int(arg) * 1024 * 1024)  # MemoryError under RLIMIT_AS
        print(json.dumps({"allocated": len(block)}))
    elif mode == "spin":
        while True:
            pass
    elif mode == "sleep":
        time.sleep(float(arg))
        print(json.dumps({"slept": float(arg)}))
    elif mode == "fail":
        print("something broke", file=sys.stderr)
        return 3
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
