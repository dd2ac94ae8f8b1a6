"""`pmureview b4-check`: b4's per-patch check command (`b4.prep-perpatch-check-cmd`, `review-*-check-cmd`).

b4 feeds one patch mail on stdin, reads every stdout line as one result (`ERROR:` -> fail, anything
else -> warning) and counts every stderr line as a failure (ECOSYSTEM §3.1). So: checkpatch-style
lines on stdout, nothing at all when clean, no summary, and never a byte on stderr — even a crash is
reported as one stdout line. `--format b4` speaks the `b4 review` JSON protocol (§3.3) instead.
"""

from __future__ import annotations

import contextlib
import io
import os
import sys
from typing import TYPE_CHECKING

from . import hook_options, is_cover_or_not_patch

if TYPE_CHECKING:  # str paths unless --tree: pathlib (with the urllib it imports) is ~4 ms
    from pathlib import Path

USAGE = "usage: pmureview b4-check [--format checkpatch|b4] [--strict] [--tree PATH]"


def _emit(text: str) -> None:
    sys.stdout.write(text)
    sys.stdout.flush()


def _failure(fmt: str, kind: str, message: str) -> str:
    message = " ".join(message.split())
    if fmt == "b4":
        obj = {"tool": "pmureview", "status": "fail", "summary": message, "url": "", "details": ""}
        import json  # only the b4 format writes JSON
        return json.dumps([obj], indent=2) + "\n"
    return f"-:1: ERROR:PMUREVIEW_{kind}: {message}\n"


def _run(data: bytes, fmt: str, strict: bool, tree: Path | None = None) -> str:
    if is_cover_or_not_patch(data):
        return ""  # a cover letter (review-series-check-cmd) or no diff: no result, exit 0
    from ..api import review  # lazy: the entry point dispatches here before typer/rich
    from ..errors import InputError, PmuError

    try:
        # hunk-only unless given --tree (never a tree found by itself: b4 runs us in the prep branch,
        # whose HEAD holds the patch); with one, the hooks' base rule (never HEAD)
        result = review(["-"], hook_options(strict=strict, tree=tree), stdin=data, hook=True)
    except PmuError as exc:
        return _failure(fmt, "INPUT_ERROR" if isinstance(exc, InputError) else "USAGE", str(exc))
    if fmt == "b4":
        from ..report.b4 import render_b4

        return render_b4(result)
    from ..report.lines import format_line

    return "".join(format_line(f, stdin=True) + "\n" for f in result.visible())


def main(argv: list[str]) -> int:
    fmt, strict, tree = "checkpatch", False, None
    it = iter(argv)
    for arg in it:
        if arg == "--strict":
            strict = True
        elif arg == "--tree" or arg.startswith("--tree="):
            from pathlib import Path

            tree = Path(arg.split("=", 1)[1] if "=" in arg else next(it, ""))
        elif arg == "--format":
            fmt = next(it, "")
        elif arg.startswith("--format="):
            fmt = arg.split("=", 1)[1]
        else:
            fmt = f"?{arg}"
            break
    if fmt not in ("checkpatch", "b4"):
        bad = fmt[1:] if fmt.startswith("?") else f"--format {fmt}"
        _emit(_failure("checkpatch", "USAGE", f"{bad}: unknown; {USAGE}"))
        return 2

    # Nothing may reach stderr: not a warning, not a traceback, not a child process's message.
    saved = None
    try:
        saved = os.dup(2)
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 2)
        os.close(devnull)
    except OSError:
        saved = None
    try:
        with contextlib.redirect_stderr(io.StringIO()):
            try:
                out = _run(sys.stdin.buffer.read(), fmt, strict, tree)
            except BaseException as exc:
                if isinstance(exc, KeyboardInterrupt):
                    raise
                out = _failure(fmt, "INTERNAL_ERROR", f"pmureview failed: {type(exc).__name__}: {exc}")
        _emit(out)
    finally:
        if saved is not None:
            os.dup2(saved, 2)
            os.close(saved)
    return 0
