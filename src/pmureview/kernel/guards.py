"""Capability guards, capability-testing predicates and capability implications.

A guard is a point in a function after which a capability is known to hold because the function
returned early without it (`if (!cpus_have_final_cap(ARM64_HAS_FGT)) return;`), or a block that only
runs with it (`if (cpus_have_final_cap(ARM64_HAS_GICV5_CPUIF)) { ... }`). Rules use them to tell that
a later re-check of the same capability is redundant (DOMAIN.md §5 rules 4 and 5).

Capability names: host capabilities keep their kernel name (ARM64_HAS_FGT); per-VM feature checks are
normalised to `kvm_has_feat(REG, FIELD, MIN)` (the kvm argument dropped); a `system_supports_x()` or
other predicate whose body is unknown stands for itself as `system_supports_x()`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from typing import TYPE_CHECKING

from pmureview.lazyre import lazy_re

from ..record import dataclass

if TYPE_CHECKING:
    from tree_sitter import Node

CAP_CALLS = frozenset({
    "cpus_have_final_cap", "cpus_have_cap", "cpus_have_final_boot_cap", "this_cpu_has_cap",
    "alternative_has_cap_likely", "alternative_has_cap_unlikely",
})
FEAT_CALLS = frozenset({"kvm_has_feat", "kvm_has_feat_enum"})

FUNCTION = "function"  # holds in the whole body (the early return is the first statement)
AFTER = "after"  # holds after a later early return
BLOCK = "block"  # holds inside an `if (cap) { ... }` block


@dataclass(frozen=True, slots=True)
class Guard:
    """`capability` holds in `function` after line `after_line` (1-based, in the file it came from).

    after_line is None for bundled (curated) guards, whose lines are unknown: then `scope` says
    where it holds ("function": everywhere; "after": after the statement whose condition is
    `anchor`, which a rule can find in the file it has). until_line bounds a "block" guard.
    """

    after_line: int | None
    capability: str
    scope: str = FUNCTION
    anchor: str | None = None  # the tested condition, e.g. "!cpus_have_final_cap(ARM64_HAS_FGT2)"
    until_line: int | None = None
    source: str = "tree"

    def holds_at(self, line: int) -> bool | None:
        """Whether the guard holds at `line`; None when the bundled guard's line is unknown."""
        if self.scope == FUNCTION:
            return True
        if self.after_line is None:
            return None
        return line > self.after_line and (self.until_line is None or line <= self.until_line)

    def to_json(self) -> dict[str, object]:
        keep = ("after_line", "capability")  # the required ones, even when None
        return {k: getattr(self, k) for k in self.__slots__ if k in keep or getattr(self, k) is not None}


_CURATED_23 = "curated: DOMAIN.md §2.3, §2.5"
FALLBACK_GUARDS: dict[str, list[Guard]] = {
    "kvm_vcpu_load_fgt": [
        Guard(None, "ARM64_HAS_FGT", FUNCTION, "!cpus_have_final_cap(ARM64_HAS_FGT)", source=_CURATED_23),
        Guard(None, "ARM64_HAS_FGT2", AFTER, "!cpus_have_final_cap(ARM64_HAS_FGT2)", source=_CURATED_23),
    ],
    "__activate_traps_hfgxtr": [
        Guard(None, "ARM64_HAS_FGT", FUNCTION, "!cpus_have_final_cap(ARM64_HAS_FGT)", source=_CURATED_23),
    ],
    "__activate_traps_ich_hfgxtr": [
        Guard(None, "ARM64_HAS_GICV5_CPUIF", FUNCTION, "!cpus_have_final_cap(ARM64_HAS_GICV5_CPUIF)",
              source="curated: DOMAIN.md §2.5 (2026 trees)"),
    ],
}

# (a, b, why): a implies b. Keep it precise: GICv5 does NOT imply FGT2 (DOMAIN.md §5 rule 5).
_CURATED_25 = "curated: DOMAIN.md §2.5"
IMPLICATIONS: tuple[tuple[str, str, str, str], ...] = (
    ("ARM64_HAS_FGT2", "ARM64_HAS_FGT", "FEAT_FGT2 is ID_AA64MMFR0_EL1.FGT >= FGT2", _CURATED_25),
    ("ARM64_HAS_GICV5_CPUIF", "ARM64_HAS_FGT", "FEAT_GCIE implies v9.3, hence FEAT_FGT", _CURATED_25),
    ("ARM64_SME", "ARM64_HAS_FGT", "SME (v9) implies FEAT_FGT in practice", _CURATED_25),
    ("FEAT_FGT2", "FEAT_FGT", "FEAT_FGT2 is ID_AA64MMFR0_EL1.FGT >= FGT2", _CURATED_25),
    ("FEAT_GCIE", "FEAT_FGT", "FEAT_GCIE implies v9.3, hence FEAT_FGT", _CURATED_25),
    ("FEAT_SME", "FEAT_FGT", "SME (v9) implies FEAT_FGT in practice", _CURATED_25),
)


def implies(a: str, b: str, table: Iterable[tuple[str, str, str, str]] = IMPLICATIONS) -> bool:
    """True when capability `a` implies `b` (reflexive, transitive)."""
    edges: dict[str, set[str]] = {}
    for x, y, *_ in table:
        edges.setdefault(x, set()).add(y)
    seen, todo = {a}, [a]
    while todo:
        for nxt in edges.get(todo.pop(), ()):
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    return b in seen


# ---------------------------------------------------------------------------------------------
# Text level: which capabilities does an expression test?

_COMMENT = lazy_re(r"/\*.*?\*/|//[^\n]*", re.S)
_CALL = lazy_re(r"\b([A-Za-z_]\w*)\s*\(")


def _args(text: str, open_paren: int) -> list[str]:
    """Top-level comma-separated arguments of the call whose `(` is at open_paren."""
    depth, start, out = 0, open_paren + 1, []
    for i in range(open_paren, len(text)):
        c = text[i]
        if c == "(":
            depth += 1
        elif c == ")":
            depth -= 1
            if depth == 0:
                out.append(text[start:i].strip())
                return out
        elif c == "," and depth == 1:
            out.append(text[start:i].strip())
            start = i + 1
    return out


def _call_caps(name: str, text: str, paren: int, predicates: Mapping[str, Iterable[str]]) -> set[str]:
    if name in CAP_CALLS:
        args = _args(text, paren)
        return {args[0]} if args and re.fullmatch(r"ARM64_\w+", args[0]) else set()
    if name in FEAT_CALLS:
        args = [" ".join(a.split()) for a in _args(text, paren)[1:]]
        return {f"{name}({', '.join(args)})"} if args else set()
    if name in predicates:
        return set(predicates[name])
    if name.startswith("system_supports_"):
        return {name + "()"}
    return set()


def capabilities_checked(expr: str | Node,
                         predicates: Mapping[str, Iterable[str]] | None = None) -> set[str]:
    """Every capability an expression (C text or a tree-sitter node) tests, in any position.

    Direct tests (cpus_have_final_cap(ARM64_X), kvm_has_feat(...)) and calls of known predicates
    (`predicates`: function -> caps it tests, e.g. Knowledge.cap_predicates) count.
    """
    text = expr if isinstance(expr, str) else (expr.text or b"").decode("utf-8", "replace")
    text = _COMMENT.sub(" ", text)
    preds = predicates or {}
    out: set[str] = set()
    for m in _CALL.finditer(text):
        out |= _call_caps(m.group(1), text, m.end() - 1, preds)
    return out


# ---------------------------------------------------------------------------------------------
# Tree level: guards and predicates in C source.

def _parser():  # type: ignore[no-untyped-def]
    from tree_sitter import Parser

    from ..lang.c import language

    return Parser(language())


def _inner(node: Node) -> Node:
    while node.type == "parenthesized_expression" and node.named_child_count == 1:
        node = node.named_children[0]
    return node


def _caps_if_true(node: Node, preds: Mapping[str, Iterable[str]]) -> set[str]:
    """Capabilities that must hold when `node` evaluates true."""
    node = _inner(node)
    if node.type == "call_expression":
        return capabilities_checked(node, preds)
    if node.type == "binary_expression":
        op = node.child_by_field_name("operator")
        if op is not None and op.type == "&&":
            return _caps_if_true(node.child_by_field_name("left"), preds) | _caps_if_true(
                node.child_by_field_name("right"), preds)
    if node.type == "unary_expression":
        op = node.child_by_field_name("operator")
        if op is not None and op.type == "!":
            return _caps_if_false(node.child_by_field_name("argument"), preds)
    return set()


def _caps_if_false(node: Node, preds: Mapping[str, Iterable[str]]) -> set[str]:
    """Capabilities that must hold when `node` evaluates false."""
    node = _inner(node)
    if node.type == "unary_expression":
        op = node.child_by_field_name("operator")
        if op is not None and op.type == "!":
            return _caps_if_true(node.child_by_field_name("argument"), preds)
    if node.type == "binary_expression":
        op = node.child_by_field_name("operator")
        if op is not None and op.type == "||":
            return _caps_if_false(node.child_by_field_name("left"), preds) | _caps_if_false(
                node.child_by_field_name("right"), preds)
    return set()


def _is_return(node: Node | None) -> bool:
    if node is None:
        return False
    if node.type == "compound_statement":
        stmts = [c for c in node.named_children if c.type != "comment"]
        return len(stmts) == 1 and stmts[0].type == "return_statement"
    return node.type == "return_statement"


def _text(node: Node) -> str:
    return " ".join((node.text or b"").decode("utf-8", "replace").split())


def function_name(fn: Node) -> str | None:
    decl = fn.child_by_field_name("declarator")
    while decl is not None and decl.type != "function_declarator":
        decl = decl.child_by_field_name("declarator")
    ident = decl.child_by_field_name("declarator") if decl is not None else None
    return _text(ident) if ident is not None and ident.type == "identifier" else None


def iter_functions(root: Node) -> Iterator[tuple[str, Node]]:
    """(name, function_definition) for every function in a tree (also inside #if blocks)."""
    stack = [root]
    while stack:
        node = stack.pop()
        for child in reversed(node.named_children):
            if child.type == "function_definition":
                name = function_name(child)
                if name:
                    yield name, child
            elif child.type.startswith("preproc_") or child.type in ("translation_unit",
                                                                      "linkage_specification"):
                stack.append(child)


def function_guards(fn: Node, predicates: Mapping[str, Iterable[str]] | None = None,
                    source: str = "tree") -> list[Guard]:
    """Guards set up by the top-level statements of one function_definition."""
    preds = predicates or {}
    body = fn.child_by_field_name("body")
    out: list[Guard] = []
    if body is None:
        return out
    first = True
    for stmt in body.named_children:
        if stmt.type in ("declaration", "comment"):
            continue
        if stmt.type == "if_statement" and stmt.child_by_field_name("alternative") is None:
            cond = stmt.child_by_field_name("condition")
            then = stmt.child_by_field_name("consequence")
            if cond is not None and _is_return(then):
                for cap in sorted(_caps_if_false(cond, preds)):
                    out.append(Guard(stmt.end_point[0] + 1, cap, FUNCTION if first else AFTER,
                                     _text(_inner(cond)), source=source))
            elif cond is not None and then is not None and then.type == "compound_statement":
                for cap in sorted(_caps_if_true(cond, preds)):
                    out.append(Guard(then.start_point[0] + 1, cap, BLOCK, _text(_inner(cond)),
                                     until_line=then.end_point[0] + 1, source=source))
        first = False
    return out


def predicate_caps(function_body_node: Node,
                   predicates: Mapping[str, Iterable[str]] | None = None) -> set[str]:
    """Capabilities a predicate tests in its return expressions (empty: not a capability predicate).

    Accepts a function_definition or its compound_statement body. `return cpus_have_final_cap(X);`
    and `return a && cpus_have_final_cap(X) && ...;` both give {X}.
    """
    body = function_body_node
    if body.type == "function_definition":
        body = body.child_by_field_name("body") or body
    out: set[str] = set()
    stack = list(body.named_children)
    while stack:
        node = stack.pop()
        if node.type == "return_statement":
            out |= capabilities_checked(node, predicates)
        elif node.type not in ("function_definition",):
            stack.extend(node.named_children)
    return out


def scan_c(text: str, source: str = "tree", predicates: Mapping[str, Iterable[str]] | None = None,
           ) -> tuple[dict[str, list[Guard]], dict[str, set[str]]]:
    """Guards (function -> guards) and capability predicates (function -> caps) in C text."""
    tree = _parser().parse(text.encode("utf-8", "surrogateescape"))
    fns = list(iter_functions(tree.root_node))
    preds: dict[str, set[str]] = {k: set(v) for k, v in (predicates or {}).items()}
    # Two passes so that a predicate calling another predicate of the same file resolves.
    for _ in range(2):
        for name, fn in fns:
            caps = predicate_caps(fn, preds)
            if caps and _returns_value(fn):
                preds[name] = caps
    guards: dict[str, list[Guard]] = {}
    for name, fn in fns:
        found = function_guards(fn, preds, source)
        if found:
            guards[name] = found
    own = {name for name, _ in fns}
    return guards, {k: v for k, v in preds.items() if k in own}


def _returns_value(fn: Node) -> bool:
    typ = fn.child_by_field_name("type")
    return typ is not None and _text(typ) != "void"
