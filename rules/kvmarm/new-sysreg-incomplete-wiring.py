"""kvmarm/new-sysreg-incomplete-wiring: a register gets guest storage but not the rest of its plumbing."""

from __future__ import annotations

import re
from collections.abc import Iterator

from pmureview.kernel.dating import WIRING, trust
from pmureview.kernel.vncr import VNCR_MAPPING_PATH, offsets
from pmureview.kernel.wiring import (
    EMULATE_NESTED_PATH,
    FGU_PATHS,
    KVM_HOST_PATH,
    fgu_mentions,
    load_facts,
    parse_vcpu_sysreg,
)
from pmureview.lazyre import lazy_re
from pmureview.record import dataclass, field
from pmureview.rule.base import Rule
from pmureview.rule.model import Confidence, Finding, RuleDocs, RuleMeta, Scope, Severity
from pmureview.views.context import FileView, SeriesContext

_SYSREG_PATH = "arch/arm64/tools/sysreg"
_SYSREG_FIELD = lazy_re(r"^\s*(?:Field|UnsignedEnum|SignedEnum|Enum)\s+\d+(?::\d+)?\s+(\w+)")


@dataclass
class NewReg:
    name: str
    vncr: bool
    view: FileView
    line: int
    missing: list[tuple[str, str]] = field(default_factory=list)  # (short, explained)


class NewSysregIncompleteWiring(Rule):
    meta = RuleMeta(
        id="kvmarm/new-sysreg-incomplete-wiring",
        title="New guest system register without its NV routing, FGU or VNCR wiring",
        severity=Severity.WARNING,
        confidence=Confidence.MEDIUM,
        scope=Scope.SERIES,
        # prefilter: reports only added vcpu_sysreg entries of kvm_host.h: the path is in the diff line
        evidence=(r"arch/arm64/include/asm/kvm_host\.h",),
        needs_base=True,
        uses_tree=True,
        docs=RuleDocs(
            what="For each register the series gives guest storage (a new `enum vcpu_sysreg` entry, "
                 "plain or VNCR()), reports the touch points that neither the base nor the series "
                 "provides: an SR_FGT() entry in encoding_to_fgt[] when the register has a "
                 "fine-grained trap field (so an L1 hypervisor's trap is honoured), that field in the "
                 "FGU computation (so a VM without the feature gets an UNDEF), and VNCR(R) instead of a "
                 "plain entry when the architecture puts R in the VNCR page. Each check runs only when "
                 "the base has the mechanism. One finding per register, listing what is missing. A name "
                 "written inside a block comment of the enum is no entry.",
            why="A new register is wired into several independent tables; each one forgotten is a "
                "silent hole: without SR_FGT() a nested guest's FGT trap is never forwarded, without "
                "FGU a VM configured without the feature can still access the register, and a VNCR "
                "register declared as a plain entry gives KVM and an NV2 guest hypervisor two "
                "different copies.",
            example="enum vcpu_sysreg {\n\t...\n\tFOO_EL1,\t/* new, with storage */\n"
                    "/* sys_regs.c: { SYS_DESC(SYS_FOO_EL1), NULL, reset_unknown, FOO_EL1, "
                    ".visibility = foo_visibility }, and a save/restore; nothing else */",
            use_instead="\tVNCR(FOO_EL1),\t\t/* VNCR_FOO_EL1 in vncr_mapping.h */\n"
                        "SR_FGT(SYS_FOO_EL1, HFGRTR, nFOO_EL1, 0),\t/* emulate-nested.c */\n"
                        "if (!kvm_has_feat(kvm, ID_AA64FOO0_EL1, FOO, IMP))\n"
                        "\tkvm->arch.fgu[HFGRTR_GROUP] |= HFGRTR_EL2_nFOO_EL1;",
            known_problems="Runs with a base (full mode) at warning level; in hunk-only mode or on a "
                           "series with missing patches it reports only what the knowledge snapshot "
                           "cannot already provide, as a check. Registers whose FGT field the sysreg "
                           "file names differently from the register are found only through the "
                           "snapshot's SR_FGT table. The enable-bit and NV RES0 checks of DOMAIN-PACK2 "
                           "rule 21 (items 3 and 5) are not implemented.",
            references=("DOMAIN-PACK2.md rule 21, §1.4 and §1.5; arch/arm64/kvm/emulate-nested.c "
                        "encoding_to_fgt[]; kvm_calculate_traps()/compute_fgu() (FGU)",),
        ),
    )

    def check(self, ctx: SeriesContext) -> Iterator[Finding]:  # type: ignore[override]
        facts = load_facts(ctx.base_reader)
        full = ctx.full
        partial = bool(getattr(ctx.series, "missing", ())) or not full
        regs = self._new_registers(ctx, facts, full)
        if not regs:
            return
        # without a tree the tables are the bundled ones (always a check here): say of which kernel
        worth = trust(ctx, WIRING) if not full else None
        as_of = f" ({worth.as_of})" if worth is not None and not worth.warn and worth.as_of else ""
        finals = ctx.final_views()
        emu = self._texts(ctx, finals, (EMULATE_NESTED_PATH,), full)
        fgu_texts = self._texts(ctx, finals, FGU_PATHS, full)
        vncr = dict(facts.vncr)
        if VNCR_MAPPING_PATH in finals:
            vncr.update(offsets(finals[VNCR_MAPPING_PATH].text))
        series_fields = self._series_sysreg_fields(ctx)
        has_fgt_table = (("encoding_to_fgt" in "".join(emu)) if full and emu else facts.has_encoding_to_fgt)
        for r in regs:
            # 4. VNCR: the architecture puts R in the VNCR page, so its storage must be VNCR(R).
            if not r.vncr and r.name in vncr:
                r.missing.append((f"VNCR({r.name})",
                                  f"it is declared as a plain entry although VNCR_{r.name} is "
                                  f"{vncr[r.name]:#x}, so KVM and an NV2 guest hypervisor keep different "
                                  f"copies: it should be VNCR({r.name})"))
            # 1. NV routing through the FGT table.
            fgt = self._fgt_field(ctx, facts, r.name, series_fields)
            if fgt is not None and has_fgt_table:
                sysname = f"SYS_{r.name}"
                in_series = any(re.search(r"SR_FGT\s*\(\s*" + sysname + r"\s*,", t) for t in emu)
                in_base = not full and sysname in facts.sr_fgt  # hunk-only: the snapshot may have it
                if not in_series and not in_base:
                    where = f"{fgt[0]}.{fgt[1]}" if fgt[0] else fgt[1]
                    r.missing.append((f"an SR_FGT({sysname}, ...) entry",
                                      f"there is no SR_FGT({sysname}, ...) entry in emulate-nested.c for "
                                      f"its fine-grained trap {where}, so an L1 hypervisor trapping it "
                                      f"never sees the trap"))
                # 2. FGU, judged only against a whole base (hunk-only cannot see the base's FGU code).
                if full and facts.has_fgu and fgt[0]:
                    consts = {f"{fgt[0]}_{fgt[1]}"}
                    if fgt[0] in ("HFGRTR_EL2", "HFGWTR_EL2"):
                        consts.add(f"HFGxTR_EL2_{fgt[1]}")
                    if not any(fgu_mentions(c, fgu_texts) for c in consts):
                        r.missing.append((f"FGU for {fgt[0]}.{fgt[1]}",
                                          f"{fgt[0]}.{fgt[1]} is never added to the FGU, so a VM "
                                          f"configured without the feature can still access {r.name}"))
        for r in regs:
            if not r.missing:
                continue
            sev, conf = (Severity.CHECK, Confidence.LOW) if partial else (None, None)
            shorts = ", ".join(m[0] for m in r.missing)
            yield self.at_line(
                r.view, r.line, f"{r.name} gets guest storage but is missing {shorts}{as_of}",
                severity=sev, confidence=conf,
                note=f"{r.name} gets storage, but the rest of the plumbing is missing: "
                     + "; ".join(m[1] for m in r.missing) + f". What happens when a nested guest, or a VM "
                     f"without the feature, touches {r.name}?")

    # -- inputs ----------------------------------------------------------------------------------

    @staticmethod
    def _new_registers(ctx: SeriesContext, facts, full: bool) -> list[NewReg]:
        out: dict[str, NewReg] = {}
        removed: set[str] = set()
        for view in ctx.all_views():
            if view.path != KVM_HOST_PATH:
                continue
            removed |= {e.name for e in parse_vcpu_sysreg("\n".join(view.change.removed_text), whole_enum=False)}
            comments = view.comment_lines  # `FOO_EL1,` inside a block comment is no enum entry
            for e in parse_vcpu_sysreg(view.text, whole_enum=full):
                if e.line in view.added and e.line not in comments and e.name not in out:
                    out[e.name] = NewReg(e.name, e.vncr, view, e.line)
        base_enum = facts.enum
        # novelty: not in the base enum (full) / not in the snapshot's enum (hunk-only), and not moved
        return [r for n, r in out.items() if n not in base_enum and n not in removed]

    @staticmethod
    def _texts(ctx: SeriesContext, finals: dict[str, FileView], paths: tuple[str, ...], full: bool) -> list[str]:
        out = []
        for p in paths:
            if p in finals:
                out.append(finals[p].text)
            elif full:
                try:
                    t = ctx.base_text(p)
                except Exception:  # unreadable base file: treated as absent
                    t = None
                if t:
                    out.append(t)
        return out

    @staticmethod
    def _series_sysreg_fields(ctx: SeriesContext) -> dict[str, str | None]:
        """Field names the series adds to the sysreg file -> the FGT register holding them (None when
        the block header is not visible, as in hunk-only views)."""
        out: dict[str, str | None] = {}
        for view in ctx.all_views():
            if view.path != _SYSREG_PATH:
                continue
            current: str | None = None
            for i, ln in enumerate(view.lines, 1):
                if m := re.match(r"^\s*Sysreg(?:Fields)?\s+(\w+)", ln):
                    current = m.group(1)
                elif re.match(r"^\s*EndSysreg", ln):
                    current = None
                elif i in view.added and (m := _SYSREG_FIELD.match(ln)) and (
                        current is None or re.match(r"^(ICH_)?H[ADF]*G[RWIx]TR2?_EL2$", current)):
                    out.setdefault(m.group(1), current)
        return out

    @staticmethod
    def _fgt_field(ctx: SeriesContext, facts, reg: str, series_fields) -> tuple[str | None, str] | None:
        """(FGT register, field) that traps `reg`, or None when it has none / nothing is known."""
        e = facts.sr_fgt.get(f"SYS_{reg}")
        if e is not None:
            group, fld, _pol = e
            regname = group + "_EL2" if group != "HFGxTR" else "HFGRTR_EL2"
            return regname, fld
        stem = reg
        cands = (stem, "n" + stem)
        try:
            fgts = dict(ctx.kb.fgt_registers) if ctx.kb is not None else {}
        except Exception:  # another module's facts; failure means "unknown"
            fgts = {}
        for name in sorted(fgts):
            if name.startswith(("HFGWTR", "HDFGWTR")):  # report the read twin
                continue
            fr = fgts[name]
            for c in cands:
                if c in fr.fields:
                    return name, c
        for c in cands:
            if c in series_fields:
                return series_fields[c], c
        return None
