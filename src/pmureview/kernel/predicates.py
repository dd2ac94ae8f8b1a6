"""Predicate classifier of DOMAIN-PACK2 §1.2: is a condition per-VM, host-only, or unknown?

Per-VM predicates test the VM's configuration (kvm_has_feat(), vcpu_has_feature(), per-VM flags);
host-only ones test the machine (cpus_have_final_cap(), system_supports_*(), has_vhe(), ...). A
helper or macro is resolved through its body (one or two levels: the series' post-images, the base
files listed in HELPER_FILES, then the bundled table); one that cannot be resolved is unknown, and
an unknown condition keeps the rules that use this module silent. "Host && per-VM" is per-VM.

Used by kvmarm/sysreg-visibility-not-per-vm, guest-state-host-cap-only and
unconditional-guest-feature-enable; `path_conditions()` gives the conditions on a statement's path
(enclosing ifs and earlier early returns) for all three.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator
from functools import cache
from typing import TYPE_CHECKING, Any

from pmureview.lazyre import lazy_re

from ..lang.c import call_name, functions, parse, text, walk
from ..record import dataclass, field

if TYPE_CHECKING:
    from tree_sitter import Node

PER_VM = "per-vm"
HOST = "host"
UNKNOWN = "unknown"
NONE = "none"  # constants, numbers: no predicate at all

# headers where the helpers of §1.2 live (read from the base tree when there is one)
HELPER_FILES = (
    "arch/arm64/include/asm/kvm_host.h",
    "arch/arm64/include/asm/kvm_emulate.h",
    "arch/arm64/include/asm/kvm_nested.h",
    "arch/arm64/include/asm/cpufeature.h",
    "arch/arm64/kvm/hyp/include/hyp/sysreg-sr.h",
    "arch/arm64/kvm/hyp/include/hyp/switch.h",
    "arch/arm64/kvm/sys_regs.c",
)

Reader = Callable[[str], str | None]


@cache
def gating_data() -> dict[str, Any]:
    """The bundled facts of the pack-2 gating rules (src/pmureview/kernel/data/pack2-gating.json)."""
    try:
        # a plain str path: importlib.resources (and pathlib) cost milliseconds of import on the hook path
        import os

        with open(os.path.join(os.path.dirname(__file__), "data", "pack2-gating.json"), encoding="utf-8") as f:
            import json  # here: the hook path imports json only when it reads a data file
            return json.loads(f.read())
    except (OSError, ValueError):
        return {}


@dataclass(frozen=True)
class Lists:
    per_vm: frozenset[str]
    host: frozenset[str]
    host_prefixes: tuple[str, ...]
    transparent: frozenset[str]
    helpers: dict[str, str]  # bundled classification of named helpers (kvm_has_mte -> per-vm)


@cache
def lists() -> Lists:
    p = gating_data().get("predicates", {})
    return Lists(
        per_vm=frozenset(p.get("per_vm", ())),
        host=frozenset(p.get("host", ())),
        host_prefixes=tuple(p.get("host_prefixes", ())),
        transparent=frozenset(p.get("transparent", ())),
        helpers={k: v["class"] for k, v in p.get("helpers", {}).items()},
    )


# -- helper bodies -------------------------------------------------------------------------------

_DEFINE = lazy_re(r"^[ \t]*#[ \t]*define[ \t]+([A-Za-z_]\w*)\(([^)]*)\)((?:[^\n]*\\\n)*[^\n]*)", re.M)


def _defines(c_text: str) -> Iterator[re.Match[str]]:
    """_DEFINE.finditer(c_text), tried only at the starts of lines holding `define` (a pattern starting
    with ^ is tried at every position of a kernel file): the same matches, since each one starts a
    line with `#define`, and one starting inside the previous match is skipped as finditer does."""
    end = 0
    at = c_text.find("define")
    while at >= 0:
        start = c_text.rfind("\n", 0, at) + 1
        if start >= end:
            m = _DEFINE.match(c_text, start)
            if m is not None:
                yield m
                end = m.end()
            else:
                end = start + 1  # this line holds no match: its other `define`s neither
        nxt = c_text.find("\n", at)
        at = c_text.find("define", nxt) if nxt >= 0 else -1


class _Body:
    """A function's condition/return expressions, read from its node on first use: most helpers of
    the scanned headers are never looked up, and walking every body was most of helpers_for()."""

    __slots__ = ("exprs", "fn")

    def __init__(self, fn: Node) -> None:
        self.fn = fn
        self.exprs: list[str] | None = None

    def get(self) -> list[str]:
        if self.exprs is None:
            exprs: list[str] = []
            for n in walk(self.fn.child_by_field_name("body"), {"if_statement", "return_statement"}):
                if n.type == "if_statement":
                    c = n.child_by_field_name("condition")
                    if c is not None:
                        exprs.append(text(c))
                elif n.named_child_count:
                    exprs.append(text(n.named_children[0]))
            self.exprs = exprs
            self.fn = None  # type: ignore[assignment]  # drop the tree reference
        return self.exprs


def _value(v: Any) -> Any:
    return v.get() if isinstance(v, _Body) else v


class _Bodies(dict):
    """name -> expression texts; function bodies are resolved lazily (see _Body)."""

    def __getitem__(self, name: str) -> list[str]:
        return _value(dict.__getitem__(self, name))

    def get(self, name: str, default: Any = None) -> Any:
        return _value(dict.get(self, name, default))

    def values(self):  # type: ignore[override]
        return [_value(v) for v in dict.values(self)]

    def items(self):  # type: ignore[override]
        return [(k, _value(v)) for k, v in dict.items(self)]


@dataclass
class Helpers:
    """Bodies of functions (their condition and return expressions) and function-like macros."""

    bodies: dict[str, list[str]] = field(default_factory=_Bodies)  # name -> expression texts

    def add_text(self, c_text: str, *, override: bool = True, root: Node | None = None,
                 cache: dict | None = None, parsed: Callable[[str], Any] | None = None) -> None:
        """parsed: the run's shared parser of base texts (SeriesContext.parsed), used when no root."""
        for name, exprs in _scan(c_text, root, cache, parsed).items():
            if override or name not in self.bodies:
                dict.__setitem__(self.bodies, name, exprs)


def _scan_tree(c_text: str, root: Node | None, parsed: Callable[[str], Any] | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for m in _defines(c_text):
        body = m.group(3).replace("\\\n", " ").strip()
        if body:
            out[m.group(1)] = [body]
    if root is None:
        try:
            root = (parsed(c_text) if parsed is not None
                    else parse(c_text.encode("utf-8", "surrogateescape"))).root_node
        except Exception:
            return out
    for name, fn in functions(root):  # cached per tree, shared with the rules listing functions
        if fn.child_by_field_name("body") is not None:
            out[name] = _Body(fn)
    return out


def _scan(c_text: str, root: Node | None = None, cache: dict | None = None,
          parsed: Callable[[str], Any] | None = None) -> dict[str, Any]:
    if cache is None:
        return _scan_tree(c_text, root, parsed)
    # keyed by the text itself (the views hold it anyway): no hashlib on the hook path
    got = cache.get(c_text)
    if got is None:
        # a base file (no tree handed in): its helpers are kept on disk by content, since every hook
        # process of a series reads the same base headers (~5 ms a parse and scan each)
        got = _scan_from_disk(c_text) if root is None else None
        if got is None:
            got = _scan_tree(c_text, root, parsed)
            if root is None:
                _scan_to_disk(c_text, got)
        cache[c_text] = got
    return got


def _scan_file(c_text: str) -> str:
    from ..cachefile import code_stamp, content_cache_file, content_key

    # the scan's own code: a changed scanner never reads old results
    return content_cache_file("helpers", f"{content_key(c_text)}-{code_stamp([__file__])}")


def _scan_from_disk(c_text: str) -> dict[str, Any] | None:
    from ..cachefile import read_marshal

    got = read_marshal(_scan_file(c_text))
    return got if isinstance(got, dict) else None


def _scan_to_disk(c_text: str, found: dict[str, Any]) -> None:
    from ..cachefile import write_content

    write_content(_scan_file(c_text), {name: list(_value(v)) for name, v in found.items()})


def helpers_for(series: Any, upto: int | None = None) -> Helpers:
    """Helper bodies from the base files (when there is a base) and the series' post-images."""
    memo = getattr(series, "memo", None)
    if memo is not None:
        # the same per run for every rule and file of patch `upto` (Classifier only reads it)
        return memo(("predicates.helpers_for", upto), lambda: _helpers_for(series, upto))
    return _helpers_for(series, upto)


def _helpers_for(series: Any, upto: int | None) -> Helpers:
    h = Helpers()
    # scans shared by every patch's helpers_for() of this run (the same headers and post-images)
    memo = getattr(series, "memo", None)
    cache = memo(("predicates.scan",), dict) if memo is not None else None
    parsed = getattr(series, "parsed", None)  # base files parsed once per run, shared with the rules
    reader: Reader | None = getattr(series, "base_reader", None)
    if reader is not None:
        for path in HELPER_FILES:
            try:
                t = reader(path)
            except Exception:
                t = None
            if t:
                h.add_text(t, cache=cache, parsed=parsed)
    for v in series.all_views():
        if upto is not None and v.patch.number > upto:
            continue
        if v.is_c and v.text.strip():
            h.add_text(v.text, root=v.root, cache=cache)  # the view's own tree: no second parse
    return h


# -- classification ------------------------------------------------------------------------------

def _combine(classes: Iterable[str]) -> str:
    cs = set(classes)
    if PER_VM in cs:
        return PER_VM
    if UNKNOWN in cs:
        return UNKNOWN
    if HOST in cs:
        return HOST
    return NONE


class Classifier:
    def __init__(self, helpers: Helpers | None = None) -> None:
        self.helpers = helpers or Helpers()
        self.lists = lists()
        self._memo: dict[str, str] = {}

    def classify_text(self, expr: str, depth: int = 2) -> str:
        key = f"{depth}\0{expr}"
        if key not in self._memo:
            self._memo[key] = UNKNOWN  # recursion guard
            root = parse(f"int __pmr = ({expr});".encode("utf-8", "surrogateescape")).root_node
            init = next(walk(root, {"init_declarator"}), None)
            value = init.child_by_field_name("value") if init is not None else None
            self._memo[key] = self.classify(value, depth) if value is not None else UNKNOWN
        return self._memo[key]

    def classify(self, node: Node | None, depth: int = 2) -> str:
        """The class of an expression node."""
        if node is None:
            return NONE
        t = node.type
        if t in ("parenthesized_expression", "unary_expression", "cast_expression"):
            return _combine(self.classify(c, depth) for c in node.named_children
                            if c.type != "type_descriptor")
        if t == "binary_expression":
            return _combine(self.classify(c, depth) for c in node.named_children)
        if t == "conditional_expression":
            return _combine(self.classify(c, depth) for c in node.named_children)
        if t in ("number_literal", "true", "false", "null", "char_literal", "string_literal",
                 "sizeof_expression", "comment"):
            return NONE
        if t == "identifier":
            name = text(node)
            # UPPER_CASE constants are values, not predicates; lower-case names are variables or
            # object-like macros we cannot see through
            return NONE if name.isupper() or name in ("true", "false") else self._name(name, depth)
        if t == "call_expression":
            return self._call(node, depth)
        if t == "ERROR":
            return UNKNOWN
        return UNKNOWN

    def _call(self, call: Node, depth: int) -> str:
        name = call_name(call)
        args = call.child_by_field_name("arguments")
        if name is None:
            return UNKNOWN
        ls = self.lists
        if name in ls.per_vm:
            return PER_VM
        if name == "test_bit" and args is not None and "KVM_ARCH_FLAG_" in text(args):
            return PER_VM
        if name in ls.host or name.startswith(ls.host_prefixes):
            return HOST
        if name in ls.transparent and args is not None:
            return _combine(self.classify(a, depth) for a in args.named_children)
        return self._name(name, depth)

    def _name(self, name: str, depth: int) -> str:
        body = self.helpers.bodies.get(name)
        if body is not None and depth > 0:
            got = _combine(self.classify_text(e, depth - 1) for e in body) if body else NONE
            if got != NONE:
                return got
        return self.lists.helpers.get(name, UNKNOWN)


# -- conditions on a statement's path ------------------------------------------------------------

_EXITS = ("return_statement", "goto_statement")


def _exits(stmt: Node) -> bool:
    """Does this statement (an if's consequence) always leave the function?"""
    if stmt.type in _EXITS:
        return True
    if stmt.type == "compound_statement":
        kids = [c for c in stmt.named_children if c.type != "comment"]
        return bool(kids) and kids[-1].type in _EXITS
    return False


def path_conditions(node: Node) -> list[Node]:
    """The condition nodes a statement depends on: enclosing if/?: conditions and the conditions of
    earlier `if (...) return/goto` statements of the enclosing blocks, up to the function."""
    conds: list[Node] = []
    child = node
    parent = node.parent
    while parent is not None and parent.type != "function_definition":
        if parent.type == "if_statement":
            cond = parent.child_by_field_name("condition")
            if cond is not None and child != cond:
                conds.append(cond)
        elif parent.type == "else_clause":
            pass  # handled when we reach its if_statement
        elif parent.type == "conditional_expression":
            cond = parent.child_by_field_name("condition")
            if cond is not None and child != cond:
                conds.append(cond)
        elif parent.type == "compound_statement":
            for sib in parent.named_children:
                if sib == child:
                    break
                if sib.type == "if_statement" and sib.child_by_field_name("alternative") is None:
                    cons = sib.child_by_field_name("consequence")
                    cond = sib.child_by_field_name("condition")
                    if cons is not None and cond is not None and _exits(cons):
                        conds.append(cond)
        child = parent
        parent = parent.parent
    return conds


def classify_path(clf: Classifier, node: Node) -> tuple[str, list[Node]]:
    """(class of the whole path, the host-only conditions on it)."""
    conds = path_conditions(node)
    classes = [(c, clf.classify(c)) for c in conds]
    return _combine(k for _, k in classes), [c for c, k in classes if k == HOST]


def cond_text(cond: Node) -> str:
    """A condition as one line without its outer parentheses (for messages)."""
    t = " ".join(text(cond).split())
    while t.startswith("(") and t.endswith(")"):
        inner = t[1:-1]
        depth = 0
        for ch in inner:
            depth += (ch == "(") - (ch == ")")
            if depth < 0:
                return t
        t = inner.strip()
    return t
