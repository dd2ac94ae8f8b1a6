"""header/duplicate-or-mismatched-stub: one prototype, two static inline stubs (or a stub that disagrees)."""

from __future__ import annotations

from collections.abc import Iterator

from pmureview.kernel.header_stubs import FuncDecl, Structure, declarations, scan
from pmureview.rule.base import Rule
from pmureview.rule.model import Confidence, Finding, RuleDocs, RuleMeta, Scope, Severity
from pmureview.views.context import FileContext


def _branch_label(struct: Structure, line: int) -> str:
    arms = struct.arms(line)
    if not arms:
        return "no conditional visible"
    a = arms[-1]
    if a.kind == "else":
        return f"#else of '#{_head(struct, a)}'"
    return f"'#{a.kind} {a.cond}'"


def _head(struct: Structure, arm) -> str:
    c = struct.conditionals.get(arm.if_line)
    first = c.arms[0] if c else arm
    return f"{first.kind} {first.cond}"


class DuplicateOrMismatchedStub(Rule):
    meta = RuleMeta(
        evidence=(r"(?#hunk-only)inline",),  # a stub is `static inline`; full mode reads base lines
        id="header/duplicate-or-mismatched-stub",
        title="The same static inline stub defined in two preprocessor branches, or a stub that "
              "disagrees with its prototype",
        severity=Severity.WARNING,
        confidence=Confidence.HIGH,
        scope=Scope.FILE,
        files=("*.h",),
        docs=RuleDocs(
            what="In a header, flags a function that has one real prototype but a `static inline` stub "
                 "in two different preprocessor branches (typically an inner `#else` added for one "
                 "object, e.g. `__KVM_NVHE_HYPERVISOR__`, plus the usual `!CONFIG_…` `#else`), and a "
                 "stub whose parameter types differ from the prototype's.",
            why="Two stubs for one declaration mean two places to keep in sync and usually reveal a "
                "second, unnecessary conditional; a stub whose signature differs from the prototype "
                "compiles in one configuration and breaks (or silently converts pointers) in the other, "
                "which only randconfig builds notice.",
            example="#if IS_ENABLED(CONFIG_HW_PERF_EVENTS)\n#if !defined(__KVM_NVHE_HYPERVISOR__)\n"
                    "bool kvm_vcpu_pmu_is_partitioned(struct kvm_vcpu *vcpu);\n#else\n"
                    "static inline bool kvm_vcpu_pmu_is_partitioned(struct kvm_vcpu *vcpu) "
                    "{ return false; }\n#endif\n#else\n"
                    "static inline bool kvm_vcpu_pmu_is_partitioned(struct kvm_vcpu *vcpu) "
                    "{ return false; }\n#endif",
            use_instead="#if IS_ENABLED(CONFIG_HW_PERF_EVENTS)\n"
                        "bool kvm_vcpu_pmu_is_partitioned(struct kvm_vcpu *vcpu);\n#else\n"
                        "static inline bool kvm_vcpu_pmu_is_partitioned(struct kvm_vcpu *vcpu) "
                        "{ return false; }\n#endif",
            known_problems="Only trivial bodies (empty, or returning a constant) count as stubs. Functions "
                           "with several real prototypes (one per configuration) are left alone. In "
                           "hunk-only mode only the conditionals visible in the hunks are known, so a "
                           "stub outside them is treated as being in its own branch.",
            references=("<20251209205121.1871534-11-coltonlewis@google.com> (v5 10/24: "
                        "kvm_vcpu_pmu_is_partitioned() and kvm_vcpu_pmu_use_fgt() stubbed under "
                        "__KVM_NVHE_HYPERVISOR__ and !CONFIG_HW_PERF_EVENTS)",),
        ),
    )

    def check(self, ctx: FileContext) -> Iterator[Finding]:  # type: ignore[override]
        view = ctx.view
        if not view.added:
            return
        struct = scan(view.lines)
        by_name: dict[str, list[FuncDecl]] = {}
        for d in declarations(view.root):
            by_name.setdefault(d.name, []).append(d)
        for name, decls in by_name.items():
            protos = [d for d in decls if d.kind == "prototype"]
            stubs = [d for d in decls if d.is_stub]
            others = [d for d in decls if d.kind in ("definition", "inline") and not d.is_stub]
            if len(protos) != 1 or others:
                continue  # per-config real declarations, or a real body: not a stub pattern
            proto = protos[0]
            yield from self._duplicates(view, struct, name, proto, stubs)
            yield from self._mismatches(view, name, proto, stubs)

    def _duplicates(self, view, struct: Structure, name: str, proto: FuncDecl,
                    stubs: list[FuncDecl]) -> Iterator[Finding]:
        if len(stubs) < 2:
            return
        stubs = sorted(stubs, key=lambda d: d.line)
        # Stubs in arms of the same conditional are alternatives, not duplicates.
        innermost = {(struct.arms(d.line)[-1].if_line if struct.arms(d.line) else 0) for d in stubs}
        if len(innermost) < 2:
            return
        added = [d for d in stubs if _added(view, d)]
        if not added:
            return
        second = stubs[1]
        anchor = second if _added(view, second) else added[-1]
        other = stubs[0] if anchor is not stubs[0] else stubs[1]
        yield self.at_line(
            view, anchor.line,
            f"{name}() is stubbed twice: here ({_branch_label(struct, anchor.line)}) and at line "
            f"{view.patch_line(other.line)} ({_branch_label(struct, other.line)})",
            note=f"{name}() has one prototype (line {view.patch_line(proto.line)}) but two identical "
                 f"static inline stubs in different #else branches. Fold them into one: keep a single "
                 f"declaration under the config that needs it and one stub, and drop the extra "
                 f"conditional (a runtime check such as has_vhe() can do its work).")

    def _mismatches(self, view, name: str, proto: FuncDecl, stubs: list[FuncDecl]) -> Iterator[Finding]:
        if proto.params is None:
            return
        for stub in stubs:
            if stub.params is None or stub.params == proto.params:
                continue
            if not (_added(view, stub) or _added(view, proto)):
                continue
            anchor = stub if _added(view, stub) else proto
            yield self.at_line(
                view, anchor.line,
                f"the {name}() stub takes ({', '.join(stub.params) or 'void'}) but the prototype takes "
                f"({', '.join(proto.params) or 'void'})",
                note=f"The stub and the prototype of {name}() must have the same signature, or the "
                     f"configuration that uses the stub will fail to build (or silently convert "
                     f"arguments). Copy the prototype's parameter list into the stub.")


def _added(view, d: FuncDecl) -> bool:
    return d.line in view.added or d.start in view.added
