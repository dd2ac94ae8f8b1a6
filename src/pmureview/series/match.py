"""Which patch of vN is which patch of vN-1: git patch-id, then the subject, then files and functions.

1. `git patch-id --stable` over each patch's diff (the real git; line numbers and whitespace do not
   count): equal ids are the same change (`unchanged`).
2. The normalised subject (the title without `[PATCH …]`, lower case, single spaces, no final
   period): the same patch, reworked (`modified`).
3. What is left is compared by the (path, function) pairs the hunks touch (the function from the
   hunk's own lines or git's section heading). One old patch whose pairs are spread over two or more
   new ones is `split`; two or more old ones whose pairs meet in one new patch are `merged`; a
   one-to-one overlap is `modified`. A new patch that overlaps an old one already matched by
   subject, where that old patch's pairs are shared with it, makes both new patches `split`.
   Anything still alone is `added` (new) or `dropped` (old). Nothing is ever paired on position.
"""

from __future__ import annotations

import re

from ..record import dataclass
from .model import Patch, Series

_SIG = re.compile(r"^(?:[A-Za-z_][\w\s\*]*?\b)?([A-Za-z_]\w*)\s*\(")
_KEYWORDS = {"if", "for", "while", "switch", "return", "sizeof", "do", "else", "case"}


@dataclass(frozen=True, slots=True)
class PatchMatch:
    patch: int | None  # vN patch number, None when dropped
    previous_patch: int | None  # vN-1 patch number, None when added
    match: str | None  # "patch-id" | "subject" | "files" | None
    change: str  # "unchanged" | "modified" | "split" | "merged" | "added" | "dropped"

    def to_dict(self) -> dict:
        return {"patch": self.patch, "previous_patch": self.previous_patch, "match": self.match,
                "change": self.change}


def diff_text(patch: Patch) -> str:
    """The patch's diff rebuilt from the parsed hunks (what `git patch-id` reads)."""
    out: list[str] = []
    for f in patch.files:
        old = f.old_path or f.path
        out.append(f"diff --git a/{old} b/{f.path}")
        out.append(f"--- a/{old}")
        out.append(f"+++ b/{f.path}")
        for h in f.hunks:
            out.append(h.header)
            out.extend(f"{ln.kind}{ln.text}" for ln in h.lines)
    return "\n".join(out) + "\n"


def patch_ids(patches: list[Patch]) -> list[str | None]:
    """One `git patch-id --stable` run for all patches; None for a patch without a diff or when git fails."""
    stream: list[str] = []
    for i, p in enumerate(patches):
        if p.files:
            stream.append(f"commit {i + 1:040x}\n{diff_text(p)}")
    out: list[str | None] = [None] * len(patches)
    if not stream:
        return out
    import subprocess  # only when patches are matched against a previous posting

    try:
        r = subprocess.run(["git", "patch-id", "--stable"], input="".join(stream).encode("utf-8", "replace"),
                           capture_output=True, check=False, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return out
    for line in r.stdout.decode("ascii", "replace").splitlines():
        parts = line.split()
        if len(parts) == 2:
            out[int(parts[1], 16) - 1] = parts[0]
    return out


def norm_subject(title: str) -> str:
    return " ".join(title.lower().split()).rstrip(".")


def function_of(line: str) -> str | None:
    if not line or line[0].isspace() or line.startswith(("#", "/", "*", "}")) or line.rstrip().endswith(";"):
        return None
    m = _SIG.match(line)
    return m.group(1) if m and m.group(1) not in _KEYWORDS else None


def touched(patch: Patch) -> set[tuple[str, str]]:
    """(path, function) pairs the hunks change; (path, "") for changes outside any known function."""
    pairs: set[tuple[str, str]] = set()
    for f in patch.files:
        for h in f.hunks:
            current = function_of(h.section)
            for ln in h.lines:
                if ln.kind != "-" and (name := function_of(ln.text)):
                    current = name
                if ln.kind in "+-":
                    pairs.add((f.path, current or ""))
        if not f.hunks:
            pairs.add((f.path, ""))
    return pairs


def match_patches(previous: Series, current: Series) -> list[PatchMatch]:
    """The patch map, sorted by vN patch (dropped ones last, by vN-1 patch)."""
    old = list(previous.patches)
    new = list(current.patches)
    ids = patch_ids(old + new)
    old_ids, new_ids = ids[:len(old)], ids[len(old):]
    pair: dict[int, tuple[int, str]] = {}  # new number -> (old number, how)
    used_old: set[int] = set()
    for j, q in enumerate(new):  # 1. patch-id
        for i, p in enumerate(old):
            if p.number not in used_old and new_ids[j] and new_ids[j] == old_ids[i]:
                pair[q.number] = (p.number, "patch-id")
                used_old.add(p.number)
                break
    for q in new:  # 2. subject
        if q.number in pair:
            continue
        for p in old:
            if p.number not in used_old and norm_subject(p.mail.title) == norm_subject(q.mail.title):
                pair[q.number] = (p.number, "subject")
                used_old.add(p.number)
                break
    # 3. files and functions
    t_old = {p.number: touched(p) for p in old}
    t_new = {q.number: touched(q) for q in new}
    overlaps: dict[int, list[int]] = {}  # new -> old patches sharing a (path, function)
    for q in new:
        if q.number in pair:
            continue
        overlaps[q.number] = [p.number for p in old if t_old[p.number] & t_new[q.number]]
    by_old: dict[int, list[int]] = {}
    for qn, olds in overlaps.items():
        for pn in olds:
            by_old.setdefault(pn, []).append(qn)
    out: list[PatchMatch] = []
    split_old: set[int] = set()
    for pn, qns in by_old.items():
        partner = next((q for q, (p, _) in pair.items() if p == pn), None)
        olds_of = {qn: overlaps[qn] for qn in qns}
        mine = [qn for qn in qns if len(olds_of[qn]) == 1]
        if (partner is not None and mine) or (partner is None and len(mine) >= 2):
            split_old.add(pn)
    for q in new:
        n = q.number
        if n in pair:
            pn, how = pair[n]
            change = "split" if pn in split_old else ("unchanged" if how == "patch-id" else "modified")
            out.append(PatchMatch(n, pn, how, change))
            continue
        olds = overlaps.get(n, [])
        free = [pn for pn in olds if pn in split_old or pn not in used_old]
        if not free:
            out.append(PatchMatch(n, None, None, "added"))
        elif len(free) >= 2 and all(pn not in split_old for pn in free):
            out.extend(PatchMatch(n, pn, "files", "merged") for pn in free)
            used_old.update(free)
        elif free[0] in split_old:
            out.append(PatchMatch(n, free[0], "files", "split"))
            used_old.add(free[0])
        else:
            out.append(PatchMatch(n, free[0], "files", "modified"))
            used_old.add(free[0])
    matched_old = {m.previous_patch for m in out if m.previous_patch is not None}
    for p in old:
        if p.number in matched_old:
            continue
        # an old patch folded into a new one that kept another old patch's subject: merged
        host = next((m for m in out if m.patch is not None and t_old[p.number] & t_new[m.patch]), None)
        if host is None:
            out.append(PatchMatch(None, p.number, None, "dropped"))
            continue
        out[out.index(host)] = PatchMatch(host.patch, host.previous_patch, host.match, "merged")
        out.append(PatchMatch(host.patch, p.number, "files", "merged"))
    out.sort(key=lambda m: (m.patch is None, m.patch or 0, m.previous_patch or 0))
    return out


def as_mapping(matches: list[PatchMatch]) -> dict[int, int]:
    """vN-1 patch -> vN patch (1-based): for a split, the first vN part; for a merge, the one vN patch."""
    out: dict[int, int] = {}
    for m in matches:
        if m.patch is not None and m.previous_patch is not None:
            out.setdefault(m.previous_patch, m.patch)
    return out
