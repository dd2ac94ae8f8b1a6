"""Raw mails -> Series: subjects, revisions, cover letter, commit message, trailers, notes, diffs."""

from __future__ import annotations

import re

from .. import lazyre
from ..clock import UTC, datetime
from ..errors import InputError
from ..record import dataclass
from . import rfc822
from .mail import RawMail, addresses, msgid_of, parse_mail
from .model import ChangeKind, CoverLetter, FileChange, Hunk, HunkLine, Message, Patch, Series, Trailer

_BRACKETS = lazyre.compile(r"^\s*((?:\[[^\]]*\]\s*)+)")
_REPLY = lazyre.compile(r"^\s*(re|aw|fwd?)\s*:", re.I)
_COUNTER = lazyre.compile(r"^(\d+)/(\d+)$")
_REVISION = lazyre.compile(r"^v(\d+)$", re.I)
_TRAILER = lazyre.compile(r"^([A-Za-z][A-Za-z0-9-]*[A-Za-z0-9]):\s*(\S.*)$")
_DIFF_START = lazyre.compile(r"^(diff --git |--- (a/|/dev/null)|Index: )")
_BASE = lazyre.compile(r"^base-commit:\s*([0-9a-f]{7,40})\s*$", re.M)
_CHANGE_ID = lazyre.compile(r"^change-id:\s*(\S+)\s*$", re.M)
_KNOWN_TRAILERS = {"fixes", "link", "closes", "cc", "message-id", "change-id", "bug", "patchwork-id"}
# No source file comes near this many lines; a hunk header beyond it is hostile or corrupt, and the
# hunk-only view would have to hold that many (empty) lines.
MAX_LINE = 1_000_000


@dataclass(frozen=True, slots=True)
class Problem:
    """Something the parser could not use; becomes an engine finding (pmureview/…)."""

    rule: str
    patch: int
    message: str


def parse_subject(subject: str) -> tuple[str, tuple[str, ...], int | None, int | None, int | None]:
    """-> (title, prefix words, revision, counter, total). Only [PATCH…]-style prefixes count."""
    m = _BRACKETS.match(subject)
    words: list[str] = []
    title = subject.strip()
    if m:
        for group in re.findall(r"\[([^\]]*)\]", m.group(1)):
            words.extend(group.replace(",", " ").split())
        title = subject[m.end():].strip()
    rev = counter = total = None
    for w in words:
        if (c := _COUNTER.match(w)) and counter is None:
            counter, total = int(c.group(1)), int(c.group(2))
        elif (r := _REVISION.match(w)) and rev is None:
            rev = int(r.group(1))
    return title, tuple(words), rev, counter, total


def _date_key(value: str) -> float:
    try:
        dt = rfc822.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return 0.0
    if dt is None:
        return 0.0
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt.timestamp()


def _message(m: RawMail) -> Message:
    subject = m.get("subject")
    title, words, rev, counter, total = parse_subject(subject)
    name, addr = rfc822.parseaddr(m.get("from"))
    reply_to = m.get("reply-to") or None
    refs = tuple(msgid_of(r) for r in " ".join(m.get_all("references")).split() if r.strip("<>"))
    return Message(
        msgid=msgid_of(m.get("message-id")),
        subject=subject,
        title=title,
        author_name=name,
        author_email=addr,
        date=m.get("date"),
        to=addresses(m.get_all("to")),
        cc=addresses(m.get_all("cc")),
        reply_to=reply_to,
        in_reply_to=msgid_of(m.get("in-reply-to")) or None,
        references=refs,
        revision=rev or 1,
        counter=counter if counter is not None else 1,
        total=total or 1,
        prefixes=words,
    )


def _split_body(body: str) -> tuple[list[str], int, str, int | None]:
    """-> (commit message lines, index of the first, notes, index of the diff start or None)."""
    lines = body.split("\n")
    start = 0
    # an in-body From:/Subject:/Date: block (format-patch for another author) precedes the message
    if lines and re.match(r"^(From|Subject|Date): ", lines[0]):
        while start < len(lines) and lines[start].strip():
            start += 1
    while start < len(lines) and not lines[start].strip():
        start += 1
    diff_at = next((i for i, ln in enumerate(lines) if i >= start and _DIFF_START.match(ln)), None)
    end = diff_at if diff_at is not None else len(lines)
    sep = next((i for i in range(start, end) if lines[i].rstrip() == "---"), None)
    msg_end = sep if sep is not None else end
    notes = "\n".join(lines[sep + 1:end]).strip("\n") if sep is not None else ""
    return lines[start:msg_end], start, notes, diff_at


def _split_trailers(msg_lines: list[str]) -> tuple[list[str], tuple[Trailer, ...]]:
    lines = list(msg_lines)
    while lines and not lines[-1].strip():
        lines.pop()
    i = len(lines)
    while i > 0 and lines[i - 1].strip():
        i -= 1
    block = lines[i:]
    trailers: list[Trailer] = []
    ok = bool(block)
    for ln in block:
        if ln.startswith((" ", "\t")) and trailers:
            trailers[-1] = Trailer(trailers[-1].name, trailers[-1].value + " " + ln.strip())
            continue
        m = _TRAILER.match(ln)
        if not m:
            ok = False
            break
        trailers.append(Trailer(m.group(1), m.group(2).strip()))
    if ok and any(t.name.lower().endswith("-by") or t.name.lower() in _KNOWN_TRAILERS for t in trailers):
        body = lines[:i]
        while body and not body[-1].strip():
            body.pop()
        return body, tuple(trailers)
    return lines, ()


def _file_changes(diff_text: str, mail_offset: int, problems: list[Problem], number: int) -> tuple[FileChange, ...]:
    from unidiff import PatchSet
    from unidiff.errors import UnidiffParseError

    # unidiff stops at a format-patch signature only if it looks like a diff line; cut it off
    diff_text = _cut_signature(diff_text)
    try:
        ps = PatchSet(diff_text)
    except (UnidiffParseError, ValueError, IndexError) as exc:
        problems.append(Problem("pmureview/unparsable", number, f"the diff could not be parsed: {exc}"))
        return ()
    headers = [ln for ln in diff_text.split("\n") if ln.startswith("diff --git ")]
    out: list[FileChange] = []
    for idx, pf in enumerate(ps):
        src = _strip_prefix(pf.source_file)
        tgt = _strip_prefix(pf.target_file)
        # unidiff also calls a lone `@@ -0,0 +1 @@` hunk an added file and `@@ -1 +0,0 @@` a deleted
        # one; `git diff -U0` writes those for an insertion at the top / removal of line 1 of an
        # existing file. Only /dev/null on one side adds or deletes a file.
        if pf.is_binary_file:
            kind = ChangeKind.BINARY
        elif pf.source_file == "/dev/null":
            kind = ChangeKind.ADDED
        elif pf.target_file == "/dev/null":
            kind = ChangeKind.DELETED
        elif getattr(pf, "is_rename", False) and src != tgt:
            kind = ChangeKind.RENAMED
        elif not len(pf):
            kind = ChangeKind.MODE_ONLY
        else:
            kind = ChangeKind.MODIFIED
        path = src if kind == ChangeKind.DELETED else tgt
        if far := next((h for h in pf if max(h.source_start + h.source_length,
                                              h.target_start + h.target_length) > MAX_LINE), None):
            problems.append(Problem("pmureview/unparsable", number,
                                    f"{path}: hunk @@ -{far.source_start},{far.source_length} "
                                    f"+{far.target_start},{far.target_length} @@ claims lines beyond "
                                    f"{MAX_LINE}; this file was not reviewed"))
            continue
        hunks = []
        for h in pf:
            hlines = tuple(
                HunkLine(
                    kind=ln.line_type if ln.line_type in "+- " else " ",
                    text=ln.value.rstrip("\n"),
                    old_no=ln.source_line_no,
                    new_no=ln.target_line_no,
                    mail_line=mail_offset + ln.diff_line_no if ln.diff_line_no else None,
                )
                for ln in h
                if ln.line_type in ("+", "-", " ")
            )
            first = hlines[0].mail_line if hlines else None
            hunks.append(Hunk(h.source_start, h.source_length, h.target_start, h.target_length,
                              (h.section_header or "").strip(), hlines,
                              header_mail_line=first - 1 if first else None))
        old_blob = new_blob = None
        if m := re.search(r"^index ([0-9a-f]+)\.\.([0-9a-f]+)", str(pf.patch_info or ""), re.M):
            old_blob, new_blob = m.group(1), m.group(2)
        header = next((h for h in headers if h.endswith(" b/" + tgt) or h.endswith(" b/" + src)),
                      headers[idx] if idx < len(headers) else f"diff --git a/{src} b/{tgt}")
        out.append(FileChange(path=path, old_path=src if src not in (path, "/dev/null") else None, kind=kind,
                              hunks=tuple(hunks), old_blob=old_blob, new_blob=new_blob, diff_header=header))
    return tuple(out)


_HUNK_COUNTS = lazyre.compile(r"^@@ -\d+(?:,(\d+))? \+\d+(?:,(\d+))? @@")


def _cut_signature(diff_text: str) -> str:
    """Drop a format-patch signature (`-- ` and what follows). Inside a hunk `-- ` is the removal of
    a line reading `- `: the hunk header's counts tell which, as git apply counts them."""
    lines = diff_text.split("\n")
    old = new = 0
    for i, ln in enumerate(lines):
        if old > 0 or new > 0:
            if ln.startswith("\\"):
                continue
            if ln.startswith("-") and old > 0:
                old -= 1
                continue
            if ln.startswith("+") and new > 0:
                new -= 1
                continue
            if (ln.startswith(" ") or ln == "") and old > 0 and new > 0:
                old, new = old - 1, new - 1
                continue
            old = new = 0  # the hunk ended early (unidiff reports it); this line is outside it
        if m := _HUNK_COUNTS.match(ln):
            old, new = int(m.group(1) or 1), int(m.group(2) or 1)
        elif ln == "-- ":
            return "\n".join(lines[:i]) + "\n"
    return diff_text


def _strip_prefix(name: str | None) -> str:
    if not name or name == "/dev/null":
        return name or ""
    return name[2:] if name[:2] in ("a/", "b/") else name


@dataclass
class _Parsed:
    mail: Message
    raw: RawMail
    date: float
    has_diff: bool


def parse_series(raws: list[bytes], *, revision: int | None = None, source: str = "",
                 from_stdin: bool = False) -> tuple[Series, list[Problem]]:
    """Pick one revision of the series in `raws` and parse it. Raises InputError when none is found."""
    if not raws:
        raise InputError(f"{source or 'input'}: empty, no mail found")
    parsed: list[_Parsed] = []
    notes: list[str] = []
    errors: list[str] = []
    for raw in raws:
        try:
            rm = parse_mail(raw)
        except InputError as exc:
            errors.append(str(exc))
            continue
        if not rm.get("subject") and not rm.get("from"):
            errors.append("not a mail: no Subject or From header")
            continue
        msg = _message(rm)
        has_diff = any(_DIFF_START.match(ln) for ln in rm.body.split("\n"))
        if _REPLY.match(msg.subject):
            notes.append(f"skipped a reply: {msg.msgid}")
            continue
        parsed.append(_Parsed(msg, rm, _date_key(msg.date), has_diff))
    if not parsed:
        reason = errors[0] if errors else "only replies, no patch"
        raise InputError(f"{source or 'input'}: {reason}")

    revisions = sorted({p.mail.revision for p in parsed})
    if revision is not None:
        if revision not in revisions:
            have = ", ".join(f"v{r}" for r in revisions)
            raise InputError(f"{source or 'input'}: no revision v{revision} (found {have})")
        chosen = revision
    else:
        # b4's rule: the revision whose first patch (or cover) was sent last wins
        def first_date(rev: int) -> float:
            mails = [p for p in parsed if p.mail.revision == rev and (p.has_diff or p.mail.counter == 0)]
            mails.sort(key=lambda p: p.mail.counter)
            return mails[0].date if mails else -1.0

        chosen = max(revisions, key=lambda r: (first_date(r), r))
    mine = [p for p in parsed if p.mail.revision == chosen]

    cover: CoverLetter | None = None
    by_counter: dict[int, _Parsed] = {}
    duplicates = 0
    problems: list[Problem] = []
    for p in sorted(mine, key=lambda p: (p.date, p.mail.msgid)):
        c = p.mail.counter
        if c == 0 or (not p.has_diff and p.mail.total > 1 and c == 0):
            if cover is None:
                body = p.raw.body
                cover = CoverLetter(mail=p.mail, body=body,
                                    base_commit=(m.group(1) if (m := _BASE.search(body)) else None),
                                    change_id=(m.group(1) if (m := _CHANGE_ID.search(body)) else None))
            else:
                duplicates += 1
            continue
        if not p.has_diff:
            notes.append(f"skipped a mail without a diff: {p.mail.msgid}")
            continue
        if c in by_counter:
            duplicates += 1
            if by_counter[c].mail.msgid != p.mail.msgid:
                problems.append(Problem("pmureview/duplicate-patch", c,
                                        f"two different mails claim patch {c}/{p.mail.total}; "
                                        f"kept <{by_counter[c].mail.msgid}>, ignored <{p.mail.msgid}>"))
            continue
        by_counter[c] = p
    if not by_counter:
        what = "a cover letter with no patches" if cover else "no patch (no mail with a diff)"
        raise InputError(f"{source or 'input'}: {what}")

    total = max([p.mail.total for p in by_counter.values()] + [cover.mail.total if cover else 0])
    patches = []
    for c in sorted(by_counter):
        patches.append(_patch(by_counter[c], c, problems))
    missing = tuple(n for n in range(1, total + 1) if n not in by_counter)
    series = Series(revision=chosen, total=total, patches=tuple(patches), cover=cover, missing=missing,
                    duplicates=duplicates, other_revisions=tuple(r for r in revisions if r != chosen),
                    source=source, from_stdin=from_stdin, notes=tuple(notes))
    return series, problems


def _patch(p: _Parsed, number: int, problems: list[Problem]) -> Patch:
    body = p.raw.body
    msg_lines, start, notes, diff_at = _split_body(body)
    message_lines, trailers = _split_trailers(msg_lines)
    files: tuple[FileChange, ...] = ()
    if diff_at is not None:
        lines = body.split("\n")
        # mail line of body line i (0-based) is header_lines + 1 (blank) + i + 1
        offset = p.raw.header_lines + 1 + diff_at
        files = _file_changes("\n".join(lines[diff_at:]) + "\n", offset, problems, number)
    base = m.group(1) if (m := _BASE.search(body)) else None
    return Patch(number=number, mail=p.mail, message="\n".join(message_lines),
                 message_start=p.raw.header_lines + 2 + start, trailers=trailers, notes=notes,
                 files=files, base_commit=base)


def now_utc() -> datetime:
    return datetime.now(UTC)
