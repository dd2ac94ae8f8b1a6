"""The prefilter evidence declared for the KVM rules stays a cover of the names they report: each
declaration is checked against the knowledge table or the rule's own name list it was derived from,
so a table update that adds a name the regex misses fails here instead of hiding a finding."""

from __future__ import annotations

import re
import sys

import pytest

from pmureview.analyses import pmu_access
from pmureview.analyses.trailers_history import KINDS
from pmureview.engine.registry import load_registry
from pmureview.kernel import guards
from pmureview.kernel.fgt import FGT_SPECS, LEGACY_LAYOUTS
from pmureview.kernel.idregs import is_id_register
from pmureview.kernel.knowledge import snapshot_knowledge
from pmureview.kernel.predicates import gating_data
from pmureview.kernel.wiring import KVM_HOST_PATH
from pmureview.rule.base import HUNK_ONLY
from pmureview.series.model import Trailer

_REG = load_registry(plugins=False)

# rule -> does its evidence hold in full mode too (False: `(?#hunk-only)`, full mode always runs it)
DECLARED = {
    "kvmarm/fgt-cross-register-field": False,
    "kvmarm/fgt-trap-polarity": False,
    "kvmarm/fgt-config-outside-config-c": False,
    "kvmarm/coarse-trap-polarity": False,
    "kvmarm/new-sysreg-incomplete-wiring": True,
    "kvmarm/pmu-register-residency": False,
    "kvmarm/preemption-unsafe-hw-access": True,
    "kvmarm/idreg-field-not-writable": False,
    "kvmarm/idreg-exposed-unsanitised": False,
    "kvmarm/vncr-offset-collision": True,
    "kvmarm/implied-feature-check": False,
    "kvmarm/redundant-capability-check": False,
    "kvmarm/guest-state-host-cap-only": False,
    "kvmarm/guest-triggerable-warn": True,
    "kvmarm/no-conditional-compilation": True,
    "kvmarm/unconditional-guest-feature-enable": False,
    "series/stale-trailer": True,
    "series/single-use-exported-helper": True,
    "doc/kernel-doc-mismatch": False,
    "doc/unknown-identifier": True,
}


def _rule(rule_id: str):
    return _REG.rules[rule_id]


def _module(rule_id: str):
    return sys.modules[type(_rule(rule_id)).__module__]


def _covers(rule_id: str, sample: str) -> bool:
    return any(re.search(e, sample) for e in _rule(rule_id).evidence(full=False))


@pytest.mark.parametrize("rule_id", sorted(DECLARED))
def test_declared_evidence_compiles_and_has_its_mode(rule_id: str) -> None:
    ev = _rule(rule_id).meta.evidence
    assert ev, rule_id
    for e in ev:
        re.compile(e)
    assert bool(_rule(rule_id).evidence(full=True)) is DECLARED[rule_id]
    assert all(e.startswith(HUNK_ONLY) for e in ev) is not DECLARED[rule_id]


@pytest.mark.parametrize("rule_id", ["kvmarm/fgt-cross-register-field", "kvmarm/fgt-trap-polarity",
                                     "kvmarm/fgt-config-outside-config-c"])
def test_fgt_evidence_covers_every_fgt_register_constant(rule_id: str) -> None:
    # fgtflow resolves a constant to an FGT field only by its register-name prefix (or a legacy one)
    for name in [*FGT_SPECS, *LEGACY_LAYOUTS]:
        assert _covers(rule_id, f"\tval |= {name}_nPMSNEVFR_EL1;"), (rule_id, name)


def test_fgt_trap_polarity_evidence_covers_sr_fgt_entries() -> None:
    assert _covers("kvmarm/fgt-trap-polarity", "\tSR_FGT(SYS_PMSELR_EL0, HDFGRTR, PMSELR_EL0, 1),")


def test_fgt_config_outside_config_c_evidence_covers_vcpu_fgt_writes() -> None:
    assert _covers("kvmarm/fgt-config-outside-config-c", "\t*vcpu_fgt(vcpu, reg) |= mask;")


def _implied_capabilities(kb) -> set[str]:
    """Every capability some other one implies (the only `f` implied-feature-check can report)."""
    caps = {c for a, b, *_ in kb.implications for c in (a, b)}
    return {b for b in caps if any(a != b and kb.implies(a, b) for a in caps)}


def test_implied_feature_check_evidence_covers_the_implication_table() -> None:
    kb = snapshot_knowledge()
    implied = _implied_capabilities(kb)
    assert implied
    for cap in implied:
        assert _covers("kvmarm/implied-feature-check", f"if (cpus_have_final_cap({cap}))"), cap
    # a bundled predicate testing an implied capability is called by its own name
    for name, caps in kb.cap_predicates.items():
        if caps & implied:
            assert _covers("kvmarm/implied-feature-check", f"if ({name}())"), name


def test_redundant_capability_check_evidence_covers_every_capability_test() -> None:
    names = [*guards.CAP_CALLS, *guards.FEAT_CALLS, "system_supports_sve",
             *snapshot_knowledge().cap_predicates]
    for name in names:
        assert _covers("kvmarm/redundant-capability-check", f"\tif ({name}(x))"), name


def test_pmu_evidence_covers_every_pmu_register_spelling() -> None:
    alts = re.search(r"_pm\((.*)\)\$$", pmu_access._PM_ACCESSOR.pattern)
    assert alts is not None  # the accessor list changed shape: re-derive the evidence
    for reg in alts.group(1).split("|"):
        for op in ("read", "write"):
            call = f"\t{op}_pm{reg}(val);"
            assert pmu_access._PM_ACCESSOR.match(f"{op}_pm{reg}")
            assert _covers("kvmarm/pmu-register-residency", call), reg
            assert _covers("kvmarm/preemption-unsafe-hw-access", call), reg
    # every other register name family() accepts starts with [Pp][Mm] (after an optional SYS_)
    assert pmu_access._PM_NAME.pattern.startswith(r"^(?:SYS_)?([Pp][Mm][A-Za-z0-9]")
    for name in ("PMSELR_EL0", "pmcr_el0", "SYS_PMEVTYPER0_EL0", "PMEVCNTR0_EL0 + idx"):
        assert _covers("kvmarm/pmu-register-residency", f"x = __vcpu_sys_reg(vcpu, {name});"), name
    for call in pmu_access._SYSREG_ACCESS:
        assert _covers("kvmarm/preemption-unsafe-hw-access", f"\t{call}(v, pmselr_el0);"), call


def test_idreg_evidence_covers_every_id_register() -> None:
    regs = [r for r in gating_data()["idregs"]["registers"] if is_id_register(r)]
    assert regs
    for reg in regs:
        assert _covers("kvmarm/idreg-exposed-unsanitised", f"\tID_SANITISED({reg}),"), reg
    # is_id_register() accepts ID_*_EL1 and MVFRn_EL1 only: a new shape needs a new evidence word
    from pmureview.kernel import idregs
    assert idregs._ID_NAME.pattern == r"^(?:ID_\w+_EL1|MVFR\d_EL1)$"


def test_idreg_field_not_writable_evidence_covers_its_gates() -> None:
    mod = _module("kvmarm/idreg-field-not-writable")
    for name in mod._FEAT_CALLS:
        assert _covers("kvmarm/idreg-field-not-writable", f"if ({name}(kvm, R, F, IMP))"), name
    prefixes = re.search(r"\(\?:(.*)\)", mod._HELPER.pattern)
    assert prefixes is not None
    for p in prefixes.group(1).split("|"):
        assert _covers("kvmarm/idreg-field-not-writable", f"if ({p}foo(vcpu))"), p


def test_guest_triggerable_warn_evidence_covers_its_warn_forms() -> None:
    for name in _module("kvmarm/guest-triggerable-warn")._WARNS:
        assert _covers("kvmarm/guest-triggerable-warn", f"\t{name}(x);"), name


def test_unconditional_guest_feature_enable_evidence_covers_enable_bits() -> None:
    for bit in gating_data()["enable_bits"]["hcr"]:
        for name in (f"HCR_{bit}", f"HCR_EL2_{bit}"):
            assert _covers("kvmarm/unconditional-guest-feature-enable", f"\tvcpu->arch.hcr_el2 |= {name};")
    assert _covers("kvmarm/unconditional-guest-feature-enable", "\tval |= HCRX_EL2_TCR2En;")


def test_stale_trailer_evidence_covers_every_trailer_kind() -> None:
    for kind in KINDS:
        for spelt in (kind, kind.title(), kind.upper()):
            assert _covers("series/stale-trailer", str(Trailer(spelt, "A Reviewer <r@example.org>"))), spelt


def test_path_evidence_matches_the_prefilter_diff_line() -> None:
    assert _covers("kvmarm/new-sysreg-incomplete-wiring", f"diff --git a/{KVM_HOST_PATH} b/{KVM_HOST_PATH}")
    assert _covers("series/single-use-exported-helper",
                   "x\ndiff --git a/include/kvm/arm_pmu.h b/include/kvm/arm_pmu.h\ny")
    assert not _covers("series/single-use-exported-helper", 'diff --git a/a.c b/a.c\n#include "a.h"')
