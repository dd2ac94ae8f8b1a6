"""One tree-sitter-c parser per process, and small helpers over its nodes."""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Iterator
from functools import cache
from itertools import compress
from operator import attrgetter

from tree_sitter import Language, Node, Parser, QueryCursor, Tree

from ..lazyre import lazy_re


@cache
def language() -> Language:
    return Language(_c_grammar())


def _c_grammar() -> object:
    """tree_sitter_c.language(), from its compiled module alone when it can be found (see native)."""
    from .native import extension

    binding = extension("tree_sitter_c", "_binding")
    if binding is None:
        import tree_sitter_c

        return tree_sitter_c.language()
    return binding.language()


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
    # a query costs ~1-2 ms to compile once, then beats the Python walk on any node (2-4x on a
    # function): roots and large nodes use it at once (cached for the run), small ones once a type
    # set has walked enough nodes in Python to pay for the compile (uncached: many, small, distinct)
    if types:
        if not node.child_count:  # a leaf: nothing to walk
            if node.type in types:
                yield node
            return
        ftypes = types if isinstance(types, frozenset) else frozenset(types)
        if node.end_byte - node.start_byte > 8192 or node.parent is None:  # cached per run
            found = nodes_of(node, ftypes)
            if found is not None:
                yield from found
                return
        else:
            if node.descendant_count > _SLICE_MIN:
                got = _sliced(node, ftypes)
                if got is None and node.descendant_count >= _CAPTURE_MIN and _valid(ftypes):
                    got = _from_all(node, ftypes, None)  # a function: its statements slice it after
                if got is not None:
                    yield from got
                    return
            seen = _walked.get(ftypes, 0)
            if seen > _WALK_BUDGET:
                if _small(node, ftypes, None):  # no query of its own to compile yet
                    yield from _from_all(node, ftypes, None)
                    return
                if _types_query(ftypes) is not None:
                    yield from query_nodes(node, ftypes, None)
                    return
            else:
                _walked[ftypes] = seen + node.descendant_count
    stack = [node]
    while stack:
        n = stack.pop()
        if types is None or n.type in types:
            yield n
        stack.extend(reversed(n.children))


_WALK_BUDGET = 4000  # nodes (~2 ms of Python walking)
_SLICE_MIN = 24  # descendants: below this a Python walk costs less than finding the root
_CAPTURE_MIN = 150  # descendants: a node this large not yet inside a capture is captured whole
_walked: dict[frozenset[str], int] = {}  # type set -> nodes walked in Python so far


def nodes_of(node: Node, types: frozenset[str], lines: tuple[int, int] | None = None) -> list[Node] | None:
    """Nodes of the given types under `node` in pre-order (parents first), found by a cached
    tree-sitter query; `lines` (1-based, inclusive) limits the search to those rows of a large file.
    None when a type is not a grammar node type (then use `walk`)."""
    if lines is None and node.parent is not None:
        got = _sliced(node, types)
        if got is not None:
            return list(got)
    if _small(node, types, lines):
        return list(_from_all(node, types, lines))
    if not _valid(types) and _types_query(types) is None:
        return None
    if lines is None and node.parent is None and not types & _NOT_SHARED:
        return list(_whole_tree(node, types))
    return list(_captured(node, types, lines))  # a copy: callers may change their list


def range_nodes(node: Node, types: frozenset[str], lines: tuple[int, int]) -> tuple[Node, ...] | None:
    """nodes_of(node, types, lines), uncached on a large range (each run of added lines is asked once
    per type set); None when a type is not a grammar node type."""
    if _small(node, types, lines):
        return _from_all(node, types, lines)
    if not _valid(types) and _types_query(types) is None:
        return None
    return query_nodes(node, types, lines)


# Results about nodes, kept for the run (SeriesContext calls new_run()): the rules run one after the
# other over every file, so a bounded LRU cycles through more trees than it holds and never hits (500
# patches: 2,722 misses of _functions for ~900 trees). Nodes keep their trees alive: hence per run.
_run_cache: dict[tuple, object] = {}
_RUN_CACHE_MAX = 100_000  # a caller that never starts a run cannot grow it without bound


_run_caches: list[dict] = [_run_cache]  # other per-run caches of this layer (lang.pattern's) join


def new_run() -> None:
    """Forget the trees (and texts) of earlier runs."""
    for cache_ in _run_caches:
        cache_.clear()


def _remember(key: tuple, value: object) -> None:
    if len(_run_cache) >= _RUN_CACHE_MAX:
        _run_cache.clear()
    _run_cache[key] = value


# Whole trees (full mode: kernel files): each query walks the whole tree in C whatever it captures, and
# the rules ask the same file for half a dozen type sets. So one query captures the union of every type
# set asked of a whole tree so far, and each set is the union's nodes of its types (same order: the
# union's captures restricted to a set are that set's captures).

# types too frequent to capture for every other set's sake (a set holding one is queried on its own)
_NOT_SHARED = frozenset({"identifier", "field_identifier", "type_identifier", "number_literal",
                         "primitive_type", "string_literal", "string_content", "argument_list",
                         "parenthesized_expression", "ERROR"})
# The rules run one after the other over every file, so a union learnt only from the sets asked would
# grow (and requery every tree) once per set: start from what the shipped rules ask of whole files.
_WHOLE_SEED = frozenset({"function_definition", "declaration", "field_declaration", "preproc_def",
                         "preproc_function_def", "call_expression", "comment", "return_statement"})
_whole_types: set[str] = set(_WHOLE_SEED)  # every type asked of a whole tree in this process


class _Whole:
    __slots__ = ("kinds", "nodes", "sets", "starts", "types")

    def __init__(self, types: frozenset[str], nodes: tuple[Node, ...]) -> None:
        self.types = types
        self.nodes = nodes
        self.kinds = list(map(_TYPE, nodes))
        self.sets: dict[frozenset[str], tuple[Node, ...]] = {}
        self.starts: list[int] | None = None  # start bytes, for _sliced


def _whole_entry(root: Node) -> _Whole | None:
    return _run_cache.get(("whole", root))  # type: ignore[return-value]


def _whole_tree(root: Node, types: frozenset[str]) -> tuple[Node, ...]:
    entry = _whole_entry(root)
    if entry is None or not types <= entry.types:
        _whole_types.update(types)
        union = frozenset(_whole_types)
        if _types_query(union) is None:  # cannot happen (each set compiles); stay correct anyway
            return _captured(root, types, None)
        entry = _Whole(union, query_nodes(root, union, None))
        _remember(("whole", root), entry)
    got = entry.sets.get(types)
    if got is None:
        got = entry.sets[types] = tuple(compress(entry.nodes, map(types.__contains__, entry.kinds)))
    return got


def _captured(node: Node, types: frozenset[str], lines: tuple[int, int] | None) -> tuple[Node, ...]:
    # rules walk the same large node for the same node types (nodes hash with their tree, so this is
    # per tree); the query runs once per (node, types, lines) and run
    key = ("captured", node, types, lines)
    got = _run_cache.get(key)
    if got is None:
        got = query_nodes(node, types, lines)
        _remember(key, got)
    return got  # type: ignore[return-value]


def query_nodes(node: Node, types: frozenset[str], lines: tuple[int, int] | None) -> tuple[Node, ...]:
    """The nodes of `types` under `node` (rows `lines`, 1-based inclusive, when given), in pre-order,
    by one tree-sitter query (uncached; `types` must be grammar node types: see _types_query)."""
    cursor = QueryCursor(_types_query(types))
    if lines is not None:
        cursor.set_point_range((lines[0] - 1, 0), (lines[1], 0))
    found = cursor.captures(node).get("n")  # the query's one capture
    if not found:
        return ()
    return _in_preorder(found)


def _in_preorder(found: list[Node]) -> tuple[Node, ...]:
    """Captures in pre-order. Nodes spanning the same bytes (a node and its only child) come in an
    order that depends on the query that captured them: put the ancestor first, as a walk does, so
    every query (and the Python walk) answers alike."""
    if len(found) < 2:
        return tuple(found)
    # by start, longest first: two stable sorts by C key functions (twice as fast as a Python key)
    found.sort(key=_END, reverse=True)
    found.sort(key=_START)
    spans = list(map(_SPAN, found))
    if len(set(spans)) != len(spans):  # equal spans are adjacent now: each run by depth, stable
        i, n = 0, len(spans)
        while i < n:
            j = i + 1
            while j < n and spans[j] == spans[i]:
                j += 1
            if j - i > 1:
                found[i:j] = sorted(found[i:j], key=_depth)
            i = j
    return tuple(found)


_START = attrgetter("start_byte")
_END = attrgetter("end_byte")
_SPAN = attrgetter("start_byte", "end_byte")
_TYPE = attrgetter("type")


def _depth(n: Node) -> int:
    d = 0
    p = n.parent
    while p is not None:
        d += 1
        p = p.parent
    return d


# Compiling a query costs ~1 ms whatever it holds (tree-sitter analyses the grammar for each one), and
# a review asks a dozen type sets: a hook process of one patch spent more compiling queries than
# running them on its small trees. One query capturing every named node serves every type set on
# small trees and on short line ranges (kept per node and range for the run): its captures of a set's
# types are that set's query's captures, in the same order (the whole-tree union rests on the same).
_SMALL_NODES = 3000  # descendants (~1 ms to capture every named one: one compile)
_SMALL_LINES = 400  # rows of a line range in a larger tree


@cache
def _named_types() -> frozenset[str]:
    """The grammar's visible named node types, and ERROR: a query of any of them compiles."""
    lang = language()
    return frozenset({lang.node_kind_for_id(i) for i in range(lang.node_kind_count)
                      if lang.node_kind_is_named(i) and lang.node_kind_is_visible(i)} | {"ERROR"})


def _valid(types: frozenset[str]) -> bool:
    """A query of `types` compiles and captures what a Python walk matching `.type` finds (supertype
    names such as `expression` compile too, but match their subtypes: their sets keep their own query)."""
    return types <= _named_types()


@cache
def _all_query():
    from tree_sitter import Query

    try:
        return Query(language(), "[" + " ".join(f"({t})" for t in sorted(_named_types())) + "] @n")
    except Exception:  # a grammar this code does not know: every set keeps its own query
        return None


def _small(node: Node, types: frozenset[str], lines: tuple[int, int] | None) -> bool:
    """Whether the capture of every named node answers (else the set's own query)."""
    if not _valid(types) or _all_query() is None:
        return False
    if lines is not None and lines[1] - lines[0] < _SMALL_LINES:
        return True  # a run of added lines: every rule asks it, each for its own types
    if node.descendant_count > _SMALL_NODES:
        return False
    # a small tree (hunk-only views) or a node inside a tree (full mode: a function of a kernel file):
    # once a set has been answered for enough nodes this way (a long series, a function walked for
    # one set), its own query pays for its compile and captures only its types
    seen = _through_all.get(types, 0)
    if seen > _ALL_BUDGET:
        return False
    _through_all[types] = seen + node.descendant_count
    return True


_ALL_BUDGET = 5000  # nodes (~1 ms of capturing everything: one compile)
_through_all: dict[frozenset[str], int] = {}  # type set -> nodes answered from whole captures so far


class _All:
    __slots__ = ("kinds", "nodes", "sets", "starts")

    def __init__(self, nodes: tuple[Node, ...]) -> None:
        self.nodes = nodes
        self.kinds = list(map(_TYPE, nodes))
        self.sets: dict[frozenset[str], tuple[Node, ...]] = {}
        self.starts: list[int] | None = None


def _from_all(node: Node, types: frozenset[str], lines: tuple[int, int] | None) -> tuple[Node, ...]:
    """query_nodes(node, types, lines) from the capture of every named node (_valid types only)."""
    key = ("all", node, lines)
    entry = _run_cache.get(key)
    if entry is None:
        cursor = QueryCursor(_all_query())
        if lines is not None:
            cursor.set_point_range((lines[0] - 1, 0), (lines[1], 0))
        entry = _All(_in_preorder(cursor.captures(node).get("n") or []))
        _remember(key, entry)
    got = entry.sets.get(types)  # type: ignore[union-attr]
    if got is None:
        got = entry.sets[types] = tuple(  # type: ignore[union-attr]
            compress(entry.nodes, map(types.__contains__, entry.kinds)))  # type: ignore[union-attr]
    return got


def _sliced(node: Node, types: frozenset[str]) -> tuple[Node, ...] | None:
    """query_nodes(node, types, None) for a node inside a subtree already captured (every named node
    of an ancestor, or the whole-tree union holding `types`): the captures in the node's byte range,
    in the same pre-order, without a query or a Python walk per node (rules ask hundreds of
    statements of the same functions). None when no ancestor has either."""
    key = ("slice", node, types)
    got = _run_cache.get(key)
    if got is not None:
        return got  # type: ignore[return-value]
    valid = _valid(types)  # the capture of every named node serves named types only
    entry: _All | _Whole | None = None
    root = node
    while (up := root.parent) is not None:  # the nearest ancestor captured whole (a function), or the root
        root = up
        if valid and entry is None:
            entry = _run_cache.get(("all", root, None))  # type: ignore[assignment]
    if entry is None:
        entry = _whole_entry(root)
        if entry is None or not types <= entry.types:
            return None
    if entry.starts is None:
        entry.starts = list(map(_START, entry.nodes))
    s, e = node.start_byte, node.end_byte
    nodes, kinds = entry.nodes, entry.kinds
    out = []
    for i in range(bisect_left(entry.starts, s), bisect_right(entry.starts, e)):
        if kinds[i] not in types:
            continue
        n = nodes[i]
        ns, ne = n.start_byte, n.end_byte
        if ne > e:
            continue
        # strictly inside with a width: a descendant (intervals nest). The same span (the node, an
        # ancestor or a descendant) or an empty node on an edge (a sibling's MISSING token): ask
        if ((ns == s and ne == e) or (ns == ne and ns in (s, e))) and not _within(n, node):
            continue
        out.append(n)
    got = tuple(out)
    _remember(key, got)
    return got


def _within(n: Node, node: Node) -> bool:
    """n is `node` or one of its descendants (n lies inside node's byte range)."""
    s, e = node.start_byte, node.end_byte
    p: Node | None = n
    while p is not None and p.start_byte >= s and p.end_byte <= e:
        if p == node:
            return True
        p = p.parent
    return False


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


def _functions(root: Node) -> tuple[tuple[str, Node], ...]:
    # many rules list the functions of the same file: nodes hash with their tree, so cache by node
    key = ("functions", root)
    got = _run_cache.get(key)
    if got is None:
        out = []
        for fn in walk(root, _FUNCTION):
            name = function_name(fn)
            if name:
                out.append((name, fn))
        got = tuple(out)
        _remember(key, got)
    return got  # type: ignore[return-value]


def enclosing_function(node: Node) -> Node | None:
    n = node.parent
    while n is not None and n.type != "function_definition":
        n = n.parent
    return n


def call_name(call: Node) -> str | None:
    fn = call.child_by_field_name("function")
    return text(fn) if fn is not None and fn.type == "identifier" else None



# what ends plain code on a line: a comment opener/closer, or a whole string or char literal
_LEX = lazy_re(r"/\*|\*/|//|\"(?:\\.|[^\"\\])*\"|'(?:\\.|[^'\\])+'")


def lex_line(line: str, inside: bool) -> tuple[str, bool, bool, bool]:
    """One line of C, `inside` a block comment or not -> (its code with comments and literals
    blanked, inside a block comment after it, whether a `*/` appeared outside any comment, whether
    it holds code: anything but whitespace and `\\` outside comments, literals included).
    The one C comment lexer: the comment state of views and the symbols analysis both use it."""
    # fast paths (most lines of a kernel file): nothing the lexer reacts to, same answers as below
    if inside:
        if "*/" not in line:
            return "", True, False, False
    elif "/" not in line and '"' not in line and "'" not in line:
        return line, False, False, bool(line.replace("\\", " ").strip())
    return _lex_line_slow(line, inside)


def _lex_line_slow(line: str, inside: bool) -> tuple[str, bool, bool, bool]:
    """lex_line without its fast paths (tests compare the two)."""
    out: list[str] = []
    pos, stray, code = 0, False, False

    def plain(seg: str) -> None:
        nonlocal code
        out.append(seg)
        code = code or any(not c.isspace() and c != "\\" for c in seg)

    while True:
        if inside:
            j = line.find("*/", pos)
            if j < 0:
                return "".join(out), True, stray, code
            pos, inside = j + 2, False
            out.append(" ")
            continue
        m = _LEX.search(line, pos)
        if m is None:
            plain(line[pos:])
            return "".join(out), False, stray, code
        plain(line[pos:m.start()])
        tok = m.group()
        if tok == "/*":
            inside = True
        elif tok == "//":
            return "".join(out), False, stray, code
        elif tok == "*/":
            stray = True
        else:  # a string or char literal
            out.append(" ")
            code = True
        pos = m.end()


def _run_end_state(lines: list[str], inside: bool) -> tuple[bool, bool]:
    stray = False
    for line in lines:
        _, inside, s, _ = lex_line(line, inside)
        stray = stray or s
    return inside, stray


def comment_only_lines(lines: list[str]) -> frozenset[int]:
    """1-based numbers of the lines that hold comment text and no code (block comment bodies,
    `//` lines). Give it `FileView.parse_text` lines, where a hunk-only view's comments opened or
    closed outside its hunks are already made explicit; `FileView.comment_lines` caches this."""
    out: set[int] = set()
    inside = False
    for i, line in enumerate(lines, 1):
        was_inside = inside
        _, inside, _, code = lex_line(line, inside)
        if not code and line.strip() and (was_inside or inside or "//" in line or "*/" in line):
            out.add(i)
    return frozenset(out)


def comment_scan(lines: list[str], old: tuple[list[bool], list[bool]] | None = None,
                 same: list[tuple[int, int, int]] = ()) -> tuple[list[bool], list[bool]]:
    """comment_only_lines() as per-line flags, with the lexer state (inside a block comment) at the
    start of each line and after the last. `old`: the flags and states of an earlier text, and
    `same`: (first line here, first line there, count) of the runs of lines both texts share, in
    order (0-based); a shared run entered in the state the earlier text entered it in is copied,
    not lexed again (a patch changes a few lines of a kernel file)."""
    n = len(lines)
    flags, states = [False] * n, [False] * (n + 1)
    inside, i, k = False, 0, 0
    while i < n:
        while k < len(same) and same[k][0] + same[k][2] <= i:
            k += 1
        if old is not None and k < len(same) and same[k][0] <= i:
            here, there, count = same[k]
            j = there + i - here
            if old[1][j] == inside:  # the rest of the run lexes as it did there
                left = count - (i - here)
                flags[i:i + left] = old[0][j:j + left]
                states[i:i + left] = old[1][j:j + left]
                inside = old[1][j + left]
                i += left
                continue
        line = lines[i]
        states[i] = was_inside = inside
        _, inside, _, code = lex_line(line, inside)
        flags[i] = not code and bool(line.strip()) and (was_inside or inside or "//" in line or "*/" in line)
        i += 1
    states[n] = inside
    return flags, states


# A block comment's body line: ` * text`, ` *`, `\t * text` (not `*/`, not `*p = x`, not `**`).
_COMMENT_BODY = lazy_re(r"^\s*\*(?![/*])(?:\s|$)")


def _starts_inside_comment(run: list[str]) -> bool:
    """A run whose `/*` is above it: it opens with comment body lines (at least two, or the whole
    run) and holds nothing else until it ends, so no code line is read as comment on a guess."""
    body = [ln for ln in run if ln.strip()]
    return len(body) >= min(2, len(run)) and bool(body) and all(_COMMENT_BODY.match(ln) for ln in body)


def hunk_parse_lines(lines: list[str], known: frozenset[int] | set[int]) -> list[str]:
    """Lines of a hunk-only post-image made safe to parse: comments do not leak across gaps.

    Unknown lines are empty, so a hunk whose context ends inside a `/* ... */` would swallow every
    later hunk into one comment, and a hunk that starts inside a comment would be read as code up
    to its `*/`. A `*/` is written into the first unknown line after a run left open, and a `/*`
    into the last unknown line before a run that closes a comment it never opened, or that is
    made of ` * text` lines only (the comment's `/*` and `*/` both outside the hunks). A comment
    still open at the end is closed on one extra last line. Line numbers do not move; only unknown
    (empty) lines change.
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
        if start > 1 and (start - 1) not in known and (stray or _starts_inside_comment(run)):
            opened_inside, stray_again = _run_end_state(run, True)
            if not stray_again:  # read as starting inside a comment, the run is consistent
                out[start - 2], inside = "/*", opened_inside
    if inside:  # the last run ends inside a comment: an unterminated `/*` is an ERROR to tree-sitter
        out.append("*/")
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
