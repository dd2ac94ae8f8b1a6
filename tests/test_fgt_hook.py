"""A one-line FGT polarity mistake is stopped by the real `git send-email --dry-run` hook, hunk-only.

The scratch repository is not a kernel tree (no Makefile/Kconfig/MAINTAINERS at the top), so the
hook reviews the patch from its hunks alone: no `__compute_fgt()`, no sysreg file, no config.c
around the line. OR-ing a negative-polarity bit into `*vcpu_fgt()` untraps the register for the
guest, which `kvmarm/fgt-trap-polarity` reports as an error: the hook's default level blocks it.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from test_hooks import needs_send_email, send_email

from pmureview.hooks.sendemail import install

PATH = "arch/arm64/kvm/pmu-part.c"
BASE = (
    "// SPDX-License-Identifier: GPL-2.0-only\n"
    "#include <linux/kvm_host.h>\n"
    "\n"
    "static void pmu_part_load(struct kvm_vcpu *vcpu)\n"
    "{\n"
    "\tkvm_pmu_owner_switch(vcpu);\n"
    "\tkvm_pmu_counters_restore(vcpu);\n"
    "\tkvm_pmu_filters_restore(vcpu);\n"
    "\tkvm_pmu_irq_restore(vcpu);\n"
    "}\n"
)
ANCHOR = "\tkvm_pmu_filters_restore(vcpu);\n"
BAD = BASE.replace(ANCHOR, ANCHOR + "\t*vcpu_fgt(vcpu, HDFGRTR2_EL2) |= HDFGRTR2_EL2_nPMICNTR_EL0;\n")
GOOD = BASE.replace(ANCHOR, ANCHOR + "\t*vcpu_fgt(vcpu, HDFGRTR2_EL2) &= ~HDFGRTR2_EL2_nPMICNTR_EL0;\n")


pytestmark = needs_send_email


def git(repo: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True, check=True)


@pytest.fixture
def repo(tmp_path: Path, env: dict[str, str]) -> Path:
    r = tmp_path / "scratch"
    r.mkdir()
    git(r, "init", "-q", "-b", "main")
    (r / PATH).parent.mkdir(parents=True)
    (r / PATH).write_text(BASE)
    git(r, "add", ".")
    git(r, "commit", "-q", "-m", "pmu: initial")
    return r


def commit(repo: Path, text: str, *, amend: bool = False) -> None:
    (repo / PATH).write_text(text)
    git(repo, "commit", "-q", "-a", "-m", "KVM: arm64: Trap PMICNTR_EL0 for a partitioned PMU",
        *(["--amend"] if amend else []))


def test_scratch_repo_is_not_a_kernel_tree(repo: Path) -> None:
    from pmureview.hooks import is_kernel_tree

    assert not is_kernel_tree(repo)


def test_negative_bit_or_ed_into_vcpu_fgt_is_stopped_hunk_only(repo: Path, env: dict[str, str]) -> None:
    install(repo, force=False)  # the default level: errors block
    commit(repo, BAD)
    r = send_email(repo, env)
    assert r.returncode != 0, r.stdout + r.stderr
    assert "rejected by sendemail-validate hook" in r.stderr
    assert "ERROR:KVMARM_FGT_TRAP_POLARITY:" in r.stderr
    assert "untraps PMICNTR_EL0 for the guest" in r.stderr
    assert "Dry-OK" not in r.stdout

    commit(repo, GOOD, amend=True)  # clearing the negative bit adds the trap: goes through
    r = send_email(repo, env)
    assert r.returncode == 0, r.stderr
    assert "Dry-OK" in r.stdout and "KVMARM_FGT_TRAP_POLARITY" not in r.stderr
