"""The console entry point. Stdlib only: the hook and b4-check paths dispatch before typer/rich load."""

from __future__ import annotations

import gc
import sys


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    hook = args[:1] in (["hook"], ["b4-check"])
    own = argv is None and (hook or args[:1] == ["check"])  # a process of its own (tests call in-process)
    if own:
        # the cyclic GC would run over import-time objects and parse trees that all live to the end
        # and find next to nothing: 500 patches collected 364 objects in 5 passes costing 146 ms
        # (14-23 ms each, a pass scanning every young parse node), with no change in peak memory.
        # A review is one bounded process: its few cycles go with it.
        gc.disable()
        from . import lazyre

        if hook:
            lazyre.KIND = "hook"  # the hook's per-build caches (regexes, record code) hold only its own
        lazyre.cache_module_patterns()
    if args[:2] == ["hook", "sendemail-validate"]:
        from .hooks.sendemail import validate_main

        return _leave(own, _guard(lambda: validate_main(args[2:])))
    if args[:1] == ["b4-check"] and not ({"-h", "--help"} & set(args)):
        from .hooks.b4check import main as b4check_main

        return _leave(own, b4check_main(args[1:]))
    if args[:1] == ["check"]:
        from .checkcmd import main as check_main

        code = check_main(args[1:])  # None: arguments only the typer app reads right (help, errors)
        if code is not None:
            return _leave(own, code)
    from .cli import run

    return run(args)


def _leave(own: bool, code: int) -> int:
    """In a process of our own, exit without the interpreter's teardown: freeing every parse tree,
    node and module of a review is 13 ms of a series and 60 ms of one in full mode, for a process
    that ends anyway. What teardown does that matters is done first: the atexit functions (the
    caches' writes) and the standard streams' buffers. All files are closed by their `with`."""
    if not own:
        return code
    import atexit
    import contextlib
    import os

    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):  # a closed pipe: nothing more can be said on it
            stream.flush()
    os._exit(code)


def _guard(fn) -> int:
    from .errors import PmuError

    try:
        return int(fn())
    except PmuError as exc:
        print(f"pmureview: error: {' '.join(str(exc).split())}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
