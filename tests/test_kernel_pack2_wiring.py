"""Kernel facts for the second pack's wiring rules: VNCR offsets, trap-bit classes, wiring tables."""

from __future__ import annotations

import json

from pmureview.kernel import traps, vncr, wiring


def test_parse_vncr_offsets_and_lines() -> None:
    text = "/* x */\n#define VNCR_SCTLR_EL1\t\t0x110\n#define VNCR_FOO_EL1 0x6A0 /* foo */\n#define OTHER 1\n"
    got = vncr.parse_vncr(text)
    assert [(v.register, v.offset, v.line) for v in got] == [("SCTLR_EL1", 0x110, 2), ("FOO_EL1", 0x6A0, 3)]
    assert vncr.offsets(None) == {}


def test_single_bit_defines() -> None:
    text = ("#define HCR_TID5\t(UL(1) << 58)\n#define HCR_ATA\t\t(UL(1) << HCR_ATA_SHIFT)\n"
            "#define CPTR_EL2_TAM\t(1 << 30)\n#define HCR_BSU\t\t(3 << 10)\n"
            "#define MDCR_EL2_E2PB_MASK\t(UL(0x3))\n#define FOO_X BIT(4)\n")
    assert traps.single_bit_defines(text) == {"HCR_TID5", "HCR_ATA", "CPTR_EL2_TAM", "FOO_X"}


def test_name_class() -> None:
    cur = wiring.CURATED_TRAP_CLASSES
    assert traps.name_class("TID3", cur) == traps.TRAP
    assert traps.name_class("TCR2En", cur) == traps.ENABLE
    assert traps.name_class("EnFPM", cur) == traps.ENABLE
    assert traps.name_class("ENSCXT", cur) == traps.ENABLE
    assert traps.name_class("EL1PCTEN", cur) == traps.ENABLE
    assert traps.name_class("APK", cur) == traps.ENABLE  # curated: the name does not say En
    assert traps.name_class("TGE", cur) is None  # routing bit, curated
    assert traps.name_class("TWEDEn", cur) is None  # reads both ways
    assert traps.name_class("TFOOEn", {}) is None  # both patterns, not curated: no judgement
    assert traps.name_class("IMO", cur) is None
    assert traps.split_constant("HCR_EL2", "HCR_TID3") == "TID3"
    assert traps.split_constant("HCRX_EL2", "HCRX_EL2_MSCEn") == "MSCEn"
    assert traps.split_constant("ICH_HCR_EL2", "ICH_HCR_TC") is None


def test_parse_vcpu_sysreg_and_tables() -> None:
    text = ("enum vcpu_sysreg {\n\t__INVALID_SYSREG__,\n\tPAR_EL1,\t/* x */\n\t__VNCR_START__,\n"
            "\tVNCR(SCTLR_EL1),/* y */\n\tNR_SYS_REGS\n};\n\tLATER_EL1,\n")
    got = wiring.parse_vcpu_sysreg(text)
    assert [(e.name, e.vncr, e.line) for e in got] == [("PAR_EL1", False, 3), ("SCTLR_EL1", True, 5)]
    assert {e.name for e in wiring.parse_vcpu_sysreg(text, whole_enum=False)} == {"PAR_EL1", "SCTLR_EL1", "LATER_EL1"}
    emu = "#define SR_TRAP(sr, t) x\n\tSR_TRAP(SYS_AIDR_EL1,\t\tCGT_HCR_TID1),\n\tSR_RANGE_TRAP(SYS_A, SYS_B, CGT_X),\n"
    assert wiring.parse_sr_trap(emu) == {"SYS_AIDR_EL1": "CGT_HCR_TID1", "SYS_A": "CGT_X"}
    he = ("static exit_handle_fn arm_exit_handlers[] = {\n\t[0 ... ESR_ELx_EC_MAX]\t= unk,\n"
          "\t[ESR_ELx_EC_SYS64]\t= sysreg,\n};\n")
    assert wiring.parse_exit_handlers(he) == {"unk", "sysreg"}


def test_fgu_mentions() -> None:
    t = ("if (!kvm_has_feat(kvm, A, B, IMP))\n\tkvm->arch.fgu[HFGxTR_GROUP] |= (HFGxTR_EL2_nX |\n"
         "\t\t\t\t\tHFGxTR_EL2_nFOO_EL1);\n")
    assert wiring.fgu_mentions("HFGxTR_EL2_nFOO_EL1", [t])
    assert not wiring.fgu_mentions("HFGxTR_EL2_nBAR_EL1", [t])
    assert wiring.fgu_mentions("HFGRTR_EL2_nFOO_EL1", ["NEEDS_FEAT(HFGRTR_EL2_nFOO_EL1, FEAT_FOO),"])


def test_snapshot_has_provenance_and_facts() -> None:
    data = json.loads(wiring.DATA_PATH.read_text("utf-8"))
    for name, table in data.items():
        if isinstance(table, dict):
            assert table["source"].startswith(("generated from ", "curated: ")), name
    snap = wiring.snapshot_facts()
    assert snap.source == "snapshot"
    assert snap.vncr["SCTLR_EL1"] == 0x110
    assert snap.enum["SCTLR_EL1"] is True
    assert snap.has_encoding_to_fgt and snap.has_fgu
    assert "kvm_handle_guest_abort" in snap.exit_handlers
    assert "HCR_TID3" in snap.single_bits


def test_tree_facts_override_snapshot_per_file() -> None:
    files = {vncr.VNCR_MAPPING_PATH: "#define VNCR_FOO_EL1\t0x6A0\n",
             wiring.EMULATE_NESTED_PATH: ("static const x encoding_to_fgt[] = {\n"
                                          "\tSR_FGT(SYS_FOO_EL1, HFGRTR, nFOO_EL1, 0),\n};\n")}
    facts = wiring.load_facts(files.get)
    assert facts.source == "tree"
    assert facts.vncr == {"FOO_EL1": 0x6A0}
    assert facts.sr_fgt == {"SYS_FOO_EL1": ("HFGRTR", "nFOO_EL1", 0)}
    assert facts.has_encoding_to_fgt is True
    assert facts.enum == wiring.snapshot_facts().enum  # kvm_host.h absent: the snapshot's table
    assert wiring.load_facts(None) is wiring.snapshot_facts()
