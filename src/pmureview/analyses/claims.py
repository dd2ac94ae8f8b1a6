"""What a commit message claims about its own code, for series/commit-message-claim-unbacked.

Only a small, fixed vocabulary is recognised, and a claim is kept only when it can be checked:

- `fgt`: "fine-grained trap(s)", "FGT(s)", "FGU", "fine grained UNDEF" with a verb such as enable,
  configure, set up, add, describe, handle, route in the same clause;
- `context-switch`: "context switch(es/ed/ing)", "save(s/d) and restore(s/d)", "save/restore";
- `expose`: "expose(s/d) ... to (the) guest(s)" / "advertise ... to guests";
- `trapped` / `untrapped`: a "Trapped:" / "Untrapped:" heading followed by a list of register names
  (bullets, one per line, or on the heading line itself).

Prose claims are skipped when their clause (the words between the clause start and the keyword)
holds a negation, a deferral or a hypothesis ("not", "already", "a later patch", "will", "would",
"if", ...): the message then is not saying that this patch does it. Quoted lines ("> "), version
changelogs ("v2: ...", "Changes since v1") and trailer-like lines are removed first. Everything here
is text processing on the message; what the diff does is judged by the rule.
"""

from __future__ import annotations

import re

from pmureview.lazyre import lazy_re

from ..record import dataclass

FGT = "fgt"
SWITCH = "context-switch"
EXPOSE = "expose"
TRAPPED = "trapped"
UNTRAPPED = "untrapped"

# A system register name as commit messages spell it: PMICNTR_EL0, PMEVCNTRn_EL0, ZCR_EL12,
# PMEVCNTR<n>_EL0 (normalised to PMEVCNTRn_EL0).
_REG = r"[A-Z][A-Za-z0-9]*(?:_[A-Za-z0-9]+)*?_EL[0-3]{1,2}"
REG_RE = lazy_re(rf"(?<![\w<]){_REG}(?![\w>])")

_FGT_KEY = lazy_re(r"\bfine[- ]grained[- ](?:traps?|trapping|undef)\b|\bFGTs?\b|\bFGU\b", re.I)
_FGT_VERB = lazy_re(
    r"\b(?:enabl(?:e|es|ed|ing)|configur(?:e|es|ed|ing)|set(?:s|ting)? up|setup|add(?:s|ed|ing)?|"
    r"describ(?:e|es|ed|ing)|handl(?:e|es|ed|ing)|rout(?:e|es|ed|ing)|program(?:s|med|ming)?|"
    r"install(?:s|ed|ing)?|us(?:e|es|ed|ing)|wir(?:e|es|ed|ing)|implement(?:s|ed|ing)?|"
    r"introduc(?:e|es|ed|ing))\b", re.I)
_SWITCH_KEY = lazy_re(
    r"\bcontext[- ]switch(?:es|ed|ing)?\b|\bsav(?:e|es|ed|ing) and restor(?:e|es|ed|ing)\b|"
    r"\bsave/restore\b", re.I)
_EXPOSE_KEY = lazy_re(r"\b(?:expos|advertis)(?:e|es|ed|ing)\b(?P<what>[^.;:]{0,80}?)"
                         r"\bto (?:the |a |all |nested |L1 |L2 )?guests?\b", re.I)
# Words before the keyword (in the same clause) that say the patch does not do it now.
_NEGATION = lazy_re(
    r"\b(?:not|no|never|nor|none|neither|without|already|later|next|subsequent(?:ly)?|follow-?up|"
    r"future|will|would|could|might|may|should|shall|must|need|needs|needed|can|cannot|if|unless|"
    r"whether|yet|eventually|previous(?:ly)?|earlier|prior|once|until|preparation|prepare|when|"
    r"whenever|since|because|given|assuming|otherwise|"
    r"patch\s+\d+|\d+/\d+)\b|n't\b", re.I)
_NEGATION_POST = lazy_re(r"\b(?:not|never|no longer|unnecessary|unneeded|later|yet)\b|n't\b", re.I)
# Where a clause starts (looking backwards from the keyword).
_CLAUSE_START = lazy_re(r"[,;:()]|\b(?:but|and|or|whereas|while|although|though|so|then)\b", re.I)

_HEADING = lazy_re(
    r"^\s*(?P<what>(?:still\s+|remain\s+|stay\s+)?(?:un|not\s+|non-?)?trapped)(?:\s+(?:registers|accesses))?"
    r"\s*(?:\([^)]*\))?\s*:\s*(?P<rest>.*)$", re.I)
_ITEM = lazy_re(rf"^\s*(?:[-*+\u2022]|\d+[.)])?\s*(?P<reg>{_REG})\b(?P<tail>.*)$")
_BARE = lazy_re(rf"^\s*{_REG}\s*[,.]?\s*$")  # a register alone on its line (a list item)
_CHANGELOG = lazy_re(
    r"^\s*(?:\[?v\d+\s*(?:->|\u2192|to|\.\.|-)?\s*(?:v\d+)?\]?\s*:|changes\s+(?:since|in|from|for)\b|"
    r"changelog\b|change\s+log\b|---\s*$)", re.I)
_TRAILER = lazy_re(r"^[A-Za-z][A-Za-z0-9-]*(?:-by|-to)?:\s+\S|^(?:Link|Fixes|Closes|Cc):", re.I)
_CODE = lazy_re(r"^(?:\t| {4,})")


@dataclass(frozen=True, slots=True)
class Claim:
    kind: str  # fgt | context-switch | expose | trapped | untrapped
    line: int  # 1-based line within the commit message where the claim starts
    cue: str  # the words that make it a claim ("set up FGT", "Trapped:")
    sentence: str  # the sentence (prose claims) or the heading line (lists)
    registers: tuple[tuple[str, int], ...] = ()  # (register, 1-based message line) named by the claim


def normalise_register(name: str) -> str:
    return re.sub(r"<(\w)>", r"\1", name)


def register_base(name: str) -> str:
    """PMICNTR_EL0 -> PMICNTR, nPMICNTR_EL0 -> PMICNTR (the n of a negative trap bit dropped)."""
    base = re.sub(r"_EL[0-3]{1,2}$", "", normalise_register(name))
    return base[1:] if re.match(r"n[A-Z]", base) else base


def clean_lines(message: str) -> list[str | None]:
    """The message's lines, with quotes, changelogs, trailer-like lines removed (None)."""
    lines: list[str | None] = list(message.split("\n"))
    in_log = False
    for i, ln in enumerate(lines):
        assert ln is not None
        if in_log:
            if not ln.strip():
                in_log = False
            lines[i] = None
            continue
        lines[i] = ln = re.sub(r"<([a-z])>", r"\1", ln)  # PMEVCNTR<n>_EL0 -> PMEVCNTRn_EL0
        if _CHANGELOG.match(ln):
            in_log = True
            lines[i] = None
        elif ln.lstrip().startswith(">") or _TRAILER.match(ln):
            lines[i] = None
    return lines


def _sentences(lines: list[str | None]) -> list[tuple[int, str, list[int]]]:
    """(first line, text, line of each character) for every prose sentence (code lines excluded)."""
    out: list[tuple[int, str, list[int]]] = []
    buf, where = "", []  # type: ignore[var-annotated]

    def flush() -> None:
        nonlocal buf, where
        start = 0
        for m in re.finditer(r"[.!?](?=\s|$)", buf):
            end = m.end()
            if buf[start:end].strip():
                out.append(_trim(buf[start:end], where[start:end]))
            start = end
        if buf[start:].strip():
            out.append(_trim(buf[start:], where[start:]))
        buf, where = "", []

    for i, ln in enumerate(lines, 1):
        if ln is None or not ln.strip() or _CODE.match(ln) or _HEADING.match(ln) or _BARE.match(ln) \
                or re.match(r"^\s*[-*+\u2022]\s", ln):
            flush()
            if ln is not None and re.match(r"^\s*[-*+\u2022]\s", ln) and not _CODE.match(ln):
                buf, where = ln + " ", [i] * (len(ln) + 1)  # a bullet is a sentence of its own
                flush()
            continue
        buf += ln + " "
        where += [i] * (len(ln) + 1)
    flush()
    return [s for s in out if s[1].strip()]


def _trim(s: str, where: list[int]) -> tuple[int, str, list[int]]:
    lead = len(s) - len(s.lstrip())
    s2, w2 = s[lead:], where[lead:]
    return (w2[0] if w2 else 0, s2, w2)


def _clause_prefix(sentence: str, pos: int) -> str:
    """The words of the keyword's clause before the keyword."""
    head = sentence[:pos]
    starts = [m.end() for m in _CLAUSE_START.finditer(head)]
    return head[max(starts) if starts else 0:]


def _clause(sentence: str, pos: int) -> str:
    """The keyword's whole clause (to the next clause boundary)."""
    tail = sentence[pos:]
    m = re.search(r"[,;:()]|\b(?:but|whereas|while|although|though)\b", tail[1:])
    return _clause_prefix(sentence, pos) + (tail[: m.start() + 1] if m else tail)


def _skipped(sentence: str, pos: int, end: int) -> bool:
    if "?" in sentence or _NEGATION.search(_clause_prefix(sentence, pos)):
        return True
    # "context switching is not needed": a negated predicate of the keyword's own clause (a relative
    # clause after a comma, "..., which is not trapped", is another clause and does not count)
    post = re.split(r"[,;:()]|\b(?:which|that|who|where|but|and|while|so)\b", sentence[end:], maxsplit=1)[0]
    return bool(_NEGATION_POST.search(post))


def parse_claims(message: str) -> list[Claim]:
    """Every checkable claim of a commit message body (subject and trailers already removed)."""
    lines = clean_lines(message)
    claims: list[Claim] = []
    claims += _lists(lines)
    for _first, sent, where in _sentences(lines):
        flat = " ".join(sent.split())
        # positions in `flat` map back to `sent` only approximately; keep the original for lines
        regs = tuple(dict.fromkeys((normalise_register(m.group(0)), where[min(m.start(), len(where) - 1)])
                                   for m in REG_RE.finditer(sent)))
        done: set[str] = set()
        for kind, rx in ((FGT, _FGT_KEY), (SWITCH, _SWITCH_KEY), (EXPOSE, _EXPOSE_KEY)):
            for m in rx.finditer(sent):
                if kind in done or _skipped(sent, m.start(), m.end()):
                    continue
                cue = " ".join(m.group(0).split())
                if kind == FGT:
                    clause = _clause(sent, m.start())
                    verb = _FGT_VERB.search(clause)
                    if verb is None:
                        continue
                    cue = f"{' '.join(verb.group(0).split())} ... {cue}" if verb.start() < len(
                        _clause_prefix(sent, m.start())) else f"{cue} ... {' '.join(verb.group(0).split())}"
                if kind == EXPOSE:
                    cue = re.sub(r"\s+", " ", m.group(0))
                done.add(kind)
                claims.append(Claim(kind, where[min(m.start(), len(where) - 1)], cue, flat, regs))
    claims.sort(key=lambda c: c.line)
    return claims


def _lists(lines: list[str | None]) -> list[Claim]:
    """"Trapped:" / "Untrapped:" headings and the registers listed under (or after) them."""
    out: list[Claim] = []
    i = 0
    while i < len(lines):
        ln = lines[i]
        m = _HEADING.match(ln) if ln is not None else None
        if m is None:
            i += 1
            continue
        what = m.group("what").lower()
        kind = UNTRAPPED if re.match(r"(?:still\s+|remain\s+|stay\s+)?(?:un|not|non)", what) else TRAPPED
        regs: list[tuple[str, int]] = []
        rest = m.group("rest").strip()
        # only a plain list of names on the heading line ("Trapped: A_EL0, B_EL1 and C_EL0")
        if rest and re.fullmatch(rf"(?:{_REG})(?:\s*(?:,|and|,\s*and)\s*{_REG})*\.?", rest):
            regs = [(normalise_register(r), i + 1) for r in REG_RE.findall(rest)]
        j = i + 1
        while not rest and j < len(lines):
            item = lines[j]
            if item is None or not item.strip():
                if regs:
                    break
                if j == i + 1:  # one blank line between heading and list is tolerated
                    j += 1
                    continue
                break
            im = _ITEM.match(item)
            if im is None:
                break
            tail = im.group("tail").strip()
            # "* PMCR_EL0 (read only)" or "* PMCR_EL0: ..." still names one register; a sentence
            # starting with a register name is prose, not an item
            if not tail or re.match(r"^(?:\(.*\)|[:,\u2013-].*|/.*)$", tail):
                regs.append((normalise_register(im.group("reg")), j + 1))
            j += 1
        if regs:
            out.append(Claim(kind, i + 1, m.group(0).strip().split(":")[0] + ":", lines[i].strip()
                             if lines[i] else "", tuple(regs)))
        i = max(j, i + 1)
    return out


# -- backing: what in a diff counts as doing what the claim says --------------------------------------

FGT_CODE = lazy_re(
    r"SR_FGT\s*\(|encoding_to_fgt|\bfgu\s*\[|arch\.fgt\s*\[|compute_fgu|vcpu_fgt\s*\(|"
    r"__compute_\w+\s*\(|\w*fgt\w*|\w*fgu\w*|\b(?:HFG|HDFG|HAFG|ICH_HFG)\w*_EL2", re.I)
FGT_REGISTER = lazy_re(r"\b(?:HFG|HDFG|HAFG|ICH_HFG)\w*TR2?_EL2\b")
SWITCH_PATHS = lazy_re(
    r"^arch/arm64/kvm/(?:hyp/include/hyp/(?:sysreg-sr|switch)\.h|hyp/(?:vhe|nvhe)/(?:sysreg-sr|switch)\.c|"
    r"fpsimd\.c)$")
SWITCH_FUNCTION = lazy_re(r"(?:^|_)(?:load|put|save|restore|switch|sync|flush)(?:_|$)", re.I)
SYSREG_ACCESS = lazy_re(r"\b(?:read|write)_sysreg\w*\s*\(")
EXPOSE_PATHS = lazy_re(r"^(?:arch/\w+/kvm/|virt/kvm/|include/kvm/|arch/arm64/include/asm/kvm_)")


def mentions_register(line: str, register: str) -> bool:
    """A code line naming `register` (FOO_EL1, SYS_FOO_EL1, foo_el1, ctxt_sys_reg(..., FOO_EL1))."""
    reg = normalise_register(register)
    return bool(re.search(rf"(?<![A-Za-z0-9]){re.escape(reg)}(?![A-Za-z0-9])", line, re.I))


def trap_effect(op: str, polarity: str) -> str | None:
    """What a write does to an FGT bit: "trap" or "untrap" (op: set | clear | store)."""
    if polarity not in ("pos", "neg"):
        return None
    setting = op in ("set", "store")
    return "trap" if setting == (polarity == "pos") else "untrap"
