"""Post-images: rebuilt from hunks (hunk-only) or the base blob with the series applied (full mode)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from ..series.model import ChangeKind, FileChange, Hunk, Patch, Series
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


def apply_hunks(text: str, hunks: tuple[Hunk, ...]) -> tuple[list[str], dict[int, int]] | Hunk:
    """-> (new lines, map post-image line -> patch's new line number), or the hunk that failed."""
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
        for ln in h.lines:
            if ln.kind == "-":
                continue
            out.append(ln.text)
            if ln.new_no:
                line_map[len(out)] = ln.new_no
        pos = at + len(old)
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
            view = _full_view(patch, change, base_reader, current, failures)
            out.append(view)
        views[patch.number] = out
    return views, failures


def _full_view(patch: Patch, change: FileChange, base_reader: Callable[[str], str | None],
               current: dict[str, str | None], failures: list[ApplyFailure]) -> FileView:
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
    result = apply_hunks(pre, change.hunks)
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
    return FileView(patch=patch, change=change, text=text, mode=FULL,
                    known=frozenset(range(1, len(lines) + 1)), pre_text=pre, added=added,
                    line_map=line_map)


def _first_line(change: FileChange) -> int:
    return change.hunks[0].new_start if change.hunks else 1
