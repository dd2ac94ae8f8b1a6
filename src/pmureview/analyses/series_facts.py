"""Facts from the series itself: which ID-register definitions the series changes (issue 13, class 1).

A bundled (or base) fact such as "KVM hides field F of ID register R" or "R.F is not writable"
describes a kernel without the series. When a patch of the series, up to the one under review,
changes the very definitions that fact is about, the fact no longer holds and the rule reading it
stays silent. `idreg_touches(ctx)` lists, per patch, every changed (added or removed) line that
defines part of an ID register:

- `entry`: its sys_reg_descs[] entry (ID_WRITABLE(R, mask), ID_SANITISED(R), SYS_DESC(SYS_R), ...)
  or a line of its writable mask;
- `sanitise`: its sanitisation or limiting code (`case SYS_R:`, an R-specific sanitise/reset/set
  helper, `val &= ~R_F_MASK`, SYS_FIELD_PREP(R, F, ...), ID_REG_LIMIT_FIELD_ENUM(), the host's
  cpufeature table);
- `field`: its field definitions (a Field/Enum line of the register's block in
  arch/arm64/tools/sysreg, `#define R_F...` in a header).

Uses of a field (kvm_has_feat(kvm, R, F, IMP), SYS_FIELD_GET()) are not definitions. A field line
of the sysreg file whose block header lies outside the hunks is recorded for register "*" (any ID
register). `touched(ctx, R, F, upto)` answers for one fact; rules call it through `bundled_fact_stale`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING

from ..kernel.dating import Trust, trust
from ..kernel.idregs import is_id_register
from ..lazyre import lazy_re
from ..record import dataclass

if TYPE_CHECKING:
    from ..views.context import FileView, SeriesContext

ENTRY, SANITISE, FIELD = "entry", "sanitise", "field"
ALL_KINDS = (ENTRY, SANITISE, FIELD)
ANY = "*"

SYSREG_FILE = "arch/arm64/tools/sysreg"
# files whose changed lines can define how KVM (or the host) limits an ID register
_SANITISE_FILES = ("sys_regs.c", "sys_regs.h", "nested.c", "pkvm.c", "pkvm.h", "cpufeature.c",
                   "fixed_config.h", "id_regs.c", "config.c")
_REG = r"(ID_[A-Z0-9]+_EL1|MVFR\d_EL1)"
_ENTRY = lazy_re(r"\b(?:ID_WRITABLE|ID_SANITISED|ID_FILTERED|ID_HIDDEN|AA32_ID_WRITABLE|ID_DESC|"
                 r"ID_FEAT_REG|ID_REG)\s*\(\s*" + _REG + r"\b|\bSYS_DESC\s*\(\s*SYS_" + _REG + r"\s*\)")
_CASE = lazy_re(r"\bcase\s+SYS_" + _REG + r"\s*:")
_HELPER = lazy_re(r"\b(?:sanitise|sanitize|read_sanitised|reset|set|limit|get)_((?:id_[a-z0-9]+|mvfr\d)_el1)\b")
_DEFINE = lazy_re(r"^\s*#\s*define\s+" + _REG + r"_(\w+)")
_CONST = lazy_re(r"\b" + _REG + r"_([A-Za-z0-9]\w*)\b")
_FIELD_CALL = lazy_re(r"\b(?:SYS_FIELD_PREP(?:_ENUM)?|SYS_FIELD_MAX|ID_REG_LIMIT_FIELD_ENUM|"
                      r"FIELD_PREP_ENUM|ARM64_FTR_BITS)\s*\((?:[^,()]*,)?\s*" + _REG + r"\s*,\s*(\w+)")
# uses, not definitions: a per-VM gate or a field read
_USES = lazy_re(r"\b(?:kvm_has_feat\w*|kvm_cmp_feat\w*|SYS_FIELD_GET|FIELD_GET|cpuid_feature_extract_\w+)"
                r"\s*\([^;{}]*?\)")
_SUFFIX = lazy_re(r"_(?:MASK|SHIFT|WIDTH|SIGNED|IMP|NI)$")
_SYSREG_HEAD = lazy_re(r"^\s*Sysreg(?:Fields)?\s+(\w+)")
_SYSREG_END = lazy_re(r"^\s*End(?:Sysreg(?:Fields)?)?\s*$")
# named fields only: a Res0/Res1 line moves with the field next to it and names nothing
_SYSREG_FIELD = lazy_re(r"^\s*(?:Field|UnsignedEnum|SignedEnum|Enum)\s+\d+(?::\d+)?\s+(\w+)")


@dataclass(frozen=True, slots=True)
class Touch:
    """One changed line of the series that defines part of a register (an ID register, or any
    register's sysreg block for `sysreg_touched()`)."""

    register: str  # ID_AA64PFR0_EL1, or "*" (a sysreg field line whose block is not visible)
    field: str | None  # None: the register as a whole
    kind: str  # entry | sanitise | field
    patch: int
    path: str
    line: int | None  # post-image line of an added line; None for a removed one

    def covers(self, register: str, field: str | None) -> bool:
        if self.register not in (register, ANY):
            return False
        # an enum value constant (R_PMUVer_V3P5) touches its field (PMUVer)
        return (self.field is None or field is None or self.field == field
                or self.field.startswith(field + "_"))


def _field_name(token: str) -> str:
    """ID_AA64PFR0_EL1_AMU_MASK -> AMU (the field part of a generated constant)."""
    return _SUFFIX.sub("", token)


def line_touches(text_: str, path: str) -> Iterator[tuple[str, str | None, str]]:
    """(register, field, kind) for each ID-register definition on one changed C line of `path`."""
    s = text_.split("//", 1)[0]
    if s.lstrip().startswith(("*", "/*")):
        return
    name = path.rsplit("/", 1)[-1]
    for m in _ENTRY.finditer(s):
        yield (m.group(1) or m.group(2)), None, ENTRY
    for m in _DEFINE.finditer(s):
        yield m.group(1), _field_name(m.group(2)), FIELD
    if name not in _SANITISE_FILES:
        return
    for m in _CASE.finditer(s):
        yield m.group(1), None, SANITISE
    for m in _HELPER.finditer(s):
        yield m.group(1).upper(), None, SANITISE
    defs = _USES.sub(" ", s)
    for m in _FIELD_CALL.finditer(defs):
        yield m.group(1), m.group(2), SANITISE
    if _ENTRY.search(s) or _CASE.search(s) or _DEFINE.search(s):
        return
    for m in _CONST.finditer(defs):
        # a line of constants only (`ID_AA64FOO0_EL1_BAR |`) continues an entry's writable mask
        kind = ENTRY if re.fullmatch(r"[\s\w|()~,]*", defs) and "=" not in defs else SANITISE
        yield m.group(1), _field_name(m.group(2)), kind


def _changed(view: FileView) -> Iterator[tuple[str, int | None, int]]:
    """(text, post-image line or None, post-image position) of each added and removed line."""
    for h in view.change.hunks:
        pos = h.new_start
        for ln in h.lines:
            if ln.kind == "+":
                yield ln.text, ln.new_no, ln.new_no or pos
            elif ln.kind == "-":
                yield ln.text, None, pos
            if ln.new_no:
                pos = ln.new_no + 1


def _sysreg_block(view: FileView, pos: int) -> str | None:
    """The Sysreg block holding post-image position `pos`, when its header is visible."""
    for n in range(min(pos, len(view.lines)), 0, -1):
        t = view.line_text(n)
        if m := _SYSREG_HEAD.match(t):
            return m.group(1)
        if n < pos and _SYSREG_END.match(t):
            return None
        if not t and n not in view.known:
            return ANY  # an unknown stretch: the header is outside the hunks
    return ANY


def sysreg_view_touches(view: FileView, keep: Callable[[str], bool] = is_id_register) -> list[Touch]:
    """The register blocks (and fields) one patch changes in arch/arm64/tools/sysreg, for the
    registers `keep` accepts (plus "*" when a block header is outside the hunks)."""
    out: list[Touch] = []
    number = view.patch.number
    for t, line, pos in _changed(view):
        if m := _SYSREG_HEAD.match(t):
            if keep(m.group(1)):
                out.append(Touch(m.group(1), None, FIELD, number, view.path, line))
            continue
        if not (m := _SYSREG_FIELD.match(t)):
            continue
        reg = _sysreg_block(view, pos)
        if reg is None or not (reg == ANY or keep(reg)):
            continue
        out.append(Touch(reg, m.group(1), FIELD, number, view.path, line))
    return out


def view_touches(view: FileView) -> list[Touch]:
    """The ID-register definitions one patch changes in one file."""
    out: list[Touch] = []
    number = view.patch.number
    if view.path == SYSREG_FILE:
        return sysreg_view_touches(view)
    if not view.path.endswith((".c", ".h")) or view.path.startswith("tools/"):
        return out
    for t, line, _pos in _changed(view):
        for reg, fld, kind in line_touches(t, view.path):
            if is_id_register(reg):
                out.append(Touch(reg, fld, kind, number, view.path, line))
    return out


def idreg_touches(ctx: SeriesContext) -> tuple[Touch, ...]:
    """Every ID-register definition the series changes, in patch order (computed once per run)."""
    def build() -> tuple[Touch, ...]:
        out: list[Touch] = []
        for v in ctx.all_views():
            try:
                out.extend(view_touches(v))
            except Exception:  # a fragment the scanner cannot read: no touch, never a crash
                continue
        return tuple(out)

    return ctx.memo(("series_facts.idreg_touches",), build)


def sysreg_touched(ctx: SeriesContext, register: str, field: str | None = None,
                   upto: int | None = None) -> Touch | None:
    """The first change of the series (patches 1..upto) to the sysreg-file block of any register
    `register` (its `field`, when given); None when the series leaves it alone."""
    def build() -> tuple[Touch, ...]:
        out: list[Touch] = []
        for v in ctx.all_views():
            if v.path == SYSREG_FILE:
                try:
                    out.extend(sysreg_view_touches(v, keep=lambda _r: True))
                except Exception:  # unreadable fragment: no touch
                    continue
        return tuple(out)

    for t in ctx.memo(("series_facts.sysreg_touches",), build):
        if (upto is None or t.patch <= upto) and t.covers(register, field):
            return t
    return None


def touched(ctx: SeriesContext, register: str, field: str | None = None, upto: int | None = None,
            kinds: Iterable[str] = ALL_KINDS) -> Touch | None:
    """The first change of the series (patches 1..upto) to the definitions of `register`
    (`field` of it, when given) of one of `kinds`; None when the series leaves them alone."""
    want = set(kinds)
    for t in idreg_touches(ctx):
        if upto is not None and t.patch > upto:
            continue
        if t.kind in want and t.covers(register, field):
            return t
    return None


def bundled_worth(ctx: SeriesContext, name: str, register: str | None = None, field: str | None = None,
                  upto: int | None = None, kinds: Iterable[str] = ALL_KINDS,
                  section: str | None = None) -> Trust | None:
    """How much a fact of bundled file `name` about `register`(.`field`) is worth here, in the order
    of issue 13: None (stay silent) when a base tree is present (the tree wins) or when the series,
    up to patch `upto`, changes the definitions the fact is about; else the Trust (`warn`: it may
    support a warning; otherwise at most a check saying `as_of`)."""
    t = trust(ctx, name, section)
    if not t.use:
        return None
    if register is not None and touched(ctx, register, field, upto, kinds) is not None:
        return None
    return t


def as_of_suffix(t: Trust | None) -> str:
    """' (as of v6.12)' for a fact that may not support a warning, else ''."""
    return f" ({t.as_of})" if t is not None and not t.warn and t.as_of else ""
