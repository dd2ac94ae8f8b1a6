"""How C code touches PMU registers: hardware accessors vs the vCPU's in-memory copy.

Shared by kvmarm/pmu-register-residency, kvmarm/preemption-unsafe-hw-access and
kvmarm/pmu-el-filter-without-nv. Register names are normalised to a family (`PMSELR`, `PMEVTYPER`,
`PMCNTEN`, ...) so that `write_pmselr()`, `write_sysreg(v, pmselr_el0)`, `SYS_PMSELR_EL0` and
`__vcpu_assign_sys_reg(vcpu, PMSELR_EL0, v)` meet. The accessor names are those of
arch/arm64/include/asm/arm_pmuv3.h (read_pmcr(), write_pmevtypern(), ...).
"""

from __future__ import annotations

import re
from bisect import bisect_left, bisect_right
from typing import TYPE_CHECKING
from weakref import WeakKeyDictionary

from pmureview.lazyre import lazy_re

from ..lang.c import call_name, text, walk
from ..lang.c import nodes_of as c_nodes_of
from ..record import dataclass

if TYPE_CHECKING:
    from tree_sitter import Node

# arm_pmuv3.h accessors: (read|write)_pm<reg>; read_pmuver() reads an ID register, not PMU state.
_PM_ACCESSOR = lazy_re(
    r"^(read|write)_pm(cr|selr|ccntr|ccfiltr|cntenset|cntenclr|intenset|intenclr|ovsclr|ovsset|"
    r"userenr|evcntrn|evtypern|xevcntr|xevtyper|ceid0|ceid1|mir|icntr|icfiltr|swinc)$")
_SYSREG_ACCESS = {"read_sysreg": "read", "read_sysreg_s": "read", "write_sysreg": "write",
                  "write_sysreg_s": "write", "read_sysreg_el0": "read", "write_sysreg_el0": "write",
                  "read_sysreg_el1": "read", "write_sysreg_el1": "write"}
# vCPU memory copies (kvm_host.h accessors).
_MEM_WRITE = {"__vcpu_assign_sys_reg": 1, "__vcpu_rmw_sys_reg": 1, "vcpu_write_sys_reg": 2}
_MEM_READ = {"__vcpu_sys_reg": 1, "vcpu_read_sys_reg": 1, "__vcpu_read_sys_reg": 1}
_PM_NAME = lazy_re(r"^(?:SYS_)?([Pp][Mm][A-Za-z0-9]+?)(?:n|\d+)?(?:_[Ee][Ll][012])?$")


def family(reg: str) -> str | None:
    """`pmselr_el0`, `SYS_PMSELR_EL0`, `PMEVTYPER0_EL0`, `PMCNTENSET_EL0` -> PMSELR, PMEVTYPER, PMCNTEN."""
    reg = reg.strip()
    m = _PM_NAME.match(reg)
    if not m:
        return None
    fam = re.sub(r"^PM(CNTEN|INTEN|OVS)(SET|CLR)$", r"PM\1", m.group(1).upper())
    return {"PMXEVTYPER": "PMEVTYPER", "PMXEVCNTR": "PMEVCNTR"}.get(fam, fam)


@dataclass(frozen=True, slots=True)
class Access:
    node: Node  # the call (or the assignment for `__vcpu_sys_reg(...) =`)
    where: str  # hw | mem
    op: str  # read | write
    reg: str | None  # register family, None when not a PMU register we can name

    @property
    def line(self) -> int:
        return self.node.start_point[0] + 1


def _args(call: Node) -> list[Node]:
    a = call.child_by_field_name("arguments")
    return [c for c in a.named_children if c.type != "comment"] if a is not None else []


def classify(call: Node) -> Access | None:
    """A PMU register access made by this call, if it is one."""
    name = call_name(call)
    if not name:
        return None
    if m := _PM_ACCESSOR.match(name):
        return Access(call, "hw", m.group(1), family("PM" + m.group(2)))
    if name in _SYSREG_ACCESS:
        args = _args(call)
        op = _SYSREG_ACCESS[name]
        reg = args[-1] if args else None
        fam = family(text(reg)) if reg is not None else None
        return Access(call, "hw", op, fam) if fam else None
    if name in _MEM_WRITE or name in _MEM_READ:
        args = _args(call)
        idx = _MEM_WRITE.get(name, _MEM_READ.get(name, 1))
        reg = args[idx] if len(args) > idx else None
        fam = family(_base_reg(text(reg))) if reg is not None else None
        if fam is None:
            return None
        op = "write" if name in _MEM_WRITE else "read"
        if name == "__vcpu_sys_reg" and _is_lvalue(call):
            op = "write"
        return Access(call, "mem", op, fam)
    return None


# How every write classify() reports is spelled: a hardware write's callee starts with `write_`
# (write_pm*(), write_sysreg*()), a memory write names one of these (`__vcpu_sys_reg(...) =` too).
_MEM_WRITE_SPELLINGS = tuple(n.encode() for n in sorted({*_MEM_WRITE, "__vcpu_sys_reg"}))


def may_write_both(texts: list[bytes]) -> bool:
    """Can code with these texts hold a hardware write and a memory write (of any register)? A
    necessary condition on the spellings, cheaper than classifying every call."""
    return any(b"write_" in t for t in texts) and any(w in t for t in texts for w in _MEM_WRITE_SPELLINGS)


def _base_reg(expr: str) -> str:
    """`PMEVTYPER0_EL0 + idx` -> `PMEVTYPER0_EL0`."""
    return re.split(r"[\s+\-()]", expr.strip().strip("()"), maxsplit=1)[0]


def _is_lvalue(call: Node) -> bool:
    p = call.parent
    return p is not None and p.type == "assignment_expression" and p.child_by_field_name("left") == call


def nodes_of(node: Node, types: frozenset[str]) -> list[Node]:
    """walk(node, types) always through the cached query: these rules walk many small function bodies,
    where the query beats the Python loop once compiled (walk() only switches above 8 KB)."""
    found = c_nodes_of(node, types)
    return found if found is not None else list(walk(node, types))


_CALL = frozenset({"call_expression"})


def accesses(node: Node | list[Node]) -> list[Access]:
    """Every PMU register access under `node` (or under each node of a statement list)."""
    out = []
    for root in node if isinstance(node, list) else [node]:
        for call in nodes_of(root, _CALL):
            a = classify(call)
            if a is not None:
                out.append(a)
    return out


_SECTION_FN = lazy_re(r"([A-Za-z_]\w*)\s*\([^()]*$|([A-Za-z_]\w*)\s*\(")


@dataclass
class Scope:
    """A function body to judge: a real function_definition, or in hunk-only mode the statements of
    one hunk whose function header is not visible (named from the hunk's `@@ ... @@ section`)."""

    name: str
    nodes: list[Node]
    fn: Node | None


# Two rules ask for the scopes of every view, and views of files a patch leaves alone are the same
# objects across patches: compute them once per view.
_SCOPES: WeakKeyDictionary = WeakKeyDictionary()


def code_scopes(view) -> list[Scope]:  # view: FileView
    got = _SCOPES.get(view)
    if got is None:
        got = _SCOPES[view] = _code_scopes(view)
    return list(got)


class _Lines:
    """`in`: a line inside one of the (first, last) spans (merged and bisected, not a set of every
    line of a kernel file)."""

    def __init__(self, spans: list[tuple[int, int]]) -> None:
        merged: list[list[int]] = []
        for first, last in sorted(spans):
            if merged and first <= merged[-1][1] + 1:
                merged[-1][1] = max(merged[-1][1], last)
            else:
                merged.append([first, last])
        self.firsts = [m[0] for m in merged]
        self.lasts = [m[1] for m in merged]

    def __contains__(self, line: int) -> bool:
        i = bisect_right(self.firsts, line) - 1
        return i >= 0 and line <= self.lasts[i]


def _code_scopes(view) -> list[Scope]:
    from ..lang.c import function_name

    out: list[Scope] = []
    fns = nodes_of(view.root, frozenset({"function_definition"}))
    order = sorted(view.added)
    spans = []  # (first, last) line of each function
    for fn in fns:
        first, last = fn.start_point[0] + 1, fn.end_point[0] + 1
        spans.append((first, last))
        i = bisect_left(order, first)
        if i < len(order) and order[i] <= last:  # touches_added (a bisection)
            out.append(Scope(function_name(fn) or "", [fn], fn))
    covered = _Lines(spans)  # the lines of every function (the scopes above are some of them)
    for hunk in view.change.hunks:
        new = [hl.new_no for hl in hunk.lines if hl.kind != "-" and hl.new_no]
        if not new or not any(n in view.added and n not in covered for n in new):
            continue
        lo, hi = min(new), max(new)
        nodes = [c for c in view.root.children
                 if c.type != "function_definition" and c.start_point[0] + 1 <= hi and c.end_point[0] + 1 >= lo]
        m = _SECTION_FN.search(hunk.section or "")
        name = (m.group(1) or m.group(2)) if m else ""
        if nodes:
            out.append(Scope(name, nodes, None))
    return out


def hunk_function(view, line: int) -> str | None:
    """The function a hunk-only line belongs to, from its hunk's `@@ ... @@ section` header."""
    for lo, hi, name in _hunk_spans(view):
        if lo <= line <= hi:
            return name
    return None


_SPANS: WeakKeyDictionary = WeakKeyDictionary()


def _hunk_spans(view) -> list[tuple[int, int, str | None]]:
    """(first, last new line, section function) per hunk; asked once per call outside a function."""
    got = _SPANS.get(view)
    if got is None:
        got = []
        for hunk in view.change.hunks:
            new = [hl.new_no for hl in hunk.lines if hl.kind != "-" and hl.new_no]
            if new:
                m = _SECTION_FN.search(hunk.section or "")
                got.append((min(new), max(new), (m.group(1) or m.group(2)) if m else None))
        _SPANS[view] = got
    return got
