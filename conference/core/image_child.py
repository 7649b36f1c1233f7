"""Untrusted image work in a sandboxed child: `python -m conference.core.image_child RECIPE SRC DST OPTIONS`.

RECIPE names a function `module:function` of this project that takes the open source file (and the JSON object
OPTIONS as keyword arguments) and returns the encoded result, raising `ImageRefused` for a file that is no
usable image. The result is written to DST; the answer is one JSON line: `{"size": n}`, or `{"refused":
reason}`. Runs under the limits of `conference.core.sandbox` (see `conference.core.images.process_in_child`),
so a decompression bomb or a decoder bug costs at most the child's memory, CPU and time; it imports only
Pillow and the recipe's module, never the application.
"""

from __future__ import annotations

import importlib
import json
import sys

from conference.core.images import ImageRefused


def main(argv: list[str]) -> int:
    if len(argv) != 4:
        print("usage: python -m conference.core.image_child MODULE:FUNCTION SOURCE TARGET OPTIONS", file=sys.stderr)
        return 2
    recipe, source, target, options = argv
    module_name, _, function_name = recipe.partition(":")
    if not module_name.startswith("conference.") or not function_name.isidentifier():
        print(f"not a recipe: {recipe}", file=sys.stderr)
        return 2
    function = getattr(importlib.import_module(module_name), function_name)
    try:
        with open(source, "rb") as handle:
            data = function(handle, **json.loads(options))
    except ImageRefused as refused:
        print(json.dumps({"refused": refused.reason}))
        return 0
    except MemoryError:  # past RLIMIT_AS: an image that needs more than a child may use
        print(json.dumps({"refused": "too_complex"}))
        return 0
    with open(target, "wb") as sink:
        sink.write(data)
    print(json.dumps({"size": len(data)}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
