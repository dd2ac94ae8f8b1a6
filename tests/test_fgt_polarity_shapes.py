"""FGT polarity from the patch alone: every set/clear API shape, in any file, hunk-only.

Each case is one added statement inside a function whose header is above the hunk (so the hunk
parses as loose statements, as on real traffic), in a scratch repository that is not a kernel
tree: no `__compute_fgt()`, no caller, no sysreg file. What is written decides.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from pmureview.api import Options, review
from pmureview.kernel.fgt import feature_covers, legacy_spelling, whole_register_mask

RULE = "kvmarm/fgt-trap-polarity"
FILLER = "".join(f"\tkvm_step_{i}(vcpu);\n" for i in range(6))


def _mbox(tmp: Path, path: str, decls: str, added: str, name: str = "fgt_shape", head: str = "") -> Path:
    before = f"static void {name}(struct kvm_vcpu *vcpu)\n{{\n{decls}{FILLER}}}\n"
    after = head + before.replace(FILLER, FILLER + added)
    repo = tmp / "repo"
    repo.mkdir()

    def git(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True)

    git("init", "-q")
    git("config", "user.name", "Ann Author")
    git("config", "user.email", "ann@example.org")
    f = repo / path
    f.parent.mkdir(parents=True)
    f.write_text(before)
    git("add", "-A")
    git("commit", "-qm", "base")
    f.write_text(after)
    git("commit", "-qam", "KVM: arm64: shape\n\nShape.\n\nSigned-off-by: Ann Author <ann@example.org>")
    out = tmp / "shape.mbox"
    out.write_bytes(git("format-patch", "--stdout", "-1").stdout)
    return out


def _findings(tmp: Path, path: str, decls: str, added: str, name: str = "fgt_shape", head: str = "") -> list:
    r = review(str(_mbox(tmp, path, decls, added, name, head)), Options(select=[RULE], strict=True))
    return [f for f in r.findings if f.rule == RULE]


CFG = "arch/arm64/kvm/config.c"
SWH = "arch/arm64/kvm/hyp/include/hyp/switch.h"
PMU = "arch/arm64/kvm/pmu-direct.c"
MASKS = "\tu64 r_clr = 0, r_set = 0, val;\n"

# (id, path, declarations, added statement, the register it untraps or None)
SHAPES = [
    ("vcpu-fgt-or-negative", CFG, "", "\t*vcpu_fgt(vcpu, HDFGRTR2_EL2) |= HDFGRTR2_EL2_nPMICNTR_EL0;\n",
     "PMICNTR_EL0"),
    ("vcpu-fgt-clear-positive", CFG, "", "\t*vcpu_fgt(vcpu, HDFGRTR_EL2) &= ~HDFGRTR_EL2_PMOVS;\n", "PMOVS"),
    ("vcpu-fgt-parameter-register", CFG, "", "\t*vcpu_fgt(vcpu, reg) |= HFGRTR_EL2_nGCS_EL1;\n", "GCS_EL1"),
    ("set-mask-negative", SWH, MASKS, "\tr_set |= HFGRTR_EL2_nPOR_EL0;\n", "POR_EL0"),
    ("clr-mask-positive", SWH, MASKS, "\tr_clr |= HFGRTR_EL2_TCR_EL1;\n", "TCR_EL1"),
    ("legacy-hfgxtr-name", SWH, MASKS, "\tr_set |= HFGxTR_EL2_nACCDATA_EL1_MASK;\n", "ACCDATA_EL1"),
    ("update-fgt-traps-cs", SWH, "",
     "\tupdate_fgt_traps_cs(hctxt, vcpu, kvm, HFGITR_EL2, 0, HFGITR_EL2_nBRBINJ);\n", "BRBINJ"),
    ("sysreg-clear-set-s", SWH, "",
     "\tsysreg_clear_set_s(SYS_HDFGWTR_EL2, HDFGWTR_EL2_PMCR_EL0, 0);\n", "PMCR_EL0"),
    ("clear-set-named-callee", PMU, "",
     "\tpmu_fgt_clear_set(vcpu, HDFGRTR2_EL2, 0, HDFGRTR2_EL2_nPMICFILTR_EL0);\n", "PMICFILTR_EL0"),
    ("read-register-value", PMU, MASKS,
     "\tval = read_sysreg_s(SYS_HDFGRTR2_EL2);\n\tval |= HDFGRTR2_EL2_nPMECR_EL1;\n", "PMECR_EL1"),
    ("nmask-based-value", SWH, MASKS,
     "\tval = __HFGRTR_EL2_nMASK;\n\tval &= ~HFGRTR_EL2_AFSR0_EL1;\n", "AFSR0_EL1"),
    # near misses: adding traps
    ("vcpu-fgt-clear-negative", CFG, "", "\t*vcpu_fgt(vcpu, HDFGRTR2_EL2) &= ~HDFGRTR2_EL2_nPMICNTR_EL0;\n",
     None),
    ("vcpu-fgt-or-positive", CFG, "", "\t*vcpu_fgt(vcpu, HDFGRTR_EL2) |= HDFGRTR_EL2_PMOVS;\n", None),
    ("set-mask-positive", SWH, MASKS, "\tr_set |= HFGRTR_EL2_TCR_EL1;\n", None),
    ("clr-mask-negative", SWH, MASKS, "\tr_clr |= HFGRTR_EL2_nPOR_EL0;\n", None),
    ("update-fgt-traps-cs-clear-negative", SWH, "",
     "\tupdate_fgt_traps_cs(hctxt, vcpu, kvm, HFGITR_EL2, HFGITR_EL2_nBRBINJ, 0);\n", None),
    ("fgu-array", SWH, "", "\tkvm->arch.fgu[HFGRTR_GROUP] |= HFGRTR_EL2_nGCS_EL1;\n", None),
    ("unrelated-mask-variable", SWH, "\tu64 mask;\n", "\tmask |= HFGRTR_EL2_nGCS_EL1;\n", None),
    ("feature-gated-untrap", CFG, "",
     "\tif (kvm_has_feat(vcpu->kvm, ID_AA64PFR1_EL1, GCS, IMP))\n"
     "\t\t*vcpu_fgt(vcpu, HFGRTR_EL2) |= HFGRTR_EL2_nGCS_EL1;\n", None),
]


@pytest.mark.parametrize("path,decls,added,untraps", [s[1:] for s in SHAPES], ids=[s[0] for s in SHAPES])
def test_shape(tmp_path: Path, path: str, decls: str, added: str, untraps: str | None) -> None:
    found = _findings(tmp_path, path, decls, added)
    if untraps is None:
        assert found == [], [f.message for f in found]
        return
    assert len(found) == 1, [f.message for f in found]
    f = found[0]
    assert f.severity.value == "error"
    assert f"untraps {untraps} for the guest" in f.message
    assert f.location.path == path


def test_negated_feature_check_is_still_reported(tmp_path: Path) -> None:
    found = _findings(tmp_path, CFG, "", "\tif (!kvm_has_feat(vcpu->kvm, ID_AA64PFR1_EL1, GCS, IMP))\n"
                      "\t\t*vcpu_fgt(vcpu, HFGRTR_EL2) |= HFGRTR_EL2_nGCS_EL1;\n")
    assert len(found) == 1


def test_exit_path_read_modify_write_is_silent(tmp_path: Path) -> None:
    """The hunk header names __deactivate_traps(): setting negative bits gives the host its
    registers back."""
    added = "\tval = read_sysreg_s(SYS_HFGRTR_EL2);\n\tval |= HFGRTR_EL2_nTPIDR2_EL0;\n"
    assert _findings(tmp_path, "arch/arm64/kvm/hyp/nvhe/switch.c", MASKS, added, "__deactivate_traps") == []


def test_same_write_on_the_entry_path_is_reported(tmp_path: Path) -> None:
    added = "\tval = read_sysreg_s(SYS_HFGRTR_EL2);\n\tval |= HFGRTR_EL2_nTPIDR2_EL0;\n"
    assert len(_findings(tmp_path, "arch/arm64/kvm/hyp/nvhe/switch.c", MASKS, added, "__activate_traps")) == 1


def test_kernel_fgt_name_facts() -> None:
    assert legacy_spelling("HFGxTR_EL2_nGCS_EL1_MASK") == ("HFGxTR_EL2", "HFGRTR_EL2_nGCS_EL1_MASK")
    assert legacy_spelling("HFGRTR_EL2_nGCS_EL1") is None
    assert whole_register_mask("__HFGRTR_EL2_nMASK") == ("HFGRTR_EL2", "nMASK")
    assert whole_register_mask("__HFGxTR_EL2_nMASK") == ("HFGRTR_EL2", "nMASK")
    assert whole_register_mask("HCR_EL2_RES0") is None
    assert feature_covers("GCS", "nGCS_EL1") and feature_covers("ARM64_SME", "nTPIDR2_EL0")
    assert feature_covers("PMICNTR", "nPMICNTR_EL0")
    assert not feature_covers("IMP", "nGCS_EL1") and not feature_covers("PMUVer", "PMCCNTR_EL0")
    assert not feature_covers("ARM64_HAS_FGT", "nGCS_EL1")


def test_early_return_feature_check_gates_the_untrap(tmp_path: Path) -> None:
    added = ("\tif (!kvm_has_feat(vcpu->kvm, ID_AA64PFR1_EL1, GCS, IMP))\n\t\treturn;\n\n"
             "\t*vcpu_fgt(vcpu, HFGRTR_EL2) |= HFGRTR_EL2_nGCS_EL0 | HFGRTR_EL2_nGCS_EL1;\n")
    assert _findings(tmp_path, CFG, "", added) == []


def test_helper_parameter_roles_come_from_its_body(tmp_path: Path) -> None:
    """A (set, clr) helper whose parameters are not named set/clr: what it does with them decides."""
    head = ("static void pmu_fgt_apply(struct kvm_vcpu *vcpu, enum vcpu_sysreg reg, u64 traps, u64 direct)\n"
            "{\n\t*vcpu_fgt(vcpu, reg) |= traps;\n\t*vcpu_fgt(vcpu, reg) &= ~direct;\n}\n\n")
    added = "\tpmu_fgt_apply(vcpu, HDFGRTR_EL2, HDFGRTR_EL2_PMOVS, HDFGRTR_EL2_PMCCNTR_EL0);\n"
    found = _findings(tmp_path, CFG, "", added, head=head)
    assert [("untraps PMCCNTR_EL0 for the guest" in f.message) for f in found] == [True]
