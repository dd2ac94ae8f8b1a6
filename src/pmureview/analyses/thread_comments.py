"""Review comments on the previous posting that the new one leaves unanswered or promised and not done.

A deterministic text check (docs/versions-comments.md):

1. Every mail of the vN-1 thread from someone other than the patch author, that answers a patch of
   the series (In-Reply-To/References lead to the patch's Message-ID), is split into comments: the
   reviewer's own text with the depth-1 quote lines right above it (`>>` lines belong to an earlier
   mail and are skipped; `[...]`-style lines are cuts). Attributions, greetings, sign-offs, trailers
   (Reviewed-by: …) and bare approvals ("looks good") are not comments.
2. A comment counts only when its quote holds ADDED lines (`+…`) that can be found, in order, in one
   hunk of the vN-1 patch. Context-only, removed-only or prose quotes are never reported.
3. The quoted post-image lines must still stand, identical up to whitespace, in the matching vN patch
   (same path), with the quoted added lines still added by it and the line on either side
   unchanged too. Anything else means the code changed: silent.
4. The author's mails below the comment decide: none of them answers it -> `unanswered`; an answer
   that agrees ("will fix", "ack", "good point", "done in next version", ...) without a "but" ->
   `promised`; any other answer (an explanation, a question, a disagreement) -> answered, silent.
   An author mail answers a comment when it quotes a line of the comment's text; a mail that quotes
   none of the reviewer's comments answers all of them with its whole text, and text of the author
   outside any quote that agrees "with the rest" answers the comments it did not quote.

`thread` is any sequence of objects with `mail` (series.model.Message) and `body` (str) attributes,
or `(Message, body)` pairs; the series' own patch mails may be among them (they are skipped).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from ..lazyre import lazy_re
from ..record import dataclass
from ..series.model import FileChange, Hunk, Message, Patch, Series

# -- the result ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CommentStatus:
    kind: str  # "unanswered" | "promised"
    msgid: str  # the reviewer's mail, without <>
    author: str  # the reviewer, "Name <addr>"
    revision: int  # the previous posting's revision
    previous_patch: int
    quote: str  # the quoted diff lines the comment is about, "\n"-joined, with their +/space prefix
    comment: str  # the reviewer's text under the quote
    patch: int | None = None  # where the quoted code stands in vN
    path: str | None = None
    line: int | None = None  # vN post-image line of the last quoted added line

    def as_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "msgid": self.msgid, "author": self.author, "revision": self.revision,
                "previous_patch": self.previous_patch, "quote": self.quote, "comment": self.comment,
                "patch": self.patch, "path": self.path, "line": self.line}

    @property
    def reviewer(self) -> str:
        """The reviewer's first name, as a maintainer would write it ("Oliver")."""
        name = re.sub(r"\s+via\s+.*$", "", self.author.split("<", 1)[0]).strip().strip('"')
        if not name:
            return self.author.strip("<>").split("@", 1)[0]
        first = name.split()[0]
        return first if "," not in name else name.split(",", 1)[-1].split()[0]  # "Last, First"

    @property
    def code(self) -> str:
        """The first quoted added line, trimmed: what the comment is "about"."""
        added = [ln[1:].strip() for ln in self.quote.splitlines() if ln.startswith("+") and ln[1:].strip()]
        text = " ".join((added[-1] if added else "").split())
        return text if len(text) <= 40 else text[:37].rstrip() + "..."

    def summary(self) -> str:
        """One line: "Oliver's comment on v5 about `x = y;` still applies." ("(agreed, not done)" when promised)."""
        line = f"{self.reviewer}'s comment on v{self.revision} about `{self.code}` still applies"
        return line + (" (agreed, not done)." if self.kind == "promised" else ".")


# -- reading mails -------------------------------------------------------------------------------

_CUT = lazy_re(r"^\s*(\[\s*(\.\.\.|…|snip(ped)?|\.\.\.\s*snip\s*\.\.\.|trimmed|cut)\s*\]|\.\.\.|…|<snip>)\s*$", re.I)
_FOOTER = lazy_re(r"^_{20,}\s*$")
_ATTRIBUTION = lazy_re(r"(wrote|writes|said|a écrit|schrieb)\s*:\s*$", re.I)
_TRAILER = lazy_re(r"^\s*[A-Z][A-Za-z-]*-by:\s*\S", re.I)
_GREETING = lazy_re(r"^\s*(thanks|thank you|thx|cheers|regards|best|br|kind regards|best regards|"
                       r"ta|--)\b", re.I)
_APPROVAL = lazy_re(r"^\s*(otherwise[,:]?\s*)?((this|the rest|it|the patch|patch|rest)\s+)?"
                       r"(looks|seems|is)\s+(good|fine|ok|okay|sane|reasonable|correct|great)\b"
                       r"|^\s*lgtm\b|^\s*(nice|neat|great|excellent|good)( (cleanup|clean-up|catch|change|work|"
                       r"one|improvement|simplification|find|idea))?[.!]*\s*$"
                       r"|^\s*(thanks|thank you)( for (this|doing this|fixing this|the (fix|cleanup)))?[.!]*\s*$",
                       re.I)


_QUOTE_MARKS = lazy_re(r"^(?:>[ ]?)+")


def _depth(line: str) -> tuple[int, str]:
    """Quote depth and the text under it: '> +x' -> (1, '+x'), '> > y' / '>> y' -> (2, 'y').
    One space after each '>' belongs to the quoting: '>  int x;' is the context line ' int x;'."""
    m = _QUOTE_MARKS.match(line)
    if not m:
        return 0, line
    return m.group(0).count(">"), line[m.end():]


@dataclass(frozen=True, slots=True)
class _Block:
    """A comment of a mail: the depth-1 quote run above it (None entries are cuts) and its text."""

    quote: tuple[str | None, ...]
    text: tuple[str, ...]


def split_comments(body: str) -> list[_Block]:
    """A reply body as (quote run, text under it) blocks; text before the first quote has no quote."""
    lines = body.replace("\r\n", "\n").split("\n")
    # the signature, or a list's footer (mailman's line of underscores)
    end = next((i for i, ln in enumerate(lines) if ln == "-- " or _FOOTER.match(ln)), len(lines))
    lines = lines[:end]
    blocks: list[_Block] = []
    quote: list[str | None] = []
    text: list[str] = []

    def flush() -> None:
        if quote or any(t.strip() for t in text):
            blocks.append(_Block(tuple(quote), tuple(text)))

    for ln in lines:
        depth, rest = _depth(ln)
        if depth == 0 and _CUT.match(ln):
            if any(t.strip() for t in text):
                flush()
                quote, text = [], []
            quote.append(None)
            continue
        if depth == 0:
            if ln.strip() or text:
                text.append(ln.rstrip())
            continue
        if any(t.strip() for t in text):  # a quote after text starts the next comment
            flush()
            quote, text = [], []
        text = []
        if depth == 1:
            quote.append(None if _CUT.match(rest) else rest.rstrip("\n"))
    flush()
    return blocks


def clean_comment(text: Sequence[str]) -> str:
    """The comment's own words: no attribution, trailers, greetings, sign-off or bare approval."""
    lines = [ln for ln in text if not _TRAILER.match(ln) and not _ATTRIBUTION.search(ln)]
    paras: list[list[str]] = []
    cur: list[str] = []
    for ln in lines:
        if ln.strip():
            cur.append(ln.strip())
        elif cur:
            paras.append(cur)
            cur = []
    if cur:
        paras.append(cur)
    # a greeting paragraph and the short name lines after it close the mail
    for i, para in enumerate(paras):
        if _GREETING.match(para[0]) and all(len(p) <= 3 and all(len(x) < 40 for x in p) for p in paras[i:]):
            paras = paras[:i]
            break
    out = "\n\n".join("\n".join(p) for p in paras).strip()
    if _APPROVAL.match(out) and len(out) < 120:
        return ""
    return out


# -- thread structure ----------------------------------------------------------------------------


def _as_pair(item: Any) -> tuple[Message, str] | None:
    if isinstance(item, tuple) and len(item) == 2:
        mail, body = item
    else:
        mail, body = getattr(item, "mail", None), getattr(item, "body", None)
    if not isinstance(mail, Message) or not isinstance(body, str):
        return None
    return mail, body


def _norm_name(name: str) -> str:
    return " ".join(re.sub(r"\s+via\s+.*$", "", name, flags=re.I).lower().split())


@dataclass
class _Thread:
    mails: dict[str, tuple[Message, str]]  # msgid -> (mail, body), replies only
    patch_of: dict[str, int]  # msgid of a patch mail -> its number (cover: 0)
    emails: set[str]  # the author's addresses
    names: set[str]

    def by_author(self, mail: Message) -> bool:
        return (mail.author_email.lower() in self.emails
                or (bool(mail.author_name) and _norm_name(mail.author_name) in self.names))

    def parents(self, mail: Message) -> list[str]:
        """Ancestors, nearest first: In-Reply-To, then References from the end."""
        out: list[str] = []
        for mid in (mail.in_reply_to, *reversed(mail.references)):
            if mid and mid not in out and mid != mail.msgid:
                out.append(mid)
        return out

    def patch(self, mail: Message) -> int | None:
        """The number of the series mail this reply is ultimately about (0 for the cover letter)."""
        seen: set[str] = set()
        todo = self.parents(mail)
        while todo:
            mid = todo.pop(0)
            if mid in seen:
                continue
            seen.add(mid)
            if mid in self.patch_of:
                return self.patch_of[mid]
            if mid in self.mails:
                todo = self.parents(self.mails[mid][0]) + todo
        return None

    def below(self, msgid: str) -> list[tuple[Message, str]]:
        """Mails that descend from `msgid` (any ancestor link counts)."""
        out = []
        for mid, (mail, body) in self.mails.items():
            if mid == msgid:
                continue
            seen: set[str] = set()
            todo = self.parents(mail)
            while todo:
                p = todo.pop(0)
                if p == msgid:
                    out.append((mail, body))
                    break
                if p in seen or p not in self.mails:
                    continue
                seen.add(p)
                todo += self.parents(self.mails[p][0])
        return out


def _thread(previous: Series, current: Series, thread: Sequence[Any]) -> _Thread:
    patch_of = {p.mail.msgid: p.number for p in previous.patches if p.mail.msgid}
    if previous.cover and previous.cover.mail.msgid:
        patch_of[previous.cover.mail.msgid] = 0
    emails: set[str] = set()
    names: set[str] = set()
    for series in (previous, current):
        heads = [p.mail for p in series.patches] + ([series.cover.mail] if series.cover else [])
        for m in heads:
            if m.author_email:
                emails.add(m.author_email.lower())
            if m.author_name:
                names.add(_norm_name(m.author_name))
    mails: dict[str, tuple[Message, str]] = {}
    for item in thread:
        pair = _as_pair(item)
        if pair is None or not pair[0].msgid or pair[0].msgid in patch_of:
            continue
        mails.setdefault(pair[0].msgid, pair)
    return _Thread(mails, patch_of, emails, names)


# -- code in patches -----------------------------------------------------------------------------


def _ws(text: str) -> str:
    return "".join(text.split())


def _diff_lines(quote: Sequence[str | None]) -> list[list[str]]:
    """The quote's runs of diff lines (kind + text), split at cuts, hunk and file headers."""
    runs: list[list[str]] = [[]]
    for q in quote:
        if q is None or q.startswith(("@@", "diff --git", "+++", "---", "index ")):
            runs.append([])
        elif q.strip() and q[:1] in ("+", "-", " "):
            runs[-1].append(q)
        elif not q.strip():
            # a blank quoted line inside a run is a blank context line (clients strip its space)
            if runs[-1]:
                runs[-1].append(" ")
        else:  # prose inside the quote: not a diff run
            runs.append([])
    for run in runs:  # blank lines after a run's last diff line belong to the prose
        while run and run[-1] == " ":
            run.pop()
    return [r for r in runs if any(x.startswith("+") for x in r)]


def _find_run(run: list[str], patch: Patch) -> list[tuple[FileChange, Hunk, int]]:
    """Where `run` stands contiguously in a hunk of `patch`: (file, hunk, index of its first line)."""
    want = [(x[0], _ws(x[1:])) for x in run]
    hits = []
    for fc in patch.files:
        for h in fc.hunks:
            have = [(ln.kind, _ws(ln.text)) for ln in h.lines]
            for i in range(len(have) - len(want) + 1):
                if have[i : i + len(want)] == want:
                    hits.append((fc, h, i))
    return hits


def _post(h: Hunk) -> list[tuple[str, str, int | None]]:
    """The hunk's post-image lines: (kind, whitespace-free text, new line number)."""
    return [(ln.kind, _ws(ln.text), ln.new_no) for ln in h.lines if ln.kind != "-"]


NEIGHBOURS = 1  # the post-image line on either side must be unchanged too (a fix next to the quote)


def _still_there(run: list[str], old: tuple[FileChange, Hunk, int], patch: Patch) -> tuple[str, int] | None:
    """(path, line) where the quoted code stands unchanged in `patch`, else None (it changed)."""
    fc, h, start = old
    fc_new = patch.file(fc.path)
    if fc_new is None:
        return None
    post_old = _post(h)
    # the run's first post-image line within the old hunk's post-image
    idx = sum(1 for ln in h.lines[:start] if ln.kind != "-")
    want = [(x[0], _ws(x[1:])) for x in run if x[0] != "-"]
    for hn in fc_new.hunks:
        post_new = _post(hn)
        for j in range(len(post_new) - len(want) + 1):
            window = post_new[j : j + len(want)]
            if [(k, t) for k, t, _ in window] != want:
                continue
            if not _same_neighbours(post_old, idx, post_new, j, len(want)):
                continue
            last = next((n for k, _, n in reversed(window) if k == "+"), None)
            return fc_new.path, last or 0
    return None


def _same_neighbours(old: list, i: int, new: list, j: int, n: int) -> bool:
    for d in range(1, NEIGHBOURS + 1):
        for a, b in ((i - d, j - d), (i + n - 1 + d, j + n - 1 + d)):
            if 0 <= a < len(old) and 0 <= b < len(new) and old[a][1] != new[b][1]:
                return False
            if 0 <= a < len(old) and old[a][0] == "+" and not 0 <= b < len(new):
                return False  # an added neighbour vanished from the hunk
    return True


# -- agreement -----------------------------------------------------------------------------------

_AGREE = lazy_re(
    r"\b(will|shall|i'll|we'll|going to|gonna)\s+(fix|do|change|update|drop|remove|address|rework|add|"
    r"move|rename|split|squash|correct|clean|handle|use|take care)"
    r"|\bwill do\b|\b(ack|acked|agreed?|sure|right|indeed|yes|yep|ok|okay|noted)\b[.!,]?\s*$"
    r"|^\s*(ack|acked|agreed?|sure|right|indeed|yes|yep|ok|okay|noted|absolutely|true|correct)\b"
    r"|\bgood (point|catch|idea|suggestion)\b|\byou'?re (right|correct)\b|\byou are (right|correct)\b"
    r"|\bmakes sense\b|\bfixed locally\b|\b(fixed|done|changed|addressed|updated) (locally|in (the )?"
    r"(next|v\d+|new)|for (the )?(next|v\d+))\b|\bwill be (fixed|done|addressed|changed) in\b|\bthanks, fixed\b",
    re.I | re.M,
)
_DISAGREE = lazy_re(
    r"\b(but|however|though|disagree|not sure|don'?t (think|agree|see)|do not (think|agree)|rather not|"
    r"prefer to keep|on purpose|intentional(ly)?|deliberate(ly)?|not (needed|necessary|a problem|an issue))\b"
    r"|\?\s*$",
    re.I | re.M,
)
_REST = lazy_re(r"\b(rest|others?|all|everything|remaining)\b", re.I)


def agrees(answer: str) -> bool:
    """An answer that takes the comment on: "will fix", "good point", ... and no "but" or question."""
    return bool(_AGREE.search(answer)) and not _DISAGREE.search(answer)


def _answers(comment_text: str, siblings: list[str], replies: list[tuple[Message, str]]) -> list[str]:
    """The author's answers to one comment among the author's replies below the reviewer's mail."""
    mine = {_ws(ln) for ln in comment_text.splitlines() if len(_ws(ln)) >= 6}
    theirs = {_ws(ln) for s in siblings for ln in s.splitlines() if len(_ws(ln)) >= 6}
    out: list[str] = []
    for _, body in replies:
        blocks = split_comments(body)
        hit = False
        quoted_any = False
        loose: list[str] = []  # the author's text under no quote of the reviewer's comments
        for b in blocks:
            qs = {_ws(q) for q in b.quote if q}
            text = clean_comment(b.text) or "\n".join(t for t in b.text if t.strip()).strip()
            if qs & (mine | theirs):
                quoted_any = True
            if qs & mine:
                hit = True
                if text:
                    out.append(text)
            elif not qs & theirs and text:
                loose.append(text)
        if not quoted_any:
            whole = "\n".join(loose).strip()
            out.append(whole or "(empty reply)")
        elif not hit:
            general = [t for t in loose if _REST.search(t) and agrees(t)]
            out += general
    return out


# -- the check -----------------------------------------------------------------------------------


def review_comments(previous: Series, thread: Sequence[Any], current: Series,
                    matches: Mapping[int, int]) -> list[CommentStatus]:
    """Comments on vN-1 whose quoted added code stands unchanged in vN and that the author left
    unanswered or agreed to (see the module docstring). Never raises on odd mail."""
    t = _thread(previous, current, thread)
    prev_patches = {p.number: p for p in previous.patches}
    cur_patches = {p.number: p for p in current.patches}
    out: list[CommentStatus] = []
    for msgid, (mail, body) in t.mails.items():
        if t.by_author(mail):
            continue
        number = t.patch(mail)
        if not number or number not in prev_patches:
            continue
        target = cur_patches.get(matches.get(number, -1))
        blocks = split_comments(body)
        texts = [clean_comment(b.text) for b in blocks]
        replies = [r for r in t.below(msgid) if t.by_author(r[0])]
        for block, text in zip(blocks, texts, strict=True):
            if not text or target is None:
                continue
            found = _locate(block, prev_patches[number], target)
            if found is None:
                continue
            quote, path, line = found
            answers = _answers(text, [x for x in texts if x and x != text], replies)
            if not answers:
                kind = "unanswered"
            elif any(agrees(a) for a in answers) and not any(_DISAGREE.search(a) for a in answers):
                kind = "promised"
            else:
                continue
            out.append(CommentStatus(kind=kind, msgid=msgid, author=mail.author, revision=previous.revision,
                                     previous_patch=number, quote=quote, comment=text,
                                     patch=target.number, path=path, line=line))
    out.sort(key=lambda c: (c.previous_patch, c.patch or 0, c.path or "", c.line or 0, c.msgid))
    return out


def _locate(block: _Block, old: Patch, new: Patch) -> tuple[str, str, int] | None:
    """(quote, vN path, vN line) when every quoted run of added lines is found once in the vN-1
    patch and stands unchanged in the vN patch; None otherwise (not code, ambiguous, changed)."""
    runs = _diff_lines(block.quote)
    if not runs:
        return None
    where: tuple[str, int] | None = None
    for run in runs:
        hits = _find_run(run, old)
        if len(hits) != 1:  # not in the patch, or generic lines found in several places
            return None
        where = _still_there(run, hits[0], new)
        if where is None:
            return None
    assert where is not None
    return "\n".join(runs[-1]), where[0], where[1]
