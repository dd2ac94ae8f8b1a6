"""kvmarm/sysreg-field-name-clash: a new register field named like an existing field at another position."""

from __future__ import annotations

import re
from collections.abc import Iterator

from pmureview.kernel.dating import SNAPSHOT, trust
from pmureview.kernel.knowledge import snapshot_knowledge
from pmureview.record import dataclass
from pmureview.rule.base import Rule
from pmureview.rule.model import Confidence, Finding, RuleDocs, RuleMeta, Scope, Severity
from pmureview.views.context import FileContext, FileView, SeriesContext

_REG = r"[A-Z][A-Za-z0-9]*(?:_[A-Za-z0-9]+)*?_EL(?:[0-3]|12|02)"
# `#define REG_FIELD_SHIFT 55`
_SHIFT = re.compile(rf"^\s*#\s*define\s+(?P<reg>{_REG})_(?P<field>\w+?)_SHIFT\s+"
                    r"\(?\s*(?P<lsb>\d+)U?L*\s*\)?\s*(?:/[*/].*)?$")
# `#define REG_FIELD[_MASK] BIT(55) | GENMASK(h, l) | (1UL << 55)`
_BITS = re.compile(
    rf"^\s*#\s*define\s+(?P<reg>{_REG})_(?P<field>\w+?)(?:_MASK)?\s+\(?\s*(?:"
    r"(?:BIT|BIT_ULL|_BITUL|_BITULL)\(\s*(?P<bit>\d+)\s*\)|"
    r"GENMASK(?:_ULL)?\(\s*(?P<msb>\d+)\s*,\s*(?P<lsb>\d+)\s*\)|"
    r"(?:1|1U|1UL|1ULL|UL\(1\)|ULL\(1\))\s*<<\s*(?P<shl>\d+))\s*\)?\s*(?:/[*/].*)?$")
# the sysreg description file: `Field 55 NAME` / `Field 7:4 NAME` inside `Sysreg NAME ...`
_SR_BLOCK = re.compile(r"^(?:Sysreg|SysregFields)\s+(\S+)")
_SR_FIELD = re.compile(r"^(?:Field|Enum|UnsignedEnum|SignedEnum)\s+(\d+)(?::(\d+))?\s+(\S+)")
_SR_END = re.compile(r"^End(?:Sysreg|SysregFields)\b")
# reserved-bit masks are not fields
_RESERVED = re.compile(r"(?i)^(?:RES[01]|RAZ|RAO|UNKN|RESERVED)(?:_|$)")


@dataclass(frozen=True, slots=True)
class Def:
    reg: str
    field: str
    lsb: int
    msb: int | None  # None: only the shift is known
    path: str
    line: int

    def where(self) -> str:
        return f"bit {self.lsb}" if self.msb in (None, self.lsb) else f"bits {self.msb}:{self.lsb}"


def _def(m: re.Match[str], path: str, line: int) -> Def | None:
    g = m.groupdict()
    if g.get("bit") is not None:
        lo = hi = int(g["bit"])
    elif g.get("shl") is not None:
        lo = hi = int(g["shl"])
    elif g.get("msb") is not None:
        hi, lo = int(g["msb"]), int(g["lsb"])
    elif g.get("lsb") is not None:
        lo, hi = int(g["lsb"]), None
    else:
        return None
    if lo > 63 or (hi is not None and (hi > 63 or hi < lo)) or _RESERVED.match(g["field"]):
        return None
    return Def(g["reg"], g["field"], lo, hi, path, line)


def _defs_in(view: FileView, lines: list[int]) -> list[Def]:
    out: list[Def] = []
    if view.path.endswith("arch/arm64/tools/sysreg"):
        return _sysreg_defs(view, lines)
    if not view.path.endswith(".h"):
        return out
    for n in lines:
        t = view.line_text(n)
        if "define" not in t:
            continue
        m = _SHIFT.match(t) or _BITS.match(t)
        if m and (d := _def(m, view.path, n)) is not None:
            out.append(d)
    return out


def _sysreg_defs(view: FileView, lines: list[int]) -> list[Def]:
    """Field lines of the sysreg file, with the block they sit in (found among the known lines)."""
    out: list[Def] = []
    want = set(lines)
    reg: str | None = None
    for n in sorted(view.known):
        t = view.line_text(n)
        if m := _SR_BLOCK.match(t):
            reg = m.group(1)
        elif _SR_END.match(t):
            reg = None
        elif reg and n in want and (m := _SR_FIELD.match(t)):
            hi = int(m.group(1))
            lo = int(m.group(2)) if m.group(2) else hi
            out.append(Def(reg, m.group(3), lo, hi, view.path, n))
    return out


def _registers(reg: str) -> list[str]:
    """`HFGxTR_EL2` names the shared layout of HFGRTR_EL2 and HFGWTR_EL2."""
    if "x" not in reg.split("_")[0]:
        return [reg]
    head, _, tail = reg.partition("_")
    return [head.replace("x", c, 1) + "_" + tail for c in "RW"]


def _base(name: str) -> str:
    """The name without a negative-polarity 'n' prefix (nTPIDR2_EL0 -> TPIDR2_EL0), upper-cased."""
    if len(name) > 1 and name[0] == "n" and name[1].isupper():
        name = name[1:]
    return name.upper()


def _overlaps(a: Def, lo: int, hi: int | None) -> bool:
    if a.msb is None or hi is None:
        return a.lsb == lo
    return a.lsb <= hi and lo <= a.msb


def _known_defs(series: SeriesContext, upto: int) -> list[Def]:
    """Field definitions in every line the series shows up to patch `upto`: a clash is reported on
    the patch that creates it, not on the earlier definition it clashes with."""
    def build() -> list[Def]:
        out: list[Def] = []
        for n in sorted(series.views):
            if n <= upto:
                for i, view in enumerate(series.views[n]):
                    out += series.memo(("sysreg-field-name-clash", "view", n, i),
                                       lambda v=view: _defs_in(v, sorted(v.known)))
        return out
    return series.memo(("sysreg-field-name-clash", "known", upto), build)


class SysregFieldNameClash(Rule):
    meta = RuleMeta(
        evidence=(r"(?m)^\s*#\s*define\s+\w+_EL(?:[0-3]|12|02)_\w+",
                  r"(?m)^(?:Field|Enum|UnsignedEnum|SignedEnum)\s"),
        id="kvmarm/sysreg-field-name-clash",
        title="New register-field definition clashes with an existing field name",
        severity=Severity.WARNING,
        confidence=Confidence.MEDIUM,
        scope=Scope.FILE,
        files=("*.h", "arch/arm64/tools/sysreg"),
        uses_tree=True,
        docs=RuleDocs(
            what="Flags a register field added as `#define <REG>_<FIELD>_SHIFT n` or "
                 "`#define <REG>_<FIELD>[_MASK] BIT(n)/GENMASK(h, l)/(1 << n)` in a header, or as a "
                 "`Field` line of arch/arm64/tools/sysreg, when the same register already has a "
                 "field of that name (or its negative-polarity twin: nFOO for FOO) at another bit "
                 "position: in the register knowledge (the base's sysreg file in full mode, the "
                 "bundled snapshot otherwise) or in the definitions the series shows.",
            why="Two names for one field, or one name for two positions, means one of them is wrong: "
                "usually the new field is a different register (TPIDR2_EL0 rather than TPIDR_EL0) and "
                "its name was shortened. Code using it then traps or reads the wrong bit.",
            example="#define HFGxTR_EL2_nWIDGET_EL0_SHIFT\t55   /* WIDGET_EL0 is bit 35 */",
            use_instead="#define HFGxTR_EL2_nWIDGET2_EL0_SHIFT\t55",
            known_problems="Registers are recognised by an _ELn suffix (HFGxTR_EL2 stands for both "
                           "FGT read/write registers); kvm_arm.h's short names (HCR_*) are not read. "
                           "A nFOO/FOO pair that the knowledge holds as two distinct fields is not "
                           "reported. Without a tree the layouts are the bundled snapshot's, which "
                           "holds a subset of registers; a finding from it on a series older than the "
                           "snapshot is a check.",
            references=("<87zgnk6or8.wl-maz@kernel.org> (HFGxTR_EL2_nTPIDR_EL0 at bit 55 clashes "
                        "with TPIDR_EL0 at bit 35: meant TPIDR2_EL0)",),
        ),
    )

    def check(self, ctx: FileContext) -> Iterator[Finding]:  # type: ignore[override]
        view = ctx.view
        new = _defs_in(view, sorted(view.added))
        if not new:
            return
        kb = ctx.kb
        worth = trust(ctx, SNAPSHOT)
        kb_severity = Severity.WARNING if (ctx.series.full or worth.warn) else Severity.CHECK
        # a base tree whose sysreg file predates the register: the snapshot's layout, as a check
        fallback = snapshot_knowledge() if kb is not None and getattr(kb, "source", "") == "tree" else None
        done: set[tuple[str, str]] = set()
        for d in new:
            if (d.reg, d.field) in done:
                continue
            hit = self._clash_kb(kb, d) if kb is not None else None
            severity = kb_severity
            if hit is None and fallback is not None and not any(kb.register(r) for r in _registers(d.reg)):
                hit, severity = self._clash_kb(fallback, d), Severity.CHECK
            if hit is None:
                hit, severity = self._clash_series(ctx.series, d, ctx.patch.number), Severity.WARNING
            if hit is None:
                continue
            done.add((d.reg, d.field))
            other_name, other_field, other_where, src = hit
            # a twin (nFOO for FOO) may be a distinct field newer than the knowledge: a check
            twin = other_field != d.field
            if twin:
                severity = Severity.CHECK
            yield self.at_line(
                view, d.line,
                f"{d.reg}_{d.field} at {d.where()} clashes with {other_name} at {other_where} of the same "
                f"register ({src})" + (": a different field needs a different name" if twin else ""),
                severity=severity,
                note="The register already has a field of this name"
                     + (" (or its negative-polarity twin)" if twin else "")
                     + " at another position: one of the two is wrong. A new field usually belongs to a "
                       "neighbouring register of a similar name (TPIDR2_EL0 next to TPIDR_EL0); check "
                       "the name against the Arm ARM.")

    @staticmethod
    def _clash_kb(kb, d: Def) -> tuple[str, str, str, str] | None:
        for name in _registers(d.reg):
            reg = kb.register(name)
            if reg is None:
                continue
            same = reg.field(d.field)
            if same is not None and d.lsb == same.lsb and d.msb in (None, same.msb):
                return None  # the field is where the knowledge says it is
            names = {f.name for f in reg.fields}
            for f in reg.fields:
                if _base(f.name) != _base(d.field) or (f.msb >= d.lsb and f.lsb <= (d.msb or d.lsb)):
                    continue
                if f.name != d.field and d.field in names:
                    continue  # nFOO and FOO are both real fields of this register
                where = f"bit {f.lsb}" if f.msb == f.lsb else f"bits {f.msb}:{f.lsb}"
                src = "the tree" if getattr(kb, "source", "") == "tree" else "the sysreg knowledge"
                return f.name, f.name, where, f"{name} in {src}"
        return None

    @staticmethod
    def _clash_series(series: SeriesContext, d: Def, upto: int) -> tuple[str, str, str, str] | None:
        regs = set(_registers(d.reg)) | {d.reg}
        for o in _known_defs(series, upto):
            if (o.path, o.line) == (d.path, d.line) or _base(o.field) != _base(d.field):
                continue
            if not (regs & (set(_registers(o.reg)) | {o.reg})) or _overlaps(o, d.lsb, d.msb):
                continue
            if o.field == d.field and o.path == d.path:
                continue  # the same macro twice in one file: the compiler says so
            return f"{o.reg}_{o.field}", o.field, o.where(), f"{o.path}:{o.line}"
        return None
