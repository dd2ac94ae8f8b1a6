"""Is this a kernel tree, and where is its top? One answer for `check` and the pre-send hooks.

checkpatch.pl's `top_of_kernel_tree()` test: every one of these names exists at the top. Stdlib only
and cheap: the hook path asks once per patch, so a file check decides whenever it can and `git
rev-parse --show-toplevel` runs only when git's own environment (GIT_DIR / GIT_WORK_TREE) moves
the work tree somewhere a walk up the folders would not find.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the hook path works with str paths: pathlib (with the urllib it imports) is ~4 ms
    from pathlib import Path

# checkpatch.pl, sub top_of_kernel_tree
TOP_LEVEL = ("COPYING", "CREDITS", "Kbuild", "MAINTAINERS", "Makefile", "README", "Documentation", "arch",
             "include", "drivers", "fs", "init", "ipc", "kernel", "lib", "scripts")


def is_kernel_top(path: str | Path) -> bool:
    """checkpatch's top-level test (any folder, git or not)."""
    return all(os.path.exists(os.path.join(path, name)) for name in TOP_LEVEL)


def is_kernel_tree(path: str | Path) -> bool:
    """`path` is the top of a kernel git work tree (a `.git` folder or file there)."""
    return os.path.exists(os.path.join(path, ".git")) and is_kernel_top(path)


def _git_toplevel(cwd: str) -> str | None:
    import subprocess  # lazy: b4-check imports this module and never needs it

    try:
        r = subprocess.run(["git", "-C", cwd, "rev-parse", "--show-toplevel"], capture_output=True,
                           text=True, stdin=subprocess.DEVNULL, check=False, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return None
    top = r.stdout.strip()
    return top if r.returncode == 0 and top else None


def worktree_top(cwd: str | Path | None = None) -> str | None:
    """`git rev-parse --show-toplevel` without running git when git's environment does not move the
    work tree: the nearest folder upwards holding a `.git` folder or file."""
    try:
        folder = os.path.abspath(cwd if cwd is not None else os.getcwd())
    except OSError:  # the current folder was removed under us
        return None
    if os.environ.get("GIT_DIR") or os.environ.get("GIT_WORK_TREE"):
        return _git_toplevel(folder)
    while True:
        if os.path.exists(os.path.join(folder, ".git")):
            return folder
        parent = os.path.dirname(folder)
        if parent == folder:
            return None
        folder = parent


def find_kernel_tree(cwd: Path | None = None) -> Path | None:
    """The top of the kernel git work tree holding `cwd` (checkpatch's test on the work tree's top).

    Like `git rev-parse --show-toplevel`: the nearest folder upwards with a `.git`; None when that
    folder is not kernel-shaped, or there is none.
    """
    top = worktree_top(cwd)
    if top is None or not is_kernel_top(top):
        return None
    from pathlib import Path

    return Path(top)
