"""Which rules can fire on this series, decided before they are imported.

A rule declares the cheap evidence it needs (`RuleMeta.evidence`: regexes over the hunk lines,
subjects and commit messages) and, for file-scope rules, the paths it reads (`files`). The registry
keeps both for every Python rule file in an index (rebuilt when the file changes), so a rule whose
evidence is absent is neither imported nor run, the way ruff and semgrep prefilter. Pattern rules
derive theirs from the words of their patterns, in hunk-only mode only: in full mode a pattern may
match words of the whole file that the hunks do not show. The text searched is the hunks (added,
removed and context lines, hunk headings, `diff --git` lines with the paths), the subjects,
messages and notes; a declared regex must hold of that text whenever the rule can fire.

`PMUREVIEW_NO_PREFILTER=1` turns it off (a test runs every fixture both ways).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from functools import lru_cache

from .. import lazyre
from ..series.model import Series, path_matches
from .select import matches

_WILD = frozenset("*?[")


@lru_cache(maxsize=8192)
def glob_matches(path: str, globs: tuple[str, ...]) -> bool:
    """path_matches, without compiling a regex for the common `*.c` / plain-name globs (fnmatch
    compiles each glob once per process: ~45 per hook run)."""
    rest = []
    for g in globs:
        if g[:1] == "*" and not _WILD.intersection(g[1:]):
            if path.endswith(g[1:]):  # `*` crosses `/`: the suffix test is the whole match
                return True
        elif not _WILD.intersection(g):
            if path == g or path.rsplit("/", 1)[-1] == g:
                return True
        else:
            rest.append(g)
    return bool(rest) and path_matches(path, rest)


_matches = glob_matches


class Prefilter:
    def __init__(self, text: str, paths: Iterable[str], *, full: bool, select: tuple[str, ...] = (),
                 ignore: tuple[str, ...] = ()) -> None:
        self.text = text
        self.paths = tuple(paths)
        self.full = full
        self.select, self.ignore = select, ignore  # --select/--ignore: unselected rules are not imported
        self._seen: dict[str, bool] = {}

    @classmethod
    def of(cls, series: Series, *, full: bool, select: tuple[str, ...] = (),
           ignore: tuple[str, ...] = ()) -> Prefilter | None:
        if os.environ.get("PMUREVIEW_NO_PREFILTER") == "1":
            return None
        parts: list[str] = []
        paths: list[str] = []
        for patch in series.patches:
            parts += [patch.mail.subject, patch.message, patch.notes, *map(str, patch.trailers)]
            for fc in patch.files:
                paths += [p for p in (fc.path, fc.old_path) if p]
                parts.append(f"diff --git a/{fc.old_path or fc.path} b/{fc.path}")
                parts += [ln.text for h in fc.hunks for ln in h.lines]
                parts.append(" ".join(h.section for h in fc.hunks if h.section))
        if series.cover is not None:
            parts += [series.cover.mail.subject, series.cover.body]
        return cls("\n".join(parts), dict.fromkeys(paths), full=full, select=select, ignore=ignore)

    def wants(self, scope: str, files: Iterable[str], evidence: Iterable[str], rule_id: str = "") -> bool:
        """False only when the rule certainly cannot fire on this series (or is not selected)."""
        if rule_id and ((self.select and not matches(rule_id, self.select)) or
                        (self.ignore and matches(rule_id, self.ignore))):
            return False
        files = tuple(files)
        if scope == "file" and not any(_matches(p, files) for p in self.paths):
            return False
        evidence = tuple(evidence)
        return not evidence or any(self._has(e) for e in evidence)

    def _has(self, regex: str) -> bool:
        if regex not in self._seen:
            search, text = regex, self.text
            lowered = _lowered_pattern(regex)
            if lowered is not None and self._lower() is not None:  # sre's IGNORECASE search is 3-8x
                search, text = lowered, self._lower()  # slower than a plain one over the lowered text
            self._seen[regex] = _search(search, text)
        return self._seen[regex]

    def _lower(self) -> str | None:
        """The text lowercased, when that finds exactly what `(?i)` finds of ASCII words: not when
        the text holds one of the four non-ASCII letters sre's IGNORECASE equates with an ASCII one
        (İ ı ſ K; `(?i)s` matches ſ, whose lower() is itself)."""
        if "_lowered" not in self.__dict__:
            self._lowered = None if any(c in self.text for c in _FOLDS_TO_ASCII) else self.text.lower()
        return self._lowered


def _search(regex: str, text: str) -> bool:
    """Whether `regex` (a declaration: static) finds something in `text`, without sre where a plain
    search is the same: literal words (`get_page|pin_shared_mem`; sre tries every alternative at every
    position: ~60 ms over 500 patches) and a bounded word absent from the text (`\\btypedef\\b`)."""
    words = _plain_words(regex)
    if words is not None:
        return any(w in text for w in words)
    bounded = _BOUNDED.fullmatch(_COMMENT.sub("", regex) if "(?#" in regex else regex)
    if bounded is not None and bounded.group(1) not in text:
        return False
    try:
        return lazyre.compile(regex).search(text) is not None  # compiled once per Python build
    except re.error:
        return True  # a broken declaration must not hide the rule


_FOLDS_TO_ASCII = "\u0130\u0131\u017f\u212a"
_COMMENT = lazyre.compile(r"\(\?#[^)]*\)")
_PLAIN = lazyre.compile(r"[A-Za-z0-9_]+(?:\|[A-Za-z0-9_]+)*")


_BOUNDED = lazyre.compile(r"\\b([A-Za-z0-9_]+)\\b")  # `\bword\b`: the regex cannot match without the word


def _lowered_pattern(regex: str) -> str | None:
    """`(?i)P` as the case-sensitive P' that finds, in the lowered text, what `(?i)P` finds in the
    text: P's literal letters lowered. None unless that is exact: P is ASCII; its escapes are of
    punctuation or of case-neutral classes (\\b \\s \\S \\w \\W \\d \\D, not \\x41 or \\1); its
    groups are (?: ) or (?# ); a range in a [class] with a letter at one end has letters of one case
    at both (`[A-F]` lowered is `[a-f]`; `[A-z]` lowered is not `[a-z]`). The text itself is lowered
    only when no letter of it folds onto ASCII (Prefilter._lower)."""
    if not regex.startswith("(?i)") or not regex.isascii():
        return None
    out: list[str] = []
    body, i = regex[4:], 0
    while i < len(body):
        c = body[i]
        if c == "\\":
            if not _neutral_escape(body[i + 1:i + 2]):
                return None
            out.append(body[i:i + 2])
            i += 2
            continue
        if c == "[":
            end = _class_end(body, i)
            if end is None:
                return None
            out.append(body[i:end + 1].lower())
            i = end + 1
            continue
        if c == "(" and body[i + 1:i + 2] == "?" and body[i + 2:i + 3] not in (":", "#"):
            return None
        out.append(c.lower())
        i += 1
    return "".join(out)


def _neutral_escape(c: str) -> bool:
    return bool(c) and (not c.isalnum() or c in "bBsSwWdD")


def _class_end(body: str, start: int) -> int | None:
    """The index of the `]` closing the class opened at `start`; None when lowering it is not exact."""
    i = start + 1
    if body[i:i + 1] == "^":
        i += 1
    if body[i:i + 1] == "]":  # `[]...]`: a literal ] first
        return None
    items: list[str] = []  # the class's members, escapes as one item
    while i < len(body) and body[i] != "]":
        if body[i] == "\\":
            if not _neutral_escape(body[i + 1:i + 2]):
                return None
            items.append(body[i:i + 2])
            i += 2
        else:
            items.append(body[i])
            i += 1
    if i >= len(body):
        return None
    for k in range(1, len(items) - 1):
        if items[k] == "-":
            lo, hi = items[k - 1], items[k + 1]
            if (lo.isalpha() or hi.isalpha()) and not (
                    len(lo) == len(hi) == 1 and lo.isalpha() and hi.isalpha() and lo.isupper() == hi.isupper()):
                return None
    return i


def _plain_words(regex: str) -> list[str] | None:
    """The alternatives of a regex made of literal words and `|` only (comments dropped), else None."""
    body = _COMMENT.sub("", regex) if "(?#" in regex else regex
    return body.split("|") if _PLAIN.fullmatch(body) else None
