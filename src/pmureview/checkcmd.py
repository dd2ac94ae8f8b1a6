"""`pmureview check` without typer: the command's body, and a parser for the argument lists it can
read exactly as typer/click would.

`check` is the main job, often one process per series (a bot, a script over a month of traffic).
Importing typer and click and building the app from the function signatures is ~70 ms of a 24-patch
review's ~450 ms. entry.py hands `check ARGS` here first; anything this parser does not read with
certainty (help, an unknown option, a bad value, `--`, short-option clusters) returns None and the
typer app runs as before, so click's usage errors and help text stay typer's. CHECK_OPTIONS mirrors the
typer signature in cli.py; a test compares the two option by option.
"""

from __future__ import annotations

import sys
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from .errors import PmuError, UsageError

if TYPE_CHECKING:  # a Path only for an option that names one: pathlib and its urllib are ~4 ms
    from pathlib import Path


class Format(StrEnum):
    terminal = "terminal"
    json = "json"
    checkpatch = "checkpatch"
    sarif = "sarif"
    b4 = "b4"


class Level(StrEnum):
    error = "error"
    warning = "warning"
    check = "check"


# parameter -> (option names, kind). Kinds: flag (True when given), value (str), int, float, path,
# paths (repeatable), list (repeatable str), or an enum class (its values only).
CHECK_OPTIONS: dict[str, tuple[tuple[str, ...], Any]] = {
    "tree": (("--tree",), "path"),
    "no_tree": (("--no-tree",), "flag"),
    "base": (("--base",), "value"),
    "revision": (("--revision",), "int"),
    "rev_range": (("--range",), "value"),
    "files": (("--files",), "flag"),
    "midmask": (("--midmask",), "value"),
    "fetch_timeout": (("--fetch-timeout",), "float"),
    "select": (("--select",), "list"),
    "ignore": (("--ignore",), "list"),
    "fail_on": (("--fail-on",), Level),
    "strict": (("--strict",), "flag"),
    "preview": (("--preview",), "flag"),
    "cocci": (("--cocci",), "flag"),
    "rules_dir": (("--rules-dir",), "paths"),
    "config": (("--config",), "path"),
    "baseline": (("--baseline",), "path"),
    "write_baseline": (("--write-baseline",), "path"),
    "fmt": (("--format",), Format),
    "quiet": (("-q", "--quiet"), "flag"),
    "reply_dir": (("--reply-dir",), "path"),
    "sender": (("--from",), "value"),
    "signature": (("--signature",), "value"),
    "deterministic": (("--deterministic",), "flag"),
    "since": (("--since",), "value"),
    "fail_on_new": (("--fail-on-new",), "flag"),
}
# typer's defaults for what is not given (a flag typed `bool | None` is None: the config decides)
DEFAULTS: dict[str, Any] = {"no_tree": False, "files": False, "fmt": Format.terminal, "quiet": False,
                            "deterministic": False, "fail_on_new": False}
NEGATIVE = {"--no-deterministic": "deterministic"}  # typer's --x/--no-x twin of a plain bool option
_BY_NAME = {name: (param, kind) for param, (names, kind) in CHECK_OPTIONS.items() for name in names}


def parse(args: list[str]) -> dict[str, Any] | None:
    """check's parameters from its arguments, or None where typer must decide (help, errors, ...)."""
    params: dict[str, Any] = {}
    sources: list[str] = []
    i = 0
    while i < len(args):
        arg = args[i]
        i += 1
        if arg == "-" or not arg.startswith("-"):
            sources.append(arg)
            continue
        name, eq, inline = arg.partition("=")
        if name in NEGATIVE and not eq and NEGATIVE[name] not in params:
            params[NEGATIVE[name]] = False
            continue
        found = _BY_NAME.get(name)
        if found is None:
            return None  # --help, --, -qq, a typo: typer's to answer
        param, kind = found
        if kind == "flag":
            if eq or param in params:
                return None
            params[param] = True
            continue
        if eq:
            value = inline
        elif i < len(args):
            value, i = args[i], i + 1
        else:
            return None
        try:
            converted = _convert(kind, value)
        except ValueError:
            return None
        if kind in ("list", "paths"):
            params.setdefault(param, []).append(converted)
        else:
            params[param] = converted  # click: the last of a repeated single option wins
    for param in CHECK_OPTIONS:
        params.setdefault(param, DEFAULTS.get(param))
    params["sources"] = sources or None
    return params


def _convert(kind: Any, value: str) -> Any:
    if kind in ("value", "list"):
        return value
    if kind in ("path", "paths"):
        from pathlib import Path

        return Path(value)
    if kind == "int":
        return int(value.strip(), 10)
    if kind == "float":
        return float(value)
    return kind(value)  # an enum: ValueError outside its values, as click refuses them


def main(args: list[str]) -> int | None:
    """Run `check ARGS` without typer; None when the typer app must take the arguments instead."""
    params = parse(args)
    if params is None:
        return None
    try:
        return run_check(**params)
    except PmuError as exc:  # as cli.run: one line, the error's exit code
        error_line(str(exc))
        return exc.exit_code
    except KeyboardInterrupt:
        return 130
    except Exception as exc:
        error_line(f"internal error: {type(exc).__name__}: {exc}")
        return 2


def run_check(*, sources: list[str] | None, tree: Path | None, no_tree: bool, base: str | None,
              revision: int | None, rev_range: str | None, files: bool, midmask: str | None,
              fetch_timeout: float | None, select: list[str] | None, ignore: list[str] | None,
              fail_on: Level | None, strict: bool | None, preview: bool | None, cocci: bool | None,
              rules_dir: list[Path] | None, config: Path | None, baseline: Path | None,
              write_baseline: Path | None, fmt: Format, quiet: bool, reply_dir: Path | None,
              sender: str | None, signature: str | None, deterministic: bool, since: str | None,
              fail_on_new: bool) -> int:
    """Review a series and report findings; the exit code (UsageError for a bad combination)."""
    if not sources and not rev_range:
        raise UsageError("check needs a SOURCE (msgid, URL, mbox, folder, patch files or -) or --range")
    from .config import make_options

    options = make_options(config=config, tree=tree, base=base, revision=revision, rev_range=rev_range,
                           files=files, midmask=midmask, fetch_timeout=fetch_timeout, select=select,
                           ignore=ignore, fail_on=fail_on.value if fail_on else None, strict=strict, preview=preview,
                           rules_dir=rules_dir, baseline=baseline, cocci=cocci, no_tree=no_tree,
                           find_tree=True)
    if since and (files or rev_range):
        raise UsageError("--since compares postings: it does not go with --files or --range")
    options.since, options.fail_on_new = since, fail_on_new
    from .api import review

    if sys.stderr.isatty() and fmt == Format.terminal and not quiet:
        from rich.console import Console  # rich only where a person watches: it costs ~50 ms to import

        with Console(stderr=True, highlight=False).status("reviewing…"):
            result = review(sources or [], options)
    else:
        result = review(sources or [], options)
    if result.versions is not None and (line := result.versions.line()):
        sys.stderr.write(line + "\n")  # which posting was compared, or why none: one line
    _emit(result, fmt, quiet)
    if write_baseline:
        _write_baseline(result, write_baseline)
    if reply_dir:
        from .report.reply import write_replies

        # re-review mode: each reply opens with the previous posting's review comments still open
        earlier = result.versions.comments if result.versions is not None else ()
        written = write_replies(result, reply_dir, sender=sender, signature=signature,
                                deterministic=deterministic, earlier_comments=earlier)
        sys.stderr.write(f"wrote {len(written)} replies to {reply_dir}\n")
    return result.exit_code()


def error_line(message: str) -> None:
    from .report.terminal import clean

    # plain write: one line, never wrapped by rich, control characters made visible
    sys.stderr.write(f"pmureview: error: {clean(' '.join(message.split()))}\n")


def _emit(result: Any, fmt: Format, quiet: bool) -> None:
    out = sys.stdout
    if fmt == Format.json:
        from .report.json_out import render_json

        out.write(render_json(result))
    elif fmt == Format.checkpatch:
        from .report.checkpatch import render_checkpatch

        out.write(render_checkpatch(result, stdin=result.series.from_stdin))
    elif fmt == Format.sarif:
        from .report.sarif import render_sarif

        out.write(render_sarif(result))
    elif fmt == Format.b4:
        from .report.b4 import render_b4

        out.write(render_b4(result))
    else:
        from rich.console import Console

        from .report.terminal import render_terminal

        render_terminal(result, Console(highlight=False, soft_wrap=True), quiet=quiet)


def _write_baseline(result: Any, path: Path) -> None:
    import json

    data = {"findings": [{"fingerprint": f.fingerprint(), "rule": f.rule, "path": f.location.path,
                          "message": f.message} for f in result.findings]}
    path.write_text(json.dumps(data, indent=2) + "\n", "utf-8")
