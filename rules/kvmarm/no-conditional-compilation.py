"""kvmarm/no-conditional-compilation: ifdeffery KVM/arm64 avoids on purpose."""

from __future__ import annotations

import re
from collections.abc import Iterator

from pmureview.kernel.header_stubs import declarations, macro_functions, scan
from pmureview.lang.c import call_name, text, walk
from pmureview.lazyre import lazy_re
from pmureview.rule.base import Rule
from pmureview.rule.model import Confidence, Finding, RuleDocs, RuleMeta, Scope, Severity
from pmureview.views.context import FileContext, FileView

# The per-object macros the hyp build defines; testing them splits one definition into two.
_HYP_MACRO = lazy_re(r"\b__KVM_(?:NVHE|VHE)_HYPERVISOR__\b")
_CONFIG = lazy_re(r"^\s*IS_ENABLED\s*\(\s*(CONFIG_\w+)\s*\)\s*$")
# Host-wide capability tests that are already constant-folded through alternatives/static keys.
_CAP_TESTS = {"cpus_have_final_cap", "cpus_have_cap", "cpus_have_const_cap",
              "alternative_has_cap_likely", "alternative_has_cap_unlikely"}


def _in_scope(path: str) -> bool:
    return path.startswith("arch/arm64/kvm/") or bool(
        re.match(r"arch/arm64/include/asm/kvm_[\w-]+\.h$", path))


class NoConditionalCompilation(Rule):
    meta = RuleMeta(
        id="kvmarm/no-conditional-compilation",
        title="Conditional compilation where KVM/arm64 uses runtime checks",
        severity=Severity.WARNING,
        confidence=Confidence.HIGH,
        scope=Scope.FILE,
        needs_base=True,  # it judges *new* ifdeffery: established splits (kvm_hyp.h, kvm_asm.h) stay
        docs=RuleDocs(
            what="In arch/arm64/kvm/ and arch/arm64/include/asm/kvm_*.h, flags an added "
                 "`#if !defined(__KVM_NVHE_HYPERVISOR__)` / `#ifdef __KVM_NVHE_HYPERVISOR__` (or the VHE "
                 "twin) whose branches give the same function or macro two definitions, and an "
                 "`IS_ENABLED(CONFIG_…) &&` placed in front of a `cpus_have_final_cap()` test.",
            why="KVM/arm64 deliberately avoids conditional compilation so that every configuration "
                "keeps compiling the same code and nothing bitrots behind an #ifdef. A predicate with "
                "one definition for the kernel and another for the nVHE object behaves differently "
                "depending on which object calls it; the capability check already folds to a constant "
                "through alternatives, so the IS_ENABLED() adds nothing but a build-time fork.",
            example="#if !defined(__KVM_NVHE_HYPERVISOR__)\n"
                    "bool kvm_vcpu_pmu_is_partitioned(struct kvm_vcpu *vcpu);\n"
                    "#else\nstatic inline bool kvm_vcpu_pmu_is_partitioned(struct kvm_vcpu *vcpu) "
                    "{ return false; }\n#endif\n\n"
                    "if (IS_ENABLED(CONFIG_ARM64_SME) && cpus_have_final_cap(ARM64_SME))",
            use_instead="bool kvm_vcpu_pmu_is_partitioned(struct kvm_vcpu *vcpu);\n\n"
                        "if (cpus_have_final_cap(ARM64_SME))",
            known_problems="Only conditionals added by the patch are reported, and only when their "
                           "branches define the same name: established uses such as the kvm_hyp.h "
                           "accessors, and generic CONFIG_KVM stubs needed to link, are left alone.",
            references=("<87y2346on8.wl-maz@kernel.org> (Marc Zyngier: 'We purposely avoid conditional "
                        "compilation in KVM in order to avoid bitrot')",
                        "<20251209205121.1871534-11-coltonlewis@google.com> (v5 10/24: the "
                        "__KVM_NVHE_HYPERVISOR__ split in kvm_pmu.h)"),
        ),
    )

    def check(self, ctx: FileContext) -> Iterator[Finding]:  # type: ignore[override]
        view = ctx.view
        if not view.added or not _in_scope(view.path):
            return
        # Cheap pre-checks over the added lines (the reported #if line, and the IS_ENABLED() operand's
        # first line, are added lines that contain these words), so the whole-file scans below only
        # run when they can report something.
        added = [view.line_text(n) for n in view.added]
        if any("HYPERVISOR__" in t for t in added):
            yield from self._hyp_splits(view)
        if view.is_c and any("IS_ENABLED" in t for t in added):
            yield from self._is_enabled_caps(view)

    def _hyp_splits(self, view: FileView) -> Iterator[Finding]:
        struct = scan(view.lines)
        names: dict[int, str] = {}
        for d in [*declarations(view.root), *macro_functions(view.lines)]:
            names[d.line] = d.name
        for if_line, cond in sorted(struct.conditionals.items()):
            first = cond.arms[0]
            if if_line not in view.added or not _HYP_MACRO.search(first.cond) or len(cond.arms) < 2:
                continue
            per_arm = [{names[n] for n in struct.arm_range(a) if n in names} for a in cond.arms]
            both = sorted(set.intersection(*per_arm))
            if not both:
                continue
            macro = _HYP_MACRO.search(first.cond).group(0)
            listed = ", ".join(f"{n}()" for n in both)
            yield self.at_line(
                view, if_line,
                f"'#{first.kind} {first.cond}' gives {listed} a second definition for the "
                f"{'nVHE' if 'NVHE' in macro else 'VHE'} hypervisor object",
                note=f"Please avoid ifdeffery here: keep a single definition of {listed} and let a "
                     f"runtime check (has_vhe(), is_protected_kvm_enabled() or the capability's static "
                     f"key) do the work. KVM avoids conditional compilation on purpose, so that all "
                     f"configurations build the same code and nothing bitrots behind an #ifdef.")

    def _is_enabled_caps(self, view: FileView) -> Iterator[Finding]:
        seen: set[int] = set()
        for node in walk(view.root, {"binary_expression"}):
            if text(node.child_by_field_name("operator")) != "&&":
                continue
            if node.parent is not None and node.parent.type == "binary_expression" and \
                    text(node.parent.child_by_field_name("operator")) == "&&":
                continue  # handle each && chain once, from its top
            operands = _chain(node)
            configs = [o for o in operands if _CONFIG.match(text(o))]
            caps = [c for o in operands for c in walk(o, {"call_expression"}) if call_name(c) in _CAP_TESTS]
            if not configs or not caps:
                continue
            cfg = configs[0]
            if cfg.start_byte > caps[0].start_byte:
                continue  # only the IS_ENABLED() guard in front of the capability test
            line = view.node_line(cfg)
            if line not in view.added or line in seen:
                continue
            seen.add(line)
            option = _CONFIG.match(text(cfg)).group(1)
            cap = " ".join(text(caps[0]).split())
            yield self.at_node(
                view, cfg,
                f"drop IS_ENABLED({option}) in front of {cap}",
                note=f"Please drop the IS_ENABLED(). {cap} is already patched to a constant "
                     f"once capabilities are finalised, so the {option} test only forks the build; "
                     f"KVM purposely avoids conditional compilation in order to avoid bitrot. If "
                     f"the capability implies another one you also test, simplify that too.")


def _chain(node) -> list:
    """The operands of a `a && b && c` chain (parentheses unwrapped)."""
    out = []
    stack = [node]
    while stack:
        n = stack.pop()
        while n.type == "parenthesized_expression" and n.named_child_count == 1:
            n = n.named_children[0]
        if n.type == "binary_expression" and text(n.child_by_field_name("operator")) == "&&":
            stack.append(n.child_by_field_name("right"))
            stack.append(n.child_by_field_name("left"))
        else:
            out.append(n)
    return out
