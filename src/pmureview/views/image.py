"""Post-images: rebuilt from hunks (hunk-only) or the base blob with the series applied (full mode)."""

from __future__ import annotations

from collections.abc import Callable

from ..record import dataclass
from ..series.model import ChangeKind, FileChange, Hunk, HunkLine, Patch, Series
from .context import FULL, HUNK_ONLY, FileView

SKIP_KINDS = (ChangeKind.BINARY, ChangeKind.MODE_ONLY, ChangeKind.DELETED)


@dataclass(frozen=True, slots=True)
class ApplyFailure:
    patch: int
    path: str
    line: int
    message: str


def hunk_only_view(patch: Patch, change: FileChange) -> FileView:
    """Every hunk line at its real post-image number; lines the hunks do not show stay empty."""
    size = max((h.new_start + h.new_len - 1 for h in change.hunks), default=0)
    lines = [""] * size
    known: set[int] = set()
    for h in change.hunks:
        for ln in h.lines:
            if ln.kind != "-" and ln.new_no and ln.new_no <= size:
                lines[ln.new_no - 1] = ln.text
                known.add(ln.new_no)
    return FileView(patch=patch, change=change, text="\n".join(lines), mode=HUNK_ONLY,
                    known=frozenset(known), added=change.added)


def _find(lines: list[str], old: list[str], want: int) -> int | None:
    """Where `old` occurs, nearest to `want` first (git apply: offset, no fuzz)."""
    n = len(old)
    limit = len(lines) - n
    if limit < 0:
        return None
    # a hunk header past the end of the file: the nearest candidates are the last ones (and the
    # loop below stays bounded by the file's length, not by a number taken from the mail)
    want = min(want, limit)
    for delta in range(0, max(want, limit - want) + 1):
        for pos in (want - delta, want + delta) if delta else (want,):
            if 0 <= pos <= limit and lines[pos:pos + n] == old:
                return pos
    return None


def apply_hunks(text: str, hunks: tuple[Hunk, ...], blocks: list[tuple[int, int, int, int]] | None = None,
                ) -> tuple[list[str], dict[int, int]] | Hunk:
    """-> (new lines, map post-image line -> patch's new line number), or the hunk that failed.
    blocks: receives per hunk (first old line, old count, first new line, new count), 0-based."""
    src = text.split("\n")
    if src and src[-1] == "":
        src.pop()
    out: list[str] = []
    line_map: dict[int, int] = {}
    pos = 0
    for h in hunks:
        old = [ln.text for ln in h.lines if ln.kind != "+"]
        want = max(h.old_start - 1, 0) if h.old_len else h.old_start
        at = _find(src, old, want) if old else min(want, len(src))
        if at is None or at < pos:
            return h
        out.extend(src[pos:at])
        first_new = len(out)
        for ln in h.lines:
            if ln.kind == "-":
                continue
            out.append(ln.text)
            if ln.new_no:
                line_map[len(out)] = ln.new_no
        pos = at + len(old)
        if blocks is not None:
            blocks.append((at, len(old), first_new, len(out) - first_new))
    out.extend(src[pos:])
    return out, line_map


def build_views(
    series: Series,
    base_reader: Callable[[str], str | None] | None,
) -> tuple[dict[int, list[FileView]], list[ApplyFailure]]:
    """Views per patch. With a base reader (full mode) patch N sees what patches 1..N-1 left."""
    views: dict[int, list[FileView]] = {}
    failures: list[ApplyFailure] = []
    current: dict[str, str | None] = {}  # path -> text after the patches so far; None = fell back
    last: dict[str, FileView] = {}  # path -> the latest full view (its comment state is carried on)
    for patch in series.patches:
        out: list[FileView] = []
        for change in patch.files:
            if change.kind in SKIP_KINDS:
                if change.kind == ChangeKind.DELETED:
                    current[change.path] = None
                continue
            if base_reader is None:
                out.append(hunk_only_view(patch, change))
                continue
            view = _full_view(patch, change, base_reader, current, failures, last)
            out.append(view)
        views[patch.number] = out
    return views, failures


def _full_view(patch: Patch, change: FileChange, base_reader: Callable[[str], str | None],
               current: dict[str, str | None], failures: list[ApplyFailure],
               last: dict[str, FileView] | None = None) -> FileView:
    src_path = change.old_path or change.path
    known_failed = src_path in current and current[src_path] is None
    if change.kind == ChangeKind.ADDED:
        pre: str | None = ""
    elif src_path in current:
        pre = current[src_path]
    else:
        pre = base_reader(src_path)
    if pre is None:
        current[change.path] = None
        if not known_failed:  # one finding per file, not one per patch that touches it again
            failures.append(ApplyFailure(patch.number, change.path, _first_line(change),
                                         "not in the base tree; reviewed from the hunks only"))
        return hunk_only_view(patch, change)
    blocks: list[tuple[int, int, int, int]] = []
    result = apply_hunks(pre, change.hunks, blocks)
    if isinstance(result, Hunk):
        current[change.path] = None
        failures.append(ApplyFailure(patch.number, change.path, result.new_start,
                                     f"hunk {result.header} does not apply to the base; "
                                     "reviewed from the hunks only"))
        return hunk_only_view(patch, change)
    lines, line_map = result
    text = "\n".join(lines) + "\n"
    current[change.path] = text
    if change.old_path:
        current[change.old_path] = None
    new_added = change.added  # a property that walks every hunk line: once, not once per line
    added = frozenset(post for post, new in line_map.items() if new in new_added)
    view = FileView(patch=patch, change=change, text=text, mode=FULL,
                    known=frozenset(range(1, len(lines) + 1)), pre_text=pre, added=added,
                    line_map=line_map)
    if last is not None:
        prev = last.get(src_path)
        if prev is not None and prev.text is pre and change.kind != ChangeKind.ADDED:
            view.follows(prev, blocks)
        last[change.path] = view
    return view


def _first_line(change: FileChange) -> int:
    return change.hunks[0].new_start if change.hunks else 1


# -- a plain folder that may already hold the series applied ------------------------------------------

def reverse_hunk(h: Hunk) -> Hunk:
    """The hunk that undoes `h` (what `git apply -R` applies)."""
    flip = {"+": "-", "-": "+"}
    return Hunk(h.new_start, h.new_len, h.old_start, h.old_len, h.section,
                tuple(HunkLine(flip.get(ln.kind, ln.kind), ln.text, ln.new_no, ln.old_no, ln.mail_line)
                      for ln in h.lines), h.header_mail_line)


def _normal(text: str) -> str:
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return "\n".join(lines) + "\n"


def _chain(text: str, hunk_lists: list[tuple[Hunk, ...]]) -> str | None:
    """`text` with each hunk list applied in turn; None when one does not apply."""
    for hunks in hunk_lists:
        result = apply_hunks(text, hunks)
        if isinstance(result, Hunk):
            return None
        text = "\n".join(result[0]) + "\n"
    return text


class RebuiltBase:
    """A folder holding the series applied, read as its base: the files the series changes answer
    with their rebuilt text, the files it adds are not there (base-tree queries included, so "is this
    used anywhere else?" does not count the series' own uses)."""

    def __init__(self, reader: Callable[[str], str | None], rebuilt: dict[str, str],
                 added: frozenset[str] = frozenset()) -> None:
        self.reader = reader
        self.rebuilt = rebuilt
        self.added = added

    def __call__(self, path: str) -> str | None:
        if path in self.added:
            return None
        return self.rebuilt[path] if path in self.rebuilt else self.reader(path)

    def grep_files(self, word: str, globs: tuple[str, ...] = ("*.c", "*.h", "*.S")) -> list[str] | None:
        import re
        from fnmatch import fnmatch

        found = self.reader.grep_files(word, globs)  # type: ignore[attr-defined]
        if found is None:
            return None
        pat = re.compile(rf"\b{re.escape(word)}\b")
        out = {p for p in found if p not in self.added and p not in self.rebuilt}
        out |= {p for p, text in self.rebuilt.items()
                if any(fnmatch(p.rsplit("/", 1)[-1], g) for g in globs) and pat.search(text)}
        return sorted(out)

    def list_files(self, prefix: str) -> list[str]:
        return [p for p in self.reader.list_files(prefix) if p not in self.added]  # type: ignore[attr-defined]

    def __getattr__(self, name: str):  # anything else: the folder as it is
        return getattr(self.reader, name)


@dataclass(frozen=True, slots=True)
class FolderState:
    reader: Callable[[str], str | None]
    base: int  # touched files that hold the series' base (the patches apply)
    applied: int  # touched files that already hold the series applied (the patches reverse-apply)


def folder_base(series: Series, reader: Callable[[str], str | None]) -> FolderState:
    """Does a plain folder hold the series' base, or the series already applied?

    Per file the series modifies (files it adds, deletes or renames are left as they are): the
    patches apply in order (base), or they reverse-apply from the last and the result applies again
    to the same text (applied; the base is rebuilt that way). A file where both work (a hunk whose
    context survives its own change) follows the other files; alone it counts as base.
    """
    chains: dict[str, list[tuple[Hunk, ...]]] = {}
    skip: set[str] = set()
    added: set[str] = set()
    for patch in series.patches:
        for change in patch.files:
            if change.kind in (ChangeKind.BINARY, ChangeKind.MODE_ONLY):
                continue
            if change.kind == ChangeKind.ADDED and change.path not in chains and change.path not in skip:
                added.add(change.path)
            if change.kind != ChangeKind.MODIFIED or change.old_path not in (None, change.path):
                skip.update(p for p in (change.path, change.old_path) if p)
            elif change.hunks:
                chains.setdefault(change.path, []).append(change.hunks)
    forward: set[str] = set()
    rebuilt: dict[str, str] = {}
    for path, hunk_lists in chains.items():
        if path in skip or path in added or (text := reader(path)) is None:
            continue
        if _chain(text, hunk_lists) is not None:
            forward.add(path)
        back = _chain(text, [tuple(reverse_hunk(h) for h in hunks) for hunks in reversed(hunk_lists)])
        if back is not None and _chain(back, hunk_lists) == _normal(text):
            rebuilt[path] = back
    only_applied = set(rebuilt) - forward
    only_base = forward - set(rebuilt)
    if not only_applied or only_base:  # ambiguous files follow the unambiguous ones; alone: base
        rebuilt = {p: t for p, t in rebuilt.items() if p in only_applied}
    # the files the series adds, when the folder has them too: not at the base
    present = frozenset(p for p in added if reader(p) is not None)
    if not rebuilt and (forward or not present or present != added):
        return FolderState(reader, len(forward), 0)
    if not rebuilt:  # a series that only adds files, all of them already there
        return FolderState(RebuiltBase(reader, {}, present), 0, len(present))
    return FolderState(RebuiltBase(reader, rebuilt, present), len(forward - set(rebuilt)), len(rebuilt))
