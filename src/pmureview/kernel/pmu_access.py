"""How C code touches PMU registers: hardware accessors vs the vCPU's in-memory copy.

Shared by kvmarm/pmu-register-residency, kvmarm/preemption-unsafe-hw-access and
kvmarm/pmu-el-filter-without-nv. Register names are normalised to a family (`PMSELR`, `PMEVTYPER`,
`PMCNTEN`, ...) so that `write_pmselr()`, `write_sysreg(v, pmselr_el0)`, `SYS_PMSELR_EL0` and
`__vcpu_assign_sys_reg(vcpu, PMSELR_EL0, v)` meet. The accessor names are those of
arch/arm64/include/asm/arm_pmuv3.h (read_pmcr(), write_pmevtypern(), ...).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..lang.c import call_name, text, walk

if TYPE_CHECKING:
    from tree_sitter import Node

# arm_pmuv3.h accessors: (read|write)_pm<reg>; read_pmuver() reads an ID register, not PMU state.
_PM_ACCESSOR = re.compile(
    r"^(read|write)_pm(cr|selr|ccntr|ccfiltr|cntenset|cntenclr|intenset|intenclr|ovsclr|ovsset|"
    r"userenr|evcntrn|evtypern|xevcntr|xevtyper|ceid0|ceid1|mir|icntr|icfiltr|swinc)$")
_SYSREG_ACCESS = {"read_sysreg": "read", "read_sysreg_s": "read", "write_sysreg": "write",
                  "write_sysreg_s": "write", "read_sysreg_el0": "read", "write_sysreg_el0": "write",
                  "read_sysreg_el1": "read", "write_sysreg_el1": "write"}
# vCPU memory copies (kvm_host.h accessors).
_MEM_WRITE = {"__vcpu_assign_sys_reg": 1, "__vcpu_rmw_sys_reg": 1, "vcpu_write_sys_reg": 2}
_MEM_READ = {"__vcpu_sys_reg": 1, "vcpu_read_sys_reg": 1, "__vcpu_read_sys_reg": 1}
_PM_NAME = re.compile(r"^(?:SYS_)?([Pp][Mm][A-Za-z0-9]+?)(?:n|\d+)?(?:_[Ee][Ll][012])?$")


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


def _base_reg(expr: str) -> str:
    """`PMEVTYPER0_EL0 + idx` -> `PMEVTYPER0_EL0`."""
    return re.split(r"[\s+\-()]", expr.strip().strip("()"), maxsplit=1)[0]


def _is_lvalue(call: Node) -> bool:
    p = call.parent
    return p is not None and p.type == "assignment_expression" and p.child_by_field_name("left") == call


def accesses(node: Node | list[Node]) -> list[Access]:
    """Every PMU register access under `node` (or under each node of a statement list)."""
    out = []
    for root in node if isinstance(node, list) else [node]:
        for call in walk(root, {"call_expression"}):
            a = classify(call)
            if a is not None:
                out.append(a)
    return out
