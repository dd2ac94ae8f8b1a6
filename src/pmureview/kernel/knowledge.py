"""The kernel knowledge rules consult (`ctx.kb`): sysreg layouts, FGT polarity, guards, implications.

One Knowledge object per run. `load_knowledge(reader)` builds it from the base tree when a reader is
given (arch/arm64/tools/sysreg, arch/arm64/kvm/emulate-nested.c, arch/arm64/kvm/config.c, the hyp
switch.h and cpufeature.h), falling back per fact to the bundled snapshot (kernel/data/snapshot.json)
when a file is missing; without a reader it is the snapshot alone. A rule whose facts are missing
gets None / empty answers and stays silent.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from ..record import dataclass
from . import guards as _guards
from .fgt import FGT_SPECS, NEG, POS, FgtRegister, build_fgt, parse_sr_fgt
from .sysreg import Field, Register, parse_sysreg

if TYPE_CHECKING:
    from tree_sitter import Node

Reader = Callable[[str], "str | None"]
Guard = _guards.Guard

SYSREG_PATH = "arch/arm64/tools/sysreg"
EMULATE_NESTED_PATH = "arch/arm64/kvm/emulate-nested.c"
CONFIG_PATH = "arch/arm64/kvm/config.c"
# Extra files for guards and capability predicates: the hyp activate path and system_supports_*().
GUARD_PATHS = (CONFIG_PATH, "arch/arm64/kvm/hyp/include/hyp/switch.h")
PREDICATE_PATHS = ("arch/arm64/include/asm/cpufeature.h",)
_SNAPSHOT = os.path.join(os.path.dirname(__file__), "data", "snapshot.json")  # str: no pathlib on the hook path


def __getattr__(name: str) -> Any:
    if name == "SNAPSHOT_PATH":  # the bundled snapshot, as a Path (kb build, tests)
        from pathlib import Path

        return Path(_SNAPSHOT)
    raise AttributeError(name)


# the curated guard table describes config.c as KVM has had it since v6.18 (DOMAIN.md §2); dated so
# that kernel/dating.py can weigh it (docs/knowledge.md)
CURATED_GUARDS_PROVENANCE = {"source": "curated: DOMAIN.md §2.3, §2.5", "kernel_version": "v6.18",
                             "release_date": "2025-11-30"}
SNAPSHOT_FORMAT = 1


@dataclass(frozen=True, slots=True)
class ConstRef:
    """What a generated sysreg C name stands for.

    kind: field (`R_F`, the mask), mask (`R_F_MASK`), shift, width, signed, enum (`R_F_VAL`),
    res0/res1/unkn (`R_RES0`...), encoding (`SYS_R`), op0/op1/crn/crm/op2. `mask` is the field's
    mask for field-level kinds, the range for res0/res1/unkn and 0 otherwise; `value` is the
    constant's own value where it is not a mask (shift, width, enum value, encoding).
    """

    name: str
    register: str
    field: str | None
    mask: int
    kind: str
    value: int | None = None


class Knowledge:
    """Kernel facts for one run. Build with load_knowledge(); the attributes below are the API."""

    def __init__(self, *, source: str, provenance: dict[str, Any],
                 registers: Mapping[str, Register] | None = None,
                 raw_registers: Mapping[str, dict[str, Any]] | None = None,
                 fgt: Mapping[str, FgtRegister] | None = None,
                 guards: Mapping[str, list[Guard]] | None = None,
                 implications: Iterable[tuple[str, str, str, str]] = _guards.IMPLICATIONS,
                 cap_predicates: Mapping[str, set[str]] | None = None) -> None:
        self.source: str = source  #: "tree" (some fact from the base tree) or "snapshot"
        self.provenance: dict[str, Any] = provenance  #: fact kind -> where it came from
        self._regs: dict[str, Register] = dict(registers or {})
        self._raw: dict[str, dict[str, Any]] = dict(raw_registers or {})  # built lazily (load speed)
        self._index: dict[str, dict[str, tuple[str, str | None, int]]] = {}
        self.fgt_registers: dict[str, FgtRegister] = dict(fgt or {})  #: FGT registers with a layout
        self.guards: dict[str, list[Guard]] = {k: list(v) for k, v in (guards or {}).items()}
        self.implications: tuple[tuple[str, str, str, str], ...] = tuple(implications)
        self.cap_predicates: dict[str, set[str]] = {k: set(v) for k, v in (cap_predicates or {}).items()}

    # -- registers -------------------------------------------------------------------------------
    def register(self, name: str) -> Register | None:
        """Any known sysreg (or SysregFields layout) by name; None when unknown."""
        reg = self._regs.get(name)
        if reg is None and name in self._raw:
            reg = self._regs[name] = _register_from_json(name, self._raw[name])
        return reg

    def register_names(self) -> list[str]:
        return sorted(set(self._regs) | set(self._raw))

    def fgt_register(self, name: str) -> FgtRegister | None:
        """The FGT model of `name` (HDFGRTR_EL2, ...) when its layout is known."""
        return self.fgt_registers.get(name)

    def is_fgt_register(self, name: str) -> bool:
        """True for every FGT register name, even one whose layout this knowledge lacks (ICH_*)."""
        return name in FGT_SPECS

    def fgt_group(self, name: str) -> str | None:
        spec = FGT_SPECS.get(name)
        return spec.group if spec else None

    def resolve_constant(self, c_name: str) -> ConstRef | None:
        """Resolve a generated C name: "HDFGRTR_EL2_PMCEIDn_EL0" -> (HDFGRTR_EL2, PMCEIDn_EL0, 1<<58)."""
        if c_name.startswith("SYS_"):
            reg = self.register(c_name[4:])
            if reg is not None and reg.encoding is not None:
                kind, fld, value = reg.c_names()[c_name]
                return ConstRef(c_name, reg.name, None, 0, kind, value)
        # Longest register-name prefix first: ID_AA64DFR0_EL1_PMUVer_IMP -> ID_AA64DFR0_EL1.
        cut = len(c_name)
        while (cut := c_name.rfind("_", 0, cut)) > 0:
            prefix = c_name[:cut]
            if self.register(prefix) is None:
                continue
            hit = self._names(prefix).get(c_name)
            if hit is None:
                continue
            kind, fld, value = hit
            reg = self.register(prefix)
            assert reg is not None
            if fld is not None:
                f = reg.field(fld)
                mask = f.mask if f is not None else 0
            else:
                mask = value if kind in ("res0", "res1", "unkn") else 0
            keep = None if kind in ("field", "mask", "res0", "res1", "unkn") else value
            return ConstRef(c_name, prefix, fld, mask, kind, keep)
        return None

    def _names(self, name: str) -> dict[str, tuple[str, str | None, int]]:
        idx = self._index.get(name)
        if idx is None:
            reg = self.register(name)
            idx = self._index[name] = reg.c_names() if reg is not None else {}
        return idx

    def res0_mask(self, register: str) -> int:
        """RES0 bits of `register` (0 when the register is unknown: check register() first)."""
        reg = self.register(register)
        return reg.res0 if reg is not None else 0

    def is_res0(self, register: str, mask: int) -> bool:
        """True when `mask` is non-zero and every bit of it is RES0 in `register`."""
        reg = self.register(register)
        return reg is not None and mask != 0 and mask & ~reg.res0 == 0

    def field_at(self, register: str, bit: int) -> str | None:
        """Name of the field of `register` holding `bit`, None for RES0/unknown."""
        reg = self.register(register)
        f = reg.field_at(bit) if reg is not None else None
        return f.name if f is not None else None

    # -- FGT -------------------------------------------------------------------------------------
    def polarity(self, register: str, field: str) -> str | None:
        """"pos" (1 => trap) or "neg" (0 => trap) for an FGT field; None when not an FGT field."""
        fr = self.fgt_registers.get(register)
        return fr.polarity.get(field) if fr is not None else None

    def pair(self, register: str) -> str | None:
        """The read/write twin of an FGT register (HDFGRTR_EL2 <-> HDFGWTR_EL2), else None."""
        spec = FGT_SPECS.get(register)
        return spec.pair if spec else None

    # -- capabilities ----------------------------------------------------------------------------
    def guarded_caps(self, function: str, line: int | None = None) -> set[str]:
        """Capabilities `function` guarantees: anywhere in it (line None) or at `line` (known lines)."""
        out: set[str] = set()
        for g in self.guards.get(function, ()):
            if line is None or g.holds_at(line):
                out.add(g.capability)
        return out

    def implies(self, cap_a: str, cap_b: str) -> bool:
        """True when cap_a architecturally implies cap_b (ARM64_HAS_FGT2 -> ARM64_HAS_FGT...)."""
        return _guards.implies(cap_a, cap_b, self.implications)

    def capabilities_checked(self, expr: str | Node) -> set[str]:
        """Capabilities an expression tests, directly or through a known predicate."""
        return _guards.capabilities_checked(expr, self.cap_predicates)

    def guards_in(self, c_text: str) -> dict[str, list[Guard]]:
        """Guards of the functions in some C text (e.g. a post-image), with real line numbers."""
        return _guards.scan_c(c_text, "text", self.cap_predicates)[0]

    # -- snapshot --------------------------------------------------------------------------------
    def to_snapshot(self, registers: Iterable[str] | None = None) -> dict[str, Any]:
        """The JSON-able snapshot of this knowledge (optionally limited to some registers)."""
        names = set(self.register_names() if registers is None else registers)
        for name in list(names):  # keep what the kept registers refer to
            reg = self.register(name)
            if reg is not None:
                names.update(x for x in (reg.fields_from, reg.mapping) if x)
        regs = {n: _register_to_json(r) for n in sorted(names) if (r := self.register(n)) is not None}
        fgt = {n: {"src": "polarity", "polarity_source": fr.polarity_source,
                   "neg": sorted(k for k, v in fr.polarity.items() if v == NEG)}
               for n, fr in self.fgt_registers.items()}
        return {
            "format": SNAPSHOT_FORMAT,
            "provenance": self.provenance,
            "registers": regs,
            "fgt": fgt,
            "guards": {k: [g.to_json() for g in v] for k, v in sorted(self.guards.items())},
            "implications": [{"from": a, "to": b, "why": w, "source": s} for a, b, w, s in self.implications],
            "cap_predicates": {k: sorted(v) for k, v in sorted(self.cap_predicates.items())},
        }

    @classmethod
    def from_snapshot(cls, data: Mapping[str, Any], source: str = "snapshot") -> Knowledge:
        raw = data.get("registers", {})
        kb = cls(source=source, provenance=dict(data.get("provenance", {})), raw_registers=raw,
                 guards={k: [Guard(**g) for g in v] for k, v in data.get("guards", {}).items()},
                 implications=[(i["from"], i["to"], i.get("why", ""), i.get("source", ""))
                               for i in data.get("implications", ())] or _guards.IMPLICATIONS,
                 cap_predicates={k: set(v) for k, v in data.get("cap_predicates", {}).items()})
        for name, entry in data.get("fgt", {}).items():
            spec = FGT_SPECS.get(name)
            r = raw.get(name)
            if spec is None or r is None:
                continue
            neg = set(entry.get("neg", ()))
            fields = {f[0]: (f[1], f[2]) for f in r.get("fields", ())}
            kb.fgt_registers[name] = FgtRegister(
                name, spec.group, spec.access, spec.pair, spec.feature, spec.capability,
                int(r.get("res0", "0"), 16), fields, {f: NEG if f in neg else POS for f in fields},
                entry.get("polarity_source", "snapshot"))
        return kb


# -- (de)serialising registers -------------------------------------------------------------------
def _register_to_json(reg: Register) -> dict[str, Any]:
    # "src" names the provenance entry the facts come from.
    out: dict[str, Any] = {"src": "sysreg", "enc": list(reg.encoding) if reg.encoding else None}
    for attr in ("res0", "res1", "unkn", "raz"):
        if getattr(reg, attr):
            out[attr] = hex(getattr(reg, attr))
    out["fields"] = [[f.name, f.msb, f.lsb]
                     + ([f.kind, [list(e) for e in f.enums]] if f.kind != "field" else [])
                     for f in reg.fields]
    if reg.fields_from:
        out["fields_from"] = reg.fields_from
    if reg.mapping:
        out["mapping"] = reg.mapping
    return out


def _register_from_json(name: str, d: Mapping[str, Any]) -> Register:
    fields = [Field(f[0], f[1], f[2], f[3], tuple((e[0], e[1]) for e in f[4])) if len(f) > 3
              else Field(f[0], f[1], f[2]) for f in d.get("fields", ())]
    enc = tuple(d["enc"]) if d.get("enc") else None
    return Register(name, enc, fields, int(d.get("res0", "0"), 16), int(d.get("res1", "0"), 16),  # type: ignore[arg-type]
                    int(d.get("unkn", "0"), 16), int(d.get("raz", "0"), 16), d.get("fields_from"),
                    d.get("mapping"))


# -- loading -------------------------------------------------------------------------------------
@lru_cache(maxsize=1)
def _snapshot_data() -> dict[str, Any]:
    with open(_SNAPSHOT, encoding="utf-8") as f:
        import json  # here: the hook path imports json only when it reads a data file
        return json.loads(f.read())


def snapshot_knowledge() -> Knowledge:
    """A fresh Knowledge from the bundled snapshot (the JSON is read once per process)."""
    return Knowledge.from_snapshot(_snapshot_data())


def _safe_read(reader: Reader, path: str) -> str | None:
    try:
        return reader(path)
    except (OSError, UnicodeError, LookupError, ValueError):
        return None


def build_from_reader(reader: Reader, fallback: Knowledge | None) -> Knowledge:
    """Knowledge from a tree; each fact the tree lacks comes from `fallback` (or is curated/empty)."""
    texts = {p: _safe_read(reader, p) for p in (SYSREG_PATH, EMULATE_NESTED_PATH, *GUARD_PATHS,
                                                 *PREDICATE_PATHS)}
    prov: dict[str, Any] = {}
    used_tree = False

    sysreg_text = texts[SYSREG_PATH]
    parsed = parse_sysreg(sysreg_text) if sysreg_text is not None else None
    if parsed is not None and parsed.registers:
        used_tree = True
        regs: dict[str, Register] = {**parsed.layouts, **parsed.registers}
        prov["sysreg"] = {"source": "tree", "files": [SYSREG_PATH],
                          "registers_in_tree": len(parsed.registers), "skipped_lines": len(parsed.problems)}
        raw: dict[str, dict[str, Any]] = {}
    else:
        regs, raw = {}, {}
        if fallback is not None:
            raw = {n: fallback._raw[n] for n in fallback._raw}
            regs = dict(fallback._regs)
            prov["sysreg"] = fallback.provenance.get("sysreg", {"source": "snapshot"})

    en_text = texts[EMULATE_NESTED_PATH]
    table = parse_sr_fgt(en_text) if en_text is not None else []
    if parsed is not None and parsed.registers:
        fgt = build_fgt(parsed.registers, table, parsed.layouts)
    elif fallback is not None and not table:
        fgt = dict(fallback.fgt_registers)
    else:  # the tree has the SR_FGT table but not the sysreg: apply it to the fallback layouts
        tmp = Knowledge(source="", provenance={}, registers=regs, raw_registers=raw)
        layouts = {n: r for n in FGT_SPECS if (r := tmp.register(n)) is not None}
        fgt = build_fgt(layouts, table)
    if table:
        used_tree = True
        prov["polarity"] = {"source": "tree", "method": "SR_FGT table, n-prefix rule for fields it lacks",
                            "files": [EMULATE_NESTED_PATH], "sr_fgt_entries": len(table)}
    elif parsed is not None and parsed.registers:
        prov["polarity"] = {"source": "tree", "method": "n-prefix rule (no SR_FGT table in the tree)",
                            "files": [SYSREG_PATH]}
    elif fallback is not None:
        prov["polarity"] = fallback.provenance.get("polarity", {"source": "snapshot"})

    preds: dict[str, set[str]] = dict(fallback.cap_predicates) if fallback is not None else {}
    guards: dict[str, list[Guard]] = (dict(fallback.guards) if fallback is not None
                                      else {k: list(v) for k, v in _guards.FALLBACK_GUARDS.items()})
    read_guards = []
    for path in (*PREDICATE_PATHS, *GUARD_PATHS):  # predicates first: guards may call them
        text = texts[path]
        if text is None:
            continue
        found, found_preds = _guards.scan_c(text, f"tree: {path}", preds)
        preds.update(found_preds)
        if path in GUARD_PATHS:
            guards.update(found)  # the tree's own functions override the bundled table
        read_guards.append(path)
    if read_guards:
        used_tree = True
        prov["guards"] = {"source": "tree + curated fallback for functions not found", "files": read_guards}
    else:
        prov["guards"] = (fallback.provenance.get("guards") if fallback is not None else None) or dict(
            CURATED_GUARDS_PROVENANCE)
    prov["implications"] = {"source": "curated: DOMAIN.md §2.5"}

    return Knowledge(source="tree" if used_tree else "snapshot", provenance=prov, registers=regs,
                     raw_registers=raw, fgt=fgt, guards=guards,
                     implications=fallback.implications if fallback is not None else _guards.IMPLICATIONS,
                     cap_predicates=preds)


_TREE_CACHE: dict[str, Knowledge] = {}


def load_knowledge(base_reader: Reader | None = None) -> Knowledge:
    """The knowledge for a run: from the base tree via `base_reader` (a path relative to the tree
    root -> text, or None when missing), each missing fact from the bundled snapshot; without a
    reader, the bundled snapshot. Cached per process (per distinct set of input texts)."""
    if base_reader is None:
        return _snapshot_cached()
    texts = [_safe_read(base_reader, p) for p in (SYSREG_PATH, EMULATE_NESTED_PATH, *GUARD_PATHS,
                                                   *PREDICATE_PATHS)]
    if all(t is None for t in texts):
        return _snapshot_cached()
    from ..cachefile import content_key  # by content, as every content cache (no hashlib on the hook path)

    key = content_key("\0".join(t if t is not None else "\1" for t in texts))
    kb = _TREE_CACHE.get(key)
    if kb is None:
        kb = _TREE_CACHE[key] = _tree_knowledge(key, texts)
    return kb


def _tree_knowledge(key: str, texts: list[str | None]) -> Knowledge:
    """build_from_reader(), kept on disk by the content of the files it reads and the code that
    reads them: ~30 ms a build (the sysreg file, guards parsed with tree-sitter), asked again by
    every hook process of a series in a kernel tree."""
    import pickle

    from ..cachefile import content_cache_file, write_content

    path = content_cache_file("knowledge", f"{key}-{_code_stamp()}")
    try:
        with open(path, "rb") as f:
            kb = pickle.load(f)
        if isinstance(kb, Knowledge):
            return kb
    except Exception:  # missing, truncated or from other code: build it again
        pass
    cache = dict(zip((SYSREG_PATH, EMULATE_NESTED_PATH, *GUARD_PATHS, *PREDICATE_PATHS), texts, strict=True))
    kb = build_from_reader(cache.get, _snapshot_cached())
    import contextlib

    with contextlib.suppress(pickle.PicklingError, TypeError, AttributeError):  # an unpicklable fact
        write_content(path, pickle.dumps(kb, protocol=pickle.HIGHEST_PROTOCOL))
    return kb


def _code_stamp() -> str:
    """The kernel/ modules and the bundled facts they fall back on: a cached Knowledge built by
    other code is never read back."""
    import os

    from ..cachefile import code_stamp

    here = os.path.dirname(os.path.abspath(__file__))
    return code_stamp(os.path.join(folder, name) for folder in (here, os.path.join(here, "data"))
                      for name in sorted(os.listdir(folder)) if name.endswith((".py", ".json")))


@lru_cache(maxsize=1)
def _snapshot_cached() -> Knowledge:
    return snapshot_knowledge()
