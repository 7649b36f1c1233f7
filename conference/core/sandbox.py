"""Bootstrap of a sandboxed child: `python -m conference.core.sandbox AS CPU NOFILE NICE MODULE ARGS...`.

The limits are set before the module is imported (see `conference.core.children`), then the module runs as
`__main__` with ARGS as its argv.
"""

from __future__ import annotations

import os
import resource
import runpy
import sys


def main(argv: list[str]) -> None:
    memory, cpu, files, nice, module, *args = argv
    resource.setrlimit(resource.RLIMIT_AS, (int(memory), int(memory)))
    # The soft limit sends SIGXCPU (the child dies with it); the hard one a second later SIGKILL.
    resource.setrlimit(resource.RLIMIT_CPU, (int(cpu), int(cpu) + 1))
    resource.setrlimit(resource.RLIMIT_NOFILE, (int(files), int(files)))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    os.nice(int(nice))
    sys.argv = [module, *args]
    runpy.run_module(module, run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main(sys.argv[1:])
