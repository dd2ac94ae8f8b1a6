"""One tree-sitter-c parser per process, and small helpers over its nodes."""

from __future__ import annotations

from collections.abc import Iterator
from functools import cache

from tree_sitter import Language, Node, Parser, Tree


@cache
def language() -> Language:
    import tree_sitter_c

    return Language(tree_sitter_c.language())


@cache
def _parser() -> Parser:
    return Parser(language())


def parse(source: bytes) -> Tree:
    return _parser().parse(source)


def text(node: Node | None) -> str:
    if node is None or node.text is None:
        return ""
    return node.text.decode("utf-8", "replace")


def walk(node: Node, types: set[str] | None = None) -> Iterator[Node]:
    """Every descendant (pre-order), optionally only of the given node types."""
    stack = [node]
    while stack:
        n = stack.pop()
        if types is None or n.type in types:
            yield n
        stack.extend(reversed(n.children))


def function_name(fn: Node) -> str | None:
    """The name a function_definition defines (through pointer declarators)."""
    decl = fn.child_by_field_name("declarator")
    while decl is not None and decl.type not in ("function_declarator",):
        decl = decl.child_by_field_name("declarator")
    if decl is None:
        return None
    name = decl.child_by_field_name("declarator")
    while name is not None and name.type not in ("identifier", "field_identifier"):
        name = name.child_by_field_name("declarator")
    return text(name) or None


def functions(root: Node) -> Iterator[tuple[str, Node]]:
    """(name, function_definition) for every function in the tree, preprocessor branches included."""
    for fn in walk(root, {"function_definition"}):
        name = function_name(fn)
        if name:
            yield name, fn


def enclosing_function(node: Node) -> Node | None:
    n = node.parent
    while n is not None and n.type != "function_definition":
        n = n.parent
    return n


def call_name(call: Node) -> str | None:
    fn = call.child_by_field_name("function")
    return text(fn) if fn is not None and fn.type == "identifier" else None
