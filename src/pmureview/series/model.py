"""The series model: own frozen dataclasses; unidiff and email objects never leave the parser."""

from __future__ import annotations

import re
from collections.abc import Iterable
from enum import StrEnum

from ..record import dataclass, field


class ChangeKind(StrEnum):
    ADDED = "added"
    MODIFIED = "modified"
    DELETED = "deleted"
    RENAMED = "renamed"
    BINARY = "binary"
    MODE_ONLY = "mode-only"


@dataclass(frozen=True, slots=True)
class HunkLine:
    kind: str  # "+", "-" or " "
    text: str  # without the prefix and the line end
    old_no: int | None
    new_no: int | None
    mail_line: int | None = None  # 1-based line in the mail (checkpatch's `-:N`)


@dataclass(frozen=True, slots=True)
class Hunk:
    old_start: int
    old_len: int
    new_start: int
    new_len: int
    section: str  # the function context after the second @@
    lines: tuple[HunkLine, ...]
    header_mail_line: int | None = None

    @property
    def header(self) -> str:
        tail = f" {self.section}" if self.section else ""
        return f"@@ -{self.old_start},{self.old_len} +{self.new_start},{self.new_len} @@{tail}"


@dataclass(frozen=True, slots=True)
class FileChange:
    path: str  # post-image path (the old path for a deletion)
    old_path: str | None
    kind: ChangeKind
    hunks: tuple[Hunk, ...] = ()
    old_blob: str | None = None  # abbreviated blob ids from the `index` line
    new_blob: str | None = None
    diff_header: str = ""  # the `diff --git a/… b/…` line, quoted in replies

    @property
    def added(self) -> frozenset[int]:
        return frozenset(ln.new_no for h in self.hunks for ln in h.lines if ln.kind == "+" and ln.new_no)

    @property
    def removed_text(self) -> tuple[str, ...]:
        return tuple(ln.text for h in self.hunks for ln in h.lines if ln.kind == "-")

    def added_lines(self) -> list[HunkLine]:
        return [ln for h in self.hunks for ln in h.lines if ln.kind == "+"]

    def line(self, new_no: int) -> HunkLine | None:
        for h in self.hunks:
            for ln in h.lines:
                if ln.new_no == new_no and ln.kind != "-":
                    return ln
        return None


@dataclass(frozen=True, slots=True)
class Trailer:
    name: str
    value: str

    def __str__(self) -> str:
        return f"{self.name}: {self.value}"


@dataclass(frozen=True, slots=True)
class Message:
    """What every mail of a series carries (cover letter and patches)."""

    msgid: str  # without <>
    subject: str  # the full Subject header, unfolded
    title: str  # the subject without the [PATCH …] prefix
    author_name: str
    author_email: str
    date: str  # raw Date header
    to: tuple[str, ...] = ()
    cc: tuple[str, ...] = ()
    reply_to: str | None = None
    in_reply_to: str | None = None
    references: tuple[str, ...] = ()
    revision: int = 1
    counter: int = 1
    total: int = 1
    prefixes: tuple[str, ...] = ()  # the words inside the [ ] (PATCH, RFC, v5, 10/24, net-next, …)

    @property
    def author(self) -> str:
        return f"{self.author_name} <{self.author_email}>" if self.author_name else self.author_email


@dataclass(frozen=True, slots=True)
class CoverLetter:
    mail: Message
    body: str
    base_commit: str | None = None
    change_id: str | None = None


@dataclass(frozen=True, slots=True)
class Patch:
    number: int  # 1-based position in the series
    mail: Message
    message: str  # the commit message without subject and trailers
    message_start: int  # 1-based mail line of the commit message's first line
    trailers: tuple[Trailer, ...] = ()
    notes: str = ""  # what stands between `---` and the diff
    files: tuple[FileChange, ...] = ()
    base_commit: str | None = None

    @property
    def subject(self) -> str:
        return self.mail.subject

    def file(self, path: str) -> FileChange | None:
        return next((f for f in self.files if f.path == path), None)


@dataclass(frozen=True, slots=True)
class Series:
    revision: int
    total: int
    patches: tuple[Patch, ...]
    cover: CoverLetter | None = None
    missing: tuple[int, ...] = ()
    duplicates: int = 0  # copies dropped
    other_revisions: tuple[int, ...] = ()
    source: str = ""
    from_stdin: bool = False
    notes: tuple[str, ...] = field(default=())  # what the parser skipped and why (non-patch mails, …)

    @property
    def base_commit(self) -> str | None:
        if self.cover and self.cover.base_commit:
            return self.cover.base_commit
        return next((p.base_commit for p in self.patches if p.base_commit), None)

    @property
    def change_id(self) -> str | None:
        return self.cover.change_id if self.cover else None

    @property
    def subject(self) -> str:
        if self.cover:
            return self.cover.mail.subject
        return self.patches[0].subject if self.patches else ""


def path_matches(path: str, globs: Iterable[str]) -> bool:
    """A rule's `files` glob matches the full path or the basename (fnmatch: `*` also crosses `/`)."""
    name = path.rsplit("/", 1)[-1]
    return any((m := _glob_regex(g).match)(path) or m(name) for g in globs)


_GLOBS: dict[str, re.Pattern[str]] = {}


def _glob_regex(glob: str) -> re.Pattern[str]:
    """fnmatch's regex for `glob` (POSIX: no case folding), compiled once per Python build: fnmatch
    compiles each glob in every process (~30 globs a run, 0.2 ms each)."""
    got = _GLOBS.get(glob)
    if got is None:
        from fnmatch import translate

        from .. import lazyre

        got = _GLOBS[glob] = lazyre.compile(translate(glob))
    return got
