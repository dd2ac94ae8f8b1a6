"""Where a new guest system register must be wired in (DOMAIN-PACK2.md §1.1, §1.4, §1.5), plus the
small tables the second pack's wiring/trap/log rules share.

Touch points for a register R that gets guest storage:
  - `enum vcpu_sysreg` in asm/kvm_host.h: a plain entry, or `VNCR(R)` when the architecture puts R
    in the VNCR page (then `VNCR_R` must exist in asm/vncr_mapping.h);
  - `sys_reg_descs[]` in sys_regs.c (trap handler, reset, storage, visibility);
  - hyp/include/hyp/sysreg-sr.h save/restore;
  - emulate-nested.c: `SR_FGT(SYS_R, group, field, pol)` when R has a fine-grained trap field, and
    `SR_TRAP(SYS_R, CGT_...)` when a coarse trap covers it (NV forwarding);
  - the FGU: R's FGT field trapped to UNDEF for VMs without the feature (`fgu[G] |= ...` under
    `!kvm_has_feat()` in 2024 trees, `NEEDS_FEAT(...)` feature-map entries later).

Facts are read from the base tree when `--tree` is given (reader), per file, else from the bundled
data/pack2-wiring.json (each table with its "source"). `generate(reader)` rebuilds that file from a
kernel tree. Loaded facts are cached per process, keyed on the text hashes.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from functools import cache
from typing import Any

from pmureview.lazyre import lazy_re

from ..record import dataclass, field
from .fgt import parse_sr_fgt
from .traps import KVM_ARM_PATH, single_bit_defines
from .vncr import VNCR_MAPPING_PATH, offsets

Reader = Callable[[str], "str | None"]

KVM_HOST_PATH = "arch/arm64/include/asm/kvm_host.h"
EMULATE_NESTED_PATH = "arch/arm64/kvm/emulate-nested.c"
SYS_REGS_PATH = "arch/arm64/kvm/sys_regs.c"
CONFIG_PATH = "arch/arm64/kvm/config.c"
NESTED_PATH = "arch/arm64/kvm/nested.c"
SYSREG_SR_PATH = "arch/arm64/kvm/hyp/include/hyp/sysreg-sr.h"
HANDLE_EXIT_PATH = "arch/arm64/kvm/handle_exit.c"
_DATA_PATH = os.path.join(os.path.dirname(__file__), "data", "pack2-wiring.json")  # str: no pathlib on the hook path


def __getattr__(name: str) -> Any:
    if name == "DATA_PATH":  # as a Path (tests, tools)
        from pathlib import Path

        return Path(_DATA_PATH)
    raise AttributeError(name)

# Files where KVM computes FGU bits (and, before feature maps, per-feature RES0 bits).
FGU_PATHS = (SYS_REGS_PATH, CONFIG_PATH, NESTED_PATH)

_ENUM_VNCR = lazy_re(r"^\s*VNCR\(\s*(\w+)\s*\)\s*,")
_ENUM_PLAIN = lazy_re(r"^\s*([A-Z][A-Z0-9_]*_EL[0-2])\s*,\s*(?:/[*/].*)?$")
_SR_TRAP = lazy_re(r"SR_(?:RANGE_)?TRAP\s*\(\s*(SYS_\w+)\s*,\s*(?:SYS_\w+\s*,\s*)?(CGT_\w+)\s*\)")
_EXIT_ENTRY = lazy_re(r"^\s*\[[^\]]+\]\s*=\s*(\w+)\s*,")


@dataclass(frozen=True, slots=True)
class EnumEntry:
    name: str
    vncr: bool
    line: int


def parse_vcpu_sysreg(text: str, *, whole_enum: bool = True) -> list[EnumEntry]:
    """Entries of `enum vcpu_sysreg`. With whole_enum=False (hunk-only text, where the enum header may
    be unknown) every line of the file that looks like one (`VNCR(R),` or `R_ELn,`) counts."""
    lines = text.split("\n")
    start, end = 0, len(lines)
    if whole_enum:
        start = next((i for i, ln in enumerate(lines) if re.match(r"\s*enum\s+vcpu_sysreg\b", ln)), -1)
        if start < 0:
            return []
        end = next((i for i in range(start, len(lines)) if re.match(r"\s*}\s*;", lines[i])), len(lines))
    out = []
    for i in range(start, end):
        ln = lines[i]
        if m := _ENUM_VNCR.match(ln):
            out.append(EnumEntry(m.group(1), True, i + 1))
        elif m := _ENUM_PLAIN.match(ln):
            out.append(EnumEntry(m.group(1), False, i + 1))
    return out


def parse_sr_trap(text: str) -> dict[str, str]:
    """SYS_<R> -> coarse group, from SR_TRAP()/SR_RANGE_TRAP() entries of encoding_to_cgt[]."""
    out: dict[str, str] = {}
    for m in _SR_TRAP.finditer(text):
        line_start = text.rfind("\n", 0, m.start()) + 1
        if not text[line_start:m.start()].lstrip().startswith("#define"):
            out.setdefault(m.group(1), m.group(2))
    return out


def parse_exit_handlers(text: str) -> set[str]:
    """Functions named in `arm_exit_handlers[]` (handle_exit.c)."""
    m = re.search(r"arm_exit_handlers\s*\[\s*\]\s*=\s*\{(.*?)\n\s*}\s*;", text, re.S)
    if not m:
        return set()
    return {e.group(1) for ln in m.group(1).split("\n") if (e := _EXIT_ENTRY.match(ln))}


@dataclass
class WiringFacts:
    """What the base (or the bundled snapshot) says; every table may be empty = unknown."""

    source: str  # "tree" | "snapshot" | "none"
    vncr: dict[str, int] = field(default_factory=dict)  # VNCR_<R> offsets
    sr_fgt: dict[str, tuple[str, str, int]] = field(default_factory=dict)  # SYS_R -> (group, field, pol)
    sr_trap: dict[str, str] = field(default_factory=dict)  # SYS_R -> CGT_*
    enum: dict[str, bool] = field(default_factory=dict)  # vcpu_sysreg name -> is VNCR()
    has_encoding_to_fgt: bool | None = None
    has_fgu: bool | None = None
    single_bits: set[str] = field(default_factory=set)  # kvm_arm.h one-bit defines
    trap_classes: dict[str, str] = field(default_factory=dict)  # curated field -> trap|enable|neither
    exit_handlers: set[str] = field(default_factory=set)
    guest_entry_points: set[str] = field(default_factory=set)  # curated (§1.6)
    guest_entry_patterns: tuple[str, ...] = ()  # regexes over function names (vGIC MMIO/ITS)
    ratelimited_logs: set[str] = field(default_factory=set)
    plain_logs: set[str] = field(default_factory=set)


def _h(text: str | None) -> str:
    from ..cachefile import content_key  # zlib: hashlib is ~4 ms of a hook run's imports

    return content_key(text or "")


@cache
def _data() -> dict[str, Any]:
    try:
        with open(_DATA_PATH, encoding="utf-8") as f:
            import json  # here: the hook path imports json only when it reads a data file
            return json.loads(f.read())
    except (OSError, ValueError):
        return {}


def _table(name: str) -> Any:
    t = _data().get(name)
    return t.get("data") if isinstance(t, dict) else None


def snapshot_facts() -> WiringFacts:
    return _snapshot_cached()


@cache
def _snapshot_cached() -> WiringFacts:
    d = _data()
    if not d:
        return WiringFacts("none")
    return WiringFacts(
        "snapshot",
        vncr={k: int(v, 0) if isinstance(v, str) else int(v) for k, v in (_table("vncr") or {}).items()},
        sr_fgt={k: (v[0], v[1], int(v[2])) for k, v in (_table("sr_fgt") or {}).items()},
        sr_trap=dict(_table("sr_trap") or {}),
        enum={k: bool(v) for k, v in (_table("vcpu_sysreg") or {}).items()},
        has_encoding_to_fgt=bool(_table("sr_fgt")),
        has_fgu=bool((_table("mechanisms") or {}).get("fgu")),
        single_bits=set(_table("single_bits") or ()),
        trap_classes=dict(_table("trap_classes") or {}),
        exit_handlers=set(_table("exit_handlers") or ()),
        guest_entry_points=set((_table("guest_entry") or {}).get("functions", ())),
        guest_entry_patterns=tuple((_table("guest_entry") or {}).get("patterns", ())),
        ratelimited_logs=set((_table("logging") or {}).get("ratelimited", ())),
        plain_logs=set((_table("logging") or {}).get("plain", ())),
    )


def load_facts(reader: Reader | None) -> WiringFacts:
    """Facts from the base tree (per file, falling back to the snapshot per table), else the snapshot."""
    snap = snapshot_facts()
    if reader is None:
        return snap
    texts = {}
    for p in (VNCR_MAPPING_PATH, EMULATE_NESTED_PATH, KVM_HOST_PATH, KVM_ARM_PATH, HANDLE_EXIT_PATH,
              *FGU_PATHS):
        try:
            texts[p] = reader(p)
        except Exception:  # a broken reader means "no tree facts", never a crash
            texts[p] = None
    key = tuple((p, _h(t) if t is not None else None) for p, t in sorted(texts.items()))
    return _from_texts(key, tuple(sorted(texts.items(), key=lambda kv: kv[0])))


@cache
def _from_texts(key: tuple, items: tuple[tuple[str, str | None], ...]) -> WiringFacts:
    texts = dict(items)
    snap = snapshot_facts()
    got_any = any(t is not None for t in texts.values())
    f = WiringFacts("tree" if got_any else snap.source,
                    trap_classes=snap.trap_classes, guest_entry_points=snap.guest_entry_points,
                    guest_entry_patterns=snap.guest_entry_patterns,
                    ratelimited_logs=snap.ratelimited_logs, plain_logs=snap.plain_logs)
    vn = texts.get(VNCR_MAPPING_PATH)
    f.vncr = offsets(vn) if vn is not None else dict(snap.vncr)
    en = texts.get(EMULATE_NESTED_PATH)
    if en is not None:
        f.sr_fgt = {e.sysreg: (e.group, e.field, e.pol) for e in parse_sr_fgt(en)}
        f.sr_trap = parse_sr_trap(en)
        f.has_encoding_to_fgt = "encoding_to_fgt" in en
    else:
        f.sr_fgt, f.sr_trap, f.has_encoding_to_fgt = dict(snap.sr_fgt), dict(snap.sr_trap), snap.has_encoding_to_fgt
    kh = texts.get(KVM_HOST_PATH)
    f.enum = ({e.name: e.vncr for e in parse_vcpu_sysreg(kh)} if kh is not None else dict(snap.enum))
    ka = texts.get(KVM_ARM_PATH)
    f.single_bits = single_bit_defines(ka) if ka is not None else set(snap.single_bits)
    he = texts.get(HANDLE_EXIT_PATH)
    f.exit_handlers = parse_exit_handlers(he) if he is not None else set(snap.exit_handlers)
    fgu_texts = [texts.get(p) for p in FGU_PATHS]
    if any(t is not None for t in fgu_texts):
        f.has_fgu = any("fgu[" in t or "compute_fgu" in t for t in fgu_texts if t)
    else:
        f.has_fgu = snap.has_fgu
    return f


def fgu_mentions(const: str, texts: list[str]) -> bool:
    """Whether an FGT field constant is trapped to UNDEF somewhere: inside an `fgu[...] |= ...;`
    statement, or a NEEDS_FEAT*() feature-map entry."""
    pat_fgu = lazy_re(r"fgu\s*\[[^;]*?\b" + re.escape(const) + r"\b[^;]*;", re.S)
    pat_map = lazy_re(r"NEEDS_FEAT\w*\s*\([^;{}]*?\b" + re.escape(const) + r"\b")
    return any(pat_fgu.search(t) or pat_map.search(t) for t in texts if t)


# -- regenerating the bundled table from a kernel tree ------------------------------------------

CURATED_TRAP_CLASSES = {
    # DOMAIN-PACK2.md §1.5 / rule 23: enables whose names do not say En, and routing/mode bits.
    "API": "enable", "APK": "enable", "ATA": "enable", "FIEN": "enable", "AMVOFFEN": "enable",
    # enables of a register whose name starts with T (both name patterns match otherwise)
    "TCR2En": "enable", "TTBR2En": "enable",
    "IMO": "neither", "FMO": "neither", "AMO": "neither", "TGE": "neither", "E2H": "neither",
    "NV": "neither", "NV1": "neither", "NV2": "neither", "AT": "neither", "TEA": "neither",
    "TWEDEn": "neither", "TWEDEL": "neither", "EVNTEN": "neither", "EVNTDIR": "neither",
    "EVNTI": "neither", "E2PB": "neither", "E2TB": "neither",
}
GUEST_ENTRY = {
    "functions": ["kvm_handle_guest_abort", "user_mem_abort", "io_mem_abort", "kvm_handle_sys_reg",
                  "handle_hvc", "handle_smc", "kvm_smccc_call_handler", "kvm_psci_call",
                  "kvm_hvc_call_handler", "kvm_handle_mmio_return", "kvm_handle_cp15_32",
                  "kvm_handle_cp15_64", "kvm_handle_cp14_32", "kvm_handle_cp14_64",
                  "kvm_handle_cp14_load_store", "kvm_handle_cp10_id", "kvm_handle_eret",
                  "kvm_handle_wfx", "kvm_handle_guest_debug", "kvm_handle_fpasimd",
                  "kvm_handle_ptrauth", "kvm_handle_unknown_ec", "handle_svc", "handle_sve",
                  "vgic_its_handle_command", "dispatch_mmio_read", "dispatch_mmio_write"],
    "patterns": [r"^vgic_mmio_(read|write|uaccess)_\w+$", r"^vgic_its_cmd_handle_\w+$",
                 r"^vgic_v[23]_(read|write)_\w+$"],
}
LOGGING = {
    "plain": ["kvm_err", "kvm_info", "pr_err", "pr_warn", "pr_warning", "pr_notice", "pr_info",
              "printk", "dev_err", "dev_warn", "dev_info", "pr_emerg", "pr_alert", "pr_crit"],
    "ratelimited": ["kvm_pr_unimpl", "print_sys_reg_msg", "print_sys_reg_instr", "kvm_debug",
                    "pr_debug"],
}


def generate(reader: Reader, tree_label: str) -> dict[str, Any]:
    """The bundled data file, generated from a kernel tree (facts, never source text)."""
    def src(path: str) -> str:
        return f"generated from {path} ({tree_label})"

    en = reader(EMULATE_NESTED_PATH) or ""
    kh = reader(KVM_HOST_PATH) or ""
    fgu_texts = [reader(p) or "" for p in FGU_PATHS]
    curated = "curated: DOMAIN-PACK2.md"
    return {
        "format": 1,
        "vncr": {"source": src(VNCR_MAPPING_PATH),
                 "data": {k: hex(v) for k, v in offsets(reader(VNCR_MAPPING_PATH) or "").items()}},
        "sr_fgt": {"source": src(EMULATE_NESTED_PATH),
                   "data": {e.sysreg: [e.group, e.field, e.pol] for e in parse_sr_fgt(en)}},
        "sr_trap": {"source": src(EMULATE_NESTED_PATH), "data": parse_sr_trap(en)},
        "vcpu_sysreg": {"source": src(KVM_HOST_PATH),
                        "data": {e.name: e.vncr for e in parse_vcpu_sysreg(kh)}},
        "mechanisms": {"source": src(", ".join(FGU_PATHS)),
                       "data": {"fgu": any("fgu[" in t or "compute_fgu" in t for t in fgu_texts)}},
        "single_bits": {"source": src(KVM_ARM_PATH),
                        "data": sorted(single_bit_defines(reader(KVM_ARM_PATH)))},
        "exit_handlers": {"source": src(HANDLE_EXIT_PATH),
                          "data": sorted(parse_exit_handlers(reader(HANDLE_EXIT_PATH) or ""))},
        "trap_classes": {"source": f"{curated} §1.5, rule 23", "data": CURATED_TRAP_CLASSES},
        "guest_entry": {"source": f"{curated} §1.6", "data": GUEST_ENTRY},
        "logging": {"source": f"{curated} §1.6", "data": LOGGING},
    }


if __name__ == "__main__":  # python -m pmureview.kernel.wiring TREE LABEL > data/pack2-wiring.json
    import sys
    from pathlib import Path

    root = Path(sys.argv[1])

    def _read(p: str) -> str | None:
        f = root / p
        return f.read_text("utf-8", "surrogateescape") if f.is_file() else None

    import json
    print(json.dumps(generate(_read, sys.argv[2] if len(sys.argv) > 2 else root.name), indent=1, sort_keys=True))
