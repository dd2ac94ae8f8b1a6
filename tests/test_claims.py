"""The commit-message claim parser (pmureview.analyses.claims) on sentences written here."""

from __future__ import annotations

import pytest

from pmureview.analyses import claims as cl


def kinds(message: str) -> list[tuple[str, int]]:
    return [(c.kind, c.line) for c in cl.parse_claims(message)]


@pytest.mark.parametrize("sentence", [
    "Save and restore FOO_EL1 on guest entry and exit.",
    "Context switch FOO_EL1 when the VM has FEAT_FOO.",
    "This patch context-switches the new register.",
    "Add the register to the save/restore code.",
    "Add FOO_EL1 to the vCPU state, and save and restore it on entry.",
])
def test_context_switch_claims(sentence: str) -> None:
    assert kinds(sentence) == [(cl.SWITCH, 1)]


@pytest.mark.parametrize("sentence", [
    "A later patch context-switches all of them.",
    "KVM does not context switch FOOMAP_EL2, which only the host uses.",
    "The register is already saved and restored by the host.",
    "We will save and restore it in the next patch.",
    "If the guest has FEAT_FOO, KVM would need to context switch it.",
    "Should this be context switched?",
    "Since the host never uses it, context switching is not needed.",
])
def test_context_switch_negated_or_deferred(sentence: str) -> None:
    assert kinds(sentence) == []


def test_negation_after_the_keyword_does_not_count() -> None:
    # "which is not ..." is a relative clause after the keyword
    assert kinds("Context switch FOO_EL1, which is not trapped.") == [(cl.SWITCH, 1)]


@pytest.mark.parametrize("sentence", [
    "Configure the fine-grained traps for FOO_EL1.",
    "Set up FGT for the partitioned PMU.",
    "Add FGU handling so that a VM without FEAT_FOO gets an UNDEF.",
    "Describe FOO_EL1's fine grained traps in the routing table.",
    "Route the FGT to the guest hypervisor.",
])
def test_fgt_claims(sentence: str) -> None:
    assert [k for k, _ in kinds(sentence)] == [cl.FGT]


@pytest.mark.parametrize("sentence", [
    "FEAT_FGT2 is not required for this.",  # FEAT_FGT2 is a feature name, not a claim
    "The FGT bits for this register do not exist yet.",
    "A later patch configures the fine-grained traps.",
    "Fine-grained traps are not enough to hide the register.",
    "The FGU already covers this register, so nothing is needed here.",
    "This lets us keep the FGT value unchanged.",  # "us" is not the verb "use"; no verb, no claim
])
def test_fgt_not_claims(sentence: str) -> None:
    assert kinds(sentence) == []


def test_expose_claim() -> None:
    got = cl.parse_claims("Expose FEAT_FOO to guests.")
    assert [c.kind for c in got] == [cl.EXPOSE]
    assert cl.parse_claims("Don't expose FEAT_FOO to guests yet.") == []


def test_trapped_and_untrapped_lists() -> None:
    msg = ("Intro line.\n\nUntrapped:\n* PMCR_EL0\n* PMEVCNTR<n>_EL0\n\nTrapped:\n- PMOVS_EL0\n"
           "- PMICNTR_EL0 (not handled yet)\n\nStill trapped: PMCEIDn_EL0, PMMIR_EL1 and PMCCFILTR_EL0\n")
    got = cl.parse_claims(msg)
    assert [(c.kind, c.line) for c in got] == [(cl.UNTRAPPED, 3), (cl.TRAPPED, 7), (cl.TRAPPED, 11)]
    assert got[0].registers == (("PMCR_EL0", 4), ("PMEVCNTRn_EL0", 5))
    assert got[1].registers == (("PMOVS_EL0", 8), ("PMICNTR_EL0", 9))
    assert [r for r, _ in got[2].registers] == ["PMCEIDn_EL0", "PMMIR_EL1", "PMCCFILTR_EL0"]


def test_list_of_prose_is_not_a_register_list() -> None:
    msg = "Trapped:\n* PMOVS_EL0 stays trapped because KVM injects the overflow interrupt\n"
    assert cl.parse_claims(msg) == []
    # a heading followed by prose, not names
    assert cl.parse_claims("Trapped: everything the guest should not see.\n") == []


def test_not_trapped_heading_is_untrapped() -> None:
    got = cl.parse_claims("Not trapped:\n* PMCR_EL0\n")
    assert [(c.kind, c.registers) for c in got] == [(cl.UNTRAPPED, (("PMCR_EL0", 2),))]


def test_quotes_changelogs_and_trailers_are_ignored() -> None:
    msg = ("Add FOO_EL1.\n\n> Please context switch FOO_EL1.\n\nv2 -> v3:\n- configure the FGTs\n"
           "- save and restore FOO_EL1\n\nLink: https://example.org/context-switch\n")
    assert cl.parse_claims(msg) == []


def test_code_lines_are_not_prose() -> None:
    msg = "Fix the trap value:\n\n\t/* context switch FOO_EL1 here */\n\tfoo();\n"
    assert cl.parse_claims(msg) == []


def test_claim_line_is_the_keyword_line() -> None:
    msg = "FEAT_FOO adds FOO_EL1.\n\nAdd FOO_EL1 to the vCPU's registers and\nsave and restore it.\n"
    assert kinds(msg) == [(cl.SWITCH, 4)]


def test_register_helpers() -> None:
    assert cl.register_base("nPMICNTR_EL0") == "PMICNTR"
    assert cl.register_base("PMOVS_EL0") == "PMOVS"
    assert cl.register_base("PMEVCNTR<n>_EL0") == "PMEVCNTRn"
    assert cl.trap_effect("set", "neg") == "untrap"
    assert cl.trap_effect("clear", "neg") == "trap"
    assert cl.trap_effect("set", "pos") == "trap"
    assert cl.trap_effect("store", "pos") == "trap"
    assert cl.trap_effect("set", "") is None
    assert cl.mentions_register("write_sysreg_s(ctxt_sys_reg(ctxt, FOO_EL1), SYS_FOO_EL1);", "FOO_EL1")
    assert cl.mentions_register("write_sysreg(val, foo_el1);", "FOO_EL1")
    assert not cl.mentions_register("write_sysreg(val, foo_el12);", "FOO_EL1")
