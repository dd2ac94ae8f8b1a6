"""ID-register sanitisation and writable masks (DOMAIN-PACK2 §1.3).

- `writable(entry)`: the writable mask of an ID register's sys_reg_descs[] entry, as field names
  (allow-list, complement, none or all).
- `sanitisation(c_text)`: per register, whether KVM limits it (a `case SYS_<R>:` in the
  sanitisation switch, or an R-specific reset/sanitise helper) and which fields it clears
  unconditionally (statements directly in the case, or at the top level of the helper it calls).
- `bundled()`: the same facts generated from a reference tree (pack2-gating.json "idregs"), used
  when there is no base tree.
"""

from __future__ import annotations

import re
from functools import cache

from pmureview.lazyre import lazy_re

from ..lang.c import balanced_parens, call_name, function_name, parse, text, walk
from ..record import dataclass, field
from .predicates import gating_data
from .sysregtable import Entry

EXPOSED_FORMS = ("ID_SANITISED", "ID_WRITABLE", "ID_FILTERED", "AA32_ID_WRITABLE")
HIDDEN_FORMS = ("ID_HIDDEN", "ID_UNALLOCATED")
SANITISED_RESET = "kvm_read_sanitised_id_reg"
# the feature ID registers KVM keeps per VM in the (3, 0, 0, crm, op2) space; CTR_EL0, MIDR_EL1 & co.
# are limited elsewhere
_ID_NAME = lazy_re(r"^(?:ID_\w+_EL1|MVFR\d_EL1)$")
_TOKEN = lazy_re(r"\b(?:ARM64_FEATURE_MASK\s*\(\s*(\w+)\s*\)|(\w+))")


def is_id_register(name: str | None) -> bool:
    return bool(name and _ID_NAME.match(name))


def field_of(token: str, register: str) -> str | None:
    """ID_AA64PFR0_EL1_AMU_MASK / ID_AA64PFR0_EL1_AMU / ARM64_FEATURE_MASK(...) -> AMU."""
    prefix = register + "_"
    if not token.startswith(prefix):
        return None
    f = token[len(prefix):]
    f = re.sub(r"_MASK$", "", f)
    return f or None


def fields_in(expr: str, register: str) -> set[str]:
    out = set()
    for m in _TOKEN.finditer(expr):
        f = field_of(m.group(1) or m.group(2), register)
        if f:
            out.add(f)
    return out


@dataclass(frozen=True)
class Mask:
    kind: str  # none | allow | complement | all | unknown
    fields: frozenset[str] = frozenset()  # allow: the writable ones; complement: the excluded ones
    text: str = ""

    def writable(self, f: str) -> bool | None:
        if self.kind == "none":
            return False
        if self.kind == "all":
            return True
        if self.kind == "allow":
            return f in self.fields
        if self.kind == "complement":
            return f not in self.fields
        return None


def parse_mask(val: str, register: str) -> Mask:
    v = " ".join(val.split())
    while v.startswith("(") and v.endswith(")") and balanced_parens(v[1:-1]):
        v = v[1:-1].strip()
    if v in ("", "0", "0UL", "0ULL"):
        return Mask("none", text=val)
    if re.fullmatch(r"GENMASK(?:_ULL)?\(\s*(63|31)\s*,\s*0\s*\)|~0(?:UL|ULL)?", v):
        return Mask("all", text=val)
    if v.startswith("~"):
        return Mask("complement", frozenset(fields_in(v, register)), val)
    if "~" in v or "&" in v:
        return Mask("unknown", text=val)
    fs = fields_in(v, register)
    return Mask("allow", frozenset(fs), val) if fs else Mask("unknown", text=val)


def writable(entry: Entry) -> Mask:
    name = entry.name or ""
    if entry.macro in ("ID_SANITISED", "ID_HIDDEN", "ID_UNALLOCATED"):
        return Mask("none")
    if entry.macro == "AA32_ID_WRITABLE":
        return Mask("all")
    return parse_mask(entry.get("val"), name)


def exposed(entry: Entry) -> bool:
    """Does this ID-register entry give the guest the host's (sanitised) value?"""
    if entry.macro in HIDDEN_FORMS:
        return False
    if entry.macro in EXPOSED_FORMS:
        return True
    vis = entry.visibility or ""
    if "raz" in vis:
        return False
    return bool(entry.get("reset"))


# -- sanitisation path --------------------------------------------------------------------------

@dataclass
class Limits:
    cased: bool = False  # a case in the sanitisation switch
    helper: str | None = None  # an R-specific reset/sanitise helper
    cleared: set[str] = field(default_factory=set)  # fields cleared unconditionally
    allow: set[str] | None = None  # unconditional allow-list (`val &= A | B`)

    @property
    def limited(self) -> bool:
        return self.cased or self.helper is not None

    def clears(self, f: str) -> bool:
        return f in self.cleared or (self.allow is not None and f not in self.allow)

    def to_json(self) -> dict:
        d: dict = {"cased": self.cased, "cleared": sorted(self.cleared)}
        if self.helper:
            d["helper"] = self.helper
        if self.allow is not None:
            d["allow"] = sorted(self.allow)
        return d


def _apply_stmt(stmt_text: str, reg: str, lim: Limits) -> None:
    s = " ".join(stmt_text.split())
    m = re.match(r"^\w+\s*&=\s*(.*?);?$", s)
    if not m:
        return
    rhs = m.group(1).strip()
    if rhs.startswith("~"):
        lim.cleared |= fields_in(rhs, reg)
    else:
        fs = fields_in(rhs, reg)
        if fs:
            lim.allow = fs if lim.allow is None else lim.allow & fs


def _apply_sets(node, reg: str, lim: Limits) -> None:
    """A field set again anywhere after (`val |= SYS_FIELD_PREP(R, F, ...)`) is limited, not hidden."""
    for a in walk(node, {"assignment_expression"}):
        op = a.child_by_field_name("operator")
        if op is None or text(op) != "|=":
            continue
        rhs = text(a.child_by_field_name("right"))
        lim.cleared -= fields_in(rhs, reg)
        for m in re.finditer(rf"\b{re.escape(reg)}\s*,\s*(\w+)", rhs):
            lim.cleared.discard(m.group(1))


def _top_statements(body) -> list:
    return [c for c in body.named_children if c.type == "expression_statement"]


@cache
def _sanitisation_cached(digest: str, c_text: str) -> dict[str, Limits]:
    out: dict[str, Limits] = {}
    try:
        root = parse(c_text.encode("utf-8", "surrogateescape")).root_node
    except Exception:
        return out
    fns = {name: fn for fn in walk(root, {"function_definition"}) if (name := function_name(fn))}
    for name, fn in fns.items():
        low = name.lower()
        m = re.search(r"(?:sanitise|sanitize|read_sanitised|reset)_((?:id_\w+|mvfr\d)_el1|ctr_el0)$", low)
        if m:  # an R-specific helper: read_sanitised_id_aa64pfr0_el1(), sanitise_id_aa64dfr0_el1()
            reg = m.group(1).upper()
            lim = out.setdefault(reg, Limits())
            lim.helper = name
            body = fn.child_by_field_name("body")
            if body is not None:
                for st in _top_statements(body):
                    _apply_stmt(text(st), reg, lim)
                _apply_sets(body, reg, lim)
    for _name, fn in fns.items():
        if "read_sanitised_ftr_reg" not in text(fn):
            continue
        for sw in walk(fn, {"switch_statement"}):
            body = sw.child_by_field_name("body")
            if body is None:
                continue
            for case in body.named_children:
                if case.type != "case_statement":
                    continue
                value = case.child_by_field_name("value")
                label = text(value)
                if not label.startswith("SYS_"):
                    continue
                reg = label[4:]
                lim = out.setdefault(reg, Limits())
                lim.cased = True
                for st in case.named_children:
                    if st == value or st.type != "expression_statement":
                        continue
                    _apply_stmt(text(st), reg, lim)
                    # `val = sanitise_x(vcpu, val);` -> that helper's unconditional clears
                    for call in walk(st, {"call_expression"}):
                        callee = call_name(call)
                        if callee and callee in fns and callee != _name:
                            cbody = fns[callee].child_by_field_name("body")
                            for st2 in _top_statements(cbody) if cbody is not None else ():
                                _apply_stmt(text(st2), reg, lim)
                            if cbody is not None:
                                _apply_sets(cbody, reg, lim)
                _apply_sets(case, reg, lim)
    return out


def sanitisation(c_text: str) -> dict[str, Limits]:
    from ..cachefile import content_key  # zlib: hashlib is ~4 ms of a hook run's imports

    return _sanitisation_cached(content_key(c_text), c_text)


@dataclass(frozen=True)
class BundledIdReg:
    form: str
    mask: str
    limits: Limits


@cache
def bundled() -> dict[str, BundledIdReg]:
    out = {}
    for name, d in gating_data().get("idregs", {}).get("registers", {}).items():
        lim = Limits(cased=d.get("cased", False), helper=d.get("helper"), cleared=set(d.get("cleared", ())),
                     allow=set(d["allow"]) if "allow" in d else None)
        out[name] = BundledIdReg(d.get("form", ""), d.get("mask", ""), lim)
    return out


def generate(c_text: str) -> dict[str, dict]:
    """The "idregs.registers" section of pack2-gating.json from a sys_regs.c text."""
    from .sysregtable import parse_table

    lims = sanitisation(c_text)
    out: dict[str, dict] = {}
    for e in parse_table(c_text):
        if not is_id_register(e.name):
            continue
        d = {"form": e.macro or "custom", "mask": writable(e).text if e.macro not in ("ID_SANITISED",) else "0"}
        if e.macro is None:
            d["mask"] = e.get("val")
            d["reset"] = e.get("reset")
        lim = lims.get(e.name or "")
        if lim is not None:
            d.update(lim.to_json())
        out[e.name or ""] = d
    return out


# -- per series: the descriptor and limits of an ID register after the series ---------------------

SYS_REGS = "arch/arm64/kvm/sys_regs.c"
_CASE = lazy_re(r"^\s*case\s+SYS_(\w+)\s*:", re.M)


@dataclass
class IdRegFacts:
    name: str
    mask: Mask | None  # None: no descriptor found
    hidden: bool = False
    limits: Limits | None = None  # None: the sanitisation path is not known
    source: str = ""  # where the descriptor came from: tree | series | snapshot
    limits_source: str = ""  # where the limits came from: tree | series | snapshot

    @property
    def bundled(self) -> bool:
        """Some fact here comes from the bundled file (weigh it with kernel/dating.py)."""
        return "snapshot" in (self.source, self.limits_source)


def _final_text(series, upto: int | None) -> tuple[str | None, bool]:
    """sys_regs.c as the series leaves it (upto patch N) and whether the text is complete."""
    last = None
    for v in series.all_views():
        if v.path == SYS_REGS and (upto is None or v.patch.number <= upto):
            last = v
    if last is not None:
        return last.text, last.mode == "full"
    base = series.base_text(SYS_REGS)
    return base, base is not None


def series_limits(series, upto: int | None = None) -> tuple[dict[str, Limits], bool]:
    """Sanitisation facts of sys_regs.c after the series; complete=False when only hunks are known
    (then the bundled facts fill in and `case SYS_R:` lines added by the series count as limits)."""
    text_, complete = _final_text(series, upto)
    if complete and text_:
        return sanitisation(text_), True
    # with a base tree the bundled file is never used (the tree wins, even when it lacks the file)
    out = {} if getattr(series, "full", False) else {k: v.limits for k, v in bundled().items()}
    for v in series.all_views():
        if v.path == SYS_REGS and (upto is None or v.patch.number <= upto):
            for m in _CASE.finditer("\n".join(v.line_text(n) for n in sorted(v.added))):
                out.setdefault(m.group(1), Limits()).cased = True
            for m in re.finditer(r"\b(?:sanitise|sanitize|read_sanitised|reset)_((?:id_\w+|mvfr\d)_el1)\s*\(",
                                 "\n".join(v.line_text(n) for n in sorted(v.added))):
                out.setdefault(m.group(1).upper(), Limits()).helper = m.group(0)
    return out, False


def facts(series, name: str, upto: int | None = None) -> IdRegFacts:
    """The descriptor (writable mask) and sanitisation of ID register `name` after the series."""
    from .sysregtable import parse_table, view_entries

    lims, complete = series_limits(series, upto)
    text_, full = _final_text(series, upto)
    entry = None
    source = ""
    if text_:
        view = None
        for v in series.all_views():
            if v.path == SYS_REGS and (upto is None or v.patch.number <= upto):
                view = v
        entries = view_entries(view) if view is not None else parse_table(text_)
        entry = next((e for e in entries if e.name == name), None)
        source = "tree" if full else "series"
    lsrc = "tree" if complete else ("snapshot" if name in bundled() and not getattr(series, "full", False)
                                    else "series")
    if entry is not None:
        hidden = entry.macro in HIDDEN_FORMS or "raz" in (entry.visibility or "")
        lim = lims.get(name) if complete or name in lims else None
        return IdRegFacts(name, writable(entry), hidden, lim or (Limits() if complete else None), source,
                          lsrc if lim is not None else "")
    b = bundled().get(name)
    if b is None or full or getattr(series, "full", False):
        return IdRegFacts(name, None)
    if b.form in ("ID_SANITISED", "ID_HIDDEN", "ID_UNALLOCATED"):
        mask = Mask("none")
    elif b.form == "AA32_ID_WRITABLE":
        mask = Mask("all")
    else:
        mask = parse_mask(b.mask, name)
    return IdRegFacts(name, mask, b.form == "ID_HIDDEN", lims.get(name) or b.limits, "snapshot", "snapshot")
