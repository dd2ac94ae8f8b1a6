"""kvmarm/bool-instead-of-flag: a new bool member of struct kvm_vcpu_arch / kvm_arch instead of a flag."""

from __future__ import annotations

import re
from collections.abc import Iterator

from pmureview.analyses.enclosing import enclosing_struct
from pmureview.kernel.api_since import api, api_worth
from pmureview.rule.base import Rule
from pmureview.rule.model import Confidence, Finding, RuleDocs, RuleMeta, Scope, Severity
from pmureview.views.context import FileContext

# `bool a;` / `bool a, b;` only: arrays, pointers, bit-fields and initialised objects are not flags
_BOOL = re.compile(r"^\s+bool\s+([A-Za-z_]\w*(?:\s*,\s*[A-Za-z_]\w*)*)\s*;\s*(?:/[*/].*)?$")
_STRUCTS = ("kvm_vcpu_arch", "kvm_arch")
# the flag APIs the advice names (kernel/api_since.py: since when each exists)
_VCPU_FLAGS, _OLD_VCPU_FLAGS, _VM_FLAGS = "vcpu_set_flag", "KVM_ARM64_DEBUG_DIRTY", \
    "KVM_ARCH_FLAG_RETURN_NISV_IO_ABORT_TO_USER"


class BoolInsteadOfFlag(Rule):
    meta = RuleMeta(
        evidence=('\\bbool\\b',),  # cannot fire without it (prefilter)
        id="kvmarm/bool-instead-of-flag",
        title="New bool member in struct kvm_vcpu_arch / kvm_arch instead of a flag",
        severity=Severity.WARNING,
        confidence=Confidence.MEDIUM,
        scope=Scope.FILE,
        files=("arch/arm64/*.h",),
        docs=RuleDocs(
            what="Flags a `bool` member that a patch adds directly to `struct kvm_vcpu_arch` or "
                 "`struct kvm_arch` (arm64), where KVM keeps such state as bits of a flag set.",
            why="Every discrete bool grows the per-vCPU or per-VM structure and scatters state that "
                "KVM/arm64 keeps together in vcpu->arch flags (vcpu_{get,set,clear}_flag(), formerly "
                "KVM_ARM64_* bits) and kvm->arch.flags (KVM_ARCH_FLAG_*, set_bit()/test_bit()). "
                "Maintainers ask for a flag instead of \"yet another bool\".",
            example="struct kvm_arch {\n\t...\n\tbool suspend_exits;\n};",
            use_instead="#define KVM_ARCH_FLAG_SUSPEND_EXITS\t\t4\n\n"
                        "set_bit(KVM_ARCH_FLAG_SUSPEND_EXITS, &kvm->arch.flags);",
            known_problems="Only direct members are judged: a bool inside a nested struct of "
                           "kvm_vcpu_arch (such as a grouped sub-state) is left alone, as are bool "
                           "arrays, pointers, bit-fields and members the same patch removes elsewhere "
                           "(moved or retyped, not new). In hunk-only mode the struct is known from the "
                           "hunk heading when its opener is outside the hunk; in full mode a tree whose "
                           "header has no such flag set yet (older kernels) is not reported. The "
                           "advice follows the base (kernel/api_since.py): vcpu_{get,set,clear}_flag() "
                           "since v5.19, KVM_ARM64_* bits of vcpu->arch.flags before, KVM_ARCH_FLAG_* "
                           "since v5.18; without a tree the series' date stands in, and advice "
                           "naming a flag set newer than the series is only a check that says so.",
            references=("<87mtlxsn1l.wl-maz@kernel.org> (has_reset_once in kvm_vcpu_arch)",
                        "<87sfs82rz4.wl-maz@kernel.org> (a bool in kvm_arch: use the VM flags)"),
        ),
    )

    def check(self, ctx: FileContext) -> Iterator[Finding]:  # type: ignore[override]
        view = ctx.view
        # a member the patch also removes (from any file) is moved or retyped, not new
        gone = {m.group(1) for f in ctx.patch.files for t in f.removed_text
                if (m := re.search(r"\b([A-Za-z_]\w*)\s*(?:\[[^\]]*\])?\s*;", t))}
        for line in sorted(view.added):
            m = _BOOL.match(view.line_text(line))
            if m is None or view.line_text(line - 1).rstrip().endswith("\\"):
                continue
            names = [n for n in re.split(r"\s*,\s*", m.group(1)) if n not in gone]
            enc = enclosing_struct(view, line)
            if not names or enc is None or enc.depth != 1 or enc.name not in _STRUCTS:
                continue
            advice = _advice(ctx, enc.name)
            if advice is None:
                continue  # the base predates the flag set (a tree shows it)
            instead, dated = advice
            yield self.at_line(
                view, line, f"new bool '{', '.join(names)}' in struct {enc.name}: make it {instead}{dated}",
                note="KVM/arm64 keeps per-vCPU and per-VM boolean state as bits of its flag sets "
                     "rather than as discrete bools in these structures.",
                severity=Severity.CHECK if dated else None, confidence=Confidence.LOW if dated else None)


def _advice(ctx: FileContext, struct: str) -> tuple[str, str] | None:
    """(what to use instead, ' (X exists since vX.Y)' when that may not be on the series' base) for
    the flag set of `struct` the series' base has (the series itself, the base tree, else its date:
    kernel/api_since.py); None when a base tree has no such flag set."""
    if struct == "kvm_arch":
        w = api_worth(ctx, _VM_FLAGS)
        return ("a KVM_ARCH_FLAG_* bit of kvm->arch.flags", w.suffix) if w.give else None
    new = api_worth(ctx, _VCPU_FLAGS)
    if new.warn:
        return "a vcpu flag (vcpu_{get,set,clear}_flag())", ""
    old = api_worth(ctx, _OLD_VCPU_FLAGS)
    if not old.give:
        return None
    later = api(_VCPU_FLAGS)
    tail = f"; {later.name} since {later.since}" if later is not None and new.give else ""
    return f"a vcpu flag (a KVM_ARM64_* bit of vcpu->arch.flags{tail})", old.suffix
