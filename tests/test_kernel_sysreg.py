"""The sysreg description parser and the FGT polarity model, on small hand-written inputs."""

from __future__ import annotations

from pmureview.kernel.fgt import build_fgt, name_polarity, parse_sr_fgt
from pmureview.kernel.sysreg import encode, genmask, parse_sysreg

# Made-up registers in the shape of arch/arm64/tools/sysreg: tabs and spaces mixed on purpose.
SYSREG = """\
# A comment line
# Sysreg\t<name>\t<op0>\t<op1>\t<crn>\t<crm>\t<op2>

Sysreg HDFGRTR_EL2\t3\t4\t3\t1\t4
Res0\t63:59
Field\t58\tPMCEIDn_EL0
Field   57\tnPMFOO_EL0
Res0\t56:3
Field\t2\tPMOVS
Field 1:0 nBARS
EndSysreg

Sysreg\tHDFGWTR_EL2\t3 4 3 1 5
Res0\t63:58
Field\t57\tnPMFOO_EL0
Res0\t56:3
Field\t2\tPMOVS
Field\t1:0\tnBARS
EndSysreg

SysregFields\tFOO_ELx
Res0\t63:8
Raz\t7:4
UnsignedEnum\t3:0\tLEN
\t0b0000\tNI
\t0b0001\tIMP
\t0x2\tFULL
EndEnum
EndSysregFields

Sysreg\tFOO_EL1\t3\t0\t1\t2\t0
Fields\tFOO_ELx
EndSysreg

Sysreg\tFOO_EL12\t3\t5\t1\t2\t0
Mapping\tFOO_EL1
EndSysreg

Sysreg\tBAR_EL1\t3\t0\t9\t9\t1
Res1\t63
SignedEnum\t7:4\tPMUVer  # trailing comment
\t0b0000\tNI
\t0b0002\tBROKEN
\t0b1111\tIMPDEF
EndEnum
Unkn\t3:0
Frobnicate\t1 2 3
Field\tnot-a-range\tX
EndSysreg
"""


def test_parse_mixed_whitespace_fields_and_res0() -> None:
    f = parse_sysreg(SYSREG)
    r = f.registers["HDFGRTR_EL2"]
    assert r.encoding == (3, 4, 3, 1, 4)
    assert [(x.name, x.msb, x.lsb) for x in r.fields] == [
        ("PMCEIDn_EL0", 58, 58), ("nPMFOO_EL0", 57, 57), ("PMOVS", 2, 2), ("nBARS", 1, 0)]
    assert r.res0 == genmask(63, 59) | genmask(56, 3)
    assert r.field("PMCEIDn_EL0").mask == 1 << 58
    assert r.field_at(0).name == "nBARS" and r.field_at(10) is None
    w = f.registers["HDFGWTR_EL2"]
    assert w.encoding == (3, 4, 3, 1, 5)
    assert w.res0 >> 58 & 1


def test_generated_c_names() -> None:
    r = parse_sysreg(SYSREG).registers["HDFGRTR_EL2"]
    names = r.c_names()
    assert names["HDFGRTR_EL2_PMCEIDn_EL0"] == ("field", "PMCEIDn_EL0", 1 << 58)
    assert names["HDFGRTR_EL2_nBARS_MASK"] == ("mask", "nBARS", 0b11)
    assert names["HDFGRTR_EL2_nBARS_SHIFT"] == ("shift", "nBARS", 0)
    assert names["HDFGRTR_EL2_nBARS_WIDTH"] == ("width", "nBARS", 2)
    assert names["SYS_HDFGRTR_EL2"] == ("encoding", None, encode((3, 4, 3, 1, 4)))
    assert names["HDFGRTR_EL2_RES0"][2] == r.res0


def test_sysreg_fields_and_enums() -> None:
    f = parse_sysreg(SYSREG)
    layout = f.layouts["FOO_ELx"]
    assert layout.is_layout and layout.raz == genmask(7, 4)
    foo = f.registers["FOO_EL1"]
    assert foo.fields_from == "FOO_ELx"
    length = foo.field("LEN")
    assert length is not None and length.kind == "unsigned"
    assert length.enums == (("NI", 0), ("IMP", 1), ("FULL", 2))
    assert foo.res0 == genmask(63, 8)
    # A Fields user's field defines are named after the layout, not the register.
    assert "FOO_ELx_LEN_IMP" in layout.c_names() and "FOO_EL1_LEN" not in foo.c_names()
    assert layout.c_names()["FOO_ELx_LEN_SIGNED"] == ("signed", "LEN", 0)
    assert f.registers["FOO_EL12"].mapping == "FOO_EL1"


def test_malformed_lines_are_skipped_not_fatal() -> None:
    f = parse_sysreg(SYSREG)
    bar = f.registers["BAR_EL1"]
    ver = bar.field("PMUVer")
    assert ver is not None and ver.kind == "signed"
    assert ver.enums == (("NI", 0), ("IMPDEF", 15))  # the 0b0002 line is dropped
    assert bar.res1 == 1 << 63 and bar.unkn == 0b1111
    whys = " ".join(w for _, w in f.problems)
    assert "bad enum value" in whys and "Frobnicate" in whys and "bad Field" in whys
    # Garbage never raises.
    junk = parse_sysreg("EndEnum\nField 3 X\nSysreg A 1 2\nEnum 3:0 Q\n0 A\nSysreg B 3 0 0 0 0\n")
    assert "B" in junk.registers and junk.problems


SR_FGT_TEXT = """\
#define SR_FGT(sr, g, b, p)\t\t\\
\t{ .encoding = sr, .tc = { .fgt = g ## _GROUP, .bit = g ## _EL2_ ## b ## _SHIFT, .pol = p, }, }

static const struct encoding_to_trap_config encoding_to_fgt[] __initconst = {
\tSR_FGT(SYS_PMCEID0_EL0,\tHDFGRTR, PMCEIDn_EL0, 1),
\tSR_FGT(SYS_PMFOO_EL0,\t\tHDFGRTR, nPMFOO_EL0, 0),
\tSR_FGT(sys_reg(3, 3, 9, 9, 9), HDFGRTR, nBARS, 1),
};
"""


def test_polarity_from_sr_fgt_beats_the_name() -> None:
    f = parse_sysreg(SYSREG)
    table = parse_sr_fgt(SR_FGT_TEXT)
    assert [(e.group, e.field, e.pol) for e in table] == [
        ("HDFGRTR", "PMCEIDn_EL0", 1), ("HDFGRTR", "nPMFOO_EL0", 0), ("HDFGRTR", "nBARS", 1)]
    assert table[0].line == 5
    fgt = build_fgt(f.registers, table, f.layouts)
    r, w = fgt["HDFGRTR_EL2"], fgt["HDFGWTR_EL2"]
    assert r.polarity["nBARS"] == "pos"  # the table says 1, against the n prefix
    assert w.polarity["nBARS"] == "pos"  # an entry covers the bit in both registers of the group
    assert r.polarity["PMOVS"] == "pos" and r.polarity_source == "SR_FGT+n-prefix"
    assert r.mask == (1 << 58) | 0b111 and r.nmask == 1 << 57


def test_polarity_by_name_without_table() -> None:
    f = parse_sysreg(SYSREG)
    fgt = build_fgt(f.registers)
    assert fgt["HDFGRTR_EL2"].polarity == {
        "PMCEIDn_EL0": "pos", "nPMFOO_EL0": "neg", "PMOVS": "pos", "nBARS": "neg"}
    assert fgt["HDFGRTR_EL2"].polarity_source == "n-prefix"
    assert fgt["HDFGWTR_EL2"].pair == "HDFGRTR_EL2" and fgt["HDFGWTR_EL2"].group == "HDFGRTR_GROUP"
    assert name_polarity("ICH_HFGRTR_EL2", "ICC_IAFFIDR_EL1") == "neg"  # GICv5: all negative
    assert name_polarity("HDFGRTR_EL2", "nonsense") == "pos"  # lowercase after n: no prefix
