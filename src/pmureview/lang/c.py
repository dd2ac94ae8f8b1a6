"""One tree-sitter-c parser per process, and small helpers over its nodes."""

from __future__ import annotations

from collections.abc import Iterator
from functools import cache, lru_cache

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


def walk(node: Node, types: set[str] | frozenset[str] | None = None) -> Iterator[Node]:
    """Every descendant (pre-order, `node` included), optionally only of the given node types.

    With types, a tree-sitter query does the walk in C: building a Python Node for every node of a
    kernel file was the largest cost of a review.
    """
    # a query costs ~1.5 ms to compile once; below a few KB the Python walk is cheaper than that
    if types and node.end_byte - node.start_byte > 8192:
        found = nodes_of(node, frozenset(types))
        if found is not None:
            yield from found
            return
    stack = [node]
    while stack:
        n = stack.pop()
        if types is None or n.type in types:
            yield n
        stack.extend(reversed(n.children))


def nodes_of(node: Node, types: frozenset[str], lines: tuple[int, int] | None = None) -> list[Node] | None:
    """Nodes of the given types under `node` in pre-order (parents first), found by a cached
    tree-sitter query; `lines` (1-based, inclusive) limits the search to those rows of a large file.
    None when a type is not a grammar node type (then use `walk`)."""
    query = _types_query(types)
    if query is None:
        return None
    from tree_sitter import QueryCursor

    cursor = QueryCursor(query)
    if lines is not None:
        cursor.set_point_range((lines[0] - 1, 0), (lines[1], 0))
    found = [n for group in cursor.captures(node).values() for n in group]
    found.sort(key=lambda n: (n.start_byte, -n.end_byte))
    return found


@cache
def _types_query(types: frozenset[str]):
    """One query capturing every node of the given types; None when a name is not a grammar node type
    (the caller then walks in Python)."""
    from tree_sitter import Query

    named = sorted(t for t in types if t.replace("_", "").isalnum())
    if len(named) != len(types):
        return None
    try:
        return Query(language(), "[" + " ".join(f"({t})" for t in named) + "] @n")
    except Exception:
        return None


_FUNCTION = frozenset({"function_definition"})


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


def declarator_name(node: Node) -> str | None:
    """The name a (possibly pointer-wrapped) function_declarator declares: prototypes and definitions."""
    d: Node | None = node
    while d is not None and d.type != "function_declarator":
        d = d.child_by_field_name("declarator")
    if d is None:
        return None
    n = d.child_by_field_name("declarator")
    return text(n) if n is not None and n.type == "identifier" else None


def functions(root: Node) -> Iterator[tuple[str, Node]]:
    """(name, function_definition) for every function in the tree, preprocessor branches included."""
    return iter(_functions(root))


@lru_cache(maxsize=1024)
def _functions(root: Node) -> tuple[tuple[str, Node], ...]:
    # many rules list the functions of the same file: nodes hash with their tree, so cache by node
    out = []
    for fn in walk(root, _FUNCTION):
        name = function_name(fn)
        if name:
            out.append((name, fn))
    return tuple(out)


def enclosing_function(node: Node) -> Node | None:
    n = node.parent
    while n is not None and n.type != "function_definition":
        n = n.parent
    return n


def call_name(call: Node) -> str | None:
    fn = call.child_by_field_name("function")
    return text(fn) if fn is not None and fn.type == "identifier" else None



def _lex_comments(line: str, inside: bool) -> tuple[bool, bool]:
    """(inside a block comment after `line`, whether a `*/` appeared outside any comment)."""
    i, n, quote, stray_close = 0, len(line), "", False
    while i < n:
        two = line[i:i + 2]
        if inside:
            if two == "*/":
                inside, i = False, i + 2
                continue
        elif quote:
            if line[i] == "\\":
                i += 1
            elif line[i] == quote:
                quote = ""
        elif two == "//":
            break
        elif two == "/*":
            inside, i = True, i + 2
            continue
        elif two == "*/":
            stray_close, i = True, i + 2
            continue
        elif line[i] in "\"'":
            quote = line[i]
        i += 1
    return inside, stray_close


def _run_end_state(lines: list[str], inside: bool) -> tuple[bool, bool]:
    stray = False
    for line in lines:
        inside, s = _lex_comments(line, inside)
        stray = stray or s
    return inside, stray


def hunk_parse_lines(lines: list[str], known: frozenset[int] | set[int]) -> list[str]:
    """Lines of a hunk-only post-image made safe to parse: comments do not leak across gaps.

    Unknown lines are empty, so a hunk whose context ends inside a `/* ... */` would swallow every
    later hunk into one comment, and a hunk that starts inside a comment would be read as code up
    to its `*/`. A `*/` is written into the first unknown line after a run left open, and a `/*`
    into the last unknown line before a run that closes a comment it never opened. Line numbers do
    not move; only unknown (empty) lines change.
    """
    out = list(lines)
    n, ln, inside = len(out), 1, False
    while ln <= n:
        if ln not in known:
            if inside:
                out[ln - 1], inside = "*/", False
            ln += 1
            continue
        start = ln
        while ln <= n and ln in known:
            ln += 1
        run = out[start - 1:ln - 1]
        inside, stray = _run_end_state(run, False)
        if stray and start > 1 and (start - 1) not in known:
            opened_inside, stray_again = _run_end_state(run, True)
            if not stray_again:  # read as starting inside a comment, the run is consistent
                out[start - 2], inside = "/*", opened_inside
    return out


def balanced_parens(s: str) -> bool:
    """Every `)` closes an earlier `(` and none is left open (`(a) | (b)` is balanced, `a) | (b` not)."""
    depth = 0
    for ch in s:
        depth += ch == "("
        depth -= ch == ")"
        if depth < 0:
            return False
    return depth == 0


_ELSE_BRANCHES = frozenset({"preproc_else", "preproc_elif", "preproc_elifdef"})


def has_ancestor(node: Node, types: frozenset[str] | set[str]) -> bool:
    """Whether a proper ancestor of `node` has one of `types`."""
    n = node.parent
    while n is not None:
        if n.type in types:
            return True
        n = n.parent
    return False


def in_preproc_else(node: Node) -> bool:
    """Inside the `#else`/`#elif` branch of a conditional (a stub or fallback definition)."""
    return has_ancestor(node, _ELSE_BRANCHES)
