"""The structure of a commit message: subject, body paragraphs, trailers, sign-offs and notes.

Rules about the subject, the commit message or its trailers read this view instead of parsing the
text again. It works on the parsed Patch (series/model.py): the parser has already split the mail
into `message` (above the trailer block), `trailers` (the last paragraph, when every line of it is
a trailer) and `notes` (between `---` and the diff). This module re-reads the message and the
trailers as one text, because real trailer blocks are often not what the parser accepts: a
`[name: note]` line between sign-offs, a wrapped `Fixes:` line, or tags split over two paragraphs
leave them in `message`.

Coordinates follow the findings model (docs/design.md, DECISIONS "Findings not on a file line"):
a line of `patch.message` is `("message", n)`, n 1-based within it; an entry of `patch.trailers` is
`("trailers", n)`, n its 1-based position; the subject is `("subject", 1)`; a cover letter's body is
`("cover", n)`. `mail_line` is the 1-based line in the mail where it can be told (the trailer
block is assumed to follow the message after one blank line, as git writes it).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from ..lazyre import lazy_re
from ..record import dataclass
from ..series.rfc822 import parseaddr

if TYPE_CHECKING:
    from ..series.model import CoverLetter, Patch
    from ..views.context import PatchContext, SeriesContext

_BRACKETS = lazy_re(r"^\s*((?:\[[^\]]*\]\s*)+)")
# one subsystem prefix component: "KVM", "arm64", "kselftest/arm64", "dt-bindings"; no spaces
_PREFIX = lazy_re(r"([A-Za-z0-9][\w./+-]*):\s+")
_TRAILER = lazy_re(r"^([A-Za-z][A-Za-z0-9-]*[A-Za-z0-9])[ \t]*:[ \t]*(\S.*)$")
# trailer keys that are not "<something>-by" (git interpret-trailers accepts any; the kernel uses these)
_KEYS = {"fixes", "link", "closes", "cc", "message-id", "change-id", "bug", "buglink", "patchwork-id",
         "references", "fixed-by"}
_PERSON_KEYS = {"cc"}
_ANNOTATION = lazy_re(r"^\s*\[[^\]]*(?:\]\s*)?$")  # "[maz: fixed the build]" between sign-offs
_FIXES_OK = lazy_re(r'^Fixes: [0-9a-f]{12,40} \("(?:.+)"\)$')
_FIXES_ID = lazy_re(r"^(?:commit\s+)?([0-9a-fA-F]{5,40})\b")
_DIFFSTAT = lazy_re(r"^\s*(?:\S.*\|\s+(?:\d+|Bin)\b|\d+ files? changed\b|(?:create|delete) mode \d+)")
_QUOTED = lazy_re(r"^\s*>")
_VIA = lazy_re(r"\s+via\s+.*$", re.I)  # "Name via B4 Relay", "Name via kvmarm" (list From rewriting)


@dataclass(frozen=True, slots=True)
class Line:
    """One line of the commit text where a finding can be anchored."""

    text: str
    section: str  # subject | message | trailers | cover
    line: int  # 1-based within the section
    mail_line: int | None = None

    @property
    def at(self) -> tuple[str, int]:
        """(section, line) as Rule.at_section takes them."""
        return self.section, self.line


@dataclass(frozen=True, slots=True)
class Paragraph:
    lines: tuple[Line, ...]

    @property
    def text(self) -> str:
        return "\n".join(ln.text for ln in self.lines)

    @property
    def first(self) -> Line:
        return self.lines[0]


@dataclass(frozen=True, slots=True)
class Person:
    name: str
    email: str

    def __str__(self) -> str:
        return f"{self.name} <{self.email}>" if self.name else self.email

    def same(self, other: Person) -> bool:
        """The same person: the same address, or (two addresses of one person) the same name."""
        if self.email and _norm_addr(self.email) == _norm_addr(other.email):
            return True
        a, b = _norm_name(self.name), _norm_name(other.name)
        return bool(a) and " " in a and a == b


@dataclass(frozen=True, slots=True)
class TrailerLine:
    key: str  # as written ("Signed-off-by", "fixes")
    value: str  # continuation lines joined with one space
    lines: tuple[Line, ...]  # the first one starts with the key
    person: Person | None = None  # for "*-by" and Cc trailers with an address

    @property
    def name(self) -> str:
        return self.key.lower()

    @property
    def anchor(self) -> Line:
        return self.lines[0]

    @property
    def wrapped(self) -> bool:
        """Continued on a line that does not start with white space (mail wrapping, not folding)."""
        return any(not ln.text[:1].isspace() for ln in self.lines[1:])


@dataclass(frozen=True, slots=True)
class FixesTag:
    trailer: TrailerLine
    commit: str | None  # the id as written
    title: str | None  # the quoted subject, when one is given
    problems: tuple[str, ...]  # what differs from `Fixes: <12+ hex> ("<subject>")`, checkpatch's part
    split: bool  # a blank line separates it from the following trailers (not checkpatch's)

    @property
    def well_formed(self) -> bool:
        return not self.problems and not self.split


@dataclass(frozen=True, slots=True)
class CommitMessage:
    number: int  # patch number; 0 for the cover letter
    is_cover: bool
    subject: Line  # the full Subject header
    tag: str  # "[PATCH v3 02/10]" (every leading bracket group), "" when none
    tag_words: tuple[str, ...]  # the words inside the brackets
    title: str  # the subject after the bracket tag
    prefixes: tuple[str, ...]  # ("KVM", "arm64") from "KVM: arm64: Fix foo"
    summary: str  # the title after the prefixes
    sender: Person  # the mail's From:
    lines: tuple[Line, ...]  # the commit text above the cut line (message, then trailers)
    paragraphs: tuple[Paragraph, ...]  # of `lines`, blank lines dropped
    body: tuple[Paragraph, ...]  # the paragraphs before the trailer block
    trailer_blocks: tuple[tuple[TrailerLine, ...], ...]  # trailer paragraphs at the end, in order
    signoffs: tuple[TrailerLine, ...]  # every Signed-off-by above the cut line, in order
    fixes: tuple[FixesTag, ...]
    notes: tuple[str, ...]  # below the cut line, without the diffstat
    diffstat: tuple[str, ...]

    @property
    def rfc(self) -> bool:
        return any(w.upper() == "RFC" for w in self.tag_words)

    @property
    def trailers(self) -> tuple[TrailerLine, ...]:
        return tuple(t for block in self.trailer_blocks for t in block)

    @property
    def trailers_contiguous(self) -> bool:
        """False when a blank line or other text splits the trailers at the end into paragraphs."""
        return len(self.trailer_blocks) <= 1

    @property
    def sender_signoff(self) -> TrailerLine | None:
        return next((s for s in reversed(self.signoffs) if s.person and s.person.same(self.sender)), None)

    @property
    def sender_signoff_last(self) -> bool:
        return bool(self.signoffs) and self.sender_signoff is self.signoffs[-1]

    def line_at(self, section: str, line: int) -> Line | None:
        return next((ln for ln in self.lines if ln.section == section and ln.line == line), None)


# -- entry points ------------------------------------------------------------------------------------

def of(ctx: PatchContext) -> CommitMessage | None:
    """The analysis of a patch rule's patch; None under `check --files` (no commit message there)."""
    if ctx.series.files_mode:
        return None
    return for_patch(ctx.series, ctx.patch)


def for_patch(series: SeriesContext, patch: Patch) -> CommitMessage:
    """The analysis of one patch, computed once per run."""
    return series.memo(("commitmsg", patch.number), lambda: analyse_patch(patch))


def analyse_patch(patch: Patch) -> CommitMessage:
    msg = patch.message.split("\n") if patch.message else []
    lines = [Line(t, "message", i, patch.message_start + i - 1) for i, t in enumerate(msg, 1)]
    if patch.trailers:
        first = patch.message_start + (len(msg) + 1 if msg else 0)
        if lines:
            lines.append(Line("", "", 0))  # the blank line git puts before the trailer block
        lines += [Line(str(t), "trailers", i, first + i - 1) for i, t in enumerate(patch.trailers, 1)]
    notes, stat = _split_notes(patch.notes)
    return _build(patch.number, False, patch.mail, lines, notes, stat)


def analyse_cover(cover: CoverLetter) -> CommitMessage:
    text = cover.body.split("\n")
    cut = next((i for i, t in enumerate(text) if t.rstrip() == "---"), len(text))
    lines = [Line(t, "cover", i) for i, t in enumerate(text[:cut], 1)]
    notes, stat = _split_notes("\n".join(text[cut + 1:]))
    return _build(0, True, cover.mail, lines, notes, stat)


# -- the pieces ---------------------------------------------------------------------------------------

def split_subject(subject: str) -> tuple[str, str, tuple[str, ...], str]:
    """-> (bracket tag, title, prefixes, summary) of a Subject header."""
    subject = " ".join(subject.split())
    m = _BRACKETS.match(subject)
    tag = m.group(1).strip() if m else ""
    title = subject[m.end():].strip() if m else subject.strip()
    prefixes: list[str] = []
    pos = 0
    while (p := _PREFIX.match(title, pos)) and len(prefixes) < 6:
        prefixes.append(p.group(1))
        pos = p.end()
    return tag, title, tuple(prefixes), title[pos:]


def person(value: str) -> Person | None:
    """The person of a trailer value ("Name <addr>", "addr", "Name <addr> # v5.10+")."""
    value = value.split("#", 1)[0].strip()
    if "@" not in value:
        return None
    name, addr = parseaddr(value)
    if not addr or "@" not in addr:
        return None
    return Person(name.strip(), addr.strip())


def is_trailer_key(key: str) -> bool:
    k = key.lower()
    return k.endswith("-by") or k in _KEYS


def _build(number: int, is_cover: bool, mail, lines: list[Line], notes: tuple[str, ...],
           stat: tuple[str, ...]) -> CommitMessage:
    tag, title, prefixes, summary = split_subject(mail.subject)
    paragraphs = _paragraphs(lines)
    blocks: list[tuple[TrailerLine, ...]] = []
    for para in reversed(paragraphs):
        parsed = _trailer_paragraph(para)
        if parsed is None:
            break
        blocks.insert(0, parsed)
    body = paragraphs[: len(paragraphs) - len(blocks)]
    signoffs = tuple(t for t in _all_trailers(paragraphs) if t.name == "signed-off-by")
    fixes = tuple(_fixes(t, i < len(blocks) - 1) for i, block in enumerate(blocks)
                  for t in block if t.name == "fixes")
    sender = Person(_VIA.sub("", mail.author_name or "").strip(), mail.author_email or "")
    return CommitMessage(
        number=number, is_cover=is_cover, subject=Line(mail.subject, "subject", 1), tag=tag,
        tag_words=tuple(mail.prefixes), title=title, prefixes=prefixes, summary=summary, sender=sender,
        lines=tuple(ln for ln in lines if ln.section), paragraphs=tuple(paragraphs), body=tuple(body),
        trailer_blocks=tuple(blocks), signoffs=signoffs, fixes=fixes, notes=notes, diffstat=stat)


def _paragraphs(lines: list[Line]) -> list[Paragraph]:
    out: list[Paragraph] = []
    cur: list[Line] = []
    for ln in lines:
        if ln.text.strip():
            cur.append(ln)
        elif cur:
            out.append(Paragraph(tuple(cur)))
            cur = []
    if cur:
        out.append(Paragraph(tuple(cur)))
    return out


def _trailer_paragraph(para: Paragraph) -> tuple[TrailerLine, ...] | None:
    """The trailers of a paragraph made only of trailers (plus `[note]` lines), else None."""
    out: list[TrailerLine] = []
    for t, rest_ok in _scan(para.lines):
        if t is None and not rest_ok:
            return None
        if t is not None:
            out.append(t)
    return tuple(out) if out else None


def _all_trailers(paragraphs: list[Paragraph]) -> list[TrailerLine]:
    """Every trailer line of the commit text, wherever it stands (a sign-off is a sign-off)."""
    return [t for para in paragraphs for t, _ok in _scan(para.lines) if t is not None]


def _scan(lines: tuple[Line, ...]):
    """Yield (trailer, True) per trailer, (None, True) per `[note]` line, (None, False) per other line."""
    i = 0
    while i < len(lines):
        ln = lines[i]
        m = _TRAILER.match(ln.text)
        if not m or not is_trailer_key(m.group(1)) or _QUOTED.match(ln.text):
            yield None, bool(_ANNOTATION.match(ln.text))
            i += 1
            continue
        group = [ln]
        value = m.group(2).strip()
        i += 1
        while i < len(lines):
            nxt = lines[i].text
            folded = nxt[:1] in (" ", "\t")
            # a Fixes: line whose ("subject") is still open goes on until it is closed
            open_title = m.group(1).lower() == "fixes" and _unbalanced(value) and not _TRAILER.match(nxt)
            if not (folded or open_title):
                break
            group.append(lines[i])
            value += " " + nxt.strip()
            i += 1
        who = person(value) if m.group(1).lower().endswith("-by") or m.group(1).lower() in _PERSON_KEYS else None
        yield TrailerLine(m.group(1), value, tuple(group), who), True


def _unbalanced(value: str) -> bool:
    return value.count("(") > value.count(")") or value.count('"') % 2 == 1


def _fixes(t: TrailerLine, split: bool) -> FixesTag:
    problems: list[str] = []
    if len(t.lines) > 1:
        problems.append(f"it is wrapped over {len(t.lines)} lines")
    m = _FIXES_ID.match(t.value)
    commit = m.group(1) if m else None
    title = None
    if (q := re.search(r'\("(.*)"\)\s*$', t.value)) is not None:
        title = q.group(1)
    if t.key != "Fixes":
        problems.append(f"the tag is spelled '{t.key}:'")
    if commit is None:
        problems.append("it does not start with a commit id")
    else:
        if len(commit) < 12:
            problems.append(f"the commit id has {len(commit)} characters, not 12 or more")
        if commit != commit.lower():
            problems.append("the commit id is not lower case")
        if t.value.lower().startswith("commit"):
            problems.append("'commit' before the id")
        if title is None:
            problems.append("the subject is not given as (\"<subject>\")")
    if not problems and not _FIXES_OK.match(t.anchor.text.strip()):
        problems.append("it is not of the form Fixes: <id> (\"<subject>\")")
    return FixesTag(t, commit, title, tuple(problems), split)


def _split_notes(notes: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(the notes below the cut line, the diffstat) — git puts the diffstat last."""
    lines = notes.split("\n") if notes else []
    at = next((i for i, t in enumerate(lines) if _DIFFSTAT.match(t)), len(lines))
    text = lines[:at]
    while text and not text[-1].strip():
        text.pop()
    return tuple(text), tuple(t for t in lines[at:] if t.strip())


def _norm_addr(addr: str) -> str:
    """user+tag@host and user@host are one mailbox."""
    local, _, host = addr.strip().lower().partition("@")
    return f"{local.split('+', 1)[0]}@{host}"


def _norm_name(name: str) -> str:
    name = _VIA.sub("", name.strip().strip("\"'")).strip()
    return " ".join(name.casefold().split())


# -- what the message rules look for -----------------------------------------------------------------

# Lines that address the reviewers rather than describe the change (they belong below `---`).
# "Changes in v2:", "Changes since the last version", "Changelog:" (not "Changes:", which may list
# what the patch itself changes)
_CHANGELOG = lazy_re(r"^(?:(?:changes|changelog|change[ -]log|revision history)\b(?=.{0,40}$)"
                     r"(?=.*(?:\bv\d+\b|\brfc\b|(?:previous|last|earlier) (?:version|revision|posting|series|spin)))"
                     r"|(?:changelog|change[ -]log|revision history):?\s*$)", re.I)
_VERSION_NOTE = lazy_re(r"^[-*]?\s*\(?v\d+(?:\s*(?:->|-->|→|to|\.\.|vs\.?)\s*v?\d+)?\)?\s*:", re.I)
_BASED_ON = lazy_re(r"^(?:this (?:patch|series|version|is)\s+(?:is\s+)?)?(?P<verb>based|rebased|applies"
                    r"(?: cleanly)?|applied)\s+(?:on(?:to)?(?: top of)?|against)\s+(?P<what>.+)$", re.I)
_TREEISH = lazy_re(r"\S/\S|\bfor-next\b|\blinux-next\b|\bnext\b|\bmainline\b|\bmaster\b|\bmain\b|-rc\d|"
                   r"\bv[2-7]\.\d+\b|\b[0-9a-f]{12,40}\b|\bbranch\b|\btree\b|\btag\b", re.I)
_ATTRIBUTION = lazy_re(r"\b(?:patch(?:es)?|work|code|suggestion|idea|spec(?:ification)?|ARM ARM|DDI\w*|"
                       r"manual|documentation|discussion|feedback|by|from)\b", re.I)
# "This patch ..." / "In this patch, ..." at the start of a sentence (submitting-patches.rst:
# describe the change in imperative mood)
_THIS_PATCH = lazy_re(r"(?:^|(?<=[.!?:;])\s+)((?:In|With)\s+this\s+(?:patch|commit)\b|This\s+(?:patch|commit)\b(?!'s))")
_COMMIT_REF = lazy_re(r"\b[0-9a-f]{8,40}\b|\bcommit\s+[0-9a-f]{7,}", re.I)
# downstream trees' tags (Android common kernel, ChromeOS)
VENDOR_TAGS = ("ANDROID", "FROMLIST", "FROMGIT", "UPSTREAM", "BACKPORT", "CHROMIUM", "NOUPSTREAM", "FROMTREE")
_ABBREVIATION = lazy_re(r"(?:\betc|\be\.g|\bi\.e|\bvs|\bal|\bapprox)\.$", re.I)


def meta_notes(cm: CommitMessage) -> list[tuple[Line, str]]:
    """(line, what) per paragraph above the cut line that starts with a note to the reviewers:
    a version changelog, 'Based on <branch>', 'Applies on top of ...'."""
    out: list[tuple[Line, str]] = []
    for para in cm.paragraphs:
        prev_trailer = False
        for i, ln in enumerate(para.lines):
            text = ln.text.strip()
            if i == 0 or prev_trailer:
                what = _meta_note(text)
                if what:
                    out.append((ln, what))
                    break
            m = _TRAILER.match(ln.text)
            prev_trailer = bool(m and is_trailer_key(m.group(1)))
    return out


def _meta_note(text: str) -> str | None:
    if _CHANGELOG.match(text) or _VERSION_NOTE.match(text):
        return "a version changelog"
    m = _BASED_ON.match(text)
    if m is None:
        return None
    verb, what = m.group("verb").lower(), m.group("what")
    if verb in ("based", "applied") and (not _TREEISH.search(what) or _ATTRIBUTION.search(what)):
        return None
    return "a note on the base the patch applies to"


def this_patch_phrases(cm: CommitMessage) -> list[tuple[Line, str]]:
    """(line, phrase) for each sentence of the body that starts with 'This patch' / 'In this patch'
    / 'This commit'. Quoted and indented (code, log) lines are skipped; 'This commit' right after a
    commit id names that commit, not the patch."""
    out: list[tuple[Line, str]] = []
    for para in cm.body:
        kept = [ln for ln in para.lines if not _QUOTED.match(ln.text) and not ln.text.startswith(("\t", "    "))]
        text, starts = "", []
        for ln in kept:
            starts.append(len(text))
            text += ln.text.strip() + "\n"
        for m in _THIS_PATCH.finditer(text):
            phrase = " ".join(m.group(1).split())
            if phrase.lower().endswith("commit") and _COMMIT_REF.search(text[: m.start(1)]):
                continue
            idx = max(i for i, st in enumerate(starts) if st <= m.start(1))
            out.append((kept[idx], phrase))
    return out


def vendor_tag(cm: CommitMessage) -> str | None:
    """A downstream tree's tag opening the subject ('ANDROID: KVM: arm64: ...')."""
    return cm.prefixes[0] if cm.prefixes and cm.prefixes[0] in VENDOR_TAGS else None


def trailing_period(cm: CommitMessage) -> bool:
    """The subject's summary ends with one full stop (not '...', not 'etc.')."""
    s = cm.summary.rstrip()
    return s.endswith(".") and not s.endswith("..") and not _ABBREVIATION.search(s)


# -- subsystem prefixes ---------------------------------------------------------------------------------

KVM_ARM64 = "kvm-arm64"
KVM = "kvm"  # generic KVM code and the KVM documentation and selftests
OTHER = "other"
_KVM_ARM64_PATHS = lazy_re(r"^(?:arch/arm64/kvm/|arch/arm64/include/(?:uapi/)?asm/kvm|include/kvm/arm_)")
_KVM_PATHS = lazy_re(r"^(?:virt/kvm/|include/(?:uapi/)?linux/kvm|include/trace/events/kvm|Documentation/virt/kvm/|"
                     r"tools/testing/selftests/kvm/)")


def path_area(path: str) -> str:
    if _KVM_ARM64_PATHS.match(path):
        return KVM_ARM64
    if _KVM_PATHS.match(path):
        return KVM
    return OTHER


def kvm_arm64_only(paths: list[str]) -> bool:
    """The paths are KVM/arm64 code (plus generic KVM headers, docs, selftests): 'KVM: arm64:'."""
    areas = {path_area(p) for p in paths}
    return KVM_ARM64 in areas and OTHER not in areas


def misspelt_kvm_arm64(prefixes: tuple[str, ...]) -> int:
    """How many leading prefixes spell 'KVM: arm64:' another way ('arm64: kvm:', 'kvm: arm64:',
    'KVM/arm64:', 'arm64/kvm:', 'KVM: ARM64:'); 0 when they do not (or spell it right)."""
    first = [t for t in prefixes[0].split("/") if t] if prefixes else []
    used = 1 if len(first) >= 2 else 2
    tokens = first + ([t for t in prefixes[1].split("/") if t] if used == 2 and len(prefixes) > 1 else [])
    if len(tokens) != 2 or {t.lower() for t in tokens} != {"kvm", "arm64"}:
        return 0
    return 0 if prefixes[:2] == ("KVM", "arm64") else used


def wrong_kvm_arm64_prefix(prefixes: tuple[str, ...], paths: list[str]) -> int:
    """How many leading prefixes to replace by 'KVM: arm64:' (0: nothing to say). 'kvm: arm64:' and
    'KVM/arm64:' already claim KVM, so any KVM/arm64 file is enough; 'arm64: kvm:' may be arm64 core
    work on KVM's behalf, so every file must be KVM/arm64 code."""
    used = misspelt_kvm_arm64(prefixes)
    if not used:
        return 0
    if prefixes[0].split("/")[0].lower() == "kvm":
        return used if any(path_area(p) == KVM_ARM64 for p in paths) else 0
    return used if kvm_arm64_only(paths) else 0


def prefix_text(prefixes: tuple[str, ...], upto: int = 2) -> str:
    return "".join(f"{p}: " for p in prefixes[:upto]).rstrip()
