"""kvmarm/coarse-trap-polarity: a coarse_trap_bits[] entry whose .value has the wrong sense for its bit."""

from __future__ import annotations

import re
from collections.abc import Iterator

from pmureview.kernel.traps import ENABLE, INDEX_PREFIXES, TRAP, name_class, split_constant
from pmureview.kernel.wiring import load_facts
from pmureview.lazyre import lazy_re
from pmureview.rule.base import Rule
from pmureview.rule.model import Confidence, Finding, RuleDocs, RuleMeta, Scope, Severity
from pmureview.views.context import FileContext

# `[CGT_X] = { .index = R, .value = V, .mask = M, ... }` (designated entries of coarse_trap_bits[]);
# matched on the text so hunk-only views, where the array header may be unknown, still work.
_ENTRY = lazy_re(r"\[\s*(CGT_\w+)\s*\]\s*=\s*\{([^{}]*)\}", re.S)
_FIELD = lazy_re(r"\.(index|value|mask)\s*=\s*([^,}]+)")
_IDENT = lazy_re(r"^\(?\s*([A-Za-z_]\w*)\s*\)?$")


class CoarseTrapPolarity(Rule):
    meta = RuleMeta(
        id="kvmarm/coarse-trap-polarity",
        title="coarse_trap_bits[] entry forwards on the wrong value of its trap or enable bit",
        severity=Severity.ERROR,
        confidence=Confidence.HIGH,
        scope=Scope.FILE,
        # prefilter: the check needs CGT_ in the view; full mode's view holds base lines
        evidence=(r"(?#hunk-only)CGT_",),
        files=("*/kvm/emulate-nested.c", "emulate-nested.c"),
        uses_tree=True,
        docs=RuleDocs(
            what="In emulate-nested.c, flags an added or changed `coarse_trap_bits[]` entry whose `.mask` "
                 "is one named bit of HCR_EL2, HCRX_EL2, MDCR_EL2, CPTR_EL2 or CNTHCTL_EL2 and whose "
                 "`.value` has the wrong sense: an enable bit (`...En`, `EN...`, HCR_EL2.API/APK/ATA/"
                 "FIEN) with `.value` equal to `.mask`, or a trap bit (`T` followed by a capital or a "
                 "digit: TID3, TPMCR, TDA) with `.value` 0 or omitted.",
            why="KVM forwards the access to the guest hypervisor when (L1's register & mask) == value. "
                "An enable bit traps when it is clear, so its entry needs `.value = 0`; a trap bit "
                "traps when it is set, so its entry needs `.value = .mask`. With the sense inverted, "
                "KVM forwards exactly the accesses L1 allowed and swallows the ones L1 asked to trap.",
            example="[CGT_HCRX_FOOEn] = {\n\t.index\t\t= HCRX_EL2,\n\t.value\t\t= HCRX_EL2_FOOEn,\n"
                    "\t.mask\t\t= HCRX_EL2_FOOEn,\n\t.behaviour\t= BEHAVE_FORWARD_ANY,\n},",
            use_instead="[CGT_HCRX_FOOEn] = {\n\t.index\t\t= HCRX_EL2,\n\t.value\t\t= 0,\n"
                        "\t.mask\t\t= HCRX_EL2_FOOEn,\n\t.behaviour\t= BEHAVE_FORWARD_ANY,\n},",
            known_problems="Only single named bits are judged: multi-bit fields (E2PB, E2TB, ZEN), "
                           "masks combining bits, routing and mode bits (IMO, FMO, AMO, TGE, E2H, NV*), "
                           "and names that read both ways (TWEDEn) are skipped. Single-bitness comes "
                           "from the sysreg file or kvm_arm.h (base tree or snapshot); an unknown "
                           "constant keeps the rule silent.",
            references=("DOMAIN-PACK2.md rule 23 and §1.5; arch/arm64/kvm/emulate-nested.c "
                        "check_cgt_bits()/get_behaviour() (the forwarding condition); the HCR_EL2.APK, "
                        "FIEN and HCRX_EL2.TCR2En entries (value 0) as models",),
        ),
    )

    def check(self, ctx: FileContext) -> Iterator[Finding]:  # type: ignore[override]
        view = ctx.view
        if not view.added or "CGT_" not in view.text:
            return
        facts = load_facts(ctx.series.base_reader)
        text = view.text
        line_starts = [0]
        for i, ch in enumerate(text):
            if ch == "\n":
                line_starts.append(i + 1)

        def line_of(pos: int) -> int:
            lo, hi = 0, len(line_starts) - 1
            while lo < hi:
                mid = (lo + hi + 1) // 2
                if line_starts[mid] <= pos:
                    lo = mid
                else:
                    hi = mid - 1
            return lo + 1

        for m in _ENTRY.finditer(text):
            first, last = line_of(m.start()), line_of(m.end())
            if not any(n in view.added for n in range(first, last + 1)):
                continue
            # blank comments out, keeping offsets, so field positions map back to lines
            body = re.sub(r"/\*.*?\*/|//[^\n]*", lambda c: re.sub(r"[^\n]", " ", c.group(0)),
                          m.group(2), flags=re.S)
            fields = {f.group(1): (f.group(2).strip(), m.start(2) + f.start()) for f in _FIELD.finditer(body)}
            if "index" not in fields or "mask" not in fields:
                continue
            index = fields["index"][0]
            if index not in INDEX_PREFIXES:
                continue
            mm = _IDENT.match(fields["mask"][0])
            if not mm:
                continue  # combined or computed masks: not a named single bit
            mask = mm.group(1)
            fname = split_constant(index, mask)
            if fname is None or not self._single_bit(ctx, facts, mask):
                continue
            cls = name_class(fname, facts.trap_classes)
            if cls is None:
                continue
            raw_value = fields.get("value", ("0", None))[0]
            vm = _IDENT.match(raw_value)
            value = vm.group(1) if vm else raw_value.strip("() ")
            is_zero = value in ("0", "0UL", "0ULL", "0U")
            is_mask = value == mask
            reg = INDEX_PREFIXES[index][0]
            # anchor: the .value line when the patch wrote it, else the entry's first added line
            vpos = fields.get("value", (None, None))[1]
            vline = line_of(vpos) if vpos is not None else None
            line = vline if vline in view.added else next(n for n in range(first, last + 1) if n in view.added)
            cgt = m.group(1)
            if cls == ENABLE and is_mask:
                yield self.at_line(
                    view, line, f"{cgt}: {reg}.{fname} is an enable bit, so .value must be 0, not {mask}",
                    note=f"{reg}.{fname} is an enable: the accesses it controls trap when it is 0. "
                         f"With .value equal to .mask, KVM forwards the access to the guest hypervisor "
                         f"exactly when L1 has enabled it, and keeps it when L1 asked for the trap. "
                         f"This entry wants .value = 0.")
            elif cls == TRAP and is_zero:
                shown = "omitted (0)" if "value" not in fields else "0"
                yield self.at_line(
                    view, line, f"{cgt}: {reg}.{fname} is a trap bit, but .value is {shown}",
                    note=f"{reg}.{fname} traps when it is set. With .value = 0, KVM forwards the "
                         f"access to the guest hypervisor when L1 has *not* asked for the trap, and "
                         f"handles it itself when L1 did. This entry wants .value = {mask}.")

    @staticmethod
    def _single_bit(ctx: FileContext, facts, const: str) -> bool:
        kb = ctx.series.kb
        try:
            ref = kb.resolve_constant(const) if kb is not None else None
        except Exception:  # kb is another module's; its failure means "unknown"
            ref = None
        if ref is not None and getattr(ref, "kind", None) in ("field", "mask"):
            return bin(ref.mask).count("1") == 1
        return const in facts.single_bits

