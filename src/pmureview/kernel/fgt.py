"""The fine-grained trap (FGT) model: registers, read/write twins, groups and per-field polarity.

Polarity (DOMAIN.md §1.2): a positive field traps when 1, a negative one when 0. The authoritative
source is KVM's own `encoding_to_fgt[]` table (`SR_FGT(<sysreg>, <group>, <field>, <pol>)` lines of
arch/arm64/kvm/emulate-nested.c, pol 1 = positive, 0 = negative); KVM applies an entry's polarity to
that bit of both registers of the group (aggregate_fgt()), and so do we. Without that file the naming
rule decides: a field named `n` + uppercase letter is negative, except that every field of the GICv5
ICH_HFG*TR_EL2 registers is negative although none carries the prefix.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from pmureview.lazyre import lazy_re

from ..record import dataclass
from .sysreg import Register

POS = "pos"
NEG = "neg"


@dataclass(frozen=True, slots=True)
class FgtSpec:
    """Static facts about one FGT register (DOMAIN.md §1.1, §2.1)."""

    name: str
    group: str  # enum fgt_group_id member
    access: str  # read | write | exec
    pair: str | None  # the read/write twin sharing the group
    feature: str  # FEAT_FGT | FEAT_FGT2 | FEAT_GCIE
    capability: str  # the host capability KVM tests before touching it
    all_negative: bool = False  # ICH_HFG*TR_EL2: negative without the n prefix


_SPECS = (
    FgtSpec("HFGRTR_EL2", "HFGRTR_GROUP", "read", "HFGWTR_EL2", "FEAT_FGT", "ARM64_HAS_FGT"),
    FgtSpec("HFGWTR_EL2", "HFGRTR_GROUP", "write", "HFGRTR_EL2", "FEAT_FGT", "ARM64_HAS_FGT"),
    FgtSpec("HFGITR_EL2", "HFGITR_GROUP", "exec", None, "FEAT_FGT", "ARM64_HAS_FGT"),
    FgtSpec("HDFGRTR_EL2", "HDFGRTR_GROUP", "read", "HDFGWTR_EL2", "FEAT_FGT", "ARM64_HAS_FGT"),
    FgtSpec("HDFGWTR_EL2", "HDFGRTR_GROUP", "write", "HDFGRTR_EL2", "FEAT_FGT", "ARM64_HAS_FGT"),
    FgtSpec("HAFGRTR_EL2", "HAFGRTR_GROUP", "read", None, "FEAT_FGT", "ARM64_HAS_FGT"),
    FgtSpec("HFGRTR2_EL2", "HFGRTR2_GROUP", "read", "HFGWTR2_EL2", "FEAT_FGT2", "ARM64_HAS_FGT2"),
    FgtSpec("HFGWTR2_EL2", "HFGRTR2_GROUP", "write", "HFGRTR2_EL2", "FEAT_FGT2", "ARM64_HAS_FGT2"),
    FgtSpec("HFGITR2_EL2", "HFGITR2_GROUP", "exec", None, "FEAT_FGT2", "ARM64_HAS_FGT2"),
    FgtSpec("HDFGRTR2_EL2", "HDFGRTR2_GROUP", "read", "HDFGWTR2_EL2", "FEAT_FGT2", "ARM64_HAS_FGT2"),
    FgtSpec("HDFGWTR2_EL2", "HDFGRTR2_GROUP", "write", "HDFGRTR2_EL2", "FEAT_FGT2", "ARM64_HAS_FGT2"),
    FgtSpec("ICH_HFGRTR_EL2", "ICH_HFGRTR_GROUP", "read", "ICH_HFGWTR_EL2", "FEAT_GCIE",
            "ARM64_HAS_GICV5_CPUIF", all_negative=True),
    FgtSpec("ICH_HFGWTR_EL2", "ICH_HFGRTR_GROUP", "write", "ICH_HFGRTR_EL2", "FEAT_GCIE",
            "ARM64_HAS_GICV5_CPUIF", all_negative=True),
    FgtSpec("ICH_HFGITR_EL2", "ICH_HFGITR_GROUP", "exec", None, "FEAT_GCIE",
            "ARM64_HAS_GICV5_CPUIF", all_negative=True),
)
FGT_SPECS: dict[str, FgtSpec] = {s.name: s for s in _SPECS}

# SR_FGT()'s group argument -> the registers it covers (KVM pastes `<g>_GROUP` and `<g>_EL2_<f>`).
# HFGxTR is the 2023-24 spelling, whose fields lived in `SysregFields HFGxTR_EL2`.
GROUP_ARG_REGISTERS: dict[str, tuple[str, ...]] = {
    "HFGxTR": ("HFGRTR_EL2", "HFGWTR_EL2"),
    **{s.name.removesuffix("_EL2"): tuple(
        t.name for t in _SPECS if t.group == s.group) for s in _SPECS},
}

_N_PREFIX = lazy_re(r"n[A-Z]")
SR_FGT_RE = lazy_re(
    r"SR_FGT\s*\(\s*((?:[^(),]|\([^()]*\))+?)\s*,\s*(\w+)\s*,\s*(\w+)\s*,\s*([01])\s*\)")


def name_polarity(register: str, field_name: str) -> str:
    """Polarity by the naming rule (n prefix), with the all-negative ICH_HFG*TR_EL2 exception."""
    spec = FGT_SPECS.get(register)
    if spec is not None and spec.all_negative:
        return NEG
    return NEG if _N_PREFIX.match(field_name) else POS


@dataclass(frozen=True, slots=True)
class SrFgtEntry:
    sysreg: str  # first argument as written (SYS_PMICNTR_EL0, OP_AT_S1E1A, ...)
    group: str  # second argument (HDFGRTR2, HFGxTR, ...)
    field: str
    pol: int  # 1 positive, 0 negative
    line: int


def parse_sr_fgt(text: str) -> list[SrFgtEntry]:
    """Every SR_FGT(...) use in emulate-nested.c text (the macro's own #define is skipped)."""
    out: list[SrFgtEntry] = []
    for m in SR_FGT_RE.finditer(text):
        line_start = text.rfind("\n", 0, m.start()) + 1
        if text[line_start:m.start()].lstrip().startswith("#define"):
            continue
        line = text.count("\n", 0, m.start()) + 1
        out.append(SrFgtEntry(m.group(1), m.group(2), m.group(3), int(m.group(4)), line))
    return out


@dataclass(slots=True)
class FgtRegister:
    """An FGT register with its layout and per-field polarity."""

    name: str
    group: str
    access: str
    pair: str | None
    feature: str
    capability: str
    res0: int  # RES0 bits per the sysreg description
    fields: dict[str, tuple[int, int]]  # field -> (msb, lsb)
    polarity: dict[str, str]  # field -> pos | neg
    polarity_source: str  # "SR_FGT" | "n-prefix" | "SR_FGT+n-prefix"

    @property
    def mask(self) -> int:
        """Positive-polarity bits (KVM's fgt_masks.mask)."""
        return self._bits(POS)

    @property
    def nmask(self) -> int:
        """Negative-polarity bits (KVM's fgt_masks.nmask)."""
        return self._bits(NEG)

    def _bits(self, pol: str) -> int:
        out = 0
        for name, p in self.polarity.items():
            if p == pol and name in self.fields:
                msb, lsb = self.fields[name]
                out |= ((1 << (msb - lsb + 1)) - 1) << lsb
        return out

    def field_at(self, bit: int) -> str | None:
        return next((n for n, (msb, lsb) in self.fields.items() if lsb <= bit <= msb), None)


def build_fgt(registers: Mapping[str, Register], sr_fgt: Iterable[SrFgtEntry] | None = None,
              layouts: Mapping[str, Register] | None = None) -> dict[str, FgtRegister]:
    """FGT registers present in `registers`, with polarity from `sr_fgt` where given, else by name."""
    out: dict[str, FgtRegister] = {}
    for spec in _SPECS:
        reg = registers.get(spec.name)
        if reg is None:
            continue
        out[spec.name] = FgtRegister(
            spec.name, spec.group, spec.access, spec.pair, spec.feature, spec.capability, reg.res0,
            {f.name: (f.msb, f.lsb) for f in reg.fields}, {}, "n-prefix")
    table = list(sr_fgt or ())
    used_table = False
    for e in table:
        targets = GROUP_ARG_REGISTERS.get(e.group, ())
        where = registers.get(e.group + "_EL2") or (layouts or {}).get(e.group + "_EL2")
        f = where.field(e.field) if where is not None else None
        for name in targets:
            fr = out.get(name)
            if fr is None:
                continue
            # Like aggregate_fgt(): the entry's bit gets its polarity in every register of the group.
            hit = fr.field_at(f.lsb) if f is not None else (e.field if e.field in fr.fields else None)
            if hit is not None:
                fr.polarity[hit] = POS if e.pol else NEG
                used_table = True
    for fr in out.values():
        missing = [n for n in fr.fields if n not in fr.polarity]
        for n in missing:
            fr.polarity[n] = name_polarity(fr.name, n)
        if used_table:
            fr.polarity_source = "SR_FGT+n-prefix" if missing and len(missing) < len(fr.fields) else (
                "SR_FGT" if not missing else "n-prefix")
    return out


# -- names a patch uses for FGT values (hunk-only reasoning: what is written, not where) -----------

# Older spellings of one FGT layout shared by two registers: `HFGxTR_EL2_nGCS_EL1[_MASK]` (2023-24
# trees, `SysregFields HFGxTR_EL2`) is the HFGRTR_EL2 layout, used for HFGRTR_EL2 and HFGWTR_EL2.
LEGACY_LAYOUTS: dict[str, str] = {"HFGxTR_EL2": "HFGRTR_EL2"}
# Whole-register masks KVM builds a value from: `__HFGRTR_EL2_nMASK` (kvm_arm.h, 6.7-6.15),
# `__HFGRTR_EL2_MASK`, `<REG>_RES0`.
_WHOLE_MASK = lazy_re(r"^(?:__)?(\w+?_EL2)_(nMASK|MASK|RES0|RES1)$")


def legacy_spelling(c_name: str) -> tuple[str, str] | None:
    """(legacy prefix, the same constant in its layout register's spelling) for an old name:
    `HFGxTR_EL2_nGCS_EL1_MASK` -> ("HFGxTR_EL2", "HFGRTR_EL2_nGCS_EL1_MASK"); else None."""
    for old, new in LEGACY_LAYOUTS.items():
        if c_name.startswith(old + "_") and len(c_name) > len(old) + 1:
            return old, new + c_name[len(old):]
    return None


def whole_register_mask(c_name: str) -> tuple[str, str] | None:
    """(FGT register, nMASK|MASK|RES0|RES1) for a whole-register mask name, else None."""
    m = _WHOLE_MASK.match(c_name)
    if m is None:
        return None
    reg = LEGACY_LAYOUTS.get(m.group(1), m.group(1))
    return (reg, m.group(2)) if reg in FGT_SPECS else None


# Features whose FGT bits do not carry the feature's name (a gate on the feature untraps these).
# Only features whose registers KVM hands to the guest once it has them: not the PMU, SPE or
# trace, which KVM emulates or context-switches by trapping.
FEATURE_FIELDS: dict[str, tuple[str, ...]] = {
    "SME": ("TPIDR2", "SMPRI", "SMCR", "SVCR"),
    "S1PIE": ("PIR",),
    "S1POE": ("POR",),
    "S2POE": ("S2POR",),
    "THE": ("RCWMASK", "RCWSMASK"),
    "LS64": ("ACCDATA",),
    "AIE": ("AMAIR2", "MAIR2"),
    "BRBE": ("BRB",),
    "GCS": ("GCS",),
    "MTE": ("TCO", "GCR", "RGSR", "TFSR"),
}


def feature_covers(feature: str, field_name: str) -> bool:
    """Whether a feature check on `feature` (an ID register field or capability name: GCS,
    PMICNTR, HAS_SME...) is about the register that FGT field `field_name` traps."""
    f = feature.upper().removeprefix("ARM64_").removeprefix("HAS_").removeprefix("FEAT_")
    if len(f) < 2 or f in ("IMP", "FGT", "FGT2", "NV", "EL1", "EL0", "EL2", "VHE"):
        return False
    target = (field_name[1:] if _N_PREFIX.match(field_name) else field_name).upper()
    if f in target:
        return True
    return any(target.startswith(p) for p in FEATURE_FIELDS.get(f, ()))
