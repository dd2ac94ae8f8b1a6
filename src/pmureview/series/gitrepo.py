"""Reading a kernel git tree: one `git cat-file --batch` process, and choosing the base."""

from __future__ import annotations

import os
import subprocess
from typing import TYPE_CHECKING

from ..cachefile import cache_path, read_json, write_json
from ..errors import UsageError
from .model import Series

if TYPE_CHECKING:  # a tree is a str or a Path: the hook passes str (pathlib is ~4 ms of imports)
    from pathlib import Path


def _git(tree: str | Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["git", "-C", str(tree), *args], capture_output=True, text=True,
                          stdin=subprocess.DEVNULL, check=False)


def is_git_tree(path: str | Path) -> bool:
    # a work tree's top (the hook's folder, a --tree argument) answers without running git
    return os.path.exists(os.path.join(path, ".git")) or _git(path, "rev-parse", "--git-dir").returncode == 0


class BlobReader:
    """Reads `REV:path` through one long-lived `git cat-file --batch` (one process per run)."""

    def __init__(self, tree: str | Path, rev: str) -> None:
        self.tree = tree
        self.rev = rev
        self._proc: subprocess.Popen[bytes] | None = None
        self._cache: dict[str, str | None] = {}
        self._greps: dict[str, list[str]] | None = None
        self._grep_file: str | None = None

    def _batch(self, spec: str, kind: bytes = b"blob") -> bytes | None:
        """The content of object `spec` when it is a `kind`; with kind b"", its object id."""
        if self._proc is None:
            self._proc = subprocess.Popen(["git", "-C", str(self.tree), "cat-file", "--batch"],
                                          stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                          stderr=subprocess.DEVNULL)
        assert self._proc.stdin and self._proc.stdout
        self._proc.stdin.write(spec.encode() + b"\n")
        self._proc.stdin.flush()
        header = self._proc.stdout.readline().split()
        if len(header) < 3:  # `<spec> missing`
            return None
        size = int(header[2])
        data = self._proc.stdout.read(size)
        self._proc.stdout.read(1)
        if not kind:
            return header[0]
        return data if header[1] == kind else None

    def __call__(self, path: str) -> str | None:
        if path not in self._cache:
            data = self._batch(f"{self.rev}:{path}")
            self._cache[path] = None if data is None else data.decode("utf-8", "surrogateescape")
        return self._cache[path]

    def grep_files(self, word: str, globs: tuple[str, ...] = ("*.c", "*.h", "*.S")) -> list[str] | None:
        """Files at the base that use `word` as a whole word (one `git grep`); None when git fails.

        Answers are cached per tree id under $XDG_CACHE_HOME/pmureview/trees/: the hook runs once per
        patch of a series and asks the same questions of the same base every time.
        """
        key = f"{word}\0{','.join(globs)}"
        cache = self._grep_cache()
        if key in cache:
            return cache[key]
        try:
            r = subprocess.run(["git", "-C", str(self.tree), "grep", "-l", "-w", "-F", "-I", "-e", word, self.rev,
                                "--", *globs], capture_output=True, text=True, timeout=60, check=False,
                               stdin=subprocess.DEVNULL)
        except (OSError, subprocess.SubprocessError):
            return None
        if r.returncode not in (0, 1):
            return None
        found = sorted(ln.split(":", 1)[1] for ln in r.stdout.splitlines() if ":" in ln)
        cache[key] = found
        self._save_grep_cache()
        return found

    def _grep_cache(self) -> dict[str, list[str]]:
        if self._greps is None:
            self._greps = {}
            # the open cat-file answers this too (a `git rev-parse` process was ~6 ms of every hook)
            tree_id = (self._batch(f"{self.rev}^{{tree}}", b"") or b"").decode()
            if tree_id:
                self._grep_file = cache_path("trees", f"{tree_id}.json")
                self._greps = read_json(self._grep_file) or {}
        return self._greps

    def _save_grep_cache(self) -> None:
        if self._greps is not None:
            write_json(self._grep_file, self._greps)

    def list_files(self, prefix: str) -> list[str]:
        r = _git(self.tree, "ls-tree", "-r", "--name-only", self.rev, "--", prefix)
        return r.stdout.splitlines() if r.returncode == 0 else []

    def has_object(self, spec: str) -> bool:
        return self._batch(spec) is not None

    def close(self) -> None:
        if self._proc is not None:
            if self._proc.stdin:
                self._proc.stdin.close()
            self._proc.wait(timeout=5)
            self._proc = None


class FolderReader:
    """A plain folder with the kernel's layout (no git): the files as they are."""

    def __init__(self, tree: str | Path) -> None:
        from pathlib import Path

        self.tree = Path(tree).resolve()

    def __call__(self, path: str) -> str | None:
        p = (self.tree / path).resolve()
        if not p.is_relative_to(self.tree) or not p.is_file():
            return None
        return p.read_text("utf-8", "surrogateescape")


    def grep_files(self, word: str, globs: tuple[str, ...] = ("*.c", "*.h", "*.S")) -> list[str] | None:
        import re
        from fnmatch import fnmatch

        pat = re.compile(rf"\b{re.escape(word)}\b")
        out = []
        for p in self.tree.rglob("*"):
            if p.is_file() and any(fnmatch(p.name, g) for g in globs):
                try:
                    if pat.search(p.read_text("utf-8", "replace")):
                        out.append(p.relative_to(self.tree).as_posix())
                except OSError:
                    continue
        return sorted(out)

    def list_files(self, prefix: str) -> list[str]:
        root = self.tree / prefix
        if root.is_file():
            return [prefix]
        return sorted(p.relative_to(self.tree).as_posix() for p in root.rglob("*") if p.is_file())


def _commit_exists(tree: str | Path, rev: str) -> str | None:
    r = _git(tree, "rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}")
    return r.stdout.strip() or None if r.returncode == 0 else None


def choose_base(tree: str | Path, series: Series, explicit: str | None, *,
                allow_head: bool = True) -> tuple[str, str] | None:
    """-> (commit, how it was chosen). --base > base-commit: > pre-image blob ids > HEAD.

    Without `allow_head` (the hooks, a tree found by itself or from the config: HEAD there is the
    reviewer's own work, not the series' base) None when nothing else names a base.
    """
    if explicit:
        sha = _commit_exists(tree, explicit)
        if not sha:
            raise UsageError(f"--base {explicit}: no such commit in {tree}")
        return sha, "--base"
    if series.base_commit and (sha := _commit_exists(tree, series.base_commit)):
        return sha, "base-commit"
    if sha := _base_from_blobs(tree, series):
        return sha, "blob ids"
    if not allow_head:
        return None
    sha = _commit_exists(tree, "HEAD")
    if not sha:
        raise UsageError(f"{tree}: the repository has no commits")
    return sha, "HEAD"


def _base_from_blobs(tree: str | Path, series: Series) -> str | None:
    """The newest commit (of HEAD's last 2000) whose blobs match every pre-image `index` id."""
    wanted: dict[str, str] = {}
    for p in series.patches:
        for f in p.files:
            src = f.old_path or f.path
            if f.old_blob and set(f.old_blob) != {"0"} and src not in wanted:
                wanted[src] = f.old_blob
    if not wanted:
        return None
    # every candidate commit's blobs for the few paths through `git cat-file --batch-check` (one
    # process for a chunk of commits, not one `git ls-tree` each: the hook's base is usually a few
    # commits below HEAD, so the first chunk decides). The first call also asks whether the blobs
    # exist at all: a tree found from the current folder is often not the series' tree, and the
    # scan would otherwise walk 2000 commits before giving up (ambiguous short ids may exist).
    revs = _git(tree, "rev-list", "--max-count=2000", "HEAD").stdout.split()
    paths = sorted(wanted)
    blobs = sorted(set(wanted.values()))
    start = 0
    for size in (32, 256, len(revs)):
        chunk = revs[start:start + size]
        first = start == 0
        start += len(chunk)
        if not chunk and not first:
            break
        lines = _batch_check(tree, [*(blobs if first else ()), *(f"{rev}:{p}" for rev in chunk for p in paths)])
        if lines is None:
            return None
        if first:
            if any(line.endswith(" missing") for line in lines[:len(blobs)]):
                return None
            lines = lines[len(blobs):]
        ids = [line.split()[0] if line.split()[1:2] == ["blob"] else "" for line in lines]
        for i, rev in enumerate(chunk):
            if all(ids[i * len(paths) + j].startswith(wanted[p]) for j, p in enumerate(paths)):
                return rev
    return None


def _batch_check(tree: str | Path, specs: list[str]) -> list[str] | None:
    """`git cat-file --batch-check`'s line for each object name; None when git fails."""
    try:
        r = subprocess.run(["git", "-C", str(tree), "cat-file", "--batch-check"], input="\n".join(specs) + "\n",
                           capture_output=True, text=True, check=False, timeout=60)
    except (OSError, subprocess.SubprocessError):
        return None
    lines = r.stdout.splitlines()
    return lines if r.returncode == 0 and len(lines) == len(specs) else None
