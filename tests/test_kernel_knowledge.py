"""Knowledge: the bundled snapshot, building from a tree, guards and capability predicates."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pmureview.kernel import build, guards
from pmureview.kernel.knowledge import Knowledge, load_knowledge

# A config.c-shaped file written for these tests (not kernel text).
CONFIG_C = """\
#include <linux/kvm_host.h>

static void __compute_hdfgwtr(struct kvm_vcpu *vcpu)
{
\t__compute_fgt(vcpu, HDFGWTR_EL2);
}

static bool fgt_ready(void)
{
\treturn cpus_have_final_cap(ARM64_HAS_FGT);
}

static bool pmu_use_fgt(struct kvm_vcpu *vcpu)
{
\treturn vcpu->arch.part && fgt_ready() && kvm_has_feat(vcpu->kvm, ID_AA64DFR0_EL1, PMUVer, IMP);
}

void kvm_vcpu_load_fgt(struct kvm_vcpu *vcpu)
{
\tint x;

\tif (!cpus_have_final_cap(ARM64_HAS_FGT))
\t\treturn;

\t__compute_fgt(vcpu, HFGRTR_EL2);
\t__compute_hdfgwtr(vcpu);

\tif (!cpus_have_final_cap(ARM64_HAS_FGT2))
\t\treturn;

\t__compute_fgt(vcpu, HDFGRTR2_EL2);

\tif (cpus_have_final_cap(ARM64_HAS_GICV5_CPUIF)) {
\t\t__compute_fgt(vcpu, ICH_HFGRTR_EL2);
\t}
}

static void other(struct kvm_vcpu *vcpu)
{
\tfoo();
\tif (!fgt_ready() || !system_supports_bar())
\t\treturn;
\tbaz();
}
"""

SYSREG = """\
Sysreg\tHDFGRTR_EL2\t3\t4\t3\t1\t4
Res0\t63:3
Field\t2\tPMCEIDn_EL0
Field\t1\tnPMFOO_EL0
Field\t0\tnBARS
EndSysreg
Sysreg HDFGWTR_EL2\t3 4 3 1 5
Res0\t63:3
Res0\t2
Field\t1\tnPMFOO_EL0
Field\t0\tnBARS
EndSysreg
"""

EMULATE_NESTED_C = "\tSR_FGT(SYS_BARS_EL1, HDFGRTR, nBARS, 1),\n"


def test_guards_from_config_c() -> None:
    found, preds = guards.scan_c(CONFIG_C, "test")
    g = found["kvm_vcpu_load_fgt"]
    assert [(x.after_line, x.capability, x.scope) for x in g] == [
        (23, "ARM64_HAS_FGT", "function"), (29, "ARM64_HAS_FGT2", "after"),
        (33, "ARM64_HAS_GICV5_CPUIF", "block")]
    assert g[1].anchor == "!cpus_have_final_cap(ARM64_HAS_FGT2)"
    assert g[0].holds_at(25) and not g[1].holds_at(25) and g[1].holds_at(31)
    assert g[2].holds_at(34) and not g[2].holds_at(36)
    assert preds["fgt_ready"] == {"ARM64_HAS_FGT"}
    # A predicate calling a predicate resolves; kvm_has_feat() is normalised without the kvm argument.
    assert preds["pmu_use_fgt"] == {"ARM64_HAS_FGT", "kvm_has_feat(ID_AA64DFR0_EL1, PMUVer, IMP)"}
    assert "kvm_vcpu_load_fgt" not in preds and "__compute_hdfgwtr" not in found
    # Not the first statement, through a predicate, with an unknown system_supports_*().
    assert [(x.capability, x.scope) for x in found["other"]] == [
        ("ARM64_HAS_FGT", "after"), ("system_supports_bar()", "after")]


def test_capabilities_checked_text_and_predicates() -> None:
    expr = ("kvm_vcpu_pmu_is_partitioned(vcpu) && /* cpus_have_cap(ARM64_X) */ "
            "cpus_have_final_cap(ARM64_HAS_FGT)")
    assert guards.capabilities_checked(expr) == {"ARM64_HAS_FGT"}
    assert guards.capabilities_checked("use_fgt(vcpu)", {"use_fgt": {"ARM64_HAS_FGT"}}) == {"ARM64_HAS_FGT"}
    assert guards.capabilities_checked("x && y") == set()


def test_implications() -> None:
    assert guards.implies("ARM64_HAS_FGT2", "ARM64_HAS_FGT")
    assert guards.implies("ARM64_HAS_GICV5_CPUIF", "ARM64_HAS_FGT")
    assert not guards.implies("ARM64_HAS_GICV5_CPUIF", "ARM64_HAS_FGT2")  # FGT2 stays optional
    assert guards.implies("ARM64_HAS_FGT", "ARM64_HAS_FGT")
    assert not guards.implies("ARM64_HAS_FGT", "ARM64_HAS_FGT2")


def test_snapshot_covers_the_pmu_fgt_facts() -> None:
    kb = load_knowledge(None)
    assert kb.source == "snapshot" and load_knowledge(None) is kb
    # DOMAIN.md §1.4: PMCEIDn_EL0 / PMMIR_EL1 are read-only, RES0 in the write register.
    ref = kb.resolve_constant("HDFGRTR_EL2_PMCEIDn_EL0")
    assert (ref.register, ref.field, ref.mask, ref.kind) == ("HDFGRTR_EL2", "PMCEIDn_EL0", 1 << 58, "field")
    assert kb.is_res0("HDFGWTR_EL2", 1 << 58) and kb.is_res0("HDFGWTR_EL2", 1 << 22)
    assert not kb.is_res0("HDFGRTR_EL2", 1 << 58)
    assert kb.field_at("HDFGWTR_EL2", 21) == "PMCR_EL0" and kb.field_at("HDFGRTR_EL2", 21) is None
    for field, bit in (("PMUSERENR_EL0", 57), ("PMSELR_EL0", 19), ("PMOVS", 18), ("PMINTEN", 17),
                       ("PMCNTEN", 16), ("PMCCNTR_EL0", 15), ("PMCCFILTR_EL0", 14),
                       ("PMEVTYPERn_EL0", 13), ("PMEVCNTRn_EL0", 12)):
        for reg in ("HDFGRTR_EL2", "HDFGWTR_EL2"):
            assert kb.field_at(reg, bit) == field
            assert kb.polarity(reg, field) == "pos"
    # DOMAIN.md §1.3: the *2 registers are all negative.
    assert kb.polarity("HDFGRTR2_EL2", "nPMICNTR_EL0") == "neg"
    assert kb.resolve_constant("HDFGWTR2_EL2_nPMICFILTR_EL0").mask == 1 << 3
    assert kb.field_at("HDFGWTR2_EL2", 21) == "nPMZR_EL0" and kb.is_res0("HDFGRTR2_EL2", 1 << 21)
    assert kb.is_res0("HDFGWTR2_EL2", 1 << 6)
    assert all(v == "neg" for v in kb.fgt_register("HDFGRTR2_EL2").polarity.values())
    assert len(kb.fgt_register("HDFGRTR2_EL2").fields) == 24
    assert len(kb.fgt_register("HDFGWTR2_EL2").fields) == 22
    assert kb.pair("HDFGRTR_EL2") == "HDFGWTR_EL2" and kb.pair("HDFGWTR2_EL2") == "HDFGRTR2_EL2"
    assert kb.pair("HFGITR_EL2") is None
    # DECISIONS: HFGITR_EL2 bit 63 is RES0 in the shipped sysreg (5 negative, 57 positive).
    hfgitr = kb.fgt_register("HFGITR_EL2")
    assert kb.is_res0("HFGITR_EL2", 1 << 63)
    assert sorted(hfgitr.polarity.values()).count("neg") == 5 and len(hfgitr.polarity) == 62
    assert kb.guarded_caps("kvm_vcpu_load_fgt") == {"ARM64_HAS_FGT", "ARM64_HAS_FGT2"}
    assert kb.guarded_caps("__activate_traps_hfgxtr") == {"ARM64_HAS_FGT"}
    assert kb.implies("ARM64_HAS_FGT2", "ARM64_HAS_FGT")
    assert "sysreg" in kb.provenance and kb.provenance["guards"]["source"].startswith("curated:")
    assert kb.resolve_constant("NOT_A_REGISTER_FOO") is None
    assert kb.resolve_constant("SYS_MDCR_EL2").value is not None


def _reader(files: dict[str, str]):  # type: ignore[no-untyped-def]
    return files.get


def test_tree_reader_with_per_fact_fallback() -> None:
    kb = load_knowledge(_reader({"arch/arm64/kvm/config.c": CONFIG_C}))
    assert kb.source == "tree"
    # No sysreg in the tree: registers and polarity come from the snapshot.
    assert kb.is_res0("HDFGWTR_EL2", 1 << 58)
    assert kb.provenance["sysreg"] == load_knowledge(None).provenance["sysreg"]
    # Guards of the tree's config.c, with lines; the bundled ones stay for functions it lacks.
    assert kb.guards["kvm_vcpu_load_fgt"][0].after_line == 23
    assert kb.guarded_caps("kvm_vcpu_load_fgt", 25) == {"ARM64_HAS_FGT"}
    assert kb.guarded_caps("kvm_vcpu_load_fgt", 31) == {"ARM64_HAS_FGT", "ARM64_HAS_FGT2"}
    assert kb.guarded_caps("__activate_traps_hfgxtr") == {"ARM64_HAS_FGT"}
    assert kb.cap_predicates["fgt_ready"] == {"ARM64_HAS_FGT"}
    assert kb.capabilities_checked("pmu_use_fgt(vcpu)") >= {"ARM64_HAS_FGT"}


def test_tree_sysreg_and_sr_fgt() -> None:
    kb = load_knowledge(_reader({"arch/arm64/tools/sysreg": SYSREG,
                                 "arch/arm64/kvm/emulate-nested.c": EMULATE_NESTED_C}))
    assert kb.polarity("HDFGRTR_EL2", "nBARS") == "pos"  # the table wins over the name
    assert kb.polarity("HDFGWTR_EL2", "nPMFOO_EL0") == "neg"
    assert kb.is_res0("HDFGWTR_EL2", 1 << 2) and kb.register("HDFGRTR2_EL2") is None
    assert kb.provenance["polarity"]["sr_fgt_entries"] == 1
    assert load_knowledge(_reader({})) is load_knowledge(None)  # nothing in the tree: the snapshot


def test_kb_build_round_trip(tmp_path: Path) -> None:
    tree = tmp_path / "linux"
    for rel, text in (("arch/arm64/tools/sysreg", SYSREG), ("arch/arm64/kvm/config.c", CONFIG_C),
                      ("arch/arm64/kvm/emulate-nested.c", EMULATE_NESTED_C),
                      ("Makefile", "VERSION = 6\nPATCHLEVEL = 18\nSUBLEVEL = 0\nEXTRAVERSION = -rc1\n")):
        (tree / rel).parent.mkdir(parents=True, exist_ok=True)
        (tree / rel).write_text(text)
    out = tmp_path / "snap.json"
    assert build.main(["--tree", str(tree), "--out", str(out)]) == 0
    data = json.loads(out.read_text())
    prov = data["provenance"]
    assert prov["sysreg"]["kernel"] == "6.18.0-rc1"
    assert prov["sysreg"]["source"] == "generated by pmureview kb build from arch/arm64/tools/sysreg"
    assert prov["implications"]["source"].startswith("curated: DOMAIN.md")
    assert all(i["source"].startswith("curated:") for i in data["implications"])
    kb = Knowledge.from_snapshot(data)
    assert kb.polarity("HDFGRTR_EL2", "nBARS") == "pos"
    assert kb.resolve_constant("HDFGRTR_EL2_PMCEIDn_EL0").mask == 1 << 2
    assert kb.guards["kvm_vcpu_load_fgt"][1].after_line == 29
    assert kb.to_snapshot() == data  # stable round trip
    assert build.main(["--tree", str(tmp_path / "nowhere"), "--out", str(out)]) == 2


@pytest.mark.parametrize("bad", ["", "Sysreg\n", "\x00\x01 garbage"])
def test_load_from_junk_tree_does_not_raise(bad: str) -> None:
    kb = load_knowledge(_reader({"arch/arm64/tools/sysreg": bad, "arch/arm64/kvm/config.c": bad}))
    assert kb.fgt_register("HDFGRTR_EL2") is not None  # fell back to the snapshot's registers
