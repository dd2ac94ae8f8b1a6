"""Coarse trap bits of HCR_EL2, HCRX_EL2, MDCR_EL2, CPTR_EL2, CNTHCTL_EL2 and their class (§1.5).

A coarse_trap_bits[] entry forwards an access to the guest hypervisor when
(L1's register & mask) == value. For a *trap* bit (trap when 1: TID3, TPMCR, TDA) value must equal
mask; for an *enable* bit (trap when 0: HCRX_EL2 *En bits, HCR_EL2.APK/API/ATA/FIEN) value must be 0.
The class comes from the name (DOMAIN-PACK2.md rule 23) with a curated table for names that mislead
(data/pack2-wiring.json "trap_classes"). Single-bitness comes from the sysreg file (`ctx.kb`) or the
`#define X (UL(1) << n)` lines of asm/kvm_arm.h (base tree, else the bundled generated table).
"""

from __future__ import annotations

from pmureview.lazyre import lazy_re

KVM_ARM_PATH = "arch/arm64/include/asm/kvm_arm.h"
TRAP, ENABLE = "trap", "enable"

# .index value -> the register and the C prefixes its bit constants use
INDEX_PREFIXES: dict[str, tuple[str, tuple[str, ...]]] = {
    "HCR_EL2": ("HCR_EL2", ("HCR_EL2_", "HCR_")),
    "HCRX_EL2": ("HCRX_EL2", ("HCRX_EL2_",)),
    "MDCR_EL2": ("MDCR_EL2", ("MDCR_EL2_",)),
    "CPTR_EL2": ("CPTR_EL2", ("CPTR_EL2_", "CPACR_ELx_", "CPACR_EL1_", "CPACR_EL2_")),
    "CNTHCTL_EL2": ("CNTHCTL_EL2", ("CNTHCTL_EL2_", "CNTHCTL_")),
}

_SINGLE = lazy_re(
    r"^\s*#\s*define\s+(\w+)\s+\(?\s*(?:BIT(?:_ULL)?\s*\(\s*(\w+)\s*\)"
    r"|\(?\s*(?:UL|ULL|_BITUL)?\(?\s*1\s*(?:[uU][lL]{0,2}|[lL]{1,2})?\s*\)?\s*<<\s*\(?\s*(\w+)\s*\)?\s*\)?)\s*\)?\s*(?:/[*/].*)?$")
_ENABLE_NAME = lazy_re(r"(?:En|^EN)(?=[A-Z0-9]|$)|EN$")
_TRAP_NAME = lazy_re(r"^T[A-Z0-9]")


def single_bit_defines(text: str | None) -> set[str]:
    """Names #defined as one bit (`(UL(1) << 18)`, `BIT(5)`, `(1 << X_SHIFT)`) in a header."""
    out: set[str] = set()
    for line in (text or "").split("\n"):
        m = _SINGLE.match(line)
        if m:
            out.add(m.group(1))
    return out


def name_class(field: str, curated: dict[str, str]) -> str | None:
    """trap | enable | None (neither, both, or curated as a routing/mode bit)."""
    if field in curated:
        c = curated[field]
        return c if c in (TRAP, ENABLE) else None
    enable = bool(_ENABLE_NAME.search(field))
    trap = bool(_TRAP_NAME.match(field))
    if enable == trap:  # neither, or both (TWEDEn): no judgement
        return None
    return ENABLE if enable else TRAP


def split_constant(index: str, const: str) -> str | None:
    """The field name of `const` for the register `.index` names, or None when it is not one of its bits."""
    spec = INDEX_PREFIXES.get(index)
    if spec is None:
        return None
    for prefix in spec[1]:
        if const.startswith(prefix) and len(const) > len(prefix):
            return const[len(prefix):]
    return None
