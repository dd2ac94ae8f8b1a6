"""kvmarm/bool-instead-of-flag: a new bool member of struct kvm_vcpu_arch / kvm_arch instead of a flag."""

from __future__ import annotations

import re
from collections.abc import Iterator

from pmureview.analyses.enclosing import enclosing_struct
from pmureview.rule.base import Rule
from pmureview.rule.model import Confidence, Finding, RuleDocs, RuleMeta, Scope, Severity
from pmureview.views.context import FileContext

# `bool a;` / `bool a, b;` only: arrays, pointers, bit-fields and initialised objects are not flags
_BOOL = re.compile(r"^\s+bool\s+([A-Za-z_]\w*(?:\s*,\s*[A-Za-z_]\w*)*)\s*;\s*(?:/[*/].*)?$")
# struct -> (the flag set a full-mode tree must already have, what to use instead)
_SETS = {
    "kvm_vcpu_arch": (re.compile(r"\bvcpu_set_flag\b|#define\s+KVM_ARM64_\w+\s+\(1U?L?L?\s*<<"),
                      "a vcpu flag (vcpu_{get,set,clear}_flag(), or a KVM_ARM64_* bit of vcpu->arch.flags)"),
    "kvm_arch": (re.compile(r"\bKVM_ARCH_FLAG_\w+"), "a KVM_ARCH_FLAG_* bit of kvm->arch.flags"),
}


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
                           "header has no such flag set yet (older kernels) is not reported.",
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
            if not names or enc is None or enc.depth != 1 or enc.name not in _SETS:
                continue
            flags, instead = _SETS[enc.name]
            if view.mode == "full" and not flags.search(view.text):
                continue  # a kernel that predates the flag set
            yield self.at_line(
                view, line, f"new bool '{', '.join(names)}' in struct {enc.name}: make it {instead}",
                note="KVM/arm64 keeps per-vCPU and per-VM boolean state as bits of its flag sets "
                     "rather than as discrete bools in these structures.")
