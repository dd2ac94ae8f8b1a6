"""series/commit-message-claim-unbacked: the commit message says the patch does something it does not.

Claims come from pmureview.analyses.claims (a small vocabulary; anything else is ignored). Prose claims
(fine-grained traps, context switching, exposing to guests) need a hunk of the same patch touching
the matching code; "Trapped:" / "Untrapped:" register lists are checked against the FGT bits the
patch writes (pmureview.analyses.fgtflow), and only for registers whose trap bits the patch sets or
clears: a register the patch does not touch is undecided, and silent.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator

from pmureview.analyses import claims as cl
from pmureview.lang.c import functions
from pmureview.lazyre import lazy_re
from pmureview.record import dataclass, field
from pmureview.rule.base import Rule
from pmureview.rule.model import Confidence, Finding, RuleDocs, RuleMeta, Scope, Severity
from pmureview.views.context import FileView, PatchContext, SeriesContext

_SYSREG_FILE = "arch/arm64/tools/sysreg"
_SYSREG_BLOCK = lazy_re(r"^(?:Sysreg|SysregFields)\s+(\S+)")
_FGT_BLOCK = lazy_re(r"^(?:HFG|HDFG|HAFG|ICH_HFG)\w*_EL2$|^HFGxTR_EL2$|^HDFGxTR_EL2$")


@dataclass
class _Backing:
    """What one patch's diff does, as far as the claims care."""

    fgt: bool = False
    switch_path: bool = False  # a hunk in the hyp save/restore or switch code, fpsimd.c
    switch_function: bool = False  # an added line in a *load*/*put*/*save*/*restore*/*switch* function
    sysreg_lines: list[str] = field(default_factory=list)  # added read_sysreg*/write_sysreg* lines
    expose: bool = False

    def backs(self, claim: cl.Claim) -> bool:
        if claim.kind == cl.FGT:
            return self.fgt
        if claim.kind == cl.EXPOSE:
            return self.expose
        if claim.kind == cl.SWITCH:
            if self.switch_path or self.switch_function:
                return True
            regs = [r for r, _ in claim.registers]
            if not regs:
                return bool(self.sysreg_lines)
            return any(cl.mentions_register(ln, r) for ln in self.sysreg_lines for r in regs)
        return True


class CommitMessageClaimUnbacked(Rule):
    meta = RuleMeta(
        evidence=(r"(?i)fine[- ]grained|\bFG[TU]|context[- ]switch|sav(?:e|es|ed|ing) and restor|save/restore"
                  r"|expos|advertis|trapped",),  # the claims' vocabulary (analyses/claims.py)
        id="series/commit-message-claim-unbacked",
        title="The commit message claims traps, context switching or exposure the patch does not contain",
        severity=Severity.WARNING,
        confidence=Confidence.MEDIUM,
        scope=Scope.PATCH,
        files=("*",),
        uses_tree=True,
        docs=RuleDocs(
            what="Reads the commit message for a small set of claims and checks each against the diff "
                 "of the same patch: \"enable/configure/set up fine-grained traps (FGT, FGU)\" needs "
                 "a hunk touching FGT code (SR_FGT(), vcpu_fgt(), fgu[], a __compute_*() helper, an "
                 "FGT register field); \"context switch\" / \"save and restore\" needs a hunk in the "
                 "hyp save/restore or switch code, fpsimd.c, a load/put function, or an added "
                 "read_sysreg*/write_sysreg* of a register the sentence names; \"expose ... to "
                 "guests\" needs a KVM hunk. \"Trapped:\" / \"Untrapped:\" register lists are checked "
                 "against the FGT bits the patch writes: a register listed as trapped whose negative "
                 "trap bit the patch sets (or positive bit it clears) is untrapped, and the reverse. "
                 "A claim that only another patch of the series backs is reported as a check.",
            why="Reviewers read the commit message first and check the code against it. A message "
                "that promises traps or context switching the patch does not contain either hides a "
                "missing piece (the state is not switched, the register is not trapped) or describes "
                "another patch, and whoever bisects to this commit later is misled. A trap list that "
                "contradicts the trap bits is usually a polarity mistake in the code.",
            example="Save and restore FOO_EL1 on guest entry and exit.\n"
                    "(the patch only adds the sys_regs.c entry and the kvm_host.h enum value)\n\n"
                    "Trapped:\n* PMICNTR_EL0\n"
                    "(the patch does `*vcpu_fgt(vcpu, HDFGRTR2_EL2) |= HDFGRTR2_EL2_nPMICNTR_EL0;`)",
            use_instead="Describe what this patch does, and add the code it describes: the sysreg-sr.h "
                        "hunks under ctxt_has_foo() for the save/restore, `&= ~HDFGRTR2_EL2_nPMICNTR_EL0` "
                        "for a negative trap bit. Say \"a later patch context-switches ...\" when the "
                        "work is done elsewhere in the series.",
            known_problems="Only the vocabulary above is recognised; other prose is never guessed at. A "
                           "clause with a negation, deferral or hypothesis before the keyword (\"not\", "
                           "\"already\", \"a later patch\", \"will\", \"would\", \"if\", \"since\") is "
                           "skipped. A sentence describing existing behaviour in positive form (\"the "
                           "FGU covers this\") is still reported: the reader expects the patch to do "
                           "it. Register lists are matched to trap fields by name (PMOVS_EL0 to the "
                           "PMOVS field); registers the patch writes no trap bit for are not judged, "
                           "and coarse traps (MDCR_EL2.TPM, HCR_EL2) are not considered.",
            references=("<20251209205121.1871534-11-coltonlewis@google.com> (v5 10/24: \"Trapped:\" "
                        "lists PMICNTR_EL0/PMICFILTR_EL0 while the patch sets their negative trap bits)",),
        ),
    )

    def check(self, ctx: PatchContext) -> Iterator[Finding]:  # type: ignore[override]
        patch = ctx.patch
        found = cl.parse_claims(patch.message)
        if not found:
            return
        lines = patch.message.split("\n")
        backing = _backings(ctx.series)
        own = backing.get(patch.number, _Backing())
        effects: dict[str, dict[str, dict[str, list[tuple[str, FileView, int]]]]] | None = None
        for claim in found:
            if claim.kind in (cl.TRAPPED, cl.UNTRAPPED):
                if effects is None:
                    effects = _trap_effects(ctx)
                f = self._list(ctx, claim, effects, lines)
                if f is not None:
                    yield f
                continue
            if own.backs(claim):
                continue
            others = [n for n, b in sorted(backing.items()) if n != patch.number and b.backs(claim)]
            yield self._unbacked(ctx, claim, others, lines)

    # -- prose claims ------------------------------------------------------------------------------

    def _unbacked(self, ctx: PatchContext, claim: cl.Claim, others: list[int], lines: list[str]) -> Finding:
        total = ctx.series.series.total
        what = {
            cl.FGT: ("fine-grained traps", "FGT or FGU code (SR_FGT() entries, the __compute_*() helpers, "
                     "vcpu_fgt(), fgu[])"),
            cl.SWITCH: ("context switching", "save/restore code (hyp sysreg-sr.h or switch.h, the "
                        "load/put paths, a read_sysreg()/write_sysreg() of the register)"),
            cl.EXPOSE: ("exposing something to guests", "KVM code (sys_regs.c, ID register handling, "
                        "trap configuration)"),
        }[claim.kind]
        regs = [r for r, _ in claim.registers]
        about = f" for {cl_names(regs)}" if regs and claim.kind == cl.SWITCH else ""
        snippet = lines[claim.line - 1] if 0 < claim.line <= len(lines) else None
        mail_line = ctx.patch.message_start + claim.line - 1
        if others:
            where = ", ".join(f"{n}/{total}" for n in others)
            return self.at_section(
                ctx.patch.number, "message", claim.line,
                f"the commit message describes {what[0]}{about} (\"{claim.cue}\"), but that is done in "
                f"patch {where}, not here",
                note=f"The commit message says \"{_short(claim.sentence)}\", but this patch does not "
                     f"touch any {what[1]}; patch {where} does. Please move the sentence to that patch, "
                     f"or say that a later patch does it, so that each commit message describes its "
                     f"own change.",
                severity=Severity.CHECK, confidence=Confidence.MEDIUM, snippet=snippet, mail_line=mail_line)
        return self.at_section(
            ctx.patch.number, "message", claim.line,
            f"the commit message describes {what[0]}{about} (\"{claim.cue}\"), but nothing in the patch "
            f"does that",
            note=f"The commit message says \"{_short(claim.sentence)}\", but nothing in this patch touches "
                 f"{what[1]}. Either add what is described, or drop the sentence if it describes code "
                 f"that already exists.",
            snippet=snippet, mail_line=mail_line)

    # -- Trapped: / Untrapped: lists ---------------------------------------------------------------

    def _list(self, ctx: PatchContext, claim: cl.Claim, effects, lines: list[str]) -> Finding | None:
        want = "trap" if claim.kind == cl.TRAPPED else "untrap"
        wrong: list[tuple[str, int]] = []
        fields: list[str] = []
        regs: list[str] = []
        sites: list[tuple[str, FileView, int, str]] = []
        for reg, line in claim.registers:
            per_fgt = effects.get(cl.register_base(reg))
            if not per_fgt:
                continue  # the patch writes no trap bit for it: undecided
            bad = False
            for fgt_reg, by_effect in per_fgt.items():
                if set(by_effect) == {_opposite(want)}:  # every write of this direction disagrees
                    bad = True
                    for fld, view, ln, pol in by_effect[_opposite(want)]:
                        fields.append(fld)
                        regs.append(fgt_reg)
                        sites.append((fld, view, ln, pol))
            if bad:
                wrong.append((reg, line))
        if not wrong:
            return None
        first = wrong[0][1]
        n = len(wrong)
        listed = cl_names([r for r, _ in wrong])
        them = "it" if n == 1 else "them"
        their = "its" if n == 1 else "their"
        negative = any(pol == "neg" for _f, _v, _l, pol in sites)
        bits = f"{cl_names(fields)} in {cl_names(regs)}"
        where = cl_names([f"{v.path.rsplit('/', 1)[-1]}:{ln}" for _f, v, ln, _p in sites])
        one_bit = len(set(fields)) == 1
        if claim.kind == cl.TRAPPED:
            verb = "sets" if negative else "clears"
            how = f"{verb} {their} {'negative ' if negative else ''}trap bit{'' if one_bit else 's'} ({bits}), " \
                  f"which leaves {them} untrapped"
            fix = (f"{cl_names(fields)} {'is a negative bit' if one_bit else 'are negative bits'}: 0 means "
                   f"trap, so OR-ing {'it' if one_bit else 'them'} in disables the trap. Clear "
                   f"{'it' if one_bit else 'them'} with `&= ~` to trap, or fix the list."
                   if negative else
                   "Clearing a positive trap bit disables the trap. Set it to trap, or fix the list.")
        else:
            verb = "clears" if negative else "sets"
            how = f"{verb} {their} {'negative ' if negative else ''}trap bit{'' if one_bit else 's'} ({bits}), " \
                  f"which traps {them}"
            fix = "Either the trap bit has the wrong polarity, or the list is wrong."
        note = (f"The commit message lists {listed} under \"{claim.cue}\", but the patch does the "
                f"opposite ({where}). {fix}")
        return self.at_section(
            ctx.patch.number, "message", first,
            f"the commit message says {listed} {'is' if n == 1 else 'are'} {claim.kind}, but the patch {how}",
            note=note, confidence=Confidence.HIGH,
            snippet=lines[first - 1] if 0 < first <= len(lines) else None,
            mail_line=ctx.patch.message_start + first - 1)


def _opposite(effect: str) -> str:
    return "untrap" if effect == "trap" else "trap"


def cl_names(items: list[str]) -> str:
    items = list(dict.fromkeys(items))
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]


def _short(sentence: str, limit: int = 160) -> str:
    s = " ".join(sentence.split())
    return s if len(s) <= limit else s[: limit - 3].rsplit(" ", 1)[0] + " ..."


def _trap_effects(ctx: PatchContext) -> dict:
    """controlled register base -> FGT register -> effect (trap|untrap) -> [(field, view, line)], for
    the FGT writes this patch makes new (fgtflow anchors each write on the patch that adds it)."""
    from pmureview.analyses import fgtflow

    out: dict = {}
    try:
        groups, _masks = fgtflow.analyse(ctx.series)
    except Exception:  # best effort: undecidable rather than an internal error
        return out
    kb = ctx.kb
    for g in groups:
        src = g.src
        if getattr(src, "patch", None) is None or src.patch.number != ctx.patch.number:
            continue
        for b in g.bits:
            fld, _low = fgtflow.target_field(kb, g.register, b)
            if fld is None:
                continue  # RES0 in the target register: another rule's business
            pol = kb.polarity(g.register, fld) or ""
            effect = cl.trap_effect(g.op, pol)
            if effect is None:
                continue
            key = cl.register_base(fgtflow.controlled(fld))
            out.setdefault(key, {}).setdefault(g.register, {}).setdefault(effect, []).append(
                (fld, src, g.line, pol))
    return out


def _backings(series: SeriesContext) -> dict[int, _Backing]:
    cached = getattr(series, "_pmureview_claim_backing", None)
    if cached is not None:
        return cached
    out: dict[int, _Backing] = {}
    for patch in series.patches:
        b = out[patch.number] = _Backing()
        for change in patch.files:
            path = change.path
            touched = [ln.text for h in change.hunks for ln in h.lines if ln.kind in "+-"]
            if not touched:
                continue
            if cl.EXPOSE_PATHS.match(path):
                b.expose = True
            if cl.SWITCH_PATHS.match(path):
                b.switch_path = True
            if path.endswith((".c", ".h", ".S")):
                if any(cl.FGT_CODE.search(t) for t in touched):
                    b.fgt = True
                b.sysreg_lines += [t for t in touched if cl.SYSREG_ACCESS.search(t)]
                if any(cl.SWITCH_FUNCTION.search(fn) for fn in _hunk_functions(change)):
                    b.switch_function = True
        for view in series.patch_views(patch.number):
            if view.path == _SYSREG_FILE and _sysreg_fgt(view):
                b.fgt = True
            if not b.switch_function and view.is_c and view.added and view.path.startswith("arch/"):
                with contextlib.suppress(Exception):
                    b.switch_function = any(cl.SWITCH_FUNCTION.search(name) and view.touches_added(fn)
                                            for name, fn in functions(view.root))
    with contextlib.suppress(AttributeError):
        series._pmureview_claim_backing = out  # type: ignore[attr-defined]
    return out


def _hunk_functions(change) -> list[str]:
    out = []
    for h in change.hunks:
        m = re.search(r"(\w+)\s*\(", h.section or "")
        if m and any(ln.kind != " " for ln in h.lines):
            out.append(m.group(1))
    return out


def _sysreg_fgt(view: FileView) -> bool:
    """An added line of arch/arm64/tools/sysreg inside an FGT register's block."""
    for line in sorted(view.added):
        for n in range(line, 0, -1):
            m = _SYSREG_BLOCK.match(view.line_text(n))
            if m:
                if _FGT_BLOCK.match(m.group(1)):
                    return True
                break
    return False
