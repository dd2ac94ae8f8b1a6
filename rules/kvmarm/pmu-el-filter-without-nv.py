"""kvmarm/pmu-el-filter-without-nv: guest event filters written to hardware with no nested-virt handling."""

from __future__ import annotations

import re
from collections.abc import Iterator
from weakref import WeakKeyDictionary

from pmureview.analyses.pmu_access import accesses, code_scopes, nodes_of
from pmureview.lang.c import call_name, text
from pmureview.lazyre import lazy_re
from pmureview.rule.base import Rule
from pmureview.rule.model import Confidence, Finding, RuleDocs, RuleMeta, Scope, Severity
from pmureview.views.context import FileContext, SeriesContext

# Exception-level filter bits of PMEVTYPER<n>_EL0 / PMCCFILTR_EL0 / PMICFILTR_EL0.
_FILTER = lazy_re(r"\bARMV8_PMU_(?:EXCLUDE|INCLUDE)_\w+\b|"
                     r"\bPM(?:EVTYPERn|CCFILTR|ICFILTR)_EL0_(?:P|U|NSH|NSK|NSU|M|SH|RLH|RLK|RLU)\b")
_EVTYPE_REGS = {"PMEVTYPER", "PMCCFILTR", "PMICFILTR"}
# How KVM tells a guest hypervisor's context apart (kvm_pmu_create_perf_event() does this).
_NV = lazy_re(r"\b(vcpu_has_nv|is_hyp_ctxt|is_nested_ctxt|kvm_pmu_counter_is_hyp|vcpu_is_el2|"
                 r"kvm_vcpu_has_el2|vcpu_el2_\w+|\w*nested\w*)\b")
_VCPU = lazy_re(r"\bvcpu\b")


def _in_scope(path: str) -> bool:
    return path.startswith("arch/arm64/kvm/") or bool(re.match(r"arch/arm64/include/asm/kvm_[\w-]+\.h$", path))


class PmuElFilterWithoutNv(Rule):
    meta = RuleMeta(
        evidence=(r"(?i)pmx?evtyper|pmccfiltr|pmicfiltr|ARMV8_PMU_(?:EX|IN)CLUDE",),  # prefilter
        id="kvmarm/pmu-el-filter-without-nv",
        title="Guest PMU exception-level filter written to hardware without nested-virt handling",
        severity=Severity.WARNING,
        confidence=Confidence.MEDIUM,
        scope=Scope.FILE,
        docs=RuleDocs(
            what="Flags a vCPU function in arch/arm64/kvm/ that sets or clears exception-level filter "
                 "bits (`ARMV8_PMU_EXCLUDE_EL1`, `ARMV8_PMU_EXCLUDE_EL0`, `ARMV8_PMU_INCLUDE_EL2`, the "
                 "generated `PMEVTYPERn_EL0_P/U/NSH` names) and writes a hardware event-type register "
                 "(`write_pmevtypern()`, `write_pmccfiltr()`, `write_sysreg(…, pmccfiltr_el0)`, …) "
                 "without any reference to nested virtualisation (`vcpu_has_nv()`, `is_hyp_ctxt()`, "
                 "`kvm_pmu_counter_is_hyp()`), itself or in a helper it calls from the series.",
            why="For a guest hypervisor the guest's EL1 filter bit means its EL2, which KVM runs at EL1, "
                "and INCLUDE_EL2 selects counters reserved to the guest hypervisor. Writing the guest's "
                "filter bits to the hardware unchanged makes counters of a nested guest count the "
                "wrong exception levels. kvm_pmu_create_perf_event() in pmu-emul.c shows the handling "
                "to mirror.",
            example="val = __vcpu_sys_reg(vcpu, PMEVTYPER0_EL0 + idx);\n"
                    "val |= ARMV8_PMU_INCLUDE_EL2;\nwrite_pmevtypern(idx, val);",
            use_instead="val = __vcpu_sys_reg(vcpu, PMEVTYPER0_EL0 + idx);\n"
                        "if (vcpu_has_nv(vcpu) && !is_hyp_ctxt(vcpu))\n"
                        "\tval |= ARMV8_PMU_EXCLUDE_EL1;  /* as kvm_pmu_create_perf_event() does */\n"
                        "write_pmevtypern(idx, val);",
            known_problems="Code that excludes nested guests by a check the rule cannot see (in a caller, "
                           "or through a predicate named without 'nv'/'nested'/'hyp') is reported too. "
                           "Host-only code without a vCPU (e.g. switching host events around a guest "
                           "entry) is not reported.",
            references=("<20251209205121.1871534-11-coltonlewis@google.com> (the partitioned PMU series, "
                        "v5: kvm_pmu_apply_event_filter())",),
        ),
    )

    def check(self, ctx: FileContext) -> Iterator[Finding]:  # type: ignore[override]
        view = ctx.view
        if not view.added or not view.is_c or not _in_scope(view.path):
            return
        nv_helpers = _nv_helpers(ctx.series)
        seen: set[int] = set()
        for scope in code_scopes(view):
            body = "\n".join(text(n) for n in scope.nodes)
            if not _VCPU.search(body) or _NV.search(body):
                continue
            calls = {call_name(c) for n in scope.nodes for c in nodes_of(n, _CALL)}
            if calls & nv_helpers:
                continue
            writes = [a for a in accesses(scope.nodes)
                      if a.where == "hw" and a.op == "write" and a.reg in _EVTYPE_REGS]
            if not writes:
                continue
            last_write = max(a.line for a in writes)
            bits = [(ln, m.group(0)) for ln in sorted({ln for n in scope.nodes for ln in view.node_lines(n)})
                    for m in _FILTER.finditer(view.line_text(ln)) if ln <= last_write]
            if not bits:
                continue
            touched = [ln for ln, _ in bits if ln in view.added] or [a.line for a in writes if a.line in view.added]
            if not touched or touched[0] in seen:
                continue
            seen.add(touched[0])
            names = ", ".join(dict.fromkeys(b for _, b in bits))
            regs = ", ".join(sorted({a.reg for a in writes if a.reg}))
            who = f"{scope.name}()" if scope.name else "this code"
            yield self.at_line(
                view, touched[0],
                f"{who} sets {names} for the guest's {regs} with no nested-virt handling",
                note=f"For a guest hypervisor the EL1 filter bit means EL2, and INCLUDE_EL2 only makes "
                     f"sense for counters reserved to it. Writing {names} to the hardware "
                     f"{regs} as they stand breaks nested guests; mirror the hyp-context handling of "
                     f"kvm_pmu_create_perf_event() (vcpu_has_nv() / is_hyp_ctxt() / "
                     f"kvm_pmu_counter_is_hyp()) or refuse the configuration for NV guests.")


_CALL = frozenset({"call_expression"})
_HELPERS: WeakKeyDictionary[SeriesContext, set[str]] = WeakKeyDictionary()


def _nv_helpers(series: SeriesContext) -> set[str]:
    """Functions in the series whose body deals with nested virt (a call to one counts as handling)."""
    got = _HELPERS.get(series)
    if got is None:
        got = set()
        for v in series.final_views().values():
            if not v.is_c:
                continue
            for name, fn in v.functions():
                if _NV.search(text(fn.child_by_field_name("body"))):
                    got.add(name)
        _HELPERS[series] = got
    return got
