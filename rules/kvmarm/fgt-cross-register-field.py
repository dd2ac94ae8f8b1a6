"""kvmarm/fgt-cross-register-field: one FGT register's field constants written into another."""

from __future__ import annotations

from collections.abc import Iterator

from pmureview.analyses.fgtflow import CLEAR, Group, analyse, bits_of, controlled, names, target_field, through
from pmureview.analyses.series_facts import sysreg_touched
from pmureview.kernel.dating import SNAPSHOT, trust
from pmureview.rule.base import Rule
from pmureview.rule.model import Confidence, Finding, RuleDocs, RuleMeta, Scope, Severity
from pmureview.views.context import SeriesContext


class FgtCrossRegisterField(Rule):
    meta = RuleMeta(
        id="kvmarm/fgt-cross-register-field",
        title="FGT field constant of one register written into another (RES0 or misnamed bits)",
        severity=Severity.ERROR,
        confidence=Confidence.HIGH,
        scope=Scope.SERIES,
        # prefilter: every finding needs an <FGT register>_<field> constant; full mode reads base helpers
        evidence=(r"(?#hunk-only)FG[RWIx]TR2?_EL2_",),
        uses_tree=True,
        docs=RuleDocs(
            what="Flags `<A>_<FIELD>` constants of a fine-grained trap register A written into a "
                 "different FGT register B: through `*vcpu_fgt(vcpu, B)`, `write_sysreg_s(..., SYS_B)`, "
                 "`update_fgt_traps_cs(..., B, ...)` or the register argument of a compute helper, "
                 "following `#define`s, constants and one level of helper returning a constant mask "
                 "(also across files of the series). An error when a bit is RES0 in B or holds another "
                 "field there; a check when B has the same field at the same position.",
            why="Read and write trap registers do not have the same layout: read-only registers "
                "(PMCEIDn_EL0, PMMIR_EL1) have no write trap, so HDFGRTR_EL2 bits 58 and 22 are RES0 "
                "in HDFGWTR_EL2. A mask built from the read register's names and OR-ed into the write "
                "register sets RES0 bits of an EL2 control register and does not trap what it was "
                "meant to. Where the bits happen to coincide it still reads as a mistake and breaks "
                "the day the layouts diverge.",
            example="\t*vcpu_fgt(vcpu, HDFGWTR_EL2) |= HDFGRTR_EL2_PMOVS | HDFGRTR_EL2_PMCEIDn_EL0;",
            use_instead="\t*vcpu_fgt(vcpu, HDFGWTR_EL2) |= HDFGWTR_EL2_PMOVS;",
            known_problems="Only constants named after an FGT register are checked (not BIT() or "
                           "the older HFGxTR_EL2 shared layout names). A register missing from the "
                           "knowledge (GICv5 ICH_* registers without a tree) is skipped. Without a "
                           "tree the layouts are the bundled snapshot's: a check saying 'as of vX.Y' "
                           "when the series is not newer than it, silent on a field whose sysreg "
                           "definition the series changes (docs/knowledge.md). Clearing a "
                           "RES0 bit is harmless in itself but still reported as an error: the trap "
                           "the code means to change is not there.",
            references=(
                "<20251209205121.1871534-11-coltonlewis@google.com> (v5 10/24: kvm_pmu_fgt_bits() "
                "built from HDFGRTR_EL2 names and OR-ed into HDFGWTR_EL2)",
                "<aTiPvS49uMOJEBrf@kernel.org> (the review of that patch)",
            ),
        ),
    )

    def check(self, ctx: SeriesContext) -> Iterator[Finding]:  # type: ignore[override]
        kb = ctx.kb
        groups, _ = analyse(ctx)
        # hunk-only: the layouts are the bundled snapshot's, dated (docs/knowledge.md)
        worth = trust(ctx, SNAPSHOT) if kb is not None and getattr(kb, "source", "") != "tree" else None
        as_of = f" ({worth.as_of})" if worth is not None and not worth.warn and worth.as_of else ""
        for g in groups:
            reg = kb.fgt_register(g.register)
            if reg is None:
                continue
            res0: list[str] = []
            other: list[str] = []
            same: list[str] = []
            sources: list[str] = []
            for b in g.bits:
                if b.register == g.register or not kb.is_fgt_register(b.register):
                    continue
                hit = [i for i in bits_of(b.mask) if reg.res0 >> i & 1]
                fld, low = target_field(kb, g.register, b)
                if worth is not None and any(
                        sysreg_touched(ctx, r, f) for r, f in ((g.register, b.field), (b.register, b.field),
                                                               (g.register, fld)) if f):
                    continue  # the series changes these layouts: the bundled ones are stale
                if hit:
                    res0.append(f"{b.field} (bit {_bits(hit)})")
                elif fld is None:
                    continue  # neither a field nor RES0 in the layout we know: say nothing
                elif fld != b.field:
                    other.append(f"{b.field} (bit {low} is {fld} there)")
                elif kb.polarity(b.register, b.field) != kb.polarity(g.register, fld):
                    other.append(f"{b.field} (its polarity differs there)")
                else:
                    same.append(b.field)
                if b.register not in sources:
                    sources.append(b.register)
            if not (res0 or other or same):
                continue
            yield self._finding(g, sources, res0, other, same, as_of)

    def _finding(self, g: Group, sources: list[str], res0: list[str], other: list[str],
                 same: list[str], as_of: str = "") -> Finding:
        via = through(g.bits)
        a = "/".join(sources)
        done = "cleared in" if g.op == CLEAR else "written into"
        verb = "clears" if g.op == CLEAR else "writes"
        prep = "in" if g.op == CLEAR else "into"
        subject = f"{via} {verb} {a} bits {prep} {g.register}" if via else f"{a} constants {done} {g.register}"
        where = f" (applied at {g.writer})" if g.writer else ""
        if res0 or other:
            parts = []
            if res0:
                parts.append(f"{names(res0)} {'are' if len(res0) > 1 else 'is'} RES0 there")
            if other:
                parts.append(names(other))
            msg = f"{subject}{where}: {'; '.join(parts)}{as_of}"
            lost = [s.split(" ")[0] for s in res0 + other]
            note = (f"{via or 'This value'} is built from {a} names but is written into {g.register}. "
                    + (f"In {g.register} {names([r for r in res0])} {'are' if len(res0) > 1 else 'is'} "
                       "RES0, so this sets RES0 bits of an EL2 control register"
                       + (f" and nothing traps {'/'.join(controlled(x) for x in lost)} there "
                          "(a read-only register has no write trap)" if g.op != CLEAR else "")
                       + ". " if res0 else "")
                    + (f"{names(other)}: the bit traps a different register than the name says. "
                       if other else "")
                    + f"Use the {g.register}_* names for {g.register}, and only for fields it has.")
            return self.at_line(g.src, g.line, msg, note=note,
                                severity=Severity.CHECK if as_of else Severity.ERROR,
                                confidence=Confidence.LOW if as_of else None)
        msg = (f"{subject}{where}: {names(same)} {'sits' if len(same) == 1 else 'sit'} at the same "
               f"{'position' if len(same) == 1 else 'positions'} there, but use the {g.register}_ names")
        note = (f"{names(same)} {'have' if len(same) > 1 else 'has'} the same bit position and polarity in "
                f"{a} and {g.register}, so the value is right, but the {a} names say the wrong register "
                f"and break silently if the layouts diverge. Use the {g.register}_* constants (or two "
                "masks, one per register).")
        return self.at_line(g.src, g.line, msg, note=note, severity=Severity.CHECK,
                            confidence=Confidence.HIGH)


def _bits(bits: list[int]) -> str:
    if len(bits) == 1:
        return str(bits[0])
    return f"{bits[-1]}:{bits[0]}"
