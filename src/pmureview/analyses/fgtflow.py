"""Where FGT trap values are written, and which sysreg field constants flow into them.

Shared by kvmarm/fgt-trap-polarity and kvmarm/fgt-cross-register-field. A *write* is a statement
that changes a value holding a fine-grained trap register in its architectural encoding:

- `*vcpu_fgt(vcpu, R) |= X`, `&= ~X`, `= V` (also through a local `u64 *p = vcpu_fgt(vcpu, R)`);
- `write_sysreg_s(V, SYS_R)` / `write_sysreg(V, r)`;
- `update_fgt_traps_cs(hctxt, vcpu, kvm, R, clr, set)` (the pre-6.18 hyp API),
  `sysreg_clear_set_s(SYS_R, clr, set)`, a call whose callee's parameters are named set/clr
  (`__fgt_update(vcpu, R, u64 set, u64 clr)`) or whose name gives the order (`*_clear_set()`,
  `*_cs()`);
- `v |= X` / `v &= ~X` on a local `v` that one of the above stores or uses as its operand;
- and, known by what they hold when the write that uses them is out of sight (hunk-only mode):
  `r_set |= X` / `w_clr |= X` on a set/clr mask, `v |= X` / `v &= ~X` on a local read with
  `read_sysreg_s(SYS_R)` or built on `__R_nMASK` / `m->nmask`.

R is a constant FGT register name, or a parameter of the enclosing function bound by its callers
(one level: `__compute_pmu_fgt(vcpu, HDFGWTR_EL2)`); when nothing names it (a parameter whose
callers are out of sight, a set/clr mask) it is the register the constants written belong to.
In hunk-only mode, statements whose function header is above the hunk parse as loose top-level
statements and are read all the same. X is resolved to the `<REG>_<FIELD>` constants it
names through `|`, parentheses and casts, object-like `#define`s, file-scope and local constants, and
one level of helper function whose only `return` is such a constant mask (`kvm_pmu_fgt2_bits()`),
looked up in the files of the series as they stand after the patch, then (full mode) in a few base
files where KVM keeps such helpers. Anything else (`m->nmask`, `fgu & mask`, parameters, BIT()) is
not a constant: it contributes nothing and never makes a rule guess. The older `HFGxTR_EL2_*`
names resolve to the HFGRTR_EL2 field at the same place. Per-VM "1 = trap" arrays
(`kvm->arch.fgu[]`) are not written through these forms and so are never looked at.

Everything here is best effort over tree-sitter trees (ERROR nodes, hunk-only gaps) and never raises
on odd input; rules still guard the call.
"""

from __future__ import annotations

import contextlib
import re
from bisect import bisect_left, bisect_right
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from pmureview.lazyre import lazy_re

from ..kernel.fgt import legacy_spelling, whole_register_mask
from ..lang.c import call_name, function_name, functions, parse, text, walk
from ..record import dataclass, field

if TYPE_CHECKING:
    from tree_sitter import Node

    from ..views.context import SeriesContext

SET = "set"
CLEAR = "clear"
STORE = "store"

# Base files (full mode) where a helper or #define that builds a trap mask may live, after the files
# the series touches and the headers the writing file includes.
HELPER_PATHS = (
    "arch/arm64/kvm/config.c",
    "arch/arm64/kvm/pmu-direct.c",
    "arch/arm64/kvm/pmu.c",
    "arch/arm64/kvm/pmu-emul.c",
    "arch/arm64/include/asm/kvm_pmu.h",
    "include/kvm/arm_pmu.h",
    "arch/arm64/include/asm/kvm_host.h",
    "arch/arm64/include/asm/kvm_arm.h",
    "arch/arm64/kvm/hyp/include/hyp/switch.h",
)
# Base files (full mode) holding FGT writes that a helper changed by the series may feed.
WRITE_PATHS = ("arch/arm64/kvm/config.c", "arch/arm64/kvm/hyp/include/hyp/switch.h")
_WRITE_HINT = lazy_re(r"vcpu_fgt|write_sysreg|update_fgt_traps_cs|sysreg_clear_set|H[AD]?FG[RWI]TR2?_EL2|HFGxTR_EL2"
                      r"|ICH_HFG[RWI]TR_EL2")
# Every _WRITE_HINT match holds one of these (the H... register names hold "FG"): where none
# occurs, no search is needed.
_HINT_PARTS = ("vcpu_fgt", "write_sysreg", "update_fgt_traps_cs", "sysreg_clear_set", "FG")
# A local or parameter that holds bits to set (`set`, `r_set`, `set_mask`) or to clear (`clr`,
# `w_clr`, `clear_bits`) in an FGT value: the (set, clr) pair of update_fgt_traps_cs(),
# sysreg_clear_set_s(), __compute_fgt() and the helpers written like them.
_SET_NAME = lazy_re(r"^(?:\w+_)?set(?:_(?:mask|bits|val))?$|^set_(?:mask|bits|val)$")
_CLR_NAME = lazy_re(r"^(?:\w+_)?(?:clr|clear)(?:_(?:mask|bits|val))?$|^(?:clr|clear)_(?:mask|bits|val)$")
# Callees whose last two arguments are (clear, set) / (set, clear) by their name.
_CS_CALLEE = lazy_re(r"(?:clea?r_set|clr_set)(?:_s)?$|_cs$")
_SC_CALLEE = lazy_re(r"set_(?:clea?r|clr)(?:_s)?$|_sc$")
ANY = "*"  # a target whose register is not named: the register of the constants written
_FGT_ARG = lazy_re(r"H[AD]?FG[RWI]TR2?_EL2_|HFGxTR_EL2_|ICH_HFG[RWI]TR_EL2_")
_INCLUDE = lazy_re(r'^\s*#\s*include\s*[<"]([\w/.-]+)[>"]', re.M)
_MAX_DEPTH = 6
_CALL = frozenset({"call_expression"})
_DEF_DECL = frozenset({"preproc_def", "declaration"})
_WRITES = frozenset({"assignment_expression", "call_expression"})
_LOCALS = frozenset({"init_declarator", "declaration", "assignment_expression", "update_expression"})
_READ = _WRITES | _LOCALS


@dataclass(eq=False)
class BaseFile:
    """A base-tree file the series does not touch (full mode): a FileView without added lines."""

    path: str
    text: str
    added: frozenset[int] = frozenset()
    patch: Any = None
    _root: Any = None
    parsed: Any = None  # SeriesContext.parsed: one parse of a base text per run, shared with the rules

    @property
    def root(self) -> Node:
        if self._root is None:
            tree = self.parsed(self.text) if self.parsed is not None else \
                parse(self.text.encode("utf-8", "surrogateescape"))
            self._root = tree.root_node
        return self._root

    def touches_added(self, node: Node) -> bool:
        return False


Src = Any  # FileView | BaseFile


@dataclass(frozen=True, eq=False)
class Hop:
    """A named place a constant passed through: a helper's return, a #define, a constant."""

    kind: str  # helper | define | const | local
    name: str
    src: Src
    node: Node


@dataclass(frozen=True, eq=False)
class Bit:
    """One resolved FGT field constant (`HDFGRTR2_EL2_nPMICNTR_EL0`) and how it got there."""

    name: str
    register: str
    field: str
    mask: int
    hops: tuple[Hop, ...] = ()
    layout: str = ""  # the register whose layout a legacy name follows (HFGxTR_EL2 -> HFGRTR_EL2)

    @property
    def home(self) -> str:
        """The FGT register the constant is a field of (for a target that names no register)."""
        return self.layout or self.register


@dataclass
class Mask:
    bits: list[Bit] = field(default_factory=list)
    complete: bool = True  # every part of the expression was a known constant

    def __or__(self, other: Mask) -> Mask:
        return Mask(self.bits + other.bits, self.complete and other.complete)

    def via(self, hop: Hop) -> Mask:
        return Mask([Bit(b.name, b.register, b.field, b.mask, (hop, *b.hops), b.layout) for b in self.bits],
                    self.complete)


UNKNOWN = Mask([], False)


@dataclass(eq=False)
class Contribution:
    """Constants that a statement puts into (set), takes out of (clear) or stores as a value of R."""

    src: Src
    stmt: Node  # the statement that writes the value (anchor)
    register: str
    op: str  # set | clear | store
    mask: Mask
    direct: bool  # `*vcpu_fgt(...) op= X`: the value __compute_fgt() left (negative bits at 1)
    fn: Node | None = None  # the function the statement is in
    named: bool = False  # found by the set/clr name of its target only (the write is not in sight)


def bits_of(mask: int) -> list[int]:
    return [i for i in range(64) if mask >> i & 1]


def stmt_of(node: Node) -> Node:
    """The enclosing expression statement (or the node itself)."""
    n = node
    while n.parent is not None and n.type != "expression_statement" and n.parent.type not in (
            "compound_statement", "translation_unit"):
        n = n.parent
    return n


def strip(node: Node | None) -> Node | None:
    while node is not None and node.type in ("parenthesized_expression", "cast_expression"):
        inner = node.child_by_field_name("value") if node.type == "cast_expression" else next(
            (c for c in node.named_children if c.type != "comment"), None)
        if inner is None:
            break
        node = inner
    return node


def _args(call: Node) -> list[Node]:
    al = call.child_by_field_name("arguments")
    return [c for c in al.named_children if c.type != "comment"] if al is not None else []


def _params(fn: Node) -> list[str]:
    decl = fn.child_by_field_name("declarator")
    while decl is not None and decl.type != "function_declarator":
        decl = decl.child_by_field_name("declarator")
    plist = decl.child_by_field_name("parameters") if decl is not None else None
    out = []
    for p in plist.named_children if plist is not None else ():
        d = p.child_by_field_name("declarator")
        while d is not None and d.type not in ("identifier",):
            d = d.child_by_field_name("declarator")
        out.append(text(d))
    return out


def _declared_name(decl: Node) -> str:
    d = decl
    while d is not None and d.type != "identifier":
        d = d.child_by_field_name("declarator")
    return text(d)


def _paths_upto(ctx: SeriesContext, number: int) -> list[str]:
    """The paths the patches up to `number` touch, in first-touch order. Each patch's Flow asks:
    built once per run (a prefix of one list), not by re-reading every earlier patch."""
    order, numbers, ends = ctx.memo("fgtflow-paths", lambda: _touch_order(ctx))
    if numbers == sorted(numbers):
        i = bisect_right(numbers, number)
    else:  # patches out of order: up to the first one past `number`, as the series lists them
        i = next((k for k, n in enumerate(numbers) if n > number), len(numbers))
    return order[:ends[i - 1]] if i else []


def _views_at(ctx: SeriesContext, number: int) -> dict[str, Src]:
    """path -> `ctx.view_at(path, number)` for every touched path: the previous patch's table plus
    this patch's views (the Flows are built patch after patch), instead of a search per path."""
    state = ctx.memo("fgtflow-views-at", lambda: {"upto": None, "latest": {}})
    keys = sorted(ctx.views)
    if state["upto"] is None or number < state["upto"]:
        state["upto"], state["latest"] = None, {}
    latest = dict(state["latest"])
    for n in keys:
        if (state["upto"] is None or n > state["upto"]) and n <= number:
            for v in ctx.views[n]:
                latest[v.path] = v
    state["upto"], state["latest"] = number, latest
    return latest


def _touch_order(ctx: SeriesContext) -> tuple[list[str], list[int], list[int]]:
    order: list[str] = []
    seen: set[str] = set()
    numbers: list[int] = []  # the patch numbers in series order
    ends: list[int] = []  # len(order) after each of them
    for p in ctx.patches:
        for v in ctx.patch_views(p.number):
            if v.path not in seen:
                seen.add(v.path)
                order.append(v.path)
        numbers.append(p.number)
        ends.append(len(order))
    return order, numbers, ends


class Flow:
    """FGT writes and constant resolution for the series as it stands after patch `number`."""

    def __init__(self, ctx: SeriesContext, number: int) -> None:
        self.ctx = ctx
        self.kb = ctx.kb
        self.number = number
        paths = _paths_upto(ctx, number)
        latest = _views_at(ctx, number)
        self.sources: list[Src] = [v for p in paths if (v := latest.get(p)) is not None
                                   and v.path.endswith((".c", ".h")) and v.text]
        self._touched = set(paths)
        # Shared by the Flows of every patch: views of unchanged files are the same objects across
        # patches and base files never change, so each file is read, parsed and indexed once per run.
        shared = ctx.memo("fgtflow-shared", lambda: ({}, {}, {}, {}, {}, {}, {}, {}, {}))
        self._base: dict[str, BaseFile | None] = shared[0]
        self._fn_index: dict[int, dict[str, list[Node]]] = shared[1]
        self._def_index: dict[int, dict[str, list[Node]]] = shared[2]
        self._const_index: dict[int, dict[str, list[Node]]] = shared[3]
        self._calls: dict[int, dict[str, list[Node]]] = shared[4]
        self._alive: dict[int, Src] = shared[5]  # keeps indexed sources alive: their id()s stay unique
        self._walks: dict[tuple, list[Node]] = shared[6]  # per-function node lists (see _nodes)
        self._hints: dict[int, tuple[Src, bool]] = shared[7]  # id(src) -> (src, names an FGT write)
        self._done: dict[tuple, tuple] = shared[8]  # the writes of one function (see _writes)
        self._deps: dict[tuple, tuple] | None = None  # the lookups the function being read makes

    # -- sources -------------------------------------------------------------------------------
    def base_file(self, path: str) -> BaseFile | None:
        if path in self._touched or not self.ctx.full:
            return None
        if path not in self._base:
            try:
                t = self.ctx.base_text(path)
            except Exception:
                t = None
            self._base[path] = BaseFile(path, t, parsed=self.ctx.parsed) if t else None
        return self._base[path]

    def _hinted(self, src: Src) -> bool:
        """Does the file's text name an FGT write? Once per source object (the views of unchanged
        files are the same objects in every patch's Flow; the entry keeps the object, so its id)."""
        got = self._hints.get(id(src))
        if got is None or got[0] is not src:
            got = self._hints[id(src)] = (src, any(p in src.text for p in _HINT_PARTS)
                                          and _WRITE_HINT.search(src.text) is not None)
        return got[1]

    def write_sources(self) -> list[Src]:
        out = [s for s in self.sources if self._hinted(s)]
        for p in WRITE_PATHS:
            b = self.base_file(p)
            if b is not None and self._hinted(b):
                out.append(b)
        return out

    def _lookup_sources(self, src: Src) -> Iterator[Src]:
        yield src
        yield from (s for s in self.sources if s is not src)
        if not self.ctx.full:
            return
        cands = [c for inc in _INCLUDE.findall(src.text)
                 for c in (f"arch/arm64/include/{inc}", f"include/{inc}", src.path.rsplit("/", 1)[0] + "/" + inc)]
        seen = {src.path}
        for p in (*cands, *HELPER_PATHS):
            b = self.base_file(p) if p not in seen else None
            seen.add(p)
            if b is not None:
                yield b

    def _index(self, src: Src, table: str = "_fn_index") -> dict[str, list[Node]]:
        """`src`'s table of function definitions (_fn_index), object-like #defines (_def_index),
        file-scope constants (_const_index) or calls (_calls) by name. Each is built when first
        asked: the writes of most files never look a name up, and the call index is the costly one."""
        key = id(src)
        got = getattr(self, table).get(key)
        if got is not None:
            return got
        self._alive[key] = src
        root = src.root
        if table == "_fn_index":
            fns: dict[str, list[Node]] = {}
            for name, fn in functions(root):
                fns.setdefault(name, []).append(fn)
            self._fn_index[key] = fns
            return fns
        if table == "_calls":
            calls: dict[str, list[Node]] = {}
            for n in walk(root, _CALL):
                cn = call_name(n)
                if cn:
                    calls.setdefault(cn, []).append(n)
            self._calls[key] = calls
            return calls
        defs: dict[str, list[Node]] = {}
        consts: dict[str, list[Node]] = {}
        for n in walk(root, _DEF_DECL):
            if n.type == "preproc_def":
                name = text(n.child_by_field_name("name"))
                if name and n.child_by_field_name("value") is not None:
                    defs.setdefault(name, []).append(n)
            elif n.parent is not None and n.parent.type == "translation_unit" and "const" in text(n):
                for d in n.children_by_field_name("declarator"):
                    if d.type == "init_declarator":
                        consts.setdefault(_declared_name(d), []).append(d)
        self._def_index[key], self._const_index[key] = defs, consts
        return getattr(self, table)[key]

    def functions_named(self, name: str, src: Src) -> list[tuple[Src, Node]]:
        """Every definition of `name`: in the series files, else in the base candidates (all of
        them, so that a `return 0` stub in a header does not hide the real helper)."""
        got = self._functions_named(name, src)
        if self._deps is not None:
            self._deps[("fn", name, id(src), "")] = (src, got)
        return got

    def _functions_named(self, name: str, src: Src) -> list[tuple[Src, Node]]:
        series: list[tuple[Src, Node]] = []
        base: list[tuple[Src, Node]] = []
        for s in self._lookup_sources(src):
            hits = [(s, fn) for fn in self._index(s).get(name, ())]
            (base if isinstance(s, BaseFile) else series).extend(hits)
            if isinstance(s, BaseFile) and series:
                break
        return series or base

    def _symbol(self, name: str, src: Src, table: str) -> list[tuple[Src, Node]]:
        got = self._symbol_in(name, src, table)
        if self._deps is not None:
            self._deps[("sym", name, id(src), table)] = (src, got)
        return got

    def _symbol_in(self, name: str, src: Src, table: str) -> list[tuple[Src, Node]]:
        for s in self._lookup_sources(src):
            hits = self._index(s, table).get(name)
            if hits:
                return [(s, h) for h in hits]
        return []

    # -- resolving expressions -----------------------------------------------------------------
    def resolve(self, node: Node | None, src: Src, fn: Node | None, *, helpers: bool = True,
                depth: int = 0) -> Mask:
        """The FGT field constants an expression is made of."""
        node = strip(node)
        if node is None or depth > _MAX_DEPTH:
            return UNKNOWN
        t = node.type
        if t == "binary_expression":
            op = node.child_by_field_name("operator")
            if op is None or op.type != "|":
                return UNKNOWN
            return (self.resolve(node.child_by_field_name("left"), src, fn, helpers=helpers, depth=depth + 1)
                    | self.resolve(node.child_by_field_name("right"), src, fn, helpers=helpers,
                                   depth=depth + 1))
        if t == "conditional_expression":  # `cap ? MASK : 0`: whichever branch runs
            return (self.resolve(node.child_by_field_name("consequence"), src, fn, helpers=helpers,
                                 depth=depth + 1)
                    | self.resolve(node.child_by_field_name("alternative"), src, fn, helpers=helpers,
                                   depth=depth + 1))
        if t == "number_literal":
            return Mask([], text(node).rstrip("uUlL") in ("0", "0x0"))
        if t == "identifier":
            return self._identifier(node, src, fn, helpers, depth)
        if t == "call_expression" and helpers:
            name = call_name(node)
            return self._helper(name, src, depth) if name else UNKNOWN
        return UNKNOWN

    def _identifier(self, node: Node, src: Src, fn: Node | None, helpers: bool, depth: int) -> Mask:
        name = text(node)
        ref = self.kb.resolve_constant(name)
        if ref is not None:
            if ref.kind in ("field", "mask") and ref.field and self.kb.is_fgt_register(ref.register) \
                    and ref.mask:
                return Mask([Bit(name, ref.register, ref.field, ref.mask)])
            return UNKNOWN
        legacy = legacy_spelling(name)
        if legacy is not None:
            ref = self.kb.resolve_constant(legacy[1])
            if ref is not None and ref.kind in ("field", "mask") and ref.field and ref.mask \
                    and self.kb.is_fgt_register(ref.register):
                # Named after the shared layout, not a register: no cross-register claim on it.
                return Mask([Bit(name, legacy[0], ref.field, ref.mask, (), ref.register)])
            return UNKNOWN
        if fn is not None:
            local = self._local_value(name, fn)
            if local is not None:
                if local.type == "NOPE":
                    return UNKNOWN
                return self.resolve(local, src, fn, helpers=helpers, depth=depth + 1).via(
                    Hop("local", name, src, stmt_of(local)))
        for s, d in self._symbol(name, src, "_def_index"):
            val = self._define_value(d)
            if val is None:
                return UNKNOWN
            return self.resolve(val, s, None, helpers=helpers, depth=depth + 1).via(Hop("define", name, s, d))
        for s, d in self._symbol(name, src, "_const_index"):
            return self.resolve(d.child_by_field_name("value"), s, None, helpers=helpers,
                                depth=depth + 1).via(Hop("const", name, s, d))
        return UNKNOWN

    class _Nope:
        type = "NOPE"

    def _local_value(self, name: str, fn: Node) -> Any:
        """The initializer of a local assigned exactly once (a constant mask held in a variable);
        _Nope when the name is a parameter or a local changed elsewhere; None when not a local."""
        if name in _params(fn):
            return Flow._Nope()
        body = _body(fn)
        if body is None:
            return None
        init = None
        declared = False
        for d in self._nodes(fn, "locals"):
            if d.type == "init_declarator" and _declared_name(d) == name:
                declared, init = True, d.child_by_field_name("value")
            elif d.type == "declaration":
                if any(c.type == "identifier" and text(c) == name for c in d.children_by_field_name("declarator")):
                    declared = True
            elif d.type == "assignment_expression":
                left = strip(d.child_by_field_name("left"))
                if left is not None and left.type == "identifier" and text(left) == name:
                    return Flow._Nope()
            elif text(d.child_by_field_name("argument")) == name:
                return Flow._Nope()
        if not declared:
            return None
        return init if init is not None else Flow._Nope()

    @staticmethod
    def _define_value(d: Node) -> Node | None:
        raw = text(d.child_by_field_name("value")).replace("\\\n", " ")
        if not raw.strip():
            return None
        tree = parse(f"unsigned long __pmureview_v = {raw};".encode("utf-8", "surrogateescape"))
        init = next(walk(tree.root_node, {"init_declarator"}), None)
        val = init.child_by_field_name("value") if init is not None else None
        if val is None or any(n.type == "ERROR" for n in walk(val)):
            return None
        return val  # parsed on its own: only its identifiers matter, never its lines

    def _helper(self, name: str, src: Src, depth: int) -> Mask:
        """A helper whose single return is a constant FGT mask (one level: no helper calls inside)."""
        masks: list[Mask] = []
        for s, fn in self.functions_named(name, src):
            rets = list(walk(fn, {"return_statement"}))
            if len(rets) != 1:
                return UNKNOWN
            expr = next((c for c in rets[0].named_children if c.type != "comment"), None)
            m = self.resolve(expr, s, fn, helpers=False, depth=depth + 1)
            if not m.complete:
                return UNKNOWN
            if m.bits:  # stubs returning 0 do not count
                masks.append(m.via(Hop("helper", name, s, rets[0])))
        if not masks:
            return UNKNOWN
        names = {tuple(sorted(b.name for b in m.bits)) for m in masks}
        return masks[0] if len(names) == 1 else UNKNOWN

    def _nodes(self, fn: Node, what: str) -> list[Node]:
        """The nodes of `fn` that _local_value/_accumulator ("locals", in its body) or _function
        ("writes") look at. Every patch's Flow asks again for the functions of unchanged files (the
        same Node objects), so each function is walked once per run, for both lists at once."""
        found = self._walks.get((fn, what))
        if found is None:
            nodes = list(walk(fn, _READ))
            if fn.type != "function_definition":  # a fragment's loose statements only
                nodes = [n for n in nodes if not _in_function(n)]
            body = _body(fn)
            self._walks[(fn, "writes")] = [n for n in nodes if n.type in _WRITES]
            self._walks[(fn, "locals")] = [] if body is None else [
                n for n in nodes if n.type in _LOCALS and _under(n, body)]
            found = self._walks[(fn, what)]
        return found

    # -- finding writes ------------------------------------------------------------------------
    def contributions(self) -> Iterator[Contribution]:
        for src in self.write_sources():
            self._alive[id(src)] = src
            key = ("write-fns", id(src))  # src is kept alive (self._alive)
            fns = self._walks.get(key)
            if fns is None:
                fns = self._walks[key] = _hinted_functions(src.root)
            for fn in fns:
                yield from self._writes(src, fn)
            if not self.ctx.full and not isinstance(src, BaseFile):
                # Hunk-only: statements whose function header is above the hunk parse as loose
                # top-level statements; they are writes all the same.
                yield from self._writes(src, src.root)

    def _writes(self, src: Src, fn: Node) -> list[Contribution]:
        """`_function(src, fn)`, kept across the Flows of a run. What it finds depends only on the
        file, the function and what its lookups in the other files answer (helpers, #defines,
        constants, callers), so an earlier patch's result stands while every lookup it made answers
        the same: each patch re-reads only the functions of the files it changes (or that a changed
        file answers for), not every FGT writer of the series again."""
        key = (id(src), fn.type, fn.start_byte, fn.end_byte)
        got = self._done.get(key)
        if got is not None and got[0] is src and got[1] == fn and self._answers_same(got[3]):
            return got[2]
        saved, self._deps = self._deps, {}
        try:
            out = list(self._function(src, fn))
            deps = self._deps
        finally:
            self._deps = saved
        self._done[key] = (src, fn, out, deps)
        self._alive[id(src)] = src  # the key holds its id
        return out

    def _answers_same(self, deps: dict[tuple, tuple]) -> bool:
        """Do the lookups recorded by `_writes` answer now as they did (the same nodes of the same
        sources, the same caller registers)?"""
        for (kind, name, arg, table), (src, before) in deps.items():
            if kind == "callers":
                if self._caller_registers(name, arg) != before:
                    return False
                continue
            now = self._functions_named(name, src) if kind == "fn" else self._symbol_in(name, src, table)
            if len(now) != len(before) or any(a[0] is not b[0] or a[1] is not b[1]
                                              for a, b in zip(now, before, strict=True)):
                return False
        return True

    def _registers(self, arg: Node | None, src: Src, fn: Node, sys_prefix: bool = False) -> list[str]:
        """The FGT register(s) an argument names: a constant, or a parameter bound by the callers."""
        arg = strip(arg)
        if arg is None or arg.type != "identifier":
            return []
        name = text(arg)
        if sys_prefix:
            if not name.startswith("SYS_"):
                return []
            name = name[4:]
        if self.kb.is_fgt_register(name):
            return [name]
        params = _params(fn)
        if sys_prefix or name not in params:
            return []
        idx = params.index(name)
        fname = function_name(fn) or ""
        got = self._caller_registers(fname, idx)
        if self._deps is not None:
            self._deps[("callers", fname, idx, "")] = (None, got)
        return got

    def _caller_registers(self, fname: str, idx: int) -> list[str]:
        """The FGT register constants the callers of `fname` pass as its argument `idx`."""
        out: list[str] = []
        for s in self.sources + [b for b in (self.base_file(p) for p in WRITE_PATHS) if b is not None]:
            for call in self._index(s, "_calls").get(fname, ()):
                args = _args(call)
                a = strip(args[idx]) if idx < len(args) else None
                if a is not None and a.type == "identifier" and self.kb.is_fgt_register(text(a)) \
                        and text(a) not in out:
                    out.append(text(a))
        return out

    def _vcpu_fgt_target(self, node: Node | None, src: Src, fn: Node) -> list[str]:
        """Registers a `*vcpu_fgt(vcpu, R)` (or `*p`, p = vcpu_fgt(...)) lvalue designates."""
        node = strip(node)
        if node is None or node.type != "pointer_expression" or text(node.child_by_field_name("operator")) != "*":
            return []
        arg = strip(node.child_by_field_name("argument"))
        if arg is not None and arg.type == "identifier":
            local = self._local_value(text(arg), fn)
            arg = strip(local) if local is not None and local.type != "NOPE" else None
        if arg is None or arg.type != "call_expression" or call_name(arg) != "vcpu_fgt":
            return []
        args = _args(arg)
        if len(args) < 2:
            return []
        # A slot always holds an FGT value: when the register is a parameter whose callers are
        # out of sight (hunk-only), the constants written say which register it is.
        return self._registers(args[1], src, fn) or [ANY]

    def _function(self, src: Src, fn: Node) -> Iterator[Contribution]:
        """The writes of `fn`: where the FGT value is in sight (a vcpu_fgt() slot, a register write,
        a (clr, set) call), then the ones known only by what their target holds (a `set`/`clr`
        mask, a local read from or built on a whole FGT register) for statements not yet seen."""
        covered: set[tuple[int, int]] = set()
        for c in self._structural(src, fn):
            c.fn = fn
            covered.add((c.stmt.start_byte, c.stmt.end_byte))
            yield c
        for c in self._named(src, fn, covered):
            c.fn = fn
            yield c

    def _structural(self, src: Src, fn: Node) -> Iterator[Contribution]:
        for node in self._nodes(fn, "writes"):
            if node.type == "assignment_expression":
                regs = self._vcpu_fgt_target(node.child_by_field_name("left"), src, fn)
                if not regs:
                    continue
                op = node.child_by_field_name("operator")
                opt = op.type if op is not None else ""
                right = node.child_by_field_name("right")
                for reg in regs:
                    if opt == "|=":
                        yield from self._operand(right, SET, reg, src, fn, node, direct=True)
                    elif opt == "&=":
                        inv = _inverted(right)
                        if inv is not None:
                            yield from self._operand(inv, CLEAR, reg, src, fn, node, direct=True)
                    elif opt == "=":
                        yield from self._value(right, reg, src, fn, node, set())
                continue
            name = call_name(node)
            if not name or name == "vcpu_fgt":
                continue
            args = _args(node)
            if name in ("write_sysreg_s", "write_sysreg") and len(args) == 2:
                for reg in self._sys_registers(args[1], name == "write_sysreg", src, fn):
                    yield from self._value(args[0], reg, src, fn, node, set())
            elif name == "update_fgt_traps_cs" and len(args) == 6:
                for reg in self._registers(args[3], src, fn) or [ANY]:
                    yield from self._operand(args[4], CLEAR, reg, src, fn, node, direct=False)
                    yield from self._operand(args[5], SET, reg, src, fn, node, direct=False)
            elif name in ("sysreg_clear_set_s", "sysreg_clear_set") and len(args) == 3:
                for reg in self._sys_registers(args[0], name == "sysreg_clear_set", src, fn):
                    yield from self._operand(args[1], CLEAR, reg, src, fn, node, direct=False)
                    yield from self._operand(args[2], SET, reg, src, fn, node, direct=False)
            elif len(args) >= 2:
                yield from self._mask_call(name, args, src, fn, node)

    def _sys_registers(self, arg: Node | None, lower: bool, src: Src, fn: Node) -> list[str]:
        """The FGT register a `SYS_R` (or write_sysreg()'s lowercase `r`) argument names."""
        a = strip(arg)
        if a is None:
            return []
        rname = text(a)
        if lower and a.type == "identifier":
            rname = "SYS_" + rname.upper()
        return self._registers(_Named(rname), src, fn, sys_prefix=True)

    def _mask_call(self, name: str, args: list[Node], src: Src, fn: Node, call: Node,
                   ) -> Iterator[Contribution]:
        """A call passing (set, clr) masks of an FGT value: its callee's parameters are named like
        set/clr (`compute_pmu_fgt(vcpu, reg, u64 set, u64 clr)`), or its name says the order of the
        last two (`*_clear_set()`, `*_cs()`)."""
        if not any(_FGT_ARG.search(text(a)) or _SET_NAME.match(text(a)) or _CLR_NAME.match(text(a))
                   for a in args):
            return
        roles: dict[int, str] = {}
        for _s, d in self.functions_named(name, src)[:1]:
            applied = self._applied_params(d)
            for i, p in enumerate(_params(d)):
                if _SET_NAME.match(p or ""):
                    roles[i] = SET
                elif _CLR_NAME.match(p or ""):
                    roles[i] = CLEAR
                elif p in applied:
                    roles[i] = applied[p]
        if not roles and _CS_CALLEE.search(name):
            roles = {len(args) - 2: CLEAR, len(args) - 1: SET}
        elif not roles and _SC_CALLEE.search(name):
            roles = {len(args) - 2: SET, len(args) - 1: CLEAR}
        if not roles:
            return
        regs: list[str] = []
        for i, a in enumerate(args):
            if i in roles:
                continue
            a = strip(a)
            if a is not None and a.type == "identifier":
                n = text(a)
                r = n[4:] if n.startswith("SYS_") else n
                if self.kb.is_fgt_register(r):
                    regs.append(r)
        for reg in regs[:1] or [ANY]:
            for i, op in sorted(roles.items()):
                if i < len(args):
                    yield from self._operand(args[i], op, reg, src, fn, call, direct=False)

    def _applied_params(self, fn: Node) -> dict[str, str]:
        """Parameters a helper applies to a vcpu_fgt() slot: `*vcpu_fgt(vcpu, reg) |= bits` makes
        `bits` a set mask, `&= ~bits` a clear mask, whatever their names."""
        params = set(_params(fn))
        out: dict[str, str] = {}
        for node in self._nodes(fn, "writes"):
            if node.type != "assignment_expression":
                continue
            left = strip(node.child_by_field_name("left"))
            if left is None or left.type != "pointer_expression" or "vcpu_fgt" not in text(left):
                continue
            op = node.child_by_field_name("operator")
            right = node.child_by_field_name("right")
            opt = op.type if op is not None else ""
            val = strip(right if opt == "|=" else _inverted(right) if opt == "&=" else None)
            if val is not None and val.type == "identifier" and text(val) in params:
                out.setdefault(text(val), SET if opt == "|=" else CLEAR)
        return out

    def _named(self, src: Src, fn: Node, covered: set[tuple[int, int]]) -> Iterator[Contribution]:
        """`r_set |= X`, `clr |= X`, and `|=` / `&= ~` on a local holding an FGT value (read with
        read_sysreg_s(SYS_R), or built on `__R_nMASK` / `m->nmask`), where the write that uses them
        is out of sight (hunk-only) or in a form not followed above."""
        values: dict[str, str] = {}
        for d in self._nodes(fn, "locals"):
            name, val = _assigned(d)
            if name and val is not None and name not in values:
                reg = self._value_register(val, src, fn)
                if reg:
                    values[name] = reg
        for d in self._nodes(fn, "locals"):
            name, val = _assigned(d)
            opt = "="
            if d.type == "assignment_expression":
                op = d.child_by_field_name("operator")
                opt = op.type if op is not None else ""
                if opt != "=":
                    left = strip(d.child_by_field_name("left"))
                    name = text(left) if left is not None and left.type == "identifier" else None
                    val = d.child_by_field_name("right")
            if not name or val is None:
                continue
            expr: Node | None = None
            if name in values and opt in ("|=", "&="):
                reg = values[name]
                kind = SET if opt == "|=" else CLEAR
                expr = val if opt == "|=" else _inverted(val)
            elif opt in ("|=", "=") and (_SET_NAME.match(name) or _CLR_NAME.match(name)):
                reg, kind, expr = ANY, SET if _SET_NAME.match(name) else CLEAR, val
            if expr is None:
                continue
            stmt = stmt_of(d)
            if (stmt.start_byte, stmt.end_byte) in covered:
                continue
            m = self.resolve(expr, src, fn)
            if m.bits:
                yield Contribution(src, stmt, reg, kind, m, False, fn, True)

    def _value_register(self, val: Node, src: Src, fn: Node) -> str | None:
        """The FGT register whose whole value `val` is: `read_sysreg_s(SYS_R)`, an expression on
        `__R_nMASK`, or `m->nmask` (register not named: ANY)."""
        v = strip(val)
        if v is None:
            return None
        if v.type == "call_expression" and call_name(v) in ("read_sysreg_s", "read_sysreg"):
            args = _args(v)
            regs = self._sys_registers(args[0], call_name(v) == "read_sysreg", src, fn) if args else []
            return regs[0] if regs else None
        for n in walk(v, {"identifier", "field_identifier"}):
            t = text(n)
            if n.type == "field_identifier":
                if t == "nmask":
                    return ANY
                continue
            w = whole_register_mask(t)
            if w is not None and w[1] == "nMASK":
                return w[0]
        return None

    def _operand(self, expr: Node | None, op: str, reg: str, src: Src, fn: Node, stmt: Node, *,
                 direct: bool) -> Iterator[Contribution]:
        """`X` of `|= X` / `&= ~X` / a set/clr argument; a local accumulator is followed to its `|=`s."""
        e = strip(expr)
        if e is not None and e.type == "identifier":
            acc = list(self._accumulator(text(e), fn))
            if acc:
                for s, val in acc:
                    if s == "init" or s == "|=":
                        yield Contribution(src, stmt_of(val), reg, op, self.resolve(val, src, fn), direct)
                return
        yield Contribution(src, stmt_of(stmt), reg, op, self.resolve(expr, src, fn), direct)

    def _accumulator(self, name: str, fn: Node) -> Iterator[tuple[str, Node]]:
        """For a local changed by `|=` (a set/clr accumulator or a register value): its pieces."""
        if name in _params(fn):
            return
        body = _body(fn)
        if body is None:
            return
        pieces: list[tuple[str, Node]] = []
        changed = False
        for d in self._nodes(fn, "locals"):
            if d.type not in ("init_declarator", "assignment_expression"):
                continue
            if d.type == "init_declarator":
                if _declared_name(d) == name and d.child_by_field_name("value") is not None:
                    pieces.append(("init", d.child_by_field_name("value")))
                continue
            left = strip(d.child_by_field_name("left"))
            if left is None or left.type != "identifier" or text(left) != name:
                continue
            op = d.child_by_field_name("operator")
            opt = op.type if op is not None else ""
            right = d.child_by_field_name("right")
            if right is None:
                continue
            if opt == "|=":
                changed = True
                pieces.append(("|=", right))
            elif opt == "&=":
                changed = True
                inv = _inverted(right)
                if inv is not None:
                    pieces.append(("&=~", inv))
            elif opt == "=":
                pieces.append(("init", right))
        if changed:
            yield from pieces

    def _value(self, expr: Node | None, reg: str, src: Src, fn: Node, stmt: Node,
               seen: set[str]) -> Iterator[Contribution]:
        """A whole value stored to R: constants OR-ed in are sets, `& ~C` are clears, a pure
        constant is a store; a local holding the value is followed to its `|=` / `&= ~`."""
        e = strip(expr)
        if e is None:
            return
        if e.type == "identifier" and text(e) not in seen and self.kb.resolve_constant(text(e)) is None:
            name = text(e)
            pieces = list(self._accumulator(name, fn))
            if pieces:
                for kind, val in pieces:
                    if kind == "init":
                        yield from self._value(val, reg, src, fn, val, seen | {name})
                    else:
                        yield Contribution(src, stmt_of(val), reg, SET if kind == "|=" else CLEAR,
                                           self.resolve(val, src, fn), False)
                return
        m = self.resolve(e, src, fn)
        if m.complete:
            if m.bits:
                yield Contribution(src, stmt_of(stmt), reg, STORE, m, False)
            return
        if e.type == "binary_expression":
            op = e.child_by_field_name("operator")
            left, right = e.child_by_field_name("left"), e.child_by_field_name("right")
            if op is not None and op.type == "|":
                for side in (left, right):
                    sm = self.resolve(side, src, fn)
                    if sm.complete and sm.bits:
                        yield Contribution(src, stmt_of(stmt), reg, SET, sm, False)
                    elif not sm.complete:
                        yield from self._value(side, reg, src, fn, stmt, seen)
            elif op is not None and op.type == "&":
                inv = _inverted(right)
                if inv is not None:
                    yield Contribution(src, stmt_of(stmt), reg, CLEAR, self.resolve(inv, src, fn), False)
                    yield from self._value(left, reg, src, fn, stmt, seen)


def _hinted_functions(root: Node) -> list[Node]:
    """The functions of a tree whose text matches _WRITE_HINT, searching only those in which one
    of _HINT_PARTS occurs (most functions of a large file hold none)."""
    data, base = root.text or b"", root.start_byte  # the root's text starts at its first byte
    spots: list[tuple[int, int]] = []  # (start, end) of each occurrence of a part, by start
    for part in _HINT_PARTS:
        b = part.encode()
        i = data.find(b)
        while i >= 0:
            spots.append((i, i + len(b)))
            i = data.find(b, i + 1)
    spots.sort()
    starts = [a for a, _ in spots]
    out = []
    for _name, fn in functions(root):
        s, e = fn.start_byte - base, fn.end_byte - base
        k = bisect_left(starts, s)
        while k < len(spots) and spots[k][0] < e:
            if spots[k][1] <= e:
                if _WRITE_HINT.search(text(fn)):
                    out.append(fn)
                break
            k += 1
    return out


def _body(fn: Node) -> Node | None:
    """A function's body, or the translation unit itself for a fragment's loose statements."""
    return fn.child_by_field_name("body") if fn.type == "function_definition" else fn


def _under(node: Node, top: Node) -> bool:
    """`node` is `top` or inside it (a node of a walk of `top`'s parent): by its bytes, which only
    a zero-width node at an edge leaves open."""
    if node.start_byte < top.start_byte or node.end_byte > top.end_byte:
        return False
    if node.start_byte != node.end_byte or top.start_byte < node.start_byte < top.end_byte:
        return True
    n: Node | None = node
    while n is not None and n != top:
        n = n.parent
    return n is not None


def _in_function(node: Node) -> bool:
    n = node.parent
    while n is not None:
        if n.type == "function_definition":
            return True
        n = n.parent
    return False


def _assigned(d: Node) -> tuple[str | None, Node | None]:
    """(name, value) of `T name = value` or `name = value`; (None, None) otherwise."""
    if d.type == "init_declarator":
        return _declared_name(d), d.child_by_field_name("value")
    if d.type == "assignment_expression":
        op = d.child_by_field_name("operator")
        left = strip(d.child_by_field_name("left"))
        if op is not None and op.type == "=" and left is not None and left.type == "identifier":
            return text(left), d.child_by_field_name("right")
    return None, None


def _inverted(node: Node | None) -> Node | None:
    """X of `~X` (through parentheses), else None."""
    n = strip(node)
    if n is not None and n.type == "unary_expression" and text(n.child_by_field_name("operator")) == "~":
        return n.child_by_field_name("argument")
    return None


class _Named:
    """A stand-in identifier node (write_sysreg()'s lowercase register argument, upper-cased)."""

    type = "identifier"

    def __init__(self, name: str) -> None:
        self.text = name.encode()


# -- facts used by both rules -------------------------------------------------------------------

def anchor_line(src: Src, node: Node) -> int | None:
    """The line of `node` a finding goes on when the node is new in `src`'s patch."""
    start = node.start_point[0] + 1
    if start in src.added:
        return start
    return next((n for n in range(start, node.end_point[0] + 2) if n in src.added), None)


def target_field(kb: Any, register: str, bit: Bit) -> tuple[str | None, int]:
    """(field of `register` at the constant's lowest bit or None when RES0/unknown, that bit)."""
    low = (bit.mask & -bit.mask).bit_length() - 1
    fr = kb.fgt_register(register)
    return (fr.field_at(low) if fr is not None else None), low


def controlled(field_name: str) -> str:
    """The register a trap field controls: nPMICNTR_EL0 -> PMICNTR_EL0."""
    return field_name[1:] if re.match(r"n[A-Z]", field_name) else field_name


def names(items: list[str]) -> str:
    items = list(dict.fromkeys(items))
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]


def through(bits: list[Bit]) -> str | None:
    """The outermost helper or #define the bits came through (for messages)."""
    for b in bits:
        for h in b.hops:
            if h.kind == "helper":
                return f"{h.name}()"
            if h.kind in ("define", "const"):
                return h.name
    return None


# -- the context of a write: whose value it is, and the feature checks it sits under -------------

_SECTION_FN = lazy_re(r"(\w+)\s*\(")
# Functions that hand the registers back to the host (exit path): setting a negative bit there
# restores the host's untrapped state, it does not untrap anything for a guest.
_HOST_SIDE = lazy_re(r"deactivate|restore|host|(?:^|_)put(?:_|$)|(?:^|_)exit(?:_|$)", re.I)
_CAP_CALLS = ("cpus_have_final_cap", "cpus_have_cap", "cpus_have_const_cap", "this_cpu_has_cap",
              "alternative_has_cap_likely", "alternative_has_cap_unlikely")
_FEAT_CALLS = ("kvm_has_feat", "kvm_has_feat_enum", "__kvm_has_feat", "kvm_has_feat_range")
_HAS_PREFIX = lazy_re(r"^(?:kvm_has|system_supports|vcpu_has|kvm_vcpu_has|cpu_has)_(\w+)$")


def enclosing_name(src: Src, fn: Node | None, node: Node | None) -> str | None:
    """The function a write is in: its definition, or (a hunk-only fragment whose header is above
    the hunk) the function named in the hunk's `@@ ... @@ section`."""
    if fn is not None and fn.type == "function_definition":
        return function_name(fn)
    change = getattr(src, "change", None)
    if node is None or change is None:
        return None
    line = node.start_point[0] + 1
    for h in getattr(change, "hunks", ()):
        if h.new_start <= line < h.new_start + max(h.new_len, 1):
            m = _SECTION_FN.search(h.section or "")
            return m.group(1) if m else None
    return None


def host_side(src: Src, fn: Node | None, node: Node | None) -> bool:
    name = enclosing_name(src, fn, node)
    return bool(name and _HOST_SIDE.search(name))


def gate_features(node: Node | None, fn: Node | None) -> list[str]:
    """Features a statement is conditional on having: `if (kvm_has_feat(kvm, R, GCS, IMP))`,
    `cpus_have_final_cap(ARM64_HAS_X)`, `kvm_has_x()`... in the `if` branch, not negated; or an
    earlier `if (!kvm_has_feat(...)) return;` in an enclosing block."""
    out: list[str] = []
    n = node
    while n is not None and n != fn and n.parent is not None:
        parent = n.parent
        if parent.type == "if_statement" and parent.child_by_field_name("consequence") == n:
            cond = parent.child_by_field_name("condition")
            for call in walk(cond, {"call_expression"}) if cond is not None else ():
                f = None if _negated(call, cond) else _feature_of(call)
                if f:
                    out.append(f)
        if parent.type in ("compound_statement", "translation_unit", "ERROR"):
            # `if (!kvm_has_feat(...)) return;` earlier in the block (or the hunk-only fragment):
            # the rest runs with the feature.
            prev = n.prev_named_sibling
            while prev is not None:
                if prev.type == "if_statement" and prev.child_by_field_name("alternative") is None:
                    body = prev.child_by_field_name("consequence")
                    body_text = text(body).strip("{} \t\n;") if body is not None else ""
                    cond = prev.child_by_field_name("condition")
                    if body_text.startswith("return") and cond is not None:
                        out += _early_exit_features(cond)
                prev = prev.prev_named_sibling
        n = parent
    return out


def _feature_of(call: Node) -> str | None:
    name = call_name(call) or ""
    args = _args(call)
    if name in _FEAT_CALLS and len(args) >= 3:
        return text(args[2])
    if name in _CAP_CALLS and args:
        return text(args[0])
    m = _HAS_PREFIX.match(name)
    return m.group(1) if m and m.group(1) != "feat" else None


def _early_exit_features(cond: Node) -> list[str]:
    """`if (!feature) return;`: the features that must be present past it (a lone negated check,
    or negated checks joined by ||)."""
    c = strip(cond)
    parts: list[Node] = []
    stack = [c] if c is not None else []
    while stack:
        x = strip(stack.pop())
        if x is None:
            continue
        if x.type == "binary_expression" and text(x.child_by_field_name("operator")) == "||":
            stack += [x.child_by_field_name("left"), x.child_by_field_name("right")]
        else:
            parts.append(x)
    out: list[str] = []
    for x in parts:
        if x.type == "unary_expression" and text(x.child_by_field_name("operator")) == "!":
            inner = strip(x.child_by_field_name("argument"))
            if inner is not None and inner.type == "call_expression":
                f = _feature_of(inner)
                if f:
                    out.append(f)
    return out


def _negated(node: Node, top: Node) -> bool:
    n = node
    while n is not None and n != top:
        if n.type == "unary_expression" and text(n.child_by_field_name("operator")) == "!":
            return True
        n = n.parent
    return False


# -- grouping per finding ------------------------------------------------------------------------

@dataclass(eq=False)
class Group:
    """Constants one statement writes into one register: what a finding is about."""

    src: Src  # the FileView the finding goes on
    line: int
    register: str
    op: str
    bits: list[Bit]
    direct: bool
    primary: bool  # on the writing statement (else on the helper/#define the bits come through)
    writer: str = ""  # where the value is applied, for messages on a helper ("config.c:98")
    stmt: Node | None = None  # the writing statement (for the conditions it sits under)
    fn: Node | None = None  # the function it is in
    named: bool = False  # known by its target's set/clr name only (the write is out of sight)


@dataclass(eq=False)
class MaskSite:
    """A helper/#define/constant expression some FGT write uses, and the bits it holds."""

    src: Src
    line: int
    name: str
    kind: str
    bits: list[Bit]


def _is_view_of(src: Src, number: int) -> bool:
    return not isinstance(src, BaseFile) and src.patch is not None and src.patch.number == number


def analyse(ctx: SeriesContext) -> tuple[list[Group], list[MaskSite]]:
    """Every (statement, register, op) of the series that writes FGT constants, anchored on the
    patch that makes it new; cached on the context (both FGT rules use it)."""
    cached = getattr(ctx, "_pmureview_fgtflow", None)
    if cached is not None:
        return cached
    groups: dict[tuple, Group] = {}
    masks: dict[tuple, MaskSite] = {}
    for patch in ctx.patches:
        n = patch.number
        if not ctx.patch_views(n):
            continue
        flow = Flow(ctx, n)
        for c in flow.contributions():
            if not c.mask.bits:
                continue
            stmt_line = anchor_line(c.src, c.stmt) if _is_view_of(c.src, n) else None
            writer = f"{c.src.path.rsplit('/', 1)[-1]}:{c.stmt.start_point[0] + 1}"
            for b in c.mask.bits:
                register = b.home if c.register == ANY else c.register
                where: tuple[Src, int, bool] | None = (c.src, stmt_line, True) if stmt_line else None
                extra: list[tuple[Src, int]] = []
                for h in b.hops:
                    if isinstance(h.src, BaseFile) or h.kind == "local":
                        continue
                    hl = anchor_line(h.src, h.node)
                    if hl is None:
                        continue
                    if where is None and _is_view_of(h.src, n):
                        where = (h.src, hl, False)
                    elif where is not None and where[2] and h.kind == "helper" and not _is_view_of(h.src, n):
                        extra.append((h.src, hl))  # the helper came in an earlier patch: say it there too
                    key = (id(h.src), hl, h.name)
                    ms = masks.setdefault(key, MaskSite(h.src, hl, h.name, h.kind, []))
                    if all(x.name != b.name for x in ms.bits):
                        ms.bits.append(b)
                if where is None:
                    continue
                for src, line, primary in [where, *((s, ln, False) for s, ln in extra)]:
                    key = (id(src), line, register, c.op)
                    g = groups.get(key)
                    if g is None:
                        g = groups[key] = Group(src, line, register, c.op, [], c.direct, primary,
                                                "" if primary else writer, c.stmt, c.fn, c.named)
                    if all(x.name != b.name for x in g.bits):
                        g.bits.append(b)
    out = (list(groups.values()), list(masks.values()))
    with contextlib.suppress(AttributeError):
        ctx._pmureview_fgtflow = out  # type: ignore[attr-defined]
    return out
