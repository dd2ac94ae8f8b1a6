"""kvmarm/preemption-unsafe-hw-access: per-CPU PMU registers touched from code that can be preempted."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING
from weakref import WeakKeyDictionary

from pmureview.analyses.pmu_access import accesses, hunk_function, nodes_of
from pmureview.lang.c import call_name, function_name, text
from pmureview.lazyre import lazy_re
from pmureview.rule.base import Rule
from pmureview.rule.model import Confidence, Finding, RuleDocs, RuleMeta, Scope, Severity
from pmureview.views.context import FileContext, FileView, SeriesContext

if TYPE_CHECKING:
    from tree_sitter import Node

# Something in the function pins it to the CPU, or asserts that it is.
_GUARD = lazy_re(
    r"\b(preempt_disable|preempt_disable_notrace|get_cpu|get_cpu_var|get_cpu_ptr|local_irq_save|"
    r"local_irq_disable|spin_lock_irqsave|raw_spin_lock_irqsave|spin_lock_irq|raw_spin_lock_irq|"
    r"lockdep_assert_preemption_disabled|lockdep_assert_irqs_disabled|preemptible|in_task|"
    r"kvm_arm_vcpu_loaded_on_this_cpu)\b|"
    r"\b(?:scoped_)?guard\s*\(\s*(?:preempt|preempt_notrace|irq|irqsave|raw_spinlock_irq|"
    r"raw_spinlock_irqsave|spinlock_irq|spinlock_irqsave)\b")
# The vcpu_load()/vcpu_put() path and interrupt handlers run with preemption disabled.
_PINNED_NAME = lazy_re(r"(^|_)(load|put|irq|isr|hyp|nvhe)(_|$)|vcpu_load|vcpu_put")
# Trap handlers and ioctl paths run preemptible (with the vCPU loaded, but on whichever CPU).
_PREEMPTIBLE_NAME = lazy_re(r"^access_|_ioctl\b|(^|_)(set|get)_attr$|(^|_)(set|get)_user$|^handle_")
_HANDLER_FIELD = lazy_re(r"\.\s*(access|set_user|get_user)\s*=\s*([A-Za-z_]\w*)")


def _in_scope(path: str) -> bool:
    return path.startswith("arch/arm64/kvm/") and not path.startswith("arch/arm64/kvm/hyp/")


class PreemptionUnsafeHwAccess(Rule):
    meta = RuleMeta(
        id="kvmarm/preemption-unsafe-hw-access",
        title="Per-CPU PMU register accessed from preemptible code",
        severity=Severity.CHECK,
        confidence=Confidence.LOW,
        scope=Scope.FILE,
        # prefilter: the reported access is a call of one of these, starting on an added line
        evidence=(r"read_sysreg|write_sysreg|read_pm|write_pm",),
        docs=RuleDocs(
            what="Asks about a new function outside arch/arm64/kvm/hyp/ (or a trap handler that gains "
                 "a hardware access) that reads or writes per-CPU PMU registers (`read_sysreg()` / "
                 "`write_sysreg()` of PM* registers, the arm_pmuv3.h accessors such as `read_pmcr()` "
                 "or `write_pmselr()`) with no preemption guard, when it is a trap handler or is "
                 "called from one (or from an ioctl path) in the series, and is not on the "
                 "vcpu_load()/vcpu_put() path.",
            why="Trap handlers and ioctls run with preemption enabled. If the task migrates between "
                "two accesses, or between the access and vcpu_put(), the code reads another CPU's "
                "PMU or writes state that the put path then saves over. Either the access must be "
                "pinned (preempt_disable(), guard(preempt)()) or the function must assert that its "
                "callers pinned it.",
            example="static bool access_pmselr(struct kvm_vcpu *vcpu, struct sys_reg_params *p,\n"
                    "\t\t\t  const struct sys_reg_desc *r)\n{\n\tp->regval = read_pmselr();\n"
                    "\treturn true;\n}",
            use_instead="static bool access_pmselr(struct kvm_vcpu *vcpu, struct sys_reg_params *p,\n"
                        "\t\t\t  const struct sys_reg_desc *r)\n{\n\tguard(preempt)();\n"
                        "\tp->regval = read_pmselr();\n\treturn true;\n}",
            known_problems="High false-positive risk: callers outside the series may already run with "
                           "preemption disabled, so the finding is a question. Only callers visible in "
                           "the series (all touched files; full files in full mode) are followed, two "
                           "levels up; a function with no visible preemptible caller is not reported.",
            references=("<20251209205121.1871534-11-coltonlewis@google.com> (the partitioned PMU series, "
                        "v5: trap handlers accessing the PMU hardware directly)",),
        ),
    )

    def check(self, ctx: FileContext) -> Iterator[Finding]:  # type: ignore[override]
        view = ctx.view
        if not view.added or not view.is_c or not _in_scope(view.path):
            return
        index = None  # the series' call graph, built when a function first needs it
        for name, fn in view.functions():  # the named function_definitions, in walk order
            if not view.touches_added(fn) or _PINNED_NAME.search(name):  # (a bisection)
                continue
            if _GUARD.search(text(fn.child_by_field_name("body"))):
                continue
            hw = [a for a in accesses(fn) if a.where == "hw" and a.line in view.added]
            if not hw:
                continue
            new = view.node_line(fn) in view.added
            if index is None:
                index = _INDEX.get(ctx.series)
                if index is None:
                    index = _INDEX[ctx.series] = _CallIndex(ctx.series)
            handler = index.is_handler(name)
            if not new and not handler:
                continue
            via = name if handler else index.preemptible_caller(name)
            if via is None:
                continue
            a = hw[0]
            verb = "reads" if a.op == "read" else "writes"
            reg = a.reg or "a PMU register"
            path = "a trap handler" if via == name else f"{via}(), which runs preemptible"
            yield self.at_line(
                view, a.line,
                f"{name}() {verb} {reg} on the CPU from {path}: what keeps the vCPU's PMU context "
                f"on this CPU?",
                note=f"{name}() {verb} {reg} directly from the hardware, but it can be reached from "
                     f"{path}. What guarantees that the task is not migrated (and the vCPU put) "
                     f"between this access and its use? If the callers must have preemption "
                     f"disabled, please assert it (lockdep_assert_preemption_disabled()); otherwise "
                     f"pin the access with guard(preempt)().")


_FN_OR_CALL = frozenset({"function_definition", "call_expression"})
_INDEX: WeakKeyDictionary[SeriesContext, _CallIndex] = WeakKeyDictionary()  # one per run


class _CallIndex:
    """Who calls whom across the series' files (as the series leaves them)."""

    def __init__(self, series: SeriesContext) -> None:
        self.callers: dict[str, set[str]] = {}
        self.bodies: dict[str, Node] = {}  # the last definition of each name
        self._guarded: dict[str, bool] = {}
        self.handlers: set[str] = set()
        for v in series.final_views().values():
            if not v.is_c:
                continue
            self._index(v)

    def _index(self, v: FileView) -> None:
        self.handlers.update(m.group(2) for m in _HANDLER_FIELD.finditer(v.text))
        for name, fn in v.functions():
            self.bodies[name] = fn  # its body is only read if a caller chain reaches it
        # One pre-order pass over definitions and calls: the innermost open definition on the stack
        # is the call's enclosing_function(), without walking parents for every call.
        stack: list[tuple[int, str | None]] = []  # (end_byte, name) of the open definitions
        for node in nodes_of(v.root, _FN_OR_CALL):
            while stack and stack[-1][0] <= node.start_byte:
                stack.pop()
            if node.type == "function_definition":
                stack.append((node.end_byte, function_name(node)))
                continue
            callee = call_name(node)
            if not callee:
                continue
            caller = stack[-1][1] if stack else hunk_function(v, v.node_line(node))
            if caller and caller != callee:
                self.callers.setdefault(callee, set()).add(caller)

    def is_handler(self, name: str) -> bool:
        return name in self.handlers or bool(_PREEMPTIBLE_NAME.search(name))

    def _pinned(self, name: str) -> bool:
        if _PINNED_NAME.search(name):
            return True
        if name not in self._guarded:
            fn = self.bodies.get(name)
            body = text(fn.child_by_field_name("body")) if fn is not None else ""
            self._guarded[name] = bool(_GUARD.search(body))
        return self._guarded[name]

    def preemptible_caller(self, name: str, depth: int = 2) -> str | None:
        """A caller (up to `depth` levels) that runs preemptible with nothing pinning in between."""
        frontier = [name]
        seen = {name}
        for _ in range(depth):
            nxt = []
            for callee in frontier:
                for caller in sorted(self.callers.get(callee, ())):
                    if caller in seen or self._pinned(caller):
                        continue
                    if self.is_handler(caller):
                        return caller
                    seen.add(caller)
                    nxt.append(caller)
            frontier = nxt
        return None
