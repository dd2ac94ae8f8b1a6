"""The console entry point. Stdlib only: the hook and b4-check paths dispatch before typer/rich load."""

from __future__ import annotations

import gc
import os
import sys
from typing import Any


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    hook = args[:1] in (["hook"], ["b4-check"])
    if hook and argv is None:
        # one patch per short process: the cyclic GC would run ~70 times over import-time objects
        # that all live to the end (~8% of the run); a larger first generation lets it run rarely
        gc.set_threshold(50_000, 50, 50)
    if argv is None:  # a process of its own (not an in-process call, as tests make)
        _cache_dataclass_code("hook" if hook else "cli")
        if hook:
            from . import lazyre

            lazyre.KIND = "hook"
    if args[:2] == ["hook", "sendemail-validate"]:
        from .hooks.sendemail import validate_main

        return _guard(lambda: validate_main(args[2:]))
    if args[:1] == ["b4-check"] and not ({"-h", "--help"} & set(args)):
        from .hooks.b4check import main as b4check_main

        return b4check_main(args[1:])
    from .cli import run

    return run(args)


def _guard(fn) -> int:
    from .errors import PmuError

    try:
        return int(fn())
    except PmuError as exc:
        print(f"pmureview: error: {' '.join(str(exc).split())}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


# Building a @dataclass compiles its generated methods (__init__, __eq__, __repr__, ...) from source
# text: ~450 compile() calls, about a fifth of a one-patch hook run's CPU. The text only depends on the
# class's fields, so the code objects are kept in a marshal file per Python build and handed back to
# dataclasses' exec() (its module global), which then runs exactly what it would have compiled. One
# file per kind of run (hook, cli); past 1500 entries only the last run's are kept (load time).
_code: Any = None  # source text -> code object, a cachefile.BuildCache once set up


def _cache_dataclass_code(kind: str) -> None:
    global _code
    if _code is not None or "PMUREVIEW_NO_CODE_CACHE" in os.environ:
        return
    import dataclasses

    from .cachefile import BuildCache

    if getattr(dataclasses, "exec", None) is not None:  # someone else patched it: leave it alone
        return
    _code = BuildCache(f"dataclass-code-{kind}", 1500)
    dataclasses.exec = _cached_exec  # type: ignore[attr-defined]


def _cached_exec(source: object, globals_: dict | None = None, locals_: dict | None = None) -> None:
    if not isinstance(source, str) or _code is None:
        exec(source, globals_, locals_)  # type: ignore[arg-type]
        return
    code = _code.get(source)
    if code is None:
        code = compile(source, "<string>", "exec", dont_inherit=True)
        _code.put(source, code)
    exec(code, globals_, locals_)  # dont_inherit: no `from __future__` of this module leaks into the methods


if __name__ == "__main__":
    sys.exit(main())
