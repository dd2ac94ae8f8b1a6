"""`pmureview hook install|uninstall` and the `sendemail-validate` hook itself.

git runs the hook once per file before anything is sent, with cwd at the repository top; a non-zero
exit aborts the whole send (ECOSYSTEM §3.5). The hook never uses HEAD as the base: HEAD already holds
the patch, so in a kernel tree the api picks the base from the patch's pre-image blob ids.
"""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING

from . import hook_options, is_cover_or_not_patch, is_kernel_tree

if TYPE_CHECKING:  # the hook itself works with str paths: pathlib (and the urllib it imports) is ~4 ms
    from pathlib import Path

HOOK_NAME = "sendemail-validate"
MARKER = "# pmureview-hook: sendemail-validate"
LEVELS = ("error", "warning", "check")
USAGE = "usage: pmureview hook sendemail-validate [--fail-on error|warning|check] FILE [HEADERS]"


def _usage_error(msg: str) -> Exception:
    from ..errors import UsageError  # stdlib-only module, imported late to keep startup minimal

    return UsageError(msg)


def hooks_dir(repo: Path | None) -> Path:
    """`git rev-parse --git-path hooks`: honours core.hooksPath and linked worktrees."""
    import subprocess  # only install/uninstall need git
    from pathlib import Path

    cwd = repo or Path.cwd()
    try:
        r = subprocess.run(
            ["git", "rev-parse", "--git-path", "hooks"], cwd=cwd, capture_output=True, text=True, check=False
        )
    except (OSError, ValueError) as exc:
        raise _usage_error(f"cannot run git in {cwd}: {exc}") from None
    if r.returncode != 0:
        raise _usage_error(f"{cwd}: not a git repository")
    return (cwd / r.stdout.strip()).resolve()


def hook_script(fail_on: str | None = None) -> str:
    import shlex

    args = ["hook", HOOK_NAME] + (["--fail-on", fail_on] if fail_on else [])
    return (
        "#!/bin/sh\n"
        f"{MARKER}\n"
        "# Installed by `pmureview hook install`; remove with `pmureview hook uninstall`.\n"
        "# Skip once with PMUREVIEW_SKIP=1 or `git send-email --no-validate`.\n"
        f'exec {shlex.quote(sys.executable)} -m pmureview {" ".join(args)} "$@"\n'
    )


def _ours(path: Path) -> bool:
    try:
        return MARKER in path.read_text(errors="replace")
    except OSError:
        return False


def install(repo: Path | None, *, force: bool, fail_on: str | None = None) -> Path:
    """Write the hook; a hook pmureview did not write is replaced only with `force`."""
    if fail_on is not None and fail_on not in LEVELS:
        raise _usage_error(f"--fail-on {fail_on}: expected one of {', '.join(LEVELS)}")
    path = hooks_dir(repo) / HOOK_NAME
    if (path.exists() or path.is_symlink()) and not _ours(path) and not force:
        raise _usage_error(f"{path} exists and was not installed by pmureview; use --force to replace it")
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.is_symlink():
        path.unlink()  # replace the link itself, never write through it
    path.write_text(hook_script(fail_on))
    path.chmod(0o755)
    return path


def uninstall(repo: Path | None) -> Path | None:
    """Remove our hook; None when there is none. A foreign hook is left alone."""
    path = hooks_dir(repo) / HOOK_NAME
    if not (path.exists() or path.is_symlink()):
        return None
    if not _ours(path):
        raise _usage_error(f"{path} was not installed by pmureview; not removing it")
    path.unlink()
    return path


def _parse(argv: list[str]) -> tuple[str, str]:
    fail_on, files = "error", []
    it = iter(argv)
    for arg in it:
        if arg == "--fail-on":
            fail_on = next(it, "")
        elif arg.startswith("--fail-on="):
            fail_on = arg.split("=", 1)[1]
        elif arg.startswith("-") and arg != "-":
            raise _usage_error(f"unknown option {arg}; {USAGE}")
        else:
            files.append(arg)
    if fail_on not in LEVELS:
        raise _usage_error(f"--fail-on {fail_on!r}: expected one of {', '.join(LEVELS)}")
    if not 1 <= len(files) <= 2:  # newer git passes a second file with the SMTP headers; unused
        raise _usage_error(USAGE)
    return fail_on, files[0]


def validate_main(argv: list[str]) -> int:
    """The hook: 0 lets git send the file, 1 blocks the send, 2 for unusable input."""
    if os.environ.get("PMUREVIEW_SKIP") == "1":
        return 0
    from ..errors import PmuError

    try:
        fail_on, path = _parse(argv)
        try:
            with open(path, "rb") as f:
                data = f.read()
        except OSError as exc:
            raise _usage_error(f"{path}: {exc.strerror or exc}") from None
        if is_cover_or_not_patch(data):
            return 0
        return _review(path, fail_on)
    except PmuError as exc:
        print(f"pmureview: error: {exc}", file=sys.stderr)
        return 2


def _review(path: str, fail_on: str) -> int:
    from ..api import review  # lazy: only a real patch pays for the engine
    from ..report.lines import format_line
    from ..rule.model import Severity

    level = Severity(fail_on)
    cwd = os.getcwd()
    # a str: full mode needs no pathlib either
    options = hook_options(fail_on=fail_on, tree=cwd if is_kernel_tree(cwd) else None)
    result = review([path], options, hook=True)
    for f in result.visible():
        print(format_line(f, stdin=False), file=sys.stderr)
    blocking = [f for f in result.findings if f.severity.rank >= level.rank]
    if blocking:
        print(
            f"pmureview: {os.path.basename(path)}: {len(blocking)} finding(s) at or above {level.value}; "
            "fix them, or send anyway with PMUREVIEW_SKIP=1 or --no-validate",
            file=sys.stderr,
        )
        return 1
    return 2 if result.internal_error else 0
