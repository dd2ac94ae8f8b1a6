"""Paired calls (lock/unlock, get/put, pin/unpin ...) walked over each function's control flow.

For every function definition the walk follows the statements (if/else, loops, switch, goto and
labels, return, falling off the end) carrying the set of resources held on each path, and reports
the exits reached with a resource still held. The pairs themselves are data (pairs_table.PAIRS);
unlisted `x_lock()`/`x_unlock()` and `x_begin()`/`x_end()` names pair by name (`derive`).

Everything uncertain makes the walk *drop* a resource rather than guess (silence over guessing):

- conditional acquisition: `if (!mutex_trylock(l)) return ...`, `if (mutex_lock_interruptible(l))`,
  `ret = hyp_pin_shared_mem(...); if (ret) return ret;` and `if (is_error_pfn(pfn)) return` are
  understood; any other use of an acquire's result makes that resource opaque (never reported);
- a resource passed to a call the table does not know (it may store or release it), a page/pfn
  variable stored, returned or overwritten, or a call whose name says it releases something
  (`*_unlock*`, `*_put*`, `*_release*`, ...; or a same-file helper whose body calls a release)
  ends the tracking;
- a release whose argument text matches no held resource of its family (an alias, another lock)
  makes those resources opaque;
- functions annotated `__acquires`/`__releases`/`__must_hold`/`__cond_acquires`, or whose name says
  they take or hold something (`*_lock`, `*_locked`, `*_begin`, ...), are not analysed;
- a resource is only reported when the function also releases it somewhere (it is meant to be
  balanced here) and no normal exit (the last statement) keeps it (not handed to the caller);
  the exits reported are early returns, and normal exits reached through a `goto` taken while held.

A release placed right after an unconditional `return` in the same block (unreachable) is reported
as kind "unreachable-release".
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from functools import cache
from typing import TYPE_CHECKING
from weakref import WeakKeyDictionary

from .. import lazyre
from ..lang.c import balanced_parens, call_name, function_name, functions, parse, text, walk
from ..lazyre import lazy_re
from ..record import dataclass, replace
from .pairs_table import PAIRS

if TYPE_CHECKING:
    from tree_sitter import Node

    from ..views.context import FileView

LOCKING = frozenset({"lock", "rcu", "preempt", "irq", "vcpu"})
PAGES = frozenset({"page", "pfn"})


@dataclass(frozen=True, slots=True)
class Pair:
    kind: str
    acquire: frozenset[str]
    release: frozenset[str]
    key: int | str | None  # argument index, "ret" (the assigned result) or None (no argument)
    success: str  # always | try | zero | value
    family: str  # a stable name: the first acquire


@dataclass(frozen=True, slots=True)
class Leak:
    """An exit reached with a resource held: `exit` is the return or goto statement, or for kind
    "unreachable-release" the release call. Nodes are None when found on hunk lines alone."""

    function: str
    acquire_line: int  # 1-based post-image lines
    exit_line: int
    kind: str  # early-return | goto | unreachable-release
    pair: Pair
    key: str  # the resource's text ("" for rcu_read_lock() and friends)
    acquire: Node | None = None  # the acquire call_expression
    exit: Node | None = None


def _leak(function: str, acquire: Node, exit_: Node, kind: str, pair: Pair, key: str) -> Leak:
    return Leak(function, acquire.start_point[0] + 1, exit_.start_point[0] + 1, kind, pair, key, acquire, exit_)


@cache
def table() -> tuple[dict[str, Pair], dict[str, tuple[Pair, ...]]]:
    """acquire name -> Pair, release name -> the pairs it releases."""
    acquires: dict[str, Pair] = {}
    releases: dict[str, list[Pair]] = {}
    aliases: dict[str, list[str]] = {}
    for line in PAIRS.strip().splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        if line.startswith("@"):
            name, _, names = line.partition("=")
            aliases[name.strip()] = names.split()
            continue
        head, acq_s, rel_s = (c.strip() for c in line.split("|"))
        kind, key, success = head.split()
        acq = acq_s.split()
        rel = [r for x in rel_s.split() for r in aliases.get(x, [x])]
        k: int | str | None = None if key == "-" else ("ret" if key == "ret" else int(key))
        pair = Pair(kind, frozenset(acq), frozenset(rel), k, success, acq[0])
        for a in acq:
            acquires[a] = pair
        for r in pair.release:
            releases.setdefault(r, []).append(pair)
    return acquires, {r: tuple(ps) for r, ps in releases.items()}


@cache
def derive(name: str) -> Pair | None:
    """`x_lock`/`lock_x` -> `x_unlock`/`unlock_x` (irqsave -> irqrestore), `x_begin` -> `x_end`, for
    names the table lacks. Only used when the function calls the derived release too."""
    if name in table()[0] or (name.startswith("__") and name[2:] in table()[0]):
        return None
    segs = name.split("_")
    if "lock" in segs:
        rel = ["unlock" if s == "lock" else "irqrestore" if s == "irqsave" else s for s in segs]
    elif "begin" in segs:
        rel = ["end" if s == "begin" else s for s in segs]
    else:
        return None
    return Pair("lock", frozenset({name}), frozenset({"_".join(rel)}), 0, "always", name)


def pair_of(name: str) -> Pair | None:
    return table()[0].get(name) or derive(name)


# -- per-view entry point ---------------------------------------------------------------------------

_CACHE: WeakKeyDictionary[FileView, list[Leak]] = WeakKeyDictionary()


def view_leaks(view: FileView) -> list[Leak]:
    """Every leak in the functions the patch touches (computed once per view). In hunk-only mode
    each run of known lines is parsed on its own (an unterminated comment at a hunk's end would
    otherwise swallow the next hunks) and only functions whose every line is known are walked;
    elsewhere only the line-based unreachable-release check runs."""
    if view in _CACHE:
        return _CACHE[view]
    out: list[Leak] = []
    if view.is_c and _acquire_words().search(view.text):
        roots = parsed_roots(view)
        helpers = {name: fn for root in roots for name, fn in functions(root)}
        walked: set[int] = set()
        for root in roots:
            for _name, fn in functions(root):
                # the rules anchor on added lines inside the function: untouched ones are not walked
                touched = view.touches_added(fn)  # an added line among its rows (a bisection)
                if touched and whole(view, fn):
                    out.extend(function_leaks(fn, helpers))
                    walked.update(range(fn.start_point[0] + 1, fn.end_point[0] + 2))
        out.extend(lk for lk in _unreachable_lines(view) if lk.exit_line not in walked)
    _CACHE[view] = out
    return out


@cache
def _acquire_words() -> re.Pattern[str]:
    """Text every name `pair_of()` knows contains: a table acquire, or a `lock`/`begin` segment
    (derive()). Every leak starts at such a call, so a file without one has none: most files of a
    series are never parsed or walked here."""
    names = set(table()[0]) | {"lock", "begin"}
    # the names no other name is part of; shortest first, so a name containing another is met after it
    minimal: set[str] = set()
    for n in sorted(names, key=len):
        if not any(m in n for m in minimal):
            minimal.add(n)
    # derived from the shipped table alone: static, so the per-build cache may keep it (~0.5 ms a run)
    return lazyre.compile("|".join(re.escape(n) for n in sorted(minimal, key=lambda n: (-len(n), n))))


_ROOTS: WeakKeyDictionary[FileView, list[Node]] = WeakKeyDictionary()


def parsed_roots(view: FileView) -> list[Node]:
    """The view's syntax tree(s): the file's in full mode; in hunk-only mode one tree per run of
    known lines (rows kept), so a comment left open at a hunk's end cannot swallow the next hunk."""
    if view not in _ROOTS:
        _ROOTS[view] = [view.root] if view.mode == "full" else [
            parse(t.encode("utf-8", "surrogateescape")).root_node for t in _runs(view)]
    return _ROOTS[view]


def whole(view: FileView, fn: Node) -> bool:
    """The function definition is complete and every line of it is known."""
    return _closed(fn) and all(n in view.known for n in range(fn.start_point[0] + 1, fn.end_point[0] + 2))


def id_of(node: Node) -> tuple[int, int]:
    return (node.start_byte, node.end_byte)


def _runs(view: FileView) -> Iterator[str]:
    """The text of each run of known lines, padded with empty lines so rows stay real lines."""
    lines = view.lines
    # from the known line numbers, not every line of the file (a hunk deep in a file)
    known = sorted(n for n in view.known if 1 <= n <= len(lines))
    i = 0
    while i < len(known):
        j = i
        while j + 1 < len(known) and known[j + 1] == known[j] + 1:
            j += 1
        start, end = known[i], known[j] + 1
        yield "\n" * (start - 1) + "\n".join(lines[start - 1:end - 1]) + "\n"
        i = j + 1


def _closed(fn: Node) -> bool:
    body = fn.child_by_field_name("body")
    if body is None or not body.children:
        return False
    last = body.children[-1]
    return last.type == "}" and not last.is_missing


# -- the walk -------------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Held:
    pair: Pair
    key: str
    acquire: int  # start_byte of the acquire call
    result: str | None = None  # the variable the acquire's result went to
    via_goto: int | None = None  # start_byte of a goto taken while held
    escaped: bool = False  # passed to an unknown call or stored: maybe handed over, never reported

    @property
    def rid(self) -> tuple[str, str]:
        return (self.pair.family, self.key)


State = tuple[frozenset[Held], frozenset[tuple[str, bool]]]  # held resources, known conditions
_MAX_STATES = 96
_ANNOTATED = lazy_re(r"\b__(?:acquires|releases|must_hold|cond_acquires|cond_releases)\s*\(")
_HOLDER_SEGS = frozenset({"lock", "locked", "trylock", "acquire", "acquires", "begin", "grab", "hold",
                          "unlock", "release", "end"})
# a call whose name has one of these words may release resources of these kinds (unknown helpers)
_RELEASEISH: dict[str, frozenset[str]] = {
    **dict.fromkeys(("unlock",), frozenset({"lock", "rcu", "vcpu"})),
    **dict.fromkeys(("end", "exit", "done", "finish"), frozenset({"lock", "rcu", "preempt", "irq"})),
    **dict.fromkeys(("enable", "restore"), frozenset({"preempt", "irq"})),
    **dict.fromkeys(("put", "free", "unpin", "unmap"), frozenset({"page", "pfn", "ref", "alloc", "vcpu"})),
    **dict.fromkeys(("release", "drop", "destroy", "cleanup", "teardown"),
                    frozenset({"lock", "rcu", "preempt", "irq", "vcpu", "page", "pfn", "ref", "alloc"})),
}
_NOT_RELEASEISH = frozenset({"put_user", "__put_user", "get_user", "__get_user", "copy_to_user"})
_NORETURN = frozenset({"BUG", "panic", "hyp_panic", "unreachable", "__builtin_unreachable", "do_exit",
                       "__hyp_panic", "nvhe_hyp_panic_handler", "hyp_panic_bad_stack"})
# calls that neither store nor release what they are given
_BENIGN = frozenset({
    "lockdep_assert_held", "lockdep_assert_held_write", "lockdep_assert_held_read", "lockdep_is_held",
    "assert_spin_locked", "spin_is_locked", "mutex_is_locked", "rwsem_is_locked", "hyp_assert_lock_held",
    "lockdep_assert_not_held", "might_lock",
    "is_error_pfn", "is_error_noslot_pfn", "is_noslot_pfn", "IS_ERR", "IS_ERR_OR_NULL", "PTR_ERR",
    "WARN_ON", "WARN_ON_ONCE", "WARN", "WARN_ONCE", "BUG_ON", "likely", "unlikely", "READ_ONCE",
    "kvm_set_pfn_dirty", "kvm_set_pfn_accessed", "page_address", "pfn_valid", "page_to_phys",
    "sizeof", "ARRAY_SIZE", "pr_err", "pr_warn", "pr_info", "pr_debug", "kvm_err", "kvm_debug",
})
_FAIL_FN = frozenset({"IS_ERR", "IS_ERR_OR_NULL", "is_error_pfn", "is_error_noslot_pfn", "is_noslot_pfn"})
_UNWRAP = frozenset({"likely", "unlikely", "WARN_ON", "WARN_ON_ONCE"})
_IDENT = lazy_re(r"[A-Za-z_]\w*")


def _norm(t: str) -> str:
    t = re.sub(r"\s+", "", t)
    while True:
        old = t
        if t.startswith("(") and t.endswith(")") and balanced_parens(t[1:-1]):
            t = t[1:-1]
        t = t.removeprefix("&")
        if t == old:
            return t


def _args(call: Node) -> list[Node]:
    al = call.child_by_field_name("arguments")
    return [a for a in al.named_children if a.type != "comment"] if al is not None else []


def _named(node: Node) -> list[Node]:
    return [c for c in node.named_children if c.type != "comment"]


def _strip(node: Node) -> Node:
    """Through parentheses and likely()/unlikely()/WARN_ON() around a condition."""
    while True:
        if node.type == "parenthesized_expression" and _named(node):
            node = _named(node)[0]
        elif node.type == "call_expression" and call_name(node) in _UNWRAP and len(_args(node)) == 1:
            node = _args(node)[0]
        else:
            return node


class _GiveUp(Exception):
    pass


class _Walk:
    def __init__(self, fn: Node, helpers: Mapping[str, Node]) -> None:
        self.fn = fn
        self.helpers = helpers
        self.calls = {n for n in (call_name(c) for c in walk(fn, {"call_expression"})) if n}
        self.opaque: set[tuple[str, str]] = set()
        self.exits: list[tuple[Node, frozenset[Held], bool]] = []  # (exit node, held, final?)
        self.pending: dict[str, set[State]] = {}
        self.seed: dict[str, set[State]] = {}
        self.frames: list[tuple[set[State], set[State] | None]] = []  # (breaks, continues)
        self.finals = _final_returns(fn)
        self.acquires: dict[int, Node] = {}
        self._helper_memo: dict[str, frozenset[str]] = {}
        self._cond_acquires: set[int] = set()
        self.consumed: dict[str, set[State]] = {}
        self.labels = {text(n.child_by_field_name("label")): n for n in walk(fn, {"labeled_statement"})}

    # statements ---------------------------------------------------------------------------------
    def run(self) -> None:
        body = self.fn.child_by_field_name("body")
        if body is None:
            raise _GiveUp
        for _ in range(4):
            self.exits, self.pending, self.opaque, self.consumed = [], {}, set(), {}
            out = self.stmt(body, {(frozenset(), frozenset())})
            for s in out:
                self.exits.append((body, s[0], True))
            if set(self.pending) - set(self.labels):
                raise _GiveUp  # a goto to a label we did not see
            if all(v <= self.consumed.get(k, set()) for k, v in self.pending.items()):
                return
            self.seed = {k: self.seed.get(k, set()) | v for k, v in self.pending.items()}
        raise _GiveUp

    def block(self, nodes: list[Node], states: set[State]) -> set[State]:
        i = 0
        while i < len(nodes):
            n = nodes[i]
            nxt = nodes[i + 1] if i + 1 < len(nodes) else None
            if (n.type == "expression_statement" and nxt is not None and nxt.type == "compound_statement"
                    and _macro_loop(n)):
                name = call_name(_named(n)[0])
                states = self.effects(n, states)
                if name in ("scoped_guard", "scoped_cond_guard"):
                    states = self.stmt(nxt, states)
                else:
                    states = self.loop(None, nxt, states, maybe_zero=True, back=True)
                i += 2
                continue
            states = self.stmt(n, states)
            i += 1
        return states

    def stmt(self, node: Node, states: set[State]) -> set[State]:
        t = node.type
        if t == "labeled_statement":
            label = text(node.child_by_field_name("label"))
            states = states | self.seed.get(label, set()) | self.pending.get(label, set())
            self.consumed[label] = set(states)
            inner = [c for c in _named(node) if c.type != "statement_identifier"]
            return self.block(inner, states)
        if not states and not any(node.start_byte <= n.start_byte < node.end_byte for n in self.labels.values()):
            return states
        if len(states) > _MAX_STATES:
            states = _collapse(states)
        if t == "compound_statement":
            return self.block(_named(node), states)
        if t in ("expression_statement", "declaration"):
            if node.has_error and self._mentions_pairs(node):
                raise _GiveUp
            out = self.effects(node, states)
            call = _named(node)[0] if _named(node) else None
            if call is not None and call.type == "call_expression" and call_name(call) in _NORETURN:
                return set()
            return out
        if t == "if_statement":
            cond = node.child_by_field_name("condition")
            then, other = self.cond(cond, states)
            out = self.stmt(node.child_by_field_name("consequence"), then)
            alt = node.child_by_field_name("alternative")
            if alt is not None:
                inner = _named(alt)
                return out | (self.block(inner, other) if alt.type == "else_clause" else self.stmt(alt, other))
            return out | other
        if t in ("while_statement", "for_statement", "do_statement"):
            return self.loop(node, node.child_by_field_name("body"), states,
                             maybe_zero=t != "do_statement", back=True)
        if t == "switch_statement":
            return self.switch(node, states)
        if t == "return_statement":
            states = self.effects(node, states)
            final = id_of(node) in self.finals
            for s in states:
                self.exits.append((node, s[0], final))
            return set()
        if t == "goto_statement":
            label = text(node.child_by_field_name("label"))
            moved = {(frozenset(h if h.via_goto is not None else replace(h, via_goto=node.start_byte)
                                for h in s[0]), s[1]) for s in states}
            self.pending.setdefault(label, set()).update(moved)
            return set()
        if t == "break_statement":
            if not self.frames:
                raise _GiveUp
            self.frames[-1][0].update(states)
            return set()
        if t == "continue_statement":
            frame = next((f for f in reversed(self.frames) if f[1] is not None), None)
            if frame is None or frame[1] is None:
                raise _GiveUp
            frame[1].update(states)
            return set()
        if t in ("preproc_if", "preproc_ifdef", "preproc_else", "preproc_elif", "preproc_elifdef"):
            return self.preproc(node, states)
        if t in ("comment", "empty_statement", "preproc_call", "preproc_def", "preproc_function_def",
                 "preproc_include", "type_definition", ";"):
            return states
        # anything else (ERROR, attributes, asm): harmless unless it hides control flow or a pair
        if self._mentions_pairs(node) or any(n.type in ("return_statement", "goto_statement", "break_statement",
                                                        "continue_statement", "labeled_statement")
                                             for n in walk(node)):
            raise _GiveUp
        return self.effects(node, states)

    def preproc(self, node: Node, states: set[State]) -> set[State]:
        kids = [c for c in _named(node) if c.type not in ("identifier", "preproc_defined")
                and c != node.child_by_field_name("condition")]
        alt = node.child_by_field_name("alternative")
        body = [c for c in kids if alt is None or c != alt]
        out = self.block(body, states)
        return out | (self.preproc(alt, states) if alt is not None else states)

    def loop(self, node: Node | None, body: Node | None, states: set[State], *, maybe_zero: bool,
             back: bool) -> set[State]:
        cond = node.child_by_field_name("condition") if node is not None else None
        if node is not None and node.type == "for_statement":
            for part in ("initializer", "update"):
                p = node.child_by_field_name(part)
                if p is not None:
                    states = self.effects(p, states)
        infinite = node is not None and (cond is None or text(_strip(cond)) in ("1", "true")) \
            and node.type != "do_statement"
        once = node is not None and node.type == "do_statement" and cond is not None \
            and text(_strip(cond)) in ("0", "false")
        if cond is not None:
            self._no_acquire_in(cond)
        head = set(states)
        breaks: set[State] = set()
        out: set[State] = set()
        for _ in range(3):
            conts: set[State] = set()
            self.frames.append((breaks, conts))
            try:
                out = self.stmt(body, head) if body is not None else head
            finally:
                self.frames.pop()
            if cond is not None:
                out = self.effects(cond, out, stores=False)
                conts = self.effects(cond, conts, stores=False)
            if once:
                return out | conts | breaks
            new = head | out | conts
            if new == head:
                break
            head = _collapse(new) if len(new) > _MAX_STATES else new
        return breaks | (set() if infinite else (head if maybe_zero else head | out))

    def switch(self, node: Node, states: set[State]) -> set[State]:
        cond = node.child_by_field_name("condition")
        if cond is not None:
            states = self.effects(cond, states)
        body = node.child_by_field_name("body")
        breaks: set[State] = set()
        self.frames.append((breaks, None))
        cur: set[State] = set()
        has_default = False
        try:
            for case in _named(body) if body is not None else []:
                if case.type != "case_statement":
                    cur = self.stmt(case, cur)
                    continue
                value = case.child_by_field_name("value")
                has_default |= value is None
                cur = cur | states
                cur = self.block([c for c in _named(case) if c != value], cur)
        finally:
            self.frames.pop()
        return breaks | cur | (set() if has_default else states)

    # expressions -------------------------------------------------------------------------------
    def _mentions_pairs(self, node: Node) -> bool:
        return any(pair_of(n) is not None or n in table()[1]
                   for n in (call_name(c) for c in walk(node, {"call_expression"})) if n)

    def _no_acquire_in(self, node: Node) -> None:
        for c in walk(node, {"call_expression"}):
            pair = self._pair(c)
            if pair is not None:
                self.opaque.add((pair.family, self._key(pair, c, None) or ""))

    def _pair(self, call: Node) -> Pair | None:
        name = call_name(call)
        if not name:
            return None
        pair = table()[0].get(name)
        if pair is None:
            pair = derive(name)
            if pair is None or not (pair.release & self.calls):
                return None
        return pair

    def _key(self, pair: Pair, call: Node, result: str | None) -> str | None:
        if pair.key is None:
            return ""
        if pair.key == "ret":
            return result
        args = _args(call)
        if isinstance(pair.key, int) and pair.key < len(args):
            return _norm(text(args[pair.key]))
        return "" if not args else None

    def effects(self, node: Node, states: set[State], *, stores: bool = True) -> set[State]:
        """Apply the calls (acquire, release, escape) and assignments of a statement/expression;
        `stores`: a page/pfn variable used outside a call is handed over (not in conditions)."""
        for call in walk(node, {"call_expression"}):
            states = self.call(call, states)
        assigned = _assigned(node)
        if assigned:
            flags = _flag_sets(node)  # `locked = true;`: a later `if (locked)` is known
            states = {(frozenset(h for h in s[0] if not (h.pair.key == "ret" and h.key in assigned
                                                        and not self._is_acquire_of(node, h))),
                       frozenset(f for f in s[1] if not (_idents(f[0]) & assigned)) | flags) for s in states}
        # a resource named by a variable stored, returned or otherwise used outside a call: handed over
        names = _idents_outside_calls(node) if stores else set()
        if names:
            states = {(frozenset(_escape(h) if h.key in names and not self._is_acquire_of(node, h) else h
                                 for h in s[0]), s[1]) for s in states}
        return states

    def _is_acquire_of(self, node: Node, h: Held) -> bool:
        return node.start_byte <= h.acquire < node.end_byte

    def call(self, call: Node, states: set[State]) -> set[State]:
        name = call_name(call)
        pair = self._pair(call)
        if pair is not None:
            return self.acquire(call, pair, states)
        if name is None:  # guard(mutex)(&l), ops->fn(x): cleanup guards are fine; pointers may release
            kinds = _releaseish(text(call.child_by_field_name("function")))
            if kinds:
                return {(frozenset(h for h in s[0] if h.pair.kind not in kinds), s[1]) for s in states}
            return self._escape(call, states)
        rel = table()[1].get(name, ())
        derived = list(self._derived_by_release(name))
        if rel or derived:
            return self.release(call, (*rel, *derived), states)
        if name in _BENIGN:
            return states
        released = self._helper_releases(name)
        if released is not None:
            return {(frozenset(h for h in s[0] if not (h.pair.release & released or f"*{h.pair.kind}" in released)),
                     s[1]) for s in states}
        return self._escape(call, states)

    def _derived_by_release(self, name: str) -> Iterable[Pair]:
        for acq in self.calls:
            p = derive(acq)
            if p is not None and name in p.release and acq not in table()[0]:
                yield p

    def _helper_releases(self, name: str, depth: int = 2) -> frozenset[str] | None:
        """Release names a call may perform: '*' for a release-ish name, the release calls of a
        same-file helper's body; None when it releases nothing we know of."""
        if name in self._helper_memo:
            return self._helper_memo[name] or None
        self._helper_memo[name] = frozenset()
        out: set[str] = set()
        if name not in _NOT_RELEASEISH:
            out.update(f"*{k}" for k in _releaseish(name))
        fn = self.helpers.get(name)
        if fn is not None and depth > 0:
            for c in walk(fn, {"call_expression"}):
                n = call_name(c)
                if not n or n == name:
                    continue
                if n in table()[1] or derive_release(n):
                    out.add(n)
                else:
                    sub = self._helper_releases(n, depth - 1) if n in self.helpers else None
                    if sub:
                        out |= {x for x in sub if not x.startswith("*")}
        self._helper_memo[name] = frozenset(out)
        return frozenset(out) or None

    def _escape(self, call: Node, states: set[State]) -> set[State]:
        args = {_norm(text(a)) for a in _args(call)}
        if not args:
            return states
        return {(frozenset(_escape(h) if h.key and h.key in args else h for h in s[0]), s[1]) for s in states}

    def acquire(self, call: Node, pair: Pair, states: set[State]) -> set[State]:
        parent = call.parent
        result: str | None = None
        plain = parent is not None and parent.type == "expression_statement"
        if parent is not None and parent.type == "assignment_expression" \
                and parent.child_by_field_name("right") == call \
                and text(parent.child_by_field_name("operator")) == "=" \
                and parent.parent is not None and parent.parent.type == "expression_statement":
            result = _norm(text(parent.child_by_field_name("left")))
        elif parent is not None and parent.type == "init_declarator" and parent.child_by_field_name("value") == call:
            result = _declared_name(parent)
        key = self._key(pair, call, result)
        if key is None or not (plain or result):
            # used in a condition, an argument, a return: the walk does not follow it
            if key is not None and not self._handled_in_condition(call):
                self.opaque.add((pair.family, key))
            return states
        if pair.success == "try" and result is not None:
            self.opaque.add((pair.family, key))
            return states
        if pair.success in ("value", "zero") and result is None:
            self.opaque.add((pair.family, key))
            return states
        if pair.success == "value" and not (result and _IDENT.fullmatch(result)):
            return states  # stored straight into a structure: owned there
        self.acquires[call.start_byte] = call
        h = Held(pair, key, call.start_byte, result if pair.success in ("value", "zero") else None)
        return {(frozenset(x for x in s[0] if x.rid != h.rid) | {h}, s[1]) for s in states}

    def _handled_in_condition(self, call: Node) -> bool:
        return call.start_byte in self._cond_acquires

    def release(self, call: Node, pairs: tuple[Pair, ...], states: set[State]) -> set[State]:
        args = [_norm(text(a)) for a in _args(call)]
        fams = {p.family for p in pairs}
        out = set()
        for held, facts in states:
            mine = [h for h in held if h.pair.family in fams]
            hit = [h for h in mine if not h.key or h.key in args]
            if not hit:
                # not held on this path: an alias, a lock the caller took, a path we got wrong
                self.opaque.update(h.rid for h in mine)
                self.opaque.update((f, a) for f in fams for a in [*args, ""])
            out.add((frozenset(h for h in held if h not in hit), facts))
        return out

    # conditions --------------------------------------------------------------------------------
    def cond(self, cond: Node | None, states: set[State]) -> tuple[set[State], set[State]]:
        if cond is None:
            return states, states
        inner = _strip(cond)
        acq = [c for c in walk(cond, {"call_expression"}) if self._pair(c) is not None]
        then_add: list[Held] = []
        else_add: list[Held] = []
        self._cond_acquires = {c.start_byte for c in acq}
        if len(acq) == 1:
            call = acq[0]
            pair = self._pair(call)
            assert pair is not None
            sense = _sense(inner, call)
            key = self._key(pair, call, None)
            if sense is not None and key is not None and pair.success in ("try", "zero"):
                h = Held(pair, key, call.start_byte)
                self.acquires[call.start_byte] = call
                (then_add if sense == (pair.success == "try") else else_add).append(h)
            elif key is not None:
                self.opaque.add((pair.family, key))
        elif acq:
            for c in acq:
                p = self._pair(c)
                assert p is not None
                self.opaque.add((p.family, self._key(p, c, None) or ""))
        states = self.effects(cond, states, stores=False)
        self._cond_acquires = set()
        then: set[State] = set()
        other: set[State] = set()
        fact = None if any(True for _ in walk(cond, {"call_expression"})) else _fact(inner)
        for held, facts in states:
            t_held, e_held = set(held), set(held)
            for h in held:
                if h.result is None:
                    continue
                tf = _fails(inner, h.result, h.pair.success, then_branch=True)
                ef = _fails(inner, h.result, h.pair.success, then_branch=False)
                if tf is None or ef is None:
                    self.opaque.add(h.rid)
                    continue
                if tf:
                    t_held.discard(h)
                if ef:
                    e_held.discard(h)
            t_held.update(then_add)
            e_held.update(else_add)
            if fact is not None:
                ftext, fval = fact
                if (ftext, not fval) not in facts:
                    then.add((frozenset(t_held), facts | {(ftext, fval)}))
                if (ftext, fval) not in facts:
                    other.add((frozenset(e_held), facts | {(ftext, not fval)}))
            else:
                then.add((frozenset(t_held), facts))
                other.add((frozenset(e_held), facts))
        return then, other


def _escape(h: Held) -> Held:
    return h if h.escaped else replace(h, escaped=True)


def _releaseish(name: str) -> frozenset[str]:
    """The kinds of resource a call of this name may release, by the words of its name."""
    out: set[str] = set()
    for word in re.split(r"\W+|_", name.lower()):
        out |= _RELEASEISH.get(word, frozenset())
    return frozenset(out)


def derive_release(name: str) -> bool:
    segs = name.split("_")
    return "unlock" in segs or "end" in segs


def _macro_loop(stmt: Node) -> bool:
    """`list_for_each_entry(...) {`: a call statement whose ';' is missing, followed by a block."""
    kids = _named(stmt)
    if len(kids) != 1 or kids[0].type != "call_expression":
        return False
    last = stmt.children[-1] if stmt.children else None
    return last is not None and last.type == ";" and last.end_byte == last.start_byte


def _collapse(states: set[State]) -> set[State]:
    by: dict[frozenset[Held], frozenset] = {}
    for held, facts in states:
        by[held] = by[held] & facts if held in by else facts
    return set(by.items())


def _declared_name(init: Node) -> str | None:
    d = init.child_by_field_name("declarator")
    while d is not None and d.type != "identifier":
        d = d.child_by_field_name("declarator")
    return text(d) or None


def _assigned(node: Node) -> set[str]:
    out = set()
    for n in walk(node, {"assignment_expression", "update_expression"}):
        target = n.child_by_field_name("left" if n.type == "assignment_expression" else "argument")
        if target is not None:
            out.add(_norm(text(target)))
            out.update(_IDENT.findall(text(target))[:1])
    for n in walk(node, {"init_declarator"}):
        name = _declared_name(n)
        if name:
            out.add(name)
    for n in walk(node, {"pointer_expression"}):  # &x passed somewhere: x may change
        if text(n).startswith("&"):
            out.update(_IDENT.findall(text(n))[:1])
    return out


def _flag_sets(node: Node) -> frozenset[tuple[str, bool]]:
    out = set()
    for n in walk(node, {"assignment_expression", "init_declarator"}):
        if n.type == "assignment_expression" and text(n.child_by_field_name("operator")) != "=":
            continue
        left = n.child_by_field_name("left" if n.type == "assignment_expression" else "declarator")
        right = n.child_by_field_name("right" if n.type == "assignment_expression" else "value")
        if left is not None and right is not None and left.type == "identifier" \
                and text(right) in ("true", "false", "0", "1"):
            out.add((text(left), text(right) in ("true", "1")))
    return frozenset(out)


def _idents(t: str) -> set[str]:
    return set(_IDENT.findall(t))


def _idents_outside_calls(node: Node) -> set[str]:
    """Identifiers used outside call arguments and outside an assignment's target: a stored,
    returned or copied value (`x->page = page`, `return pfn;`, `*out = pfn`)."""
    out: set[str] = set()
    stack = [node]
    while stack:
        n = stack.pop()
        if n.type == "call_expression":
            continue
        if n.type == "assignment_expression":
            right = n.child_by_field_name("right")
            if right is not None:
                stack.append(right)
            continue
        if n.type == "init_declarator":
            v = n.child_by_field_name("value")
            if v is not None:
                stack.append(v)
            continue
        if n.type == "identifier":
            out.add(text(n))
        stack.extend(n.children)
    return out


def _final_returns(fn: Node) -> set[tuple[int, int]]:
    """Return statements that end the normal path: nothing follows them at any level up to the body
    (or, right after the return, only labelled code reached by goto), and no loop encloses them."""
    body = fn.child_by_field_name("body")
    out: set[tuple[int, int]] = set()
    if body is None:
        return out
    for ret in walk(body, {"return_statement"}):
        node = ret
        final = True
        while node != body and node.parent is not None:
            parent = node.parent
            if parent.type in ("while_statement", "for_statement", "do_statement", "switch_statement",
                               "case_statement"):
                final = False
                break
            if parent.type == "compound_statement":
                if parent.prev_sibling is not None and parent.parent is not None \
                        and parent.parent.type == "compound_statement" and _macro_loop(parent.prev_sibling):
                    final = False  # the body of list_for_each_entry() { ... }
                    break
                sib = node.next_named_sibling
                while sib is not None and sib.type == "comment":
                    sib = sib.next_named_sibling
                # labelled code after the return itself is reached by goto only; after an `if`
                # holding the return it is also reached by falling through
                tail = node.type in ("return_statement", "labeled_statement")
                if sib is not None and not (tail and sib.type == "labeled_statement"):
                    final = False
                    break
            node = parent
        if final:
            out.add(id_of(ret))
    return out


def _sense(cond: Node, call: Node) -> bool | None:
    """True when `cond` holds exactly when `call` returned non-zero, False for the opposite."""
    if cond == call or (cond.type == "call_expression" and id_of(cond) == id_of(call)):
        return True
    if cond.type == "unary_expression" and text(cond.child_by_field_name("operator")) == "!":
        inner = _strip(cond.child_by_field_name("argument"))
        s = _sense(inner, call)
        return None if s is None else not s
    if cond.type == "binary_expression":
        left, right = cond.child_by_field_name("left"), cond.child_by_field_name("right")
        op = text(cond.child_by_field_name("operator"))
        if left is not None and right is not None and text(right) == "0":
            s = _sense(_strip(left), call)
            if s is not None and op in ("!=", "<"):
                return s
            if s is not None and op == "==":
                return not s
    return None


def _fact(cond: Node) -> tuple[str, bool] | None:
    """A call-free condition as (text, value), `!x` as (x, False): the same test later is correlated."""
    value = True
    while cond.type == "unary_expression" and text(cond.child_by_field_name("operator")) == "!":
        value = not value
        cond = _strip(cond.child_by_field_name("argument"))
    t = re.sub(r"\s+", "", text(cond))
    return (t, value) if t else None


def _atom(node: Node, var: str, success: str) -> str:
    """'fail' / 'ok' when the atom says the acquire failed / worked, 'none' when it does not
    mention the variable, 'unknown' otherwise."""
    t = re.sub(r"\s+", "", text(node))
    if var not in _idents(t) and var not in t:
        return "none"
    node = _strip(node)
    t = re.sub(r"\s+", "", text(node))
    zero = success == "zero"
    if t == var:
        return "fail" if zero else "ok"
    if node.type == "unary_expression" and text(node.child_by_field_name("operator")) == "!":
        inner = _atom(node.child_by_field_name("argument"), var, success)
        return {"fail": "ok", "ok": "fail"}.get(inner, inner)
    if node.type == "call_expression" and call_name(node) in _FAIL_FN and len(_args(node)) == 1 \
            and _norm(text(_args(node)[0])) == var:
        return "fail"
    if node.type == "binary_expression":
        left, right = node.child_by_field_name("left"), node.child_by_field_name("right")
        op = text(node.child_by_field_name("operator"))
        if left is None or right is None or _norm(text(left)) != var:
            return "unknown"
        r = text(right).strip()
        nul = r in ("0", "NULL")
        if op in ("<", "<=") and r == "0":
            return "fail"
        if op == "<" and r == "1":
            return "fail"
        if op in (">", ">=") and r in ("0", "1"):
            return "ok"
        if op == "==":
            if nul:
                return "ok" if zero else "fail"
            if re.fullmatch(r"[A-Z][A-Z0-9_]*", r) and not zero:
                return "fail"
            return "ok" if not zero and not nul else "unknown"
        if op == "!=":
            if nul:
                return "fail" if zero else "ok"
            return "fail" if not zero else "unknown"
    return "unknown"


def _fails(cond: Node, var: str, success: str, *, then_branch: bool) -> bool | None:
    """Whether taking this branch implies the acquire failed (None: cannot tell)."""
    cond = _strip(cond)
    if cond.type == "binary_expression":
        op = text(cond.child_by_field_name("operator"))
        if op in ("&&", "||"):
            a = _fails(cond.child_by_field_name("left"), var, success, then_branch=then_branch)
            b = _fails(cond.child_by_field_name("right"), var, success, then_branch=then_branch)
            if a is None or b is None:
                return None
            conj = (op == "&&") == then_branch  # then of &&, else of ||: both hold
            return (a or b) if conj else (a and b)
    if cond.type == "unary_expression" and text(cond.child_by_field_name("operator")) == "!" \
            and _strip(cond.child_by_field_name("argument")).type == "binary_expression" \
            and text(_strip(cond.child_by_field_name("argument")).child_by_field_name("operator")) in ("&&", "||"):
        return _fails(cond.child_by_field_name("argument"), var, success, then_branch=not then_branch)
    a = _atom(cond, var, success)
    if a == "unknown":
        return None
    if a == "none":
        return False
    return (a == "fail") if then_branch else (a == "ok")


# -- results --------------------------------------------------------------------------------------

def function_leaks(fn: Node, helpers: Mapping[str, Node] | None = None) -> list[Leak]:
    """The leaks of one function_definition (see the module doc for what is reported)."""
    name = function_name(fn) or "?"
    out = unreachable_releases(fn, name)
    if _skip_function(fn, name) or not _may_acquire(fn):
        return out
    w = _Walk(fn, helpers or {})
    try:
        w.run()
    except _GiveUp:
        return out
    except RecursionError:
        return out
    released_names = w.calls
    final_held: set[tuple[str, str]] = set()
    for _node, held, final in w.exits:
        if final:
            final_held.update(h.rid for h in held if h.via_goto is None)
    seen: set[tuple[int, tuple[str, str]]] = set()
    for node, held, final in w.exits:
        for h in sorted(held, key=lambda x: x.acquire):
            if h.escaped or h.rid in w.opaque or h.rid in final_held or not (h.pair.release & released_names):
                continue
            if not _releases_key(fn, h):
                continue
            exit_node, kind = node, "early-return"
            if final:
                if h.via_goto is None:
                    continue
                exit_node = _node_at(fn, h.via_goto, "goto_statement") or node
                kind = "goto"
            if (exit_node.start_byte, h.rid) in seen:
                continue
            seen.add((exit_node.start_byte, h.rid))
            acq = w.acquires.get(h.acquire)
            if acq is not None:
                out.append(_leak(name, acq, exit_node, kind, h.pair, h.key))
    return out


def _may_acquire(fn: Node) -> bool:
    """Does some call of `fn` take a resource (`_Walk._pair`)? Without one nothing is ever held, so
    the walk cannot report a leak (most functions: the walk is the costly part)."""
    names = {n for n in (call_name(c) for c in walk(fn, {"call_expression"})) if n}
    acquires = table()[0]
    return any(n in acquires or ((p := derive(n)) is not None and bool(p.release & names)) for n in names)


def _releases_key(fn: Node, h: Held) -> bool:
    """The function calls a release of this family on this very resource somewhere."""
    for c in walk(fn, {"call_expression"}):
        if call_name(c) in h.pair.release and (not h.key or h.key in {_norm(text(a)) for a in _args(c)}):
            return True
    return False


def _node_at(fn: Node, start: int, type_: str) -> Node | None:
    return next((n for n in walk(fn, {type_}) if n.start_byte == start), None)


def _skip_function(fn: Node, name: str) -> bool:
    body = fn.child_by_field_name("body")
    head = (text(fn)[: body.start_byte - fn.start_byte] if body is not None else text(fn))
    if _ANNOTATED.search(head):
        return True
    segs = set(name.lower().strip("_").split("_"))
    return bool(segs & _HOLDER_SEGS)


def unreachable_releases(scope: Node, name: str) -> list[Leak]:
    """`return x; release(...);` in one block, the release pairing an acquire earlier in the scope."""
    out: list[Leak] = []
    for block in walk(scope, {"compound_statement"}):
        kids = _named(block)
        for i, ret in enumerate(kids[:-1]):
            if ret.type != "return_statement":
                continue
            nxt = kids[i + 1]
            if nxt.type != "expression_statement" or not _named(nxt) or _named(nxt)[0].type != "call_expression":
                continue
            call = _named(nxt)[0]
            rel = call_name(call)
            if not rel:
                continue
            acq = _matching_acquire(scope, call, rel, before=ret.start_byte)
            if acq is not None:
                pair = pair_of(call_name(acq) or "")
                if pair is not None:
                    out.append(_leak(name, acq, call, "unreachable-release", pair,
                                     _norm(text(_args(acq)[0])) if _args(acq) else ""))
    return out


def _matching_acquire(scope: Node, release: Node, rel: str, *, before: int) -> Node | None:
    args = {_norm(text(a)) for a in _args(release)}
    found = None
    for c in walk(scope, {"call_expression"}):
        if c.start_byte >= before:
            break
        n = call_name(c)
        pair = pair_of(n) if n else None
        if pair is None or rel not in pair.release:
            continue
        a = _args(c)
        key = _norm(text(a[0])) if a and isinstance(pair.key, int) else ""
        if not key or key in args:
            found = c
    return found


# `^(\s*)return\b` on each line of a text: \s but the newline
_RETURN_LINES = lazy_re(r"^([^\S\n]*)return\b", re.M)
_CALL_LINE = lazy_re(r"^(\s*)([A-Za-z_]\w*)\s*\((.*)\)\s*;\s*(?:/[/*].*)?$")


def _unreachable_lines(view: FileView) -> Iterator[Leak]:
    """The unreachable-release check on lines, for hunks that show part of a function: a
    `return ...;`, then (next non-blank line, same indentation) a release call, with its acquire
    earlier in the same block (same indentation, every line in between known)."""
    lines = view.lines
    known = view.known
    text = view.text
    row, at = 1, 0  # the line of text offset `at`
    # the lines starting with a return, found in the whole text at once (most lines hold none)
    for m in _RETURN_LINES.finditer(text):
        row += text.count("\n", at, m.start())
        at = m.start()
        ln = row
        if ln not in known:
            continue
        indent = m.group(1)
        end = ln
        while end in known and not lines[end - 1].rstrip().endswith(";") and end < ln + 6:
            end += 1
        nxt = end + 1
        while nxt in known and not lines[nxt - 1].strip():
            nxt += 1
        c = _CALL_LINE.match(lines[nxt - 1]) if nxt in known else None
        if c is None or c.group(1) != indent:
            continue
        rel, rel_args = c.group(2), {_norm(a) for a in c.group(3).split(",")}
        up = ln - 1
        while up in known:
            t = lines[up - 1]
            if t.strip() and not t.startswith(indent):
                break
            a = _CALL_LINE.match(t)
            pair = pair_of(a.group(2)) if a and a.group(1) == indent else None
            if a and pair is not None and rel in pair.release:
                first = _norm(a.group(3).split(",")[0]) if a.group(3).strip() else ""
                if not first or pair.key is None or first in rel_args:
                    yield Leak("?", up, nxt, "unreachable-release", pair, first)
                    break
            up -= 1
