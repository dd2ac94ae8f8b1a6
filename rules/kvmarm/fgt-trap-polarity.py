"""kvmarm/fgt-trap-polarity: negative FGT bits OR-ed in (or positive ones cleared) to add a trap."""

from __future__ import annotations

from collections.abc import Iterator

from pmureview.analyses.fgtflow import (
    CLEAR,
    SET,
    Group,
    analyse,
    controlled,
    gate_features,
    host_side,
    names,
    target_field,
    through,
)
from pmureview.kernel.fgt import GROUP_ARG_REGISTERS, feature_covers, name_polarity, parse_sr_fgt
from pmureview.rule.base import Rule
from pmureview.rule.model import Confidence, Finding, RuleDocs, RuleMeta, Scope, Severity
from pmureview.views.context import SeriesContext


class FgtTrapPolarity(Rule):
    meta = RuleMeta(
        id="kvmarm/fgt-trap-polarity",
        title="FGT bit written with the wrong polarity (|= of a negative bit, &= ~ of a positive one)",
        severity=Severity.ERROR,
        confidence=Confidence.HIGH,
        scope=Scope.SERIES,
        # prefilter: needs an <FGT register>_<field> constant, or an added SR_FGT(); full mode reads base helpers
        evidence=(r"(?#hunk-only)FG[RWIx]TR2?_EL2_|SR_FGT",),
        uses_tree=True,
        docs=RuleDocs(
            what="Flags a statement that untraps a register for the guest: it sets (`|=`) "
                 "negative-polarity bits, or clears positive-polarity bits, of a fine-grained trap "
                 "value. The write is recognised by what it writes, in any file and from the patch "
                 "alone: `*vcpu_fgt(vcpu, R) |=` / `&= ~` (R a constant, or a parameter: then the "
                 "register the constants name), a local stored with `write_sysreg_s(..., SYS_R)`, read "
                 "with `read_sysreg_s(SYS_R)` or built on `__R_nMASK`, the (clr, set) operands of "
                 "`update_fgt_traps_cs()`, `sysreg_clear_set_s()`, `*_clear_set()` / `*_cs()` calls "
                 "and helpers whose parameters are named set/clr, and `set`/`clr` masks (`r_set |= X` "
                 "sets X, `w_clr |= X` clears it) whose use is outside the hunk. The older "
                 "`HFGxTR_EL2_*` names count as HFGRTR_EL2 fields. Constants are followed through "
                 "`#define`s, local and "
                 "file-scope constants and one level of helper returning a constant mask, in any file "
                 "of the series (and the base tree in full mode). Also flags a mask helper or macro "
                 "feeding such a write that mixes positive and negative bits. Polarity comes from KVM's "
                 "`encoding_to_fgt[]` table when the tree has it, else from the sysreg field names.",
            why="Half of the FGT bits are negative: `nPMICNTR_EL0` traps when it is 0. "
                "`__compute_fgt()` starts every register from \"trap nothing\" (negative bits 1, "
                "positive bits 0) and then applies FGU and the guest hypervisor's traps, so OR-ing a "
                "negative bit afterwards changes nothing (the register stays untrapped) or, when FGU "
                "had cleared it to hide a feature, hands the hidden register back to the guest. "
                "Clearing a positive bit undoes a trap the same way. KVM keeps FGT values in the "
                "architectural encoding on purpose; there is no private \"1 means trap\" view.",
            example="u64 kvm_pmu_fgt2_bits(void)\n{\n"
                    "\treturn HDFGRTR2_EL2_nPMICFILTR_EL0 | HDFGRTR2_EL2_nPMICNTR_EL0;\n}\n\n"
                    "\t*vcpu_fgt(vcpu, HDFGRTR2_EL2) |= kvm_pmu_fgt2_bits();",
            use_instead="\t*vcpu_fgt(vcpu, HDFGRTR2_EL2) &= ~(HDFGRTR2_EL2_nPMICFILTR_EL0 |\n"
                        "\t\t\t\t\t   HDFGRTR2_EL2_nPMICNTR_EL0);",
            known_problems="Setting a negative bit on purpose, to give the guest direct access, is "
                           "also reported (with medium confidence outside `*vcpu_fgt() |=`, where the "
                           "base value is not known to have it set already), except under a check "
                           "that the guest or host has the very feature the bits trap (`if "
                           "(kvm_has_feat(kvm, ID_AA64PFR1_EL1, GCS, IMP))` around nGCS_EL1, or an "
                           "earlier `if (!kvm_has_feat(...)) return;`; in hunk-only mode only when "
                           "the check is in the hunk) and on "
                           "the exit path (functions named *deactivate*, *restore*, *host*, *put*), "
                           "where setting negative bits gives the host its registers back. A call to a "
                           "(set, clr) helper whose definition is out of sight and whose name does not "
                           "say the order is not checked (with the definition in sight, its parameter "
                           "names or what its body does with them decide). Per-VM \"1 = trap\" arrays "
                           "such as `kvm->arch.fgu[]` are not register values and are never looked "
                           "at. Masks built from BIT()/GENMASK(), parameters or struct members are not "
                           "resolved, so those writes are not checked. Without the `encoding_to_fgt[]` "
                           "table (hunk-only mode) the polarity of registers missing from the bundled "
                           "snapshot (GICv5 ICH_HFG*TR_EL2) is unknown and nothing is said.",
            references=(
                "<aTiPvS49uMOJEBrf@kernel.org> (Oliver Upton on v5 10/24: kvm_pmu_fgt_bits() assumes "
                "positive polarity although several FGT bits are negative)",
                "<aUH1nZB83m62kkUH@kernel.org> (keep FGT values in the architectural encoding; FGU "
                "is load-bearing)",
                "<20251209205121.1871534-11-coltonlewis@google.com> (the patch reviewed)",
            ),
        ),
    )

    def check(self, ctx: SeriesContext) -> Iterator[Finding]:  # type: ignore[override]
        kb = ctx.kb
        groups, masks = analyse(ctx)
        flagged: set[tuple[int, int]] = set()
        for g in groups:
            if g.op not in (SET, CLEAR):
                continue
            want = "neg" if g.op == SET else "pos"
            bad: list[str] = []
            for b in g.bits:
                fld, _ = target_field(kb, g.register, b)
                if fld is not None and kb.polarity(g.register, fld) == want:
                    bad.append(fld)
            if not bad:
                continue
            bad = list(dict.fromkeys(bad))
            if not g.direct and g.primary and host_side(g.src, g.fn, g.stmt):
                continue  # the exit path giving the host its untrapped registers back
            gates = gate_features(g.stmt, g.fn) if g.primary else []
            if any(all(feature_covers(f, b) for b in bad) for f in gates):
                # The feature-gated untrap (`if (kvm_has_feat(kvm, ..., GCS, IMP))` around the GCS
                # bits): on purpose, and after __compute_fgt() redundant, since FGU traps those
                # bits only when the feature is hidden.
                continue
            flagged.add((id(g.src), g.line))
            yield self._finding(g, bad)
        yield from self._sr_fgt(ctx)
        for m in masks:
            if (id(m.src), m.line) in flagged:
                continue
            pos = [b.field for b in m.bits if kb.polarity(b.register, b.field) == "pos"]
            neg = [b.field for b in m.bits if kb.polarity(b.register, b.field) == "neg"]
            if not pos or not neg:
                continue
            what = f"{m.name}()" if m.kind == "helper" else m.name
            yield self.at_line(
                m.src, m.line,
                f"{what} mixes positive ({names(pos)}) and negative ({names(neg)}) trap bits; no single "
                "|= or &= ~ applies it correctly",
                note=f"{names(neg)} trap when 0 and {names(pos)} trap when 1, so whichever way {what} "
                     "is applied, one half of it removes traps instead of adding them. Keep one mask "
                     "per polarity: |= the positive bits and &= ~ the negative ones.",
            )

    def _sr_fgt(self, ctx: SeriesContext) -> Iterator[Finding]:
        """Added `SR_FGT(SYS_X, G, F, P)` entries whose P contradicts F's polarity (DOMAIN-PACK2 1B)."""
        kb = ctx.kb
        for view in ctx.all_views():
            if not view.path.endswith("kvm/emulate-nested.c") or not view.added:
                continue
            entries = parse_sr_fgt(view.text)
            for e in entries:
                if e.line not in view.added:
                    continue
                regs = [r for r in GROUP_ARG_REGISTERS.get(e.group, ()) if kb.fgt_register(r) is not None]
                reg = next((r for r in regs if e.field in kb.fgt_register(r).fields), None)
                if reg is None:
                    continue  # F is not a field of G's registers: not a polarity question
                want = 0 if name_polarity(reg, e.field) == "neg" else 1
                if e.pol == want:
                    continue
                agree = sorted(o.line for o in entries if o is not e and o.group == e.group
                               and o.field == e.field and o.pol == want)
                sign = "negative (0 => trap)" if want == 0 else "positive (1 => trap)"
                msg = f"{e.field} is a {sign} bit of {reg}, but this SR_FGT() entry gives it polarity {e.pol}"
                also = f" (line {agree[0]} already has {want})" if agree else ""
                yield self.at_line(
                    view, e.line, msg,
                    note=f"aggregate_fgt() builds the FGT masks from this table, so a wrong polarity puts "
                         f"{e.field} in the wrong set: KVM then starts the register from the wrong "
                         f"\"trap nothing\" value and, for a guest hypervisor, forwards "
                         f"{controlled(e.field)} accesses when L1 did not ask for the trap (or the other "
                         f"way round). {e.field} needs {want} here{also}.",
                )

    def _finding(self, g: Group, bad: list[str]) -> Finding:
        plural = len(bad) > 1
        they, them = ("they", "them") if plural else ("it", "it")
        are = "are" if plural else "is"
        kind = "trap bits" if plural else "trap bit"
        isa = "are" if plural else "is a"
        regs = "/".join(dict.fromkeys(controlled(f) for f in bad))
        via = through(g.bits)
        how = f" through {via}" if via else ""
        where = f" (applied at {g.writer})" if g.writer else ""
        into = f"into {g.register}'s set mask" if g.named and g.op == SET else f"into {g.register}"
        if g.op == SET:
            msg = (f"{names(bad)} {isa} negative-polarity {kind}: OR-ing {them} {into}{how}"
                   f"{where} untraps {regs} for the guest (0 => trap); clear {them} with &= ~ to trap {regs}")
            if g.direct:
                note = (f"{names(bad)} {are} negative in {g.register}: 0 means trap. __compute_fgt() "
                        f"starts from \"trap nothing\", which already has {them} at 1, so this OR "
                        f"changes nothing and {regs} stay{'' if plural else 's'} directly accessible "
                        f"to the guest; and where FGU cleared {them} to hide {regs} from the guest, "
                        f"the OR sets {them} again and exposes {regs}. To add a trap after "
                        "__compute_fgt(), set positive bits and clear negative ones"
                        + (f" ({via} looks like it assumes every FGT bit is positive)." if via else "."))
            else:
                note = (f"{names(bad)} {are} negative in {g.register}: 0 means trap, so setting "
                        f"{them} lets the guest access {regs} directly. If that is what you want, "
                        f"say so in the commit message; if {regs} should trap, clear {them} instead.")
        else:
            msg = (f"{names(bad)} {isa} positive-polarity {kind}: clearing {them} in {g.register}{how}"
                   f"{where} untraps {regs} for the guest (1 => trap), FGU traps included; set {them} "
                   f"with |= to trap {regs}")
            note = (f"{names(bad)} {are} positive in {g.register}: 1 means trap. Clearing {them} "
                    f"does not add a trap; it drops one that FGU (a feature hidden from the guest) or "
                    f"the guest hypervisor asked for, and {they} {'are' if plural else 'is'} 0 "
                    "otherwise. To add a trap, set positive bits and clear negative ones.")
        conf = Confidence.HIGH if (g.direct or g.op == CLEAR) and not g.named else Confidence.MEDIUM
        return self.at_line(g.src, g.line, msg, note=note, confidence=conf)

