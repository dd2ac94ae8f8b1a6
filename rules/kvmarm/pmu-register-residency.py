"""kvmarm/pmu-register-residency: a guest PMU register kept in two places, chosen ad hoc at each use."""

from __future__ import annotations

import re
from collections.abc import Iterator

from pmureview.analyses.pmu_access import Access, accesses, code_scopes, may_write_both, nodes_of
from pmureview.lang.c import call_name, walk
from pmureview.lazyre import lazy_re
from pmureview.rule.base import Rule
from pmureview.rule.model import Confidence, Finding, RuleDocs, RuleMeta, Scope, Severity
from pmureview.views.context import FileContext, FileView

# Predicates that say "the guest owns the PMU hardware" (partitioned / direct / passthrough PMU).
_PARTITIONED = lazy_re(r"pmu\w*(partition|direct|passthrough|guest_owned)|"
                          r"(partition|direct|passthrough|guest_owned)\w*pmu", re.I)
# Functions whose job is to move state between memory and hardware: exempt.
_LOAD_PUT = lazy_re(r"(^|_)(load|put|save|restore|sync|flush|switch|reset)(_|$)")


def _in_scope(path: str) -> bool:
    return path.startswith("arch/arm64/kvm/") or bool(re.match(r"arch/arm64/include/asm/kvm_[\w-]+\.h$", path))


def _partition_test(cond) -> str | None:
    for call in walk(cond, {"call_expression"}):
        name = call_name(call)
        if name and _PARTITIONED.search(name):
            return name
    return None


class PmuRegisterResidency(Rule):
    meta = RuleMeta(
        id="kvmarm/pmu-register-residency",
        title="Open-coded 'partitioned ? hardware : memory' PMU register access",
        severity=Severity.WARNING,
        confidence=Confidence.MEDIUM,
        scope=Scope.FILE,
        # prefilter: every access it counts names a PM* register or pm accessor; full mode reads base lines
        evidence=(r"(?#hunk-only)[Pp][Mm][A-Za-z0-9]",),
        docs=RuleDocs(
            what="Flags, in arch/arm64/kvm/, an added `if (<partitioned PMU predicate>) <hardware "
                 "accessor> else <vCPU memory accessor>` (or the same as a `?:`, or an early-return "
                 "`if` followed by the memory access), and a handler that writes the same PMU register "
                 "both to the vCPU's memory copy (`__vcpu_assign_sys_reg()`, `__vcpu_rmw_sys_reg()`, "
                 "`__vcpu_sys_reg() =`) and to the hardware (`write_sysreg*()`, `write_pm*()`).",
            why="A guest register lives in exactly one place at a time: in memory while the vCPU is "
                "not loaded (or when the PMU is emulated), in the CPU while a partitioned PMU is "
                "loaded. Choosing the place by hand at every access spreads that invariant over all "
                "trap handlers, and writing both places hides which copy is authoritative. KVM solves "
                "this for other registers with vcpu_read_sys_reg()/vcpu_write_sys_reg().",
            example="if (kvm_vcpu_pmu_is_partitioned(vcpu))\n\twrite_pmselr(val);\nelse\n"
                    "\t__vcpu_assign_sys_reg(vcpu, PMSELR_EL0, val);",
            use_instead="/* preparatory patch: one accessor that knows where the register lives */\n"
                        "vcpu_write_pmu_reg(vcpu, PMSELR_EL0, val);",
            known_problems="Functions on the load/put, save/restore, sync and reset paths legitimately "
                           "touch both copies and are skipped by name. The partitioned predicate is "
                           "recognised by name (partition/direct/passthrough/guest_owned with pmu).",
            references=("<20251209205121.1871534-11-coltonlewis@google.com> (the partitioned PMU series, "
                        "v5)",),
        ),
    )

    def check(self, ctx: FileContext) -> Iterator[Finding]:  # type: ignore[override]
        view = ctx.view
        if not view.added or not view.is_c or not _in_scope(view.path):
            return
        seen: set[tuple[int | None, str]] = set()
        for scope in code_scopes(view):
            if _LOAD_PUT.search(scope.name):
                continue
            covered: set[str] = set()
            found = []
            texts = [n.text or b"" for n in scope.nodes]
            # a finding names a call in its scope's text: a partitioned-PMU predicate (each spelling
            # holds "pmu", in ASCII whatever the case), or writes of both kinds
            if any(b"pmu" in t.lower() and _PARTITIONED.search(t.decode("utf-8", "replace")) for t in texts):
                for f, regs in self._branches(view, scope.nodes):
                    covered |= regs
                    found.append(f)
            if may_write_both(texts):
                found += self._both_places(view, scope.nodes, f"{scope.name}()" if scope.name else "this code",
                                           covered)
            for f in found:  # a hunk-only scope can overlap another one
                if (f.location.line, f.message) not in seen:
                    seen.add((f.location.line, f.message))
                    yield f

    def _branches(self, view: FileView, nodes: list) -> Iterator[tuple[Finding, set[str]]]:
        for node in (n for root in nodes for n in nodes_of(root, _BRANCH)):
            cond = node.child_by_field_name("condition")
            pred = _partition_test(cond) if cond is not None else None
            if pred is None:
                continue
            then = node.child_by_field_name("consequence")
            other = node.child_by_field_name("alternative")
            rest = other if other is not None else _after_early_return(node, then)
            if then is None or rest is None:
                continue
            hw_then = {a.reg for a in accesses(then) if a.where == "hw" and a.reg}
            mem_rest = {a.reg for a in accesses(rest) if a.where == "mem" and a.reg}
            hw_rest = {a.reg for a in accesses(rest) if a.where == "hw" and a.reg}
            mem_then = {a.reg for a in accesses(then) if a.where == "mem" and a.reg}
            regs = (hw_then & mem_rest) | (mem_then & hw_rest)
            if not regs:
                continue
            line = view.node_line(node)
            if line not in view.added:
                parts = [cond, then, *(rest if isinstance(rest, list) else [rest])]
                line = next((ln for p in parts for ln in view.node_lines(p) if ln in view.added), None)
            if line is None:
                continue
            names = ", ".join(f"{r}" for r in sorted(regs))
            f = self.at_line(
                view, line,
                f"{pred}() picks between the CPU and the vCPU's memory copy of {names} by hand",
                note=f"A guest register lives in exactly one place at a time. Instead of open-coding "
                     f"'{pred}() ? hardware : memory' for {names} here, add "
                     f"vcpu_read_pmu_reg()/vcpu_write_pmu_reg() style accessors in a preparatory patch "
                     f"and use them everywhere.")
            yield f, regs

    def _both_places(self, view: FileView, nodes: list, name: str, covered: set[str]) -> Iterator[Finding]:
        writes: dict[str, dict[str, list[Access]]] = {}
        for a in accesses(nodes):
            if a.op == "write" and a.reg:
                writes.setdefault(a.reg, {}).setdefault(a.where, []).append(a)
        for reg, by in sorted(writes.items()):
            if reg in covered or "hw" not in by or "mem" not in by:
                continue
            both = sorted([*by["hw"], *by["mem"]], key=lambda a: a.line)
            if _exclusive(by["hw"], by["mem"]):
                continue
            added = [a for a in both if a.line in view.added]
            if not added:
                continue
            # the first added write that completes the pair (the other place was written before it)
            anchor = next((a for a in added if any(o.line <= a.line for o in by["mem" if a.where == "hw" else "hw"])),
                          added[-1])
            yield self.at_line(
                view, anchor.line,
                f"{name} writes {reg} both to the vCPU's memory copy and to the CPU",
                note=f"A guest register lives in exactly one place at a time; writing {reg} to both "
                     f"memory and hardware leaves it unclear which copy is authoritative (and which one "
                     f"vcpu_put() saves over the other). Write it through one accessor that knows where "
                     f"the register currently lives.")


_BRANCH = frozenset({"if_statement", "conditional_expression"})


def _after_early_return(node, then) -> list | None:
    """For `if (p) { hw; return; } mem;`: the statements that follow the if."""
    if node.type != "if_statement" or then is None:
        return None
    last = then
    if then.type == "compound_statement":
        stmts = [c for c in then.named_children if c.type != "comment"]
        last = stmts[-1] if stmts else None
    if last is None or last.type != "return_statement":
        return None
    parent = node.parent
    if parent is None or parent.type != "compound_statement":
        return None
    rest = [c for c in parent.named_children if c.start_byte >= node.end_byte]
    return rest or None


def _exclusive(hw: list[Access], mem: list[Access]) -> bool:
    """True when every hw write and every mem write sit in different arms of one if/else."""
    for h in hw:
        for m in mem:
            if not _different_arms(h.node, m.node):
                return False
    return True


def _different_arms(a, b) -> bool:
    anc_a = _ancestors(a)
    for n in _ancestors(b):
        if n.type == "if_statement" and n in anc_a:
            then = n.child_by_field_name("consequence")
            other = n.child_by_field_name("alternative")
            if then is None or other is None:
                return False
            in_then = [_inside(x, then) for x in (a, b)]
            in_other = [_inside(x, other) for x in (a, b)]
            return (in_then[0] and in_other[1]) or (in_then[1] and in_other[0])
    return False


def _ancestors(n) -> list:
    out = []
    p = n.parent
    while p is not None:
        out.append(p)
        p = p.parent
    return out


def _inside(n, container) -> bool:
    return container.start_byte <= n.start_byte and n.end_byte <= container.end_byte

