"""Reviewer-style replies: one `.eml` per patch with findings, ready for `git send-email` or `mutt -H`.

The layout follows what kernel reviewers send (ECOSYSTEM §5): group-reply headers, mutt's attribution,
trimmed `> ` quotes of only the lines a comment is about (plus the hunk header), `[...]` where quoted
lines were cut, and the comment as one or two sentences of plain prose under them, wrapped at 72
columns; the longer explanation (the rule's note) once per rule per mail. A reply quotes at most two
thirds of its patch's added lines (QUOTE_SHARE): past that, a comment names its line instead of
quoting it. In re-review mode the reply opens with one line per earlier comment still open
(`earlier_comments`). Nothing is ever sent and no trailer is added.
Everything taken from the original mails (names, subjects, Message-IDs) is data: it goes into header
values and quoted lines, never into file names or paths.
"""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import textwrap
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import (
    format_datetime,
    formataddr,
    getaddresses,
    make_msgid,
    parseaddr,
    parsedate_to_datetime,
)
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import UsageError
from ..record import dataclass, field, replace
from ..rule.model import Finding, Scope
from ..series.model import FileChange, Hunk, Message, Patch

if TYPE_CHECKING:
    from ..analyses.thread_comments import CommentStatus
    from ..engine.review import Review

# Headers are folded only past RFC 5322's hard limit: the 78-column fold of the email package turns a
# long Subject into "Subject:" + a continuation line, which git send-email reads as no subject at all.
POLICY = SMTP.clone(linesep="\n", max_line_length=998)
WIDTH = 72  # prose only; quoted lines are never rewrapped
CONTEXT = 6  # lines of one finding's range quoted whole; longer ranges keep their ends around a [...]
BEFORE = 2  # commit-message lines quoted before the anchored one, back to its sentence's start
AFTER = 2  # commit-message lines quoted after the anchored one, to finish its sentence
QUOTE_SHARE = (2, 3)  # at most 2/3 of a patch's added lines are quoted back in one reply
SNIP = "[...]"
_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_BULLET = re.compile(r"^(\s*(?:[-*]|\d+[.)])\s+)")
ENGINE_PACK = "pmureview/"
MAX_VARIANTS = 1000  # 0001-reply.1.eml … before giving up


# -- identity and dates --------------------------------------------------------------------------


def _git_config(key: str) -> str | None:
    try:
        r = subprocess.run(["git", "config", "--get", key], capture_output=True, text=True, check=False)
    except OSError:
        return None
    return r.stdout.strip() or None


def resolve_sender(sender: str | None) -> tuple[str, str]:
    """(name, address): `--from` > `sendemail.from` > git user.name/user.email (DECISIONS "Replies")."""
    configured = None if sender else _git_config("sendemail.from")
    for origin, raw in (("--from", sender), ("sendemail.from", configured)):
        if raw:
            name, addr = parseaddr(_one_line(raw))
            if "@" not in addr:
                raise UsageError(f"{origin}: not an email address: {raw!r}")
            return name, addr
    addr = _git_config("user.email")
    if addr:
        return _git_config("user.name") or "", addr
    raise UsageError(
        "no sender for the replies: pass --from 'Name <addr>' or set git config sendemail.from or user.email"
    )


def mutt_date(dt: datetime) -> str:
    """mutt's `%a, %b %d, %Y at %I:%M:%S%p %z`, C locale whatever the process locale is."""
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    hour = dt.hour % 12 or 12
    ampm = "AM" if dt.hour < 12 else "PM"
    return (
        f"{_DAYS[dt.weekday()]}, {_MONTHS[dt.month - 1]} {dt.day:02d}, {dt.year} at "
        f"{hour:02d}:{dt.minute:02d}:{dt.second:02d}{ampm} {dt.strftime('%z')}"
    )


def _parse_date(raw: str) -> datetime | None:
    try:
        dt = parsedate_to_datetime(raw)
    except (TypeError, ValueError, IndexError):
        return None
    return dt if dt.tzinfo else dt.replace(tzinfo=UTC)


def _reply_date(original: Message, *, deterministic: bool, now: datetime | None) -> datetime:
    if now is not None:
        return now if now.tzinfo else now.replace(tzinfo=UTC)
    epoch = os.environ.get("SOURCE_DATE_EPOCH", "").strip()
    if epoch.isdigit():
        return datetime.fromtimestamp(int(epoch), UTC)
    if deterministic:  # no clock: the original's own date keeps the output reproducible
        return _parse_date(original.date) or datetime.fromtimestamp(0, UTC)
    return datetime.now(UTC).astimezone()


# -- header helpers ------------------------------------------------------------------------------


def _one_line(value: str) -> str:
    """Header values from mail are data: no CR/LF may reach a header we write."""
    return " ".join(value.split())


def _msgid(raw: str) -> str:
    return "<" + re.sub(r"[\s<>]", "", raw) + ">"


def _addresses(values: Iterable[str]) -> list[tuple[str, str]]:
    return [(_one_line(n), a) for n, a in getaddresses([_one_line(v) for v in values]) if "@" in a]


def _domain(addr: str) -> str:
    dom = re.sub(r"[^A-Za-z0-9.-]", "", addr.rpartition("@")[2]).strip(".")
    return dom or "pmureview.invalid"


def _recipients(mail: Message, sender_addr: str) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """Group reply: To the Reply-To (else the author); Cc the original To + Cc, deduplicated."""
    to = _addresses([mail.reply_to]) if mail.reply_to else []
    if not to and "@" in mail.author_email:
        to = [(_one_line(mail.author_name), _one_line(mail.author_email))]
    seen = {sender_addr.lower(), *(a.lower() for _, a in to)}
    cc: list[tuple[str, str]] = []
    for name, addr in _addresses([*mail.to, *mail.cc]):
        if addr.lower() not in seen:
            seen.add(addr.lower())
            cc.append((name, addr))
    return to, cc


def _join(addrs: list[tuple[str, str]]) -> str:
    return ", ".join(formataddr(a) for a in addrs)


# -- body ----------------------------------------------------------------------------------------


def wrap_prose(text: str, width: int = WIDTH) -> list[str]:
    """Paragraphs wrapped at `width`; list items keep their marker, indented lines are left alone."""
    out: list[str] = []
    for para in re.split(r"\n\s*\n", text.strip()):
        if out:
            out.append("")
        lines = para.splitlines()
        if any(_BULLET.match(ln) or ln[:1] in (" ", "\t") for ln in lines):
            for ln in lines:
                m = _BULLET.match(ln)
                if m:
                    lead = m.group(1)
                    out += _fill(ln[m.end() :], width, lead, " " * len(lead)) or [ln]
                else:  # code or an aligned table: never rewrap
                    out.append(ln.rstrip())
        else:
            out += _fill(" ".join(para.split()), width)
    return out


def _fill(text: str, width: int, first: str = "", rest: str = "") -> list[str]:
    # URLs, symbol names and paths stay whole even when longer than the line
    return textwrap.wrap(
        text, width, initial_indent=first, subsequent_indent=rest,
        break_long_words=False, break_on_hyphens=False,
    )


def sentence(text: str) -> str:
    """A rule message as a sentence in a mail: capital first word (unless it is an identifier), a full stop."""
    text = text.strip()
    first = text.split(" ", 1)[0]
    if first.isalpha() and first.islower():
        text = text[0].upper() + text[1:]
    if text and (text[-1].isalnum() or text[-1] in ")'\"`"):
        text += "."
    return text


def comment_lines(f: Finding, *, prefix: str = "", explain: bool = True) -> list[str]:
    """The rule's message, a blank line, its note (the why), then the `[pmureview: id]` tag."""
    lines = wrap_prose(prefix + sentence(f.message))
    if explain and f.note and f.note.strip():
        lines += ["", *wrap_prose(f.note)]
    lines.append(f"[pmureview: {f.rule}]")
    return lines


def quote(text: str) -> str:
    return "> " + text if text else "> "  # mutt quotes an empty line as "> "


def _hunk_header(h: Hunk) -> str:
    # git leaves out a length of 1; rebuild the header the way it was mailed
    old = f"-{h.old_start}" + (f",{h.old_len}" if h.old_len != 1 else "")
    new = f"+{h.new_start}" + (f",{h.new_len}" if h.new_len != 1 else "")
    tail = f" {h.section}" if h.section else ""
    return f"@@ {old} {new} @@{tail}"


_CONTINUED = re.compile(r"(&&|\|\||[(,=+|&?<>-])\s*$")
STATEMENT_BACK = 2  # lines quoted above the anchored one when its statement starts there


def _statement_start(h: Hunk, li: int) -> int:
    """The anchored line, or the line its statement starts on when it continues the ones above."""
    start = li
    while (start > 0 and li - start < STATEMENT_BACK and h.lines[start - 1].kind != "-"
           and _CONTINUED.search(h.lines[start - 1].text)):
        start -= 1
    return start


def _locate(fc: FileChange, line: int | None) -> tuple[int, int] | None:
    if line is None:
        return None
    for hi, h in enumerate(fc.hunks):
        for li, ln in enumerate(h.lines):
            if ln.new_no == line and ln.kind != "-":
                return hi, li
    return None


@dataclass
class _Body:
    """Builds one reply body; remembers what was quoted last so quotes are not repeated."""

    top: list[str] = field(default_factory=list)  # comments with nothing to quote
    quoted: list[str] = field(default_factory=list)  # attribution follows, then these
    file: str | None = None
    hunk: int | None = None
    last: int = -1  # index of the last quoted line of `hunk`
    explained: set[str] = field(default_factory=set)  # rules whose note was already given
    budget: int | None = None  # added lines that may still be quoted (None: no limit)
    quoted_added: int = 0

    def comment(self, f: Finding, *, prefix: str = "") -> list[str]:
        # a reviewer gives the why once per rule per mail, not under every line it applies to
        first = f.rule not in self.explained
        if f.note and f.note.strip():
            self.explained.add(f.rule)
        return comment_lines(f, prefix=prefix, explain=first)

    def _affordable(self, hunk: Hunk, rows: list[int]) -> bool:
        n = sum(1 for i in rows if hunk.lines[i].kind == "+")
        return self.budget is None or self.quoted_added + n <= self.budget

    def note_top(self, lines: list[str]) -> None:
        if self.top:
            self.top.append("")
        self.top += lines

    def block(self, quoted: list[str], comment: list[str]) -> None:
        if self.quoted:
            self.quoted.append("")
        self.quoted += quoted
        if quoted:
            self.quoted.append("")
        self.quoted += comment

    def section_lines(self, quoted: list[str], f: Finding) -> None:
        self.file = None  # a later file finding quotes its diff header again
        self.block(quoted, self.comment(f))

    def file_line(self, fc: FileChange, f: Finding) -> None:
        pos = _locate(fc, f.location.line)
        if pos is None:  # not on a line of this diff (full mode reads the whole file)
            where = f"{fc.path}:{f.location.line}: " if f.location.line else f"{fc.path}: "
            self.note_top(self.comment(f, prefix=where))
            return
        hi, li = pos
        hunk = fc.hunks[hi]
        end = li
        if f.location.end_line and f.location.end_line > (f.location.line or 0):
            e = _locate(fc, f.location.end_line)
            if e and e[0] == hi:
                end = e[1]
        if self.hunk == hi and li <= self.last:  # already quoted just above: comment under it again
            self.block([], self.comment(f))
            return
        li = _statement_start(hunk, li)
        # only the lines the comment is about; a long range keeps its first and last line
        rows = list(range(li, end + 1)) if end - li < CONTEXT else [li, end]
        if not self._affordable(hunk, rows):
            rows = [li]
            if not self._affordable(hunk, rows):  # over the quote budget: name the line instead
                self.note_top(self.comment(f, prefix=f"{fc.path}:{f.location.line}: "))
                return
        out: list[str] = []
        if self.file != fc.path:
            out.append(quote(fc.diff_header or f"diff --git a/{fc.old_path or fc.path} b/{fc.path}"))
            self.file, self.hunk = fc.path, None
        if self.hunk == hi:  # further down the hunk quoted last: carry on after it
            prev = self.last  # lines skipped since the last quote get a snip marker
        else:
            out.append(quote(_hunk_header(hunk)))
            prev = -1  # the hunk header stands before line 0
        for i in rows:
            if i > prev + 1:
                out.append(SNIP)
            out.append(quote(hunk.lines[i].kind + hunk.lines[i].text))
            self.quoted_added += hunk.lines[i].kind == "+"
            prev = i
        self.hunk, self.last = hi, rows[-1]
        self.block(out, self.comment(f))

    def render(self, attribution: str | None, signature: str | None) -> str:
        lines = list(self.top)
        if self.quoted:
            if lines:
                lines.append("")
            if attribution:
                lines.append(attribution)
            lines += self.quoted
        if signature:
            lines += ["", "-- ", *signature.rstrip("\n").splitlines()]
        return "\n".join(lines) + "\n"


_SENTENCE_END = re.compile(r"[.!?:]['\")]*\s*$")


def _paragraph(lines: list[str], n: int) -> list[str]:
    """Line n (1-based) with the rest of its sentence (a sentence is rarely one line), at most BEFORE
    lines back and AFTER forward within the paragraph. `[...]` where the paragraph was cut."""
    i = n - 1
    start = i
    while (start > 0 and lines[start - 1].strip() and i - start < BEFORE
           and not _SENTENCE_END.search(lines[start - 1])):
        start -= 1
    end = i
    while (end + 1 < len(lines) and lines[end + 1].strip() and end - i < AFTER
           and not _SENTENCE_END.search(lines[end])):
        end += 1
    out = [quote(ln) for ln in lines[start : end + 1]]
    if start > 0 and lines[start - 1].strip():
        out.insert(0, SNIP)
    if end + 1 < len(lines) and lines[end + 1].strip():
        out.append(SNIP)
    return out


def _section_quote(patch: Patch | None, cover_body: str | None, f: Finding) -> list[str] | None:
    loc = f.location
    n = loc.line or 0
    if loc.section == "subject" and patch is not None:
        return [quote(f"Subject: {_one_line(patch.mail.subject)}")]
    text = None
    if loc.section == "message" and patch is not None:
        text = patch.message
    elif loc.section == "cover" and cover_body is not None:
        text = cover_body
    elif loc.section == "trailers" and patch is not None and 0 < n <= len(patch.trailers):
        return [quote(str(patch.trailers[n - 1]))]
    if text is not None:
        lines = text.splitlines()
        if 0 < n <= len(lines):
            return _paragraph(lines, n)
    return [quote(f.snippet)] if f.snippet else None


def _budget(patch: Patch) -> int:
    added = sum(len(fc.added_lines()) for fc in patch.files)
    return added * QUOTE_SHARE[0] // QUOTE_SHARE[1]


def _earlier_lines(comments: Sequence[CommentStatus]) -> list[str]:
    """One line per comment of the previous posting that still applies (never wrapped: one item,
    one line; the code in it is cut to 40 columns, so it stays near the 72 of the prose)."""
    return [_one_line(c.summary()) for c in comments]


def _patch_body(patch: Patch, findings: list[Finding], series_findings: list[Finding],
                earlier: Sequence[CommentStatus] = ()) -> _Body:
    body = _Body(budget=_budget(patch))
    if earlier:
        body.note_top(_earlier_lines(earlier))
    if series_findings:  # no cover letter to answer: the series comments open patch 1's reply
        body.note_top(["About the series as a whole:"])
        for f in series_findings:
            body.note_top(body.comment(f))
    order = {fc.path: i for i, fc in enumerate(patch.files)}
    on_text = [f for f in findings if f.location.path is None]
    on_files = sorted(
        (f for f in findings if f.location.path is not None),
        key=lambda f: (order.get(f.location.path or "", len(order)), f.location.line or 0, f.rule),
    )
    for f in on_text:
        quoted = _section_quote(patch, None, f)
        if quoted is None:
            body.note_top(body.comment(f))
        else:
            body.section_lines(quoted, f)
    for f in _merge_runs(on_files):
        fc = patch.file(f.location.path or "")
        if fc is None:
            where = f"{f.location.path}:{f.location.line}: " if f.location.line else f"{f.location.path}: "
            body.note_top(body.comment(f, prefix=where))
        else:
            body.file_line(fc, f)
    return body


def _merge_runs(findings: list[Finding]) -> list[Finding]:
    """One comment for a run of the same point on adjacent lines (a maintainer says it once)."""
    out: list[Finding] = []
    for f in findings:
        prev = out[-1] if out else None
        if (prev is not None and prev.rule == f.rule and prev.message == f.message
                and prev.location.path == f.location.path and f.location.line is not None
                and 0 < f.location.line - (prev.location.end_line or prev.location.line or 0) <= 2):
            out[-1] = replace(prev, location=replace(prev.location, end_line=f.location.line))
        else:
            out.append(f)
    return out


def _cover_body(cover_body: str, findings: list[Finding], earlier: Sequence[CommentStatus] = ()) -> _Body:
    body = _Body()
    if earlier:
        body.note_top(_earlier_lines(earlier))
    for f in findings:
        quoted = _section_quote(None, cover_body, f) if f.location.section == "cover" else None
        if quoted is None:
            body.note_top(body.comment(f))
        else:
            body.section_lines(quoted, f)
    return body


# -- the mail ------------------------------------------------------------------------------------


def _build(
    original: Message,
    body: _Body,
    findings: list[Finding],
    *,
    sender: tuple[str, str],
    signature: str | None,
    deterministic: bool,
    now: datetime | None,
    earlier: Sequence[CommentStatus] = (),
) -> bytes:
    to, cc = _recipients(original, sender[1])
    name = _one_line(original.author_name) or _one_line(original.author_email)
    odate = _parse_date(original.date)
    attribution = f"On {mutt_date(odate)}, {name} wrote:" if odate else f"{name} wrote:"
    text = body.render(attribution, signature)

    subject = _one_line(original.subject)
    if not subject.lower().startswith("re:"):
        subject = f"Re: {subject}"
    refs: list[str] = []
    for r in (*original.references, original.msgid):
        mid = _msgid(r)
        if mid != "<>" and mid not in refs:
            refs.append(mid)
    if deterministic:
        h = hashlib.sha256(original.msgid.encode("utf-8", "surrogateescape"))
        for f in findings:
            h.update(f"\0{f.rule}\0{f.fingerprint()}\0{f.location.line}".encode())
        for c in earlier:
            h.update(f"\0{c.msgid}\0{c.quote}".encode("utf-8", "surrogateescape"))
        new_id = f"<pmureview.{h.hexdigest()[:24]}@{_domain(sender[1])}>"
    else:
        new_id = make_msgid(idstring="pmureview", domain=_domain(sender[1]))

    msg = EmailMessage(policy=POLICY)
    msg["From"] = formataddr(sender)
    if to:
        msg["To"] = _join(to)
    if cc:
        msg["Cc"] = _join(cc)
    msg["Subject"] = subject
    msg["Date"] = format_datetime(_reply_date(original, deterministic=deterministic, now=now))
    msg["Message-ID"] = new_id
    if _msgid(original.msgid) != "<>":  # a local .patch may have no Message-ID to answer
        msg["In-Reply-To"] = _msgid(original.msgid)
    if refs:
        msg["References"] = " ".join(refs)
    msg.set_content(text, charset="utf-8", cte="8bit")
    return msg.as_bytes(policy=POLICY)


def _write_new(reply_dir: Path, number: int, data: bytes) -> Path:
    """`NNNN-reply.eml`, or `NNNN-reply.K.eml` when taken: an existing file is never overwritten."""
    for k in range(MAX_VARIANTS):
        name = f"{number:04d}-reply.eml" if k == 0 else f"{number:04d}-reply.{k}.eml"
        path = reply_dir / name
        if path.resolve().parent != reply_dir:  # a planted symlink must not lead outside DIR
            continue
        try:
            with open(path, "xb") as fh:  # O_EXCL: also refuses a dangling symlink
                fh.write(data)
        except FileExistsError:
            continue
        return path
    raise UsageError(f"{reply_dir}: too many existing replies for patch {number}")


def split_findings(review: Review) -> tuple[list[Finding], dict[int, list[Finding]]]:
    """Series-level findings (answer the cover letter) and per-patch findings.

    A finding goes to its patch's reply when it can be placed there: it names a patch of the series and
    is not about the cover letter, nor a series-scope finding with nothing to point at. The engine's
    own findings are left out: they describe the run, and a reply goes to the author and the list.
    """
    numbers = {p.number for p in review.series.patches}
    series: list[Finding] = []
    per_patch: dict[int, list[Finding]] = {}
    for f in review.findings:
        if f.rule.startswith(ENGINE_PACK):
            continue  # about pmureview's own run (missing patches, a rule crash), not for the author
        loc = f.location
        meta = review.rules.get(f.rule)
        series_scope = meta is not None and meta.scope is Scope.SERIES
        unplaced = loc.path is None and loc.section is None and series_scope
        if loc.patch in numbers and loc.section != "cover" and not unplaced:
            per_patch.setdefault(loc.patch, []).append(f)
        else:
            series.append(f)
    return series, per_patch


def write_replies(
    review: Review,
    reply_dir: Path,
    *,
    sender: str | None,
    signature: str | None = None,
    deterministic: bool = False,
    now: datetime | None = None,
    earlier_comments: Sequence[CommentStatus] = (),
) -> list[Path]:
    """Write one reply per patch with findings (and one to the cover letter for series findings).

    `earlier_comments` (re-review mode: analyses.thread_comments.CommentStatus of the previous
    posting, unanswered or promised) open the reply to the vN patch they are about, one line each;
    a patch with only those still gets a reply. Returns the files written, in patch order. Clean
    patches get nothing; a clean review writes nothing and needs no sender identity.
    """
    deterministic = deterministic or bool(os.environ.get("SOURCE_DATE_EPOCH", "").strip())
    series_findings, per_patch = split_findings(review)
    patches = sorted(review.series.patches, key=lambda p: p.number)
    cover = review.series.cover
    numbers = {p.number for p in patches}
    earlier: dict[int, list[CommentStatus]] = {}
    for c in earlier_comments:
        earlier.setdefault(c.patch if c.patch in numbers else 0, []).append(c)
    if 0 in earlier and cover is None and patches:  # no cover letter: patch 1's reply opens with them
        earlier.setdefault(patches[0].number, [])[:0] = earlier.pop(0)
    jobs: list[tuple[int, Message, _Body, list[Finding], list[CommentStatus]]] = []
    if (series_findings or 0 in earlier) and cover is not None:
        on_cover = earlier.pop(0, [])
        jobs.append((0, cover.mail, _cover_body(cover.body, series_findings, on_cover), series_findings,
                     on_cover))
        series_findings = []
    elif series_findings and patches:
        per_patch.setdefault(patches[0].number, [])
    for p in patches:
        if p.number not in per_patch and p.number not in earlier:
            continue
        extra = series_findings if p is patches[0] else []
        mine = earlier.get(p.number, [])
        body = _patch_body(p, per_patch.get(p.number, []), extra, mine)
        jobs.append((p.number, p.mail, body, [*extra, *per_patch.get(p.number, [])], mine))
    if not jobs:
        return []

    who = resolve_sender(sender)
    reply_dir.mkdir(parents=True, exist_ok=True)
    reply_dir = reply_dir.resolve()
    written: list[Path] = []
    for number, mail, body, found, old in jobs:
        data = _build(
            mail, body, found, sender=who, signature=signature, deterministic=deterministic, now=now,
            earlier=old,
        )
        written.append(_write_new(reply_dir, number, data))
    return written
