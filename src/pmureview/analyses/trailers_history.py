"""Review trailers carried over a patch whose code changed since they were given.

A `Reviewed-by:`/`Acked-by:`/`Tested-by:` on a vN patch is *stale* when it was already given on the
previous posting (in the vN-1 patch itself, or in a reply of the vN-1 thread to that patch or to its
cover letter) and the vN diff differs materially from the vN-1 diff. Material means the added or
removed lines differ once whitespace, C comment-only lines, context lines and line numbers are set
aside, or the patch touches other files: a rebase or a re-indent is not a change, a changed
condition is. The author may say they kept the tag on purpose: vN's notes below `---` naming the
person or "keep"/"kept" with the tag silence it (the reviewer was told).

Also the hand-over of the previous posting to the rules: `attach(ctx, PreviousPosting(...))` before
the rules run, `previous_of(ctx)` in a rule (None when nothing was compared).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from ..lazyre import lazy_re
from ..record import dataclass, field
from ..series.model import Patch, Series, Trailer
from ..series.rfc822 import parseaddr
from ..views.context import SeriesContext

# thread_comments and difflib load only when a previous posting is compared (never on the hook path)

KINDS = ("reviewed-by", "acked-by", "tested-by")
PREVIOUS_KEY = "pmureview.previous-posting"


@dataclass(frozen=True)
class PreviousPosting:
    series: Series
    thread: Sequence[Any] = ()
    matches: Mapping[int, int] = field(default_factory=dict)  # vN-1 patch number -> vN patch number


def attach(ctx: SeriesContext, previous: PreviousPosting) -> None:
    """Make the previous posting visible to rules; call before the rules run."""
    ctx.memo(PREVIOUS_KEY, lambda: previous)


def previous_of(ctx: SeriesContext) -> PreviousPosting | None:
    found = ctx.memo(PREVIOUS_KEY, lambda: None)
    return found if isinstance(found, PreviousPosting) else None


@dataclass(frozen=True, slots=True)
class StaleTrailer:
    patch: int  # vN patch number
    trailer: Trailer
    index: int  # 1-based position in patch.trailers (the finding's line in section "trailers")
    previous_patch: int
    revision: int  # where it was given (the previous posting)
    given_in: str  # "patch" (carried in the vN-1 patch) | "thread" (a reply on vN-1)
    msgid: str | None  # the reply that gave it
    changed: str  # what changed, for the message


def _who(value: str) -> tuple[str, str]:
    name, addr = parseaddr(value)
    return " ".join(name.lower().split()), addr.lower()


def _same(a: Trailer, b: Trailer) -> bool:
    if a.name.lower() != b.name.lower():
        return False
    (na, ea), (nb, eb) = _who(a.value), _who(b.value)
    return (bool(ea) and ea == eb) or (bool(na) and na == nb)


_TRAILER_LINE = lazy_re(r"^\s*((?:Reviewed|Acked|Tested)-by):\s*(\S.*?)\s*$", re.I)


def _given_in_thread(previous: Series, thread: Sequence[Any], current: Series) -> dict[int, list[tuple[Trailer, str]]]:
    """Trailers given in replies, by vN-1 patch number (0: on the cover letter, for every patch)."""
    from .thread_comments import _FOOTER, _depth, _thread

    t = _thread(previous, current, thread)
    out: dict[int, list[tuple[Trailer, str]]] = {}
    for msgid, (mail, body) in t.mails.items():
        number = t.patch(mail)
        if number is None:
            continue
        for ln in body.split("\n"):
            if ln == "-- " or _FOOTER.match(ln):
                break
            if _depth(ln)[0]:
                continue  # a quoted trailer was given by someone else, earlier
            m = _TRAILER_LINE.match(ln)
            if m:
                out.setdefault(number, []).append((Trailer(m.group(1), m.group(2)), msgid))
    return out


_COMMENT_LINE = lazy_re(r"^(/\*.*|\*.*|//.*|.*\*/)$")


def _material(patch: Patch) -> dict[str, tuple[str, ...]]:
    """Per path, the added and removed lines without whitespace; C comment-only lines dropped."""
    out: dict[str, tuple[str, ...]] = {}
    for fc in patch.files:
        is_c = fc.path.endswith((".c", ".h", ".S"))
        lines = []
        for h in fc.hunks:
            for ln in h.lines:
                if ln.kind == " ":
                    continue
                text = "".join(ln.text.split())
                if not text or (is_c and _COMMENT_LINE.match(text)):
                    continue
                lines.append(ln.kind + text)
        out[fc.path] = tuple(lines)
    return out


def material_change(old: Patch, new: Patch) -> str | None:
    """What changed between two postings of a patch, or None when only whitespace, comments,
    context or line numbers did."""
    a, b = _material(old), _material(new)
    if set(a) != set(b):
        gone, came = sorted(set(a) - set(b)), sorted(set(b) - set(a))
        parts = ([f"no longer touches {', '.join(gone)}"] if gone else []) + (
            [f"now touches {', '.join(came)}"] if came else [])
        return "; ".join(parts)
    import difflib

    differ = 0
    for path in a:
        sm = difflib.SequenceMatcher(a=a[path], b=b[path], autojunk=False)
        differ += sum(max(i2 - i1, j2 - j1) for op, i1, i2, j1, j2 in sm.get_opcodes() if op != "equal")
    if not differ:
        return None
    return f"{differ} changed line{'s' if differ != 1 else ''} in the diff"


_KEPT = lazy_re(r"\b(keep|kept|retain(ed)?|carr(y|ied))\b.{0,40}\b(tags?|r-?bs?|a-?bs?|t-?bs?|"
                   r"reviewed-by|acked-by|tested-by|acks?|reviews?)\b", re.I | re.S)


def _explained(patch: Patch, trailer: Trailer, cover_text: str) -> bool:
    """The author says the tag was kept on purpose: in the patch's notes below `---` any "kept the
    tags" does; in the cover letter's changes only a sentence that also names the person."""
    if _KEPT.search(" ".join(patch.notes.split())):
        return True
    name = _who(trailer.value)[0]
    words = [w for w in re.split(r"[\s.,]+", name) if len(w) > 1]
    for sentence in re.split(r"(?<=[.;\n])", cover_text or ""):
        low = " ".join(sentence.lower().split())
        if _KEPT.search(low) and any(w in low for w in words):
            return True
    return False


def stale_trailers(previous: Series, thread: Sequence[Any], current: Series,
                   matches: Mapping[int, int]) -> list[StaleTrailer]:
    """Review tags of vN given on vN-1 whose patch changed materially since (module docstring)."""
    back: dict[int, list[int]] = {}
    for old, new in matches.items():
        back.setdefault(new, []).append(old)
    prev = {p.number: p for p in previous.patches}
    given = _given_in_thread(previous, thread, current)
    cover_text = current.cover.body if current.cover else ""
    out: list[StaleTrailer] = []
    for p in current.patches:
        olds = back.get(p.number, [])
        if len(olds) != 1 or olds[0] not in prev:
            continue  # added, or merged from several: nothing one-to-one to compare
        old = prev[olds[0]]
        tags = [(i, t) for i, t in enumerate(p.trailers, 1) if t.name.lower() in KINDS]
        if not tags:
            continue
        change = material_change(old, p)
        if change is None:
            continue
        for i, t in tags:
            where: tuple[str, str | None] | None = None
            if any(_same(t, o) for o in old.trailers):
                where = ("patch", None)
            else:
                for tr, msgid in given.get(old.number, []) + given.get(0, []):
                    if _same(t, tr):
                        where = ("thread", msgid)
                        break
            if where is None or _explained(p, t, cover_text):
                continue
            out.append(StaleTrailer(patch=p.number, trailer=t, index=i, previous_patch=old.number,
                                    revision=previous.revision, given_in=where[0], msgid=where[1],
                                    changed=change))
    return out
