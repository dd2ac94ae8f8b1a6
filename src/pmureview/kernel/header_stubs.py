"""Preprocessor structure of a C file and the function prototypes / static inline stubs in it.

Shared by the header/* rules and kvmarm/no-conditional-compilation. Line based on purpose: in
hunk-only mode unknown lines are empty, and a line scanner degrades gracefully (an `#else` or
`#endif` whose `#if` is not visible is ignored) where tree-sitter would build a wrong nesting.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from pmureview.lazyre import lazy_re

from ..lang.c import function_name, text, walk
from ..record import dataclass, field

if TYPE_CHECKING:
    from tree_sitter import Node

_DIRECTIVE = lazy_re(r"^\s*#\s*(if|ifdef|ifndef|elif|elifdef|elifndef|else|endif)\b(.*)$")


@dataclass(frozen=True, slots=True)
class Arm:
    """One arm of a conditional: the `#if` it belongs to (its line), which arm, and its condition."""

    if_line: int
    index: int  # 0 for the #if arm, 1.. for #elif/#else
    kind: str  # if | ifdef | ifndef | elif | else
    cond: str  # the directive's condition text (for #else: the #if's condition)
    line: int  # the directive's own line

    @property
    def negated(self) -> bool:
        """True when this arm is taken when `cond` is false (#else, #ifndef, `#if !...`)."""
        if self.kind == "else":
            return not _negated_cond(self.cond)
        if self.kind == "ifndef":
            return True
        return _negated_cond(self.cond)


def _negated_cond(cond: str) -> bool:
    return cond.strip().startswith("!")


@dataclass
class Conditional:
    if_line: int
    arms: list[Arm] = field(default_factory=list)
    end_line: int | None = None


@dataclass
class Structure:
    """Per line, the arms enclosing it (outermost first); the conditionals by their #if line."""

    path_of: dict[int, tuple[Arm, ...]]
    conditionals: dict[int, Conditional]

    def arms(self, line: int) -> tuple[Arm, ...]:
        return self.path_of.get(line, ())

    def arm_range(self, arm: Arm) -> range:
        """The lines inside `arm` (between its directive and the next one of the conditional)."""
        c = self.conditionals.get(arm.if_line)
        if c is None:
            return range(0)
        nxt = [a.line for a in c.arms if a.line > arm.line]
        end = min(nxt) if nxt else (c.end_line or arm.line)
        return range(arm.line + 1, end)


def scan(lines: list[str]) -> Structure:
    stack: list[Arm] = []
    path_of: dict[int, tuple[Arm, ...]] = {}
    conds: dict[int, Conditional] = {}
    for i, raw in enumerate(lines, 1):
        m = _DIRECTIVE.match(raw)
        if m:
            kind, rest = m.group(1), _strip_comment(m.group(2))
            if kind in ("if", "ifdef", "ifndef"):
                arm = Arm(i, 0, kind, rest, i)
                conds[i] = Conditional(i, [arm])
                stack.append(arm)
            elif kind in ("elif", "elifdef", "elifndef", "else") and stack:
                top = stack.pop()
                first = conds[top.if_line].arms[0]
                cond = first.cond if kind == "else" else rest
                if kind == "else" and first.kind == "ifndef":
                    cond = "!" + cond  # `#ifndef X ... #else` is taken when X is defined
                arm = Arm(top.if_line, top.index + 1, "else" if kind == "else" else "elif", cond, i)
                conds[top.if_line].arms.append(arm)
                stack.append(arm)
            elif kind == "endif" and stack:
                top = stack.pop()
                conds[top.if_line].end_line = i
            path_of[i] = tuple(stack)
            continue
        path_of[i] = tuple(stack)
    return Structure(path_of, conds)


def _strip_comment(s: str) -> str:
    s = re.sub(r"/\*.*?\*/", " ", s)
    s = s.split("//", 1)[0]
    return " ".join(s.split())


@dataclass(frozen=True, slots=True)
class FuncDecl:
    name: str
    line: int  # the line with the function's name
    start: int  # first line of the node
    kind: str  # prototype | inline | definition | macro
    params: tuple[str, ...] | None  # normalised parameter types; None when unknown
    is_stub: bool = False  # static inline with a trivial body
    node: Node | None = None


def param_types(declarator: Node | None) -> tuple[str, ...] | None:
    """Normalised parameter types of a function_declarator (names dropped, `void` -> ())."""
    if declarator is None:
        return None
    plist = declarator.child_by_field_name("parameters")
    if plist is None:
        return None
    out: list[str] = []
    for p in plist.named_children:
        if p.type == "comment":
            continue
        if p.type == "variadic_parameter":
            out.append("...")
            continue
        if p.type != "parameter_declaration":
            return None
        full = text(p)
        d = p.child_by_field_name("declarator")
        ident = _innermost_identifier(d)
        if ident is not None:
            s, e = ident.start_byte - p.start_byte, ident.end_byte - p.start_byte
            raw = p.text or b""
            full = (raw[:s] + raw[e:]).decode("utf-8", "replace")
        out.append(_norm_type(full))
    if out == ["void"]:
        return ()
    return tuple(out)


def _innermost_identifier(d: Node | None) -> Node | None:
    while d is not None:
        if d.type == "identifier":
            return d
        d = d.child_by_field_name("declarator")
    return None


def _norm_type(s: str) -> str:
    s = " ".join(s.replace("*", " * ").replace("[", " [ ").replace("]", " ] ").split())
    s = s.replace(" * ", "*").replace(" *", "*").replace("* ", "*")
    return s.replace(" [ ", "[").replace("[ ", "[").replace(" ]", "]").strip()


def _function_declarator(node: Node | None) -> Node | None:
    d = node
    while d is not None and d.type != "function_declarator":
        d = d.child_by_field_name("declarator")
    return d


_TRIVIAL_RETURN = lazy_re(r"^return\s*(\(?\s*-?[A-Za-z0-9_]+\s*\)?|NULL|\(\s*\w+\s*\)\s*\w+)?\s*;$")


def _is_trivial_body(body: Node | None) -> bool:
    if body is None:
        return False
    stmts = [c for c in body.named_children if c.type != "comment"]
    if not stmts:
        return True
    if len(stmts) != 1:
        return False
    s = stmts[0]
    if s.type == "return_statement":
        return bool(_TRIVIAL_RETURN.match(" ".join(text(s).split())))
    return False


def declarations(root: Node) -> list[FuncDecl]:
    """Function prototypes and definitions (static inline marked, stubs recognised) in a file."""
    out: list[FuncDecl] = []
    for node in walk(root, {"declaration", "function_definition"}):
        if node.type == "function_definition":
            name = function_name(node)
            if not name:
                continue
            fd = _function_declarator(node.child_by_field_name("declarator"))
            storage = {text(c) for c in node.children if c.type == "storage_class_specifier"}
            inline = "static" in storage and ("inline" in storage or "__always_inline" in text(node)[:200])
            line = (fd.child_by_field_name("declarator").start_point[0] + 1
                    if fd is not None and fd.child_by_field_name("declarator") is not None
                    else node.start_point[0] + 1)
            out.append(FuncDecl(name, line, node.start_point[0] + 1, "inline" if inline else "definition",
                                param_types(fd),
                                is_stub=inline and _is_trivial_body(node.child_by_field_name("body")),
                                node=node))
        else:
            if node.parent is not None and node.parent.type not in (
                    "translation_unit", "preproc_if", "preproc_ifdef", "preproc_else", "preproc_elif",
                    "linkage_specification", "declaration_list"):
                continue
            storage = {text(c) for c in node.children if c.type == "storage_class_specifier"}
            if "static" in storage or "typedef" in storage:
                continue
            for d in node.children_by_field_name("declarator"):
                fd = _function_declarator(d)
                if fd is None or d.type not in ("function_declarator", "pointer_declarator"):
                    continue
                ident = fd.child_by_field_name("declarator")
                if ident is None or ident.type != "identifier":
                    continue
                out.append(FuncDecl(text(ident), ident.start_point[0] + 1, node.start_point[0] + 1,
                                    "prototype", param_types(fd), node=node))
    return out


_MACRO_FN = lazy_re(r"^\s*#\s*define\s+([A-Za-z_]\w*)\(")


def macro_functions(lines: list[str]) -> list[FuncDecl]:
    """Function-like macros (`#define name(...)`), another way of providing a predicate."""
    out = []
    for i, raw in enumerate(lines, 1):
        m = _MACRO_FN.match(raw)
        if m:
            out.append(FuncDecl(m.group(1), i, i, "macro", None))
    return out
