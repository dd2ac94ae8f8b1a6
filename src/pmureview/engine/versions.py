"""Version tracking: find vN-1, match its patches, review it the same way, and give every vN finding a
status (`new` / `carried`, with `since`), list the vN-1 findings that are gone (`resolved`), and hand
the vN-1 thread to the review-comment analysis. docs/versions.md explains the rules and the failures.

Two steps around the rule run of vN: `locate()` before it (bad `--since` input fails early, and the
stale-trailer rule needs the previous posting attached to the context), `compare()` after it.
"""

from __future__ import annotations

import re
import sys
from collections import Counter
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ..errors import InputError, PmuError, UsageError
from ..record import dataclass, field, replace
from ..rule.model import Finding
from ..series.match import PatchMatch, as_mapping, function_of, match_patches, norm_subject
from ..series.model import Series
from ..series.thread import ThreadMail, series_msgids, thread_of, to_mbox

if TYPE_CHECKING:
    from pathlib import Path

    from .review import Options, Review


@dataclass
class Previous:
    """The posting vN is compared with, or why there is none (`series` None, `reason` set)."""

    series: Series | None = None
    source: str | None = None  # msgid of its cover/first patch, or the file/--since argument
    found_by: str | None = None  # "since" | "same-source" | "change-id" | "subject"
    reason: str | None = None
    raws: list[bytes] = field(default_factory=list, repr=False)
    older: list[Series] = field(default_factory=list, repr=False)  # vN-2, … present in the same raws
    thread: list[ThreadMail] = field(default_factory=list, repr=False)
    matches: list[PatchMatch] = field(default_factory=list)
    looked: bool = True  # False: nothing to look in (v1, or one revision offline): no stderr line

    @property
    def revision(self) -> int | None:
        return self.series.revision if self.series else None

    def to_dict(self) -> dict:
        return {"revision": self.revision, "source": self.source, "found_by": self.found_by,
                "reason": self.reason}


@dataclass(frozen=True, slots=True)
class Status:
    status: str  # "new" | "carried"
    since: int  # the earliest compared revision where the finding stood


@dataclass
class Versions:
    """What a version-aware review adds to a Review (`review.versions`)."""

    previous: Previous
    status: dict[Finding, Status] = field(default_factory=dict)
    resolved: list[Finding] = field(default_factory=list)
    comments: list[Any] = field(default_factory=list)  # analyses.thread_comments.CommentStatus
    previous_review: Review | None = None

    @property
    def compared(self) -> bool:
        return self.previous.series is not None

    def status_of(self, f: Finding) -> Status | None:
        return self.status.get(f)

    def line(self) -> str:
        """The one stderr line: which posting was compared, or why none ("" when nothing was looked for)."""
        p = self.previous
        if not p.looked:
            return ""
        if p.series is None:
            return f"pmureview: no previous posting compared: {p.reason}"
        how = {"since": "--since", "same-source": "the same source", "change-id": "change-id search",
               "subject": "subject search"}.get(p.found_by or "", p.found_by or "")
        n_new = sum(1 for s in self.status.values() if s.status == "new")
        n_car = len(self.status) - n_new
        tail = f"; {p.reason}" if p.reason else ""
        return (f"pmureview: compared with v{p.revision} ({p.source}, found by {how}): {n_new} new, "
                f"{n_car} carried, {len(self.resolved)} resolved, {len(self.comments)} earlier comments "
                f"open{tail}")


# ---------------------------------------------------------------------------------------------- locate

def locate(series: Series, raws: list[bytes], sources: list[str], options: Options) -> Previous:
    """Find vN-1. Raises UsageError for a `--since` that names this posting, a later one or another
    series; every other failure is a `reason`."""
    since = getattr(options, "since", None)
    if since:
        prev = _from_since(series, since, options)
    elif earlier := [r for r in series.other_revisions if r < series.revision]:
        try:
            prev = _from_raws(series, raws, max(earlier), "same-source", sources[0] if len(sources) == 1 else
                              ", ".join(sources))
        except InputError as exc:  # e.g. an earlier revision that is only a cover letter
            return Previous(reason=" ".join(str(exc).split()))
    elif series.revision <= 1:
        return Previous(reason=f"v{series.revision} is the first posting", looked=False)
    elif len(sources) == 1 and _is_msgid(sources[0]):
        prev = _from_server(series, sources[0], options)
    else:
        return Previous(reason=f"v{series.revision} and no earlier revision in the input; --since names one",
                        looked=False)
    if prev.series is not None:
        prev.matches = match_patches(prev.series, series)
        if since:
            _check_same_series(prev, series, since)
        if not prev.thread:
            prev.reason = f"the v{prev.revision} thread has no replies"
    return prev


def _is_msgid(src: str) -> bool:
    from ..series.source import looks_like_msgid

    return src != "-" and looks_like_msgid(src)


def _read(source: str, options: Options) -> list[bytes]:
    from ..series.source import read_sources

    raws, _label, _stdin = read_sources([source], midmask=options.midmask, config_midmask=options.config_midmask,
                                        fetch_timeout=options.fetch_timeout)
    return raws


def _parse(raws: list[bytes], revision: int | None, label: str) -> Series:
    from ..series.parse import parse_series

    return parse_series(raws, revision=revision, source=label)[0]


def _from_raws(series: Series, raws: list[bytes], revision: int, found_by: str, label: str) -> Previous:
    prev = _parse(raws, revision, label)
    others = []
    for r in prev.other_revisions:
        if r != series.revision:
            try:
                others.append(_parse(raws, r, label))
            except InputError:  # a revision without patches: nothing to exclude or compare
                continue
    exclude = series_msgids(series).union(*(series_msgids(o) for o in others))
    first = prev.cover.mail if prev.cover else prev.patches[0].mail
    return Previous(series=prev, source=first.msgid if found_by != "since" else label, found_by=found_by,
                    raws=raws, older=sorted((o for o in others if o.revision < revision),
                                            key=lambda s: -s.revision),
                    thread=thread_of(raws, prev, exclude=exclude))


def _from_since(series: Series, since: str, options: Options) -> Previous:
    try:
        raws = _read(since, options)
    except InputError as exc:  # a source the user named and that cannot be read: bad input, exit 2
        raise UsageError(f"--since {since}: {' '.join(str(exc).split())}") from None
    try:
        probe = _parse(raws, None, since)
    except InputError as exc:  # readable but holds no posting (an empty thread): one line, go on
        return Previous(reason=f"--since {since}: {exc}")
    revisions = sorted({probe.revision, *probe.other_revisions})
    earlier = [r for r in revisions if r < series.revision]
    if not earlier:
        same = _parse(raws, series.revision, since) if series.revision in revisions else None
        if same is not None and series_msgids(same) & series_msgids(series):
            raise UsageError(f"--since {since}: names the posting under review (v{series.revision}); "
                             "name an earlier one")
        _check_same_series(Previous(series=probe, matches=match_patches(probe, series)), series, since)
        raise UsageError(f"--since {since}: holds v{', v'.join(map(str, revisions))}, not a posting before "
                         f"v{series.revision}")
    try:
        return _from_raws(series, raws, max(earlier), "since", since)
    except InputError as exc:
        return Previous(reason=f"--since {since}: {' '.join(str(exc).split())}")


def _from_server(series: Series, source: str, options: Options) -> Previous:
    from ..series.fetch import normalise_msgid, resolve_midmask
    from ..series.previous import search_previous, search_server

    try:
        ref = normalise_msgid(source)
        mask = options.midmask or ref.midmask or resolve_midmask(None, options.config_midmask)
        hit = search_previous(series, mask, timeout=options.fetch_timeout)
        if hit is None:
            return Previous(reason=f"no v{series.revision - 1} found at {search_server(mask)}")
        raws = _read(hit.msgid, replace(options, midmask=mask))
        prev = _from_raws(series, raws, hit.revision, hit.found_by, hit.msgid)
    except PmuError as exc:
        return Previous(reason=" ".join(str(exc).split()))
    return prev


def _check_same_series(prev: Previous, series: Series, since: str) -> None:
    """`--since` naming another series: different change-ids, or not one patch in common."""
    old = prev.series
    assert old is not None
    if old.change_id and series.change_id and old.change_id != series.change_id:
        raise UsageError(f"--since {since}: another series (change-id {old.change_id}, "
                         f"not {series.change_id})")
    if all(m.match is None for m in prev.matches) and norm_subject(_title(old)) != norm_subject(_title(series)):
        raise UsageError(f"--since {since}: another series (no patch in common with v{series.revision})")


def _title(s: Series) -> str:
    return s.cover.mail.title if s.cover else (s.patches[0].mail.title if s.patches else "")


# --------------------------------------------------------------------------------------------- compare

def previous_options(options: Options, prev: Series) -> Options:
    """The same options, for one earlier revision: no version tracking, and full mode only when its own
    base-commit is in the tree (else hunk-only)."""
    opts = replace(options, revision=prev.revision, since=None, track_versions=False, baseline=None,
                   range=None, base=None, cocci=False)
    if options.tree is not None:
        base = prev.base_commit
        ok = bool(base) and _commit_in(options.tree, base)
        opts = replace(opts, base=base) if ok else replace(opts, tree=None)
    if hasattr(opts, "tree_found"):  # vN's run already said which tree; its base is explicit here
        opts = replace(opts, tree_found=None)
    return opts


def _commit_in(tree: Path, rev: str) -> bool:
    import subprocess  # only when a previous posting names a base: most checks never get here

    r = subprocess.run(["git", "-C", str(tree), "rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}"],
                       capture_output=True, stdin=subprocess.DEVNULL, check=False)
    return r.returncode == 0


def review_raws(raws: list[bytes], options: Options, reviewer: Callable[[list[str], Options], Review]) -> Review:
    """Review raw mails through a temporary mbox (the reviewer takes sources)."""
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory(prefix="pmureview-prev-") as tmp:
        path = Path(tmp) / "previous.mbox"
        path.write_bytes(to_mbox(raws))
        return reviewer([str(path)], options)


def compare(review: Review, prev: Previous, reviewer: Callable[[list[str], Options], Review]) -> Versions:
    """Statuses for `review`'s findings against the previous posting (reviewed here), resolved findings,
    and the review comments still open."""
    out = Versions(previous=prev)
    if prev.series is None:
        return out
    try:
        old_review = review_raws(prev.raws, previous_options(review.options, prev.series), reviewer)
    except PmuError as exc:  # vN is reviewed all the same; the one line says why nothing was compared
        out.previous = replace(prev, series=None, reason=f"v{prev.revision} could not be reviewed: {exc}")
        return out
    out.previous_review = old_review
    old_keys = Counter(finding_key(f, prev.series) for f in old_review.findings)
    # since: walk back through the older revisions present in the same input, while the point stood
    older_keys: list[tuple[int, Counter]] = []
    for s in prev.older:
        try:
            r = review_raws(prev.raws, previous_options(review.options, s), reviewer)
        except PmuError:
            break  # `since` stops at the last revision that could be reviewed
        older_keys.append((s.revision, Counter(finding_key(f, s) for f in r.findings)))
    left = Counter(old_keys)
    for f in review.findings:
        key = finding_key(f, review.series)
        if left[key] > 0:
            left[key] -= 1
            since = prev.series.revision
            for rev, keys in older_keys:
                if keys[key] <= 0:
                    break
                since = rev
            out.status[f] = Status("carried", since)
        else:
            out.status[f] = Status("new", review.series.revision)
    now = Counter(finding_key(f, review.series) for f in review.findings)
    for f in old_review.findings:
        key = finding_key(f, prev.series)
        if now[key] > 0:
            now[key] -= 1
        else:
            out.resolved.append(f)
    out.comments = _comments(prev, review.series)
    return out


def _comments(prev: Previous, current: Series) -> list[Any]:
    try:
        from ..analyses.thread_comments import review_comments
    except ImportError:
        return []
    assert prev.series is not None
    try:
        return list(review_comments(prev.series, prev.thread, current, as_mapping(prev.matches)))
    except Exception as exc:  # a bug there must not lose the review; one line says so
        sys.stderr.write(f"pmureview: review-comment analysis failed: {type(exc).__name__}: {exc}\n")
        return []


def attach_previous(ctx: Any, prev: Previous) -> None:
    """Give the rules (series/stale-trailer) the previous posting, when that analysis exists."""
    if prev.series is None:
        return
    try:
        from ..analyses.trailers_history import PreviousPosting, attach
    except ImportError:
        return
    attach(ctx, PreviousPosting(series=prev.series, thread=prev.thread, matches=as_mapping(prev.matches)))


_DIGITS = re.compile(r"\d+")


def finding_key(f: Finding, series: Series) -> tuple[str, str, str, str]:
    """(rule, path or section, function, normalised code): what "the same point" means across postings.
    Never the line or patch number: those move between revisions."""
    loc = f.location
    if loc.path is None:
        return (f.rule, loc.section or "", "", _DIGITS.sub("#", " ".join(f.message.split())))
    code = f.snippet
    func = ""
    patch = next((p for p in series.patches if p.number == loc.patch), None)
    fc = patch.file(loc.path) if patch else None
    if fc is not None and loc.line:
        func = _function_at(fc, loc.line)
        if code is None and (hl := fc.line(loc.line)) is not None:
            code = hl.text
    text = " ".join((code if code is not None else _DIGITS.sub("#", f.message)).split())
    return (f.rule, loc.path, func, text)


def _function_at(fc: Any, line: int) -> str:
    """The function around post-image `line`: the last signature line above it in its hunk, else the
    hunk's section heading."""
    for h in fc.hunks:
        if not (h.new_start <= line < h.new_start + max(h.new_len, 1)):
            continue
        name = function_of(h.section)
        for ln in h.lines:
            if ln.kind == "-":
                continue
            if ln.new_no is not None and ln.new_no > line:
                break
            if found := function_of(ln.text):
                name = found
        return name or ""
    return ""
