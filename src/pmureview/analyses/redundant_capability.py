"""Which capabilities are already known to hold at a point of a function (for the rules
kvmarm/redundant-capability-check and kvmarm/implied-feature-check).

Two sources, both computed on the post-image a rule sees:

- inside the function: the path from the node up to the function body, i.e. earlier sibling
  statements `if (!cap) return|goto L;` (until label L), enclosing `if (cap) { ... }` /
  `else` branches, and the left operand of an enclosing `&&` / `||`;
- from the callers: a `static` function whose every call site in the same file sits where the
  capability holds (recursively, a few levels). A function whose address is taken, or which is not
  static, gets nothing from its callers.

In hunk-only mode a caller's guard may lie outside the hunks; then the kernel knowledge's guard table
(`kb.guards`, e.g. kvm_vcpu_load_fgt(): FGT at the top, FGT2 after its early return) stands in for
it, and a static `__compute_<fgt register>()` helper of arch/arm64/kvm/config.c whose callers are not
visible is taken to be called from kvm_vcpu_load_fgt() (the layout KVM has used since v6.18); such
facts are marked `assumed`, and the rules lower their confidence. The table is dated (kernel/dating.py):
it is not used at all when a base tree is present, and for a series not dated after the kernel it
describes its facts carry `Why.as_of` ("as of v6.18"): they support at most a check.
"""

from __future__ import annotations

import bisect
import re
import weakref
from collections.abc import Iterable, Iterator, Mapping
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

from ..kernel import guards as _guards
from ..kernel.dating import dated_from, trust_dated
from ..kernel.fgt import FGT_SPECS
from ..lang.c import call_name, function_name, nodes_of, text, walk
from ..record import dataclass

if TYPE_CHECKING:
    from tree_sitter import Node

    from ..views.context import FileView, SeriesContext

CONFIG_C = "arch/arm64/kvm/config.c"
LOAD_FGT = "kvm_vcpu_load_fgt"
_EXITS = {"return_statement", "goto_statement"}
_MAX_DEPTH = 4

FEATURE_NAMES = {
    "ARM64_HAS_FGT": "FEAT_FGT", "ARM64_HAS_FGT2": "FEAT_FGT2", "ARM64_HAS_GICV5_CPUIF": "FEAT_GCIE",
    "ARM64_SME": "FEAT_SME", "ARM64_HAS_HPMN0": "FEAT_HPMN0",
}


def feature_name(cap: str) -> str:
    """FEAT_FGT for ARM64_HAS_FGT (the name maintainers use), else the capability itself."""
    return FEATURE_NAMES.get(cap, cap)


@dataclass(frozen=True, slots=True)
class Why:
    """Why a capability holds: `guard` is the function that tested it, `line` the line of the test
    (None when it comes from the bundled table), `via` the function whose callers provide it."""

    guard: str
    line: int | None = None
    via: str | None = None
    assumed: bool = False
    # set for a fact of the bundled guard table the patch is not newer than ("as of v6.18"):
    # such a fact supports at most a check (docs/knowledge.md)
    as_of: str = ""


# -- predicates ---------------------------------------------------------------------------------

def _path_index(series: SeriesContext) -> list[tuple[str, list[int], list[FileView | None]]]:
    """Per touched path (sorted): the patch numbers that touch it, ascending, and for each the view
    it leaves (None unless a non-empty C file). Built once per run: the per-patch tables below are
    asked for every patch, and re-deriving the paths and re-stripping every text each time made the
    run quadratic in the series' length."""
    def build() -> list[tuple[str, list[int], list[FileView | None]]]:
        by_path: dict[str, list[tuple[int, FileView]]] = {}
        for n in sorted(series.views):
            for v in series.views[n]:
                by_path.setdefault(v.path, []).append((n, v))
        return [(path, [n for n, _ in got], [v if v.is_c and v.text.strip() else None for _, v in got])
                for path, got in sorted(by_path.items())]

    return series.memo(("redundant-capability", "path-index"), build)


def series_views(series: SeriesContext, upto: int) -> list[FileView]:
    """Every C file the series touches up to patch `upto`, as that patch leaves it."""
    out = []
    for _path, numbers, views in _path_index(series):
        i = bisect.bisect_right(numbers, upto)  # the latest view at or before `upto` (view_at())
        if i and views[i - 1] is not None:
            out.append(views[i - 1])
    return out


def series_functions(series: SeriesContext, upto: int) -> dict[str, list[tuple[FileView, Node]]]:
    """name -> every definition (view, function_definition) in the series' C files at `upto`."""
    def build() -> dict[str, list[tuple[FileView, Node]]]:
        out: dict[str, list[tuple[FileView, Node]]] = {}
        for view in series_views(series, upto):
            for name, fn in view.functions():
                out.setdefault(name, []).append((view, fn))
        return out

    return series.memo(("series_functions", upto), build)


def series_predicates(series: SeriesContext, upto: int,
                      defs: Mapping[str, list[tuple[FileView, Node]]] | None = None) -> dict[str, set[str]]:
    """Capability predicates known at patch `upto`: the kb's plus every value-returning function of
    the series' C files (as patch `upto` leaves them) whose return expressions test a capability."""
    if defs is None or defs is series_functions(series, upto):
        return series.memo(("series_predicates", upto), lambda: _series_predicates(series, upto))
    return _series_predicates(series, upto, defs)


def _series_predicates(series: SeriesContext, upto: int,
                       defs: Mapping[str, list[tuple[FileView, Node]]] | None = None) -> dict[str, set[str]]:
    preds: dict[str, set[str]] = {k: set(v) for k, v in getattr(series.kb, "cap_predicates", {}).items()}
    found = _candidates(series, upto) if defs is None else None
    if found is not None:
        summaries = found.summaries
    else:
        defs = defs if defs is not None else series_functions(series, upto)
        summaries = []
        for name, fns in defs.items():
            for view, fn in fns:
                got = _view_summaries(series, view).get(fn.id, _MISSING)
                summary = _summary(series, view, fn) if got is _MISSING else got
                if summary is not None and (summary[0] or summary[1]):  # others add nothing below
                    summaries.append((name, summary))
    for _ in range(2):  # a predicate calling another predicate of the series
        for name, summary in summaries:
            if summary is None:
                continue
            direct, callees = summary
            caps = set(direct)
            for callee in callees:
                caps |= preds.get(callee, set())
            if caps:
                preds.setdefault(name, set()).update(caps)
    return preds


Summary = tuple[frozenset[str], tuple[str, ...]]
# more names than this to look for: summarising every function costs no more (never on a kernel series)
_MAX_SEARCHED = 64


@dataclass(frozen=True, slots=True)
class _Candidates:
    """What can enter the predicate table at a patch: `summaries`, the (name, summary) of every series
    function that may, in the order a walk of series_functions() meets them; `names`, a superset of
    the table's names."""

    summaries: list[tuple[str, Summary]]
    names: frozenset[str]


def _candidates(series: SeriesContext, upto: int) -> _Candidates | None:
    """The functions of the series' C files at `upto` that can enter the predicate table (None: too
    many names to look for; summarise every function instead).

    A function enters it only when its text holds a test word (a direct test) or the name of a
    predicate (a call of one). Starting from the kb's predicates, the functions whose text names a
    name found so far are summarised until no new predicate name turns up; each name costs one search
    of each file's text rather than a summary of every function (in full mode ~1,200 per patch, and on
    a kernel series almost none tests a capability). A function left out has no direct test and calls
    none of the names, so it adds nothing to the table, and the table's two passes over the rest, in
    the same order, give the same table."""
    def build() -> _Candidates | None:
        got: dict[tuple[int, int], tuple[str, Summary | None]] = {}  # (path, position) -> name, summary
        names = set(getattr(series.kb, "cap_predicates", {}))
        searched: set[str] = set()
        todo = [*_TEST_WORD_STRS, *sorted(names)]
        while todo:
            searched.update(todo)
            if len(searched) > _MAX_SEARCHED:
                return None
            for pi, view in _views_at(series, upto, _holding_paths(series, tuple(todo))):
                index = _fn_index(view)
                for k in index.holding(tuple(todo)):
                    if (pi, k) not in got:
                        name, fn = index.fns[k]
                        got[(pi, k)] = (name, _summary(series, view, fn))
            for name, summary in got.values():
                if summary is not None and (summary[0] or not names.isdisjoint(summary[1])):
                    names.add(name)
            todo = sorted(names - searched)
        keep = [(key, name, summary) for key, (name, summary) in got.items()
                if summary is not None and (summary[0] or summary[1])]
        # series_functions() order: each name's definitions in path order, then position, and the
        # names by their first definition (path, position), which may be one left out here
        rank: dict[str, tuple[int, int]] = {}
        if len({name for _key, name, _s in keep}) > 1:
            firsts = [(pi, _fn_index(view).first) for pi, view in _views_at(series, upto)]
            for _key, name, _s in keep:
                if name not in rank:
                    rank[name] = next((pi, first[name]) for pi, first in firsts if name in first)
        keep.sort(key=lambda e: (rank.get(e[1], (0, 0)), e[0]))
        return _Candidates([(name, summary) for _key, name, summary in keep], frozenset(names))

    return series.memo(("redundant-capability", "candidates", upto), build)


def _views_at(series: SeriesContext, upto: int, paths: Iterable[int] | None = None) -> Iterator[tuple[int, FileView]]:
    """(index in _path_index(), view) of the C files touched up to `upto` as that patch leaves them
    (series_views()), or of those of them at the given indexes (ascending)."""
    index = _path_index(series)
    for pi in range(len(index)) if paths is None else paths:
        _path, numbers, views = index[pi]
        i = bisect.bisect_right(numbers, upto)
        if i and views[i - 1] is not None:
            yield pi, views[i - 1]


def _holding_paths(series: SeriesContext, words: tuple[str, ...]) -> list[int]:
    """Indexes into _path_index() of the paths some view of which has a function holding one of
    `words`: every patch's search reads only these (the test words are in few files)."""
    return series.memo(("redundant-capability", "holding-paths", words), lambda: [
        pi for pi, (_path, _numbers, views) in enumerate(_path_index(series))
        if any(v is not None and _fn_index(v).holding(words) for v in views)])


class _FnIndex:
    """The functions of one view by byte range, to find the ones whose text holds a word."""

    def __init__(self, view: FileView) -> None:
        text = view.parse_text  # what view.tree was parsed from: ASCII (most files), offsets are bytes
        self.src: str | bytes = text if text.isascii() else text.encode("utf-8", "surrogateescape")
        self.fns = view.functions()
        self._first: dict[str, int] | None = None
        self._layout: tuple[list[int], list[int], bool] | None = None
        self._found: dict[tuple[str, ...], list[int]] = {}

    @property
    def first(self) -> dict[str, int]:
        """name -> position of its first definition in view.functions()."""
        if self._first is None:
            self._first = {}
            for k, (name, _fn) in enumerate(self.fns):
                self._first.setdefault(name, k)
        return self._first

    def holding(self, words: tuple[str, ...]) -> list[int]:
        """Positions (in view.functions(), ascending) of the functions whose text holds one of `words`
        (`word in fn.text`); asked for the same words by every later patch."""
        got = self._found.get(words)
        if got is None:
            got = self._found[words] = (self._search(words[0]) if len(words) == 1 else
                                        sorted({k for w in words for k in self.holding((w,))}))
        return got

    def _search(self, word: str) -> list[int]:
        want = word if isinstance(self.src, str) else word.encode("utf-8", "surrogateescape")
        if not want:
            return list(range(len(self.fns)))
        src = self.src
        i = src.find(want)  # type: ignore[arg-type]
        if i < 0:  # most words are in no function of most files: no layout needed
            return []
        if self._layout is None:
            starts = [fn.start_byte for _n, fn in self.fns]
            ends = [fn.end_byte for _n, fn in self.fns]
            # in source order and apart (the list is in pre-order); nested or overlapping definitions
            # (a broken parse): let every function hold every word
            self._layout = starts, ends, all(ends[k] <= starts[k + 1] for k in range(len(starts) - 1))
        starts, ends, disjoint = self._layout
        if not disjoint:
            return list(range(len(self.fns)))
        out: list[int] = []
        while i >= 0:
            at = bisect.bisect_right(starts, i) - 1  # the last function starting at or before the hit
            if at >= 0 and i + len(want) <= ends[at]:
                out.append(at)  # one hit is enough: go on at the next function
            elif at >= 0 and i < ends[at]:
                i = src.find(want, i + 1)  # type: ignore[arg-type]  # runs past the function's end
                continue
            if at + 1 >= len(starts):
                break
            i = src.find(want, starts[at + 1])  # type: ignore[arg-type]
        return out


_FN_INDEX: weakref.WeakKeyDictionary[Any, _FnIndex] = weakref.WeakKeyDictionary()


def _fn_index(view: FileView) -> _FnIndex:
    got = _FN_INDEX.get(view)
    if got is None:
        got = _FN_INDEX[view] = _FnIndex(view)
    return got


_MISSING = object()
# what guards.capabilities_checked() finds with no predicates: these calls, and system_supports_*()
_TEST_WORD_STRS = tuple(sorted(_guards.CAP_CALLS | _guards.FEAT_CALLS | {"system_supports_"}))
_VIEW_SUMMARIES: weakref.WeakKeyDictionary[Any, dict[int, Any]] = weakref.WeakKeyDictionary()


def _view_summaries(series: SeriesContext, view: FileView) -> dict[int, Any]:
    """fn.id -> `_summary` for every function of the view: each patch's table reads the summaries of
    every function of the series, and one dict per view is cheaper to ask than the memo per node."""
    got = _VIEW_SUMMARIES.get(view)
    if got is None:
        _view_returns(view)  # every function's: one query of the file
        got = _VIEW_SUMMARIES[view] = {fn.id: _summary(series, view, fn) for _name, fn in view.functions()}
    return got


def _summary(series: SeriesContext, view: FileView, fn: Node) -> tuple[frozenset[str], tuple[str, ...]] | None:
    """What a value-returning function's return statements test directly, and which functions they call.

    Computed once per function text per run (the summary reads nothing but the function's own text and
    tree, and a patch rewrites few functions of the files it touches), so the per-patch predicate table
    is set arithmetic instead of a re-walk of every function of the series.
    """
    def build() -> tuple[frozenset[str], tuple[str, ...]] | None:
        typ = fn.child_by_field_name("type")
        if typ is None or text(typ).strip() == "void":
            return None
        callees: list[str] = []
        tests = False
        for ret in _returns(view, fn):  # every return statement predicate_caps() reads, and more
            body = text(ret)
            # a test is a call of one of these names: a function whose returns name none tests
            # nothing directly (most functions of a kernel file: no walk of their bodies)
            tests = tests or any(w in body for w in _TEST_WORD_STRS)
            body = _guards._COMMENT.sub(" ", body)
            callees += [m.group(1) for m in _guards._CALL.finditer(body)]
        direct = frozenset(_guards.predicate_caps(fn, {})) if tests else frozenset()
        return direct, tuple(dict.fromkeys(callees))

    # by node first (the same function is summarised for every later patch: fn.text copies and
    # hashes its whole text), then by text (a function a later patch leaves unchanged); the entry
    # holds the view (and so its tree), so neither id can be reused while it is cached
    return series.memo(("predicate-summary-node", id(view), fn.id),
                       lambda: (view, series.memo(("predicate-summary", fn.text), build)))[1]


_RETURN_STATEMENT = frozenset({"return_statement"})
_VIEW_RETURNS: weakref.WeakKeyDictionary[Any, tuple[list[int], list[Node], set[Node]]] = \
    weakref.WeakKeyDictionary()


def _view_returns(view: FileView) -> tuple[list[int], list[Node], set[Node]]:
    """Every return statement of the view (one whole-tree query), their starts, and its functions."""
    got = _VIEW_RETURNS.get(view)
    if got is None:
        nodes = list(walk(view.root, _RETURN_STATEMENT))
        got = _VIEW_RETURNS[view] = ([n.start_byte for n in nodes], nodes, {f for _n, f in view.functions()})
    return got


def _returns(view: FileView, fn: Node) -> list[Node]:
    """walk(fn, {"return_statement"}), read from the view's list of every return statement when it
    was made (summaries of every function of the file; a few are cheaper to walk one by one): in
    pre-order, every node is after its ancestors and before the nodes after its end, so fn's are
    those starting and ending within it (no return statement holds a function)."""
    got = _VIEW_RETURNS.get(view)
    if got is None or fn not in got[2]:  # no list yet, or not a function of the view's tree: walk it
        found = nodes_of(fn, _RETURN_STATEMENT)  # a query, not a Python walk of a kernel function
        return found if found is not None else list(walk(fn, _RETURN_STATEMENT))
    starts, nodes, _mine = got
    end = fn.end_byte
    return [n for n in nodes[bisect.bisect_left(starts, fn.start_byte):bisect.bisect_right(starts, end)]
            if n.end_byte <= end]


def caps_tested(node: Node, preds: Mapping[str, Iterable[str]]) -> set[str]:
    return _guards.capabilities_checked(node, preds)


def predicate_callees(expr: Node, preds: Mapping[str, Iterable[str]], cap: str) -> list[str]:
    """Predicates called in `expr` through which `cap` is tested."""
    out = []
    for call in walk(expr, {"call_expression"}):
        name = call_name(call)
        if name and name not in _guards.CAP_CALLS and cap in preds.get(name, ()):
            out.append(name)
    return out


def direct_test(expr: Node, cap: str) -> bool:
    """True when `expr` itself calls cpus_have_final_cap(cap) (or a sibling cap call)."""
    for call in walk(expr, {"call_expression"}):
        if call_name(call) in _guards.CAP_CALLS and cap in _guards.capabilities_checked(call, {}):
            return True
    return False


# -- local facts (inside one function) ----------------------------------------------------------

def _inner(node: Node) -> Node:
    while node.type == "parenthesized_expression" and node.named_child_count == 1:
        node = node.named_children[0]
    return node


def caps_if_true(node: Node | None, preds: Mapping[str, Iterable[str]]) -> set[str]:
    """Capabilities that hold when `node` is true (calls, `&&` chains, negations)."""
    if node is None:
        return set()
    node = _inner(node)
    if node.type == "call_expression":
        return _guards.capabilities_checked(node, preds) if _all_caps_required(node, preds) else set()
    if node.type == "binary_expression":
        op = text(node.child_by_field_name("operator"))
        if op == "&&":
            return caps_if_true(node.child_by_field_name("left"), preds) | caps_if_true(
                node.child_by_field_name("right"), preds)
    if node.type == "unary_expression" and text(node.child_by_field_name("operator")) == "!":
        return caps_if_false(node.child_by_field_name("argument"), preds)
    return set()


def caps_if_false(node: Node | None, preds: Mapping[str, Iterable[str]]) -> set[str]:
    """Capabilities that hold when `node` is false (`!x`, `||` chains)."""
    if node is None:
        return set()
    node = _inner(node)
    if node.type == "unary_expression" and text(node.child_by_field_name("operator")) == "!":
        return caps_if_true(node.child_by_field_name("argument"), preds)
    if node.type == "binary_expression" and text(node.child_by_field_name("operator")) == "||":
        return caps_if_false(node.child_by_field_name("left"), preds) | caps_if_false(
            node.child_by_field_name("right"), preds)
    return set()


def _all_caps_required(call: Node, preds: Mapping[str, Iterable[str]]) -> bool:
    """A direct capability call guarantees its capability; a predicate only when it is known to
    test it (its body may test it under `||`, so only direct calls count as guarantees)."""
    return call_name(call) in _guards.CAP_CALLS or (call_name(call) or "").startswith("system_supports_")


def _exits(stmt: Node | None) -> str | None:
    """'return'/'goto:<label>' when a statement unconditionally leaves the current path."""
    if stmt is None:
        return None
    if stmt.type == "compound_statement":
        body = [c for c in stmt.named_children if c.type != "comment"]
        return _exits(body[-1]) if body else None
    if stmt.type == "return_statement":
        return "return"
    if stmt.type == "goto_statement":
        label = stmt.child_by_field_name("label")
        return f"goto:{text(label)}"
    return None


def _label(stmt: Node) -> str | None:
    if stmt.type == "labeled_statement":
        lab = stmt.child_by_field_name("label")
        return text(lab) if lab is not None else None
    return None


def local_caps(node: Node, preds: Mapping[str, Iterable[str]], fn_name: str,
               siblings: bool = True) -> dict[str, Why]:
    """Capabilities that hold at `node` because of the code of its own function. `siblings`: also
    earlier early-return statements (off when the function's extent is unknown)."""
    out: dict[str, Why] = {}
    child = node
    parent = node.parent
    while parent is not None and parent.type != "function_definition":
        if parent.type == "compound_statement" and siblings:
            pending: dict[str, tuple[str, int]] = {}  # cap -> (exit kind, line)
            for sib in parent.named_children:
                if sib.id == child.id:
                    if (lab := _label(sib)) is not None:
                        pending = {c: v for c, v in pending.items() if v[0] != f"goto:{lab}"}
                    break
                if (lab := _label(sib)) is not None:
                    pending = {c: v for c, v in pending.items() if v[0] != f"goto:{lab}"}
                if sib.type == "if_statement" and sib.child_by_field_name("alternative") is None:
                    kind = _exits(sib.child_by_field_name("consequence"))
                    if kind is not None:
                        for cap in caps_if_false(sib.child_by_field_name("condition"), preds):
                            pending.setdefault(cap, (kind, sib.start_point[0] + 1))
            for cap, (_, line) in pending.items():
                out.setdefault(cap, Why(fn_name, line))
        elif parent.type == "if_statement":
            cond = parent.child_by_field_name("condition")
            cons = parent.child_by_field_name("consequence")
            alt = parent.child_by_field_name("alternative")  # an else_clause in tree-sitter-c
            if cons is not None and child.id == cons.id:
                for cap in caps_if_true(cond, preds):
                    out.setdefault(cap, Why(fn_name, parent.start_point[0] + 1))
            elif alt is not None and child.id == alt.id:
                for cap in caps_if_false(cond, preds):
                    out.setdefault(cap, Why(fn_name, parent.start_point[0] + 1))
        elif parent.type == "binary_expression":
            op = text(parent.child_by_field_name("operator"))
            right = parent.child_by_field_name("right")
            left = parent.child_by_field_name("left")
            if right is not None and child.id == right.id and left is not None:
                caps = caps_if_true(left, preds) if op == "&&" else caps_if_false(left, preds) if op == "||" else set()
                for cap in caps:
                    out.setdefault(cap, Why(fn_name, left.start_point[0] + 1))
        elif parent.type == "conditional_expression":
            cond = parent.child_by_field_name("condition")
            cons = parent.child_by_field_name("consequence")
            alt = parent.child_by_field_name("alternative")
            if cons is not None and child.id == cons.id:
                for cap in caps_if_true(cond, preds):
                    out.setdefault(cap, Why(fn_name, parent.start_point[0] + 1))
            elif alt is not None and child.id == alt.id:
                for cap in caps_if_false(cond, preds):
                    out.setdefault(cap, Why(fn_name, parent.start_point[0] + 1))
        child = parent
        parent = parent.parent
    return out


# -- callers ------------------------------------------------------------------------------------

def is_static(fn: Node) -> bool:
    return any(c.type == "storage_class_specifier" and text(c) == "static" for c in fn.children)


def enclosing_function(node: Node) -> Node | None:
    n = node.parent
    while n is not None and n.type != "function_definition":
        n = n.parent
    return n


def _fully_known(view: FileView, node: Node) -> bool:
    if view.mode == "full":
        return True
    return all(n in view.known for n in range(node.start_point[0] + 1, node.end_point[0] + 2))


def _table_as_of(view: FileView, kb: Any, series: SeriesContext | None = None) -> str | None:
    """What the kb's guard table is worth where it stands in for guards the view cannot show
    (docs/knowledge.md, kernel/dating.py): '' when it may support a warning (read from the tree, or
    bundled and the series dated after the kernel it describes), "as of vX.Y" when at most a check,
    None when it must not be used at all (a base tree is present: tree facts only)."""
    prov = (getattr(kb, "provenance", None) or {}).get("guards") or {}
    if str(prov.get("source", "")).startswith("tree"):
        return ""
    # the series' earliest mail dates it (dating.trust()); without the series, the patch's own
    ctx = series if series is not None else SimpleNamespace(
        full=False, series=SimpleNamespace(patches=(view.patch,), cover=None))
    t = trust_dated(ctx, dated_from(prov))
    if not t.use:
        return None
    return "" if t.warn else (t.as_of or "as of an undated kernel")


class CapabilityFlow:
    """Capabilities known to hold at nodes of one file view."""

    def __init__(self, view: FileView, preds: Mapping[str, Iterable[str]], kb: Any,
                 series: SeriesContext | None = None) -> None:
        self.view = view
        self.preds = preds
        self.kb = kb
        self.hunk_only = view.mode != "full"
        # the bundled guard table is dated (docs/knowledge.md): without a tree it stands in for
        # guards outside the hunks only for a patch dated after the kernel it describes
        self.table_as_of = _table_as_of(view, kb, series)
        self._fns: dict[str, list[Node]] = {}
        for name, fn in view.functions():  # the view's own list, walked once per view
            self._fns.setdefault(name, []).append(fn)
        self._entry: dict[str, dict[str, Why]] = {}

    def at(self, node: Node) -> dict[str, Why]:
        """Every capability that holds at `node`, with the reason."""
        fn = enclosing_function(node)
        if fn is None:  # hunk-only: the function's head is outside the hunks; local facts only
            return local_caps(node, self.preds, "", siblings=False)
        name = function_name(fn) or ""
        out = dict(self.entry(name, fn))
        out.update(local_caps(node, self.preds, name))
        if self.hunk_only and not _fully_known(self.view, fn):
            out.update({c: w for c, w in self._table(name, fn, node).items() if c not in out})
        return out

    def _table(self, name: str, fn: Node, node: Node) -> dict[str, Why]:
        """The kb's guards of `name` when the function's own guard lines are not all visible."""
        out: dict[str, Why] = {}
        if self.table_as_of is None:  # a base tree is present: its facts only
            return out
        for g in getattr(self.kb, "guards", {}).get(name, ()):
            if g.scope == _guards.FUNCTION:
                out[g.capability] = Why(name, None, assumed=True, as_of=self.table_as_of)
            elif g.scope == _guards.AFTER and g.anchor:
                key = _squash(g.anchor)
                for line in range(fn.start_point[0] + 1, node.start_point[0] + 1):
                    if line in self.view.known and key in _squash(self.view.line_text(line)):
                        out[g.capability] = Why(name, line, assumed=True, as_of=self.table_as_of)
                        break
        return out

    def entry(self, name: str, fn: Node, depth: int = 0) -> dict[str, Why]:
        """Capabilities every caller in this file guarantees when calling static function `name`."""
        if name in self._entry:
            return self._entry[name]
        self._entry[name] = {}  # recursion guard
        result: dict[str, Why] = {}
        if depth < _MAX_DEPTH and is_static(fn) and len(self._fns.get(name, ())) == 1:
            result = self._from_callers(name, fn, depth)
        self._entry[name] = result
        return result

    def _from_callers(self, name: str, fn: Node, depth: int) -> dict[str, Why]:
        sites: list[Node] = []
        for ident in _identifiers(self.view, name):
            if _within(ident, fn):
                continue
            parent = ident.parent
            if parent is None or parent.type != "call_expression" or parent.child_by_field_name("function") != ident:
                if parent is not None and parent.type == "function_declarator":
                    continue  # a prototype
                return {}  # address taken / used otherwise: callers unknown
            sites.append(parent)
        per_site: list[dict[str, Why] | None] = []
        for call in sites:
            caller = enclosing_function(call)
            cname = function_name(caller) if caller is not None else None
            if caller is None or not cname or (self.hunk_only and caller.start_point[0] + 1 not in self.view.known):
                per_site.append(None)  # caller not visible (hunk-only)
                continue
            here = dict(self.entry(cname, caller, depth + 1))
            here.update(local_caps(call, self.preds, cname))
            if self.hunk_only and not _fully_known(self.view, caller):
                here.update({c: w for c, w in self._table(cname, caller, call).items() if c not in here})
            # `via`: the function the guarding function calls (the one a reader looks at)
            per_site.append({c: Why(w.guard, w.line, name if w.guard == cname else w.via, w.assumed, w.as_of)
                             for c, w in here.items()})
        if self.hunk_only and (not sites or any(s is None for s in per_site)):
            per_site = [s for s in per_site if s is not None] + [self._assumed(name)]
        if not per_site or any(s is None for s in per_site):
            return {}
        known = [s for s in per_site if s is not None]
        common = set(known[0])
        for s in known[1:]:
            common &= set(s)
        return {c: known[0][c] for c in common}

    def _assumed(self, name: str) -> dict[str, Why]:
        """Hunk-only: a static __compute_<fgt reg>() of config.c is kvm_vcpu_load_fgt()'s helper."""
        m = re.fullmatch(r"__compute_(\w+)", name)
        if not m or not self.view.path.endswith(CONFIG_C) or self.table_as_of is None:
            return {}
        spec = FGT_SPECS.get(m.group(1).upper() + "_EL2")
        guards = getattr(self.kb, "guards", {}).get(LOAD_FGT, ())
        if spec is None or not guards:
            return {}
        out: dict[str, Why] = {}
        for g in guards:
            if g.scope == _guards.FUNCTION or g.capability == spec.capability:
                out[g.capability] = Why(LOAD_FGT, None, via=name, assumed=True, as_of=self.table_as_of)
        return out


def _identifiers(view: FileView, name: str) -> list[Node]:
    """Every identifier node spelled `name` in the view, in source order.

    Finds the spelling in the source bytes and asks the tree for the leaf there: walking every
    identifier of a whole kernel file for each static function was most of this module's cost."""
    src = view.parse_text.encode("utf-8", "surrogateescape")  # the bytes view.tree was parsed from
    want = name.encode("utf-8", "surrogateescape")
    out: list[Node] = []
    if not want:  # MISSING (zero-width) identifiers: no spelling to look for
        return [n for n in walk(view.root, {"identifier"}) if text(n) == name]
    i = src.find(want)
    while i >= 0:
        n = view.root.descendant_for_byte_range(i, i + len(want))
        if n is not None and n.type == "identifier" and n.start_byte == i and n.end_byte == i + len(want):
            out.append(n)
        i = src.find(want, i + 1)
    return out


def _within(node: Node, outer: Node) -> bool:
    return outer.start_byte <= node.start_byte and node.end_byte <= outer.end_byte


def _squash(s: str) -> str:
    return "".join(s.split())


def may_check(series: SeriesContext, view: FileView, upto: int | None = None) -> bool:
    """Can `added_checks` find anything in `view`, given patch `upto`'s predicates (None: whatever
    patch's)? Only when an added call is a capability/feature test, a predicate of the kb, or a
    function that can be in that table (the predicate tables hold nothing else). The per-patch tables
    cost a pass over the functions of the series: a view without such a call needs none."""
    names = {name for _call, name in _added_calls(view)}
    if not names:
        return False
    if not names.isdisjoint(_guards.CAP_CALLS) or not names.isdisjoint(_guards.FEAT_CALLS):
        return True
    known = getattr(series.kb, "cap_predicates", None) or {}
    if any(n in known for n in names):
        return True
    found = _candidates(series, upto) if upto is not None else None
    if found is not None:  # the names patch `upto`'s table can hold
        return not names.isdisjoint(found.names)
    return any(_candidate_predicate(series, n) for n in names)


def _candidate_predicate(series: SeriesContext, name: str) -> bool:
    """Some view of the series (any patch's) defines `name` with a return that tests a capability or
    calls a function: only such series functions can be in a predicate table. Only the definitions of
    the added calls' names are summarised, not every function of every (full mode: whole) file."""
    def build() -> bool:
        for view, fn in _series_definitions(series).get(name, ()):
            got = _summary(series, view, fn)
            if got is not None and (got[0] or got[1]):
                return True
        return False

    return series.memo(("redundant-capability", "candidate-predicate", name), build)


def _series_definitions(series: SeriesContext) -> dict[str, list[tuple[FileView, Node]]]:
    """name -> (view, function_definition) of every C view of every patch."""
    def build() -> dict[str, list[tuple[FileView, Node]]]:
        out: dict[str, list[tuple[FileView, Node]]] = {}
        for views in series.views.values():
            for view in views:
                if view.is_c:
                    for name, fn in view.functions():
                        out.setdefault(name, []).append((view, fn))
        return out

    return series.memo(("redundant-capability", "series-definitions"), build)


def added_checks(view: FileView, preds: Mapping[str, Iterable[str]]) -> Iterator[tuple[Node, str, set[str]]]:
    """(call, callee, capabilities it tests) for every added call that tests a capability, directly
    (cpus_have_final_cap(), kvm_has_feat()) or through a known predicate."""
    for call, name in _added_calls(view):
        if name in _guards.CAP_CALLS or name in _guards.FEAT_CALLS:
            caps = _guards.capabilities_checked(call, {})
        else:
            caps = set(preds.get(name, ()))
        if caps:
            yield call, name, caps


# Both rules ask for the added calls of the same views: walking every call of a whole kernel file
# twice per view was most of added_checks(); views are immutable, so keep the list per view object.
_ADDED_CALLS: weakref.WeakKeyDictionary[Any, list[tuple[Node, str]]] = weakref.WeakKeyDictionary()
_CALL = frozenset({"call_expression"})


def _added_calls(view: FileView) -> list[tuple[Node, str]]:
    found = _ADDED_CALLS.get(view)
    if found is None:
        found = [(call, name) for call in view.added_nodes(_CALL) if (name := call_name(call))]
        _ADDED_CALLS[view] = found
    return found

