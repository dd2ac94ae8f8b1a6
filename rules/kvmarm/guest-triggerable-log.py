"""kvmarm/guest-triggerable-log: a non-ratelimited printk on a path a guest can drive at will."""

from __future__ import annotations

import re
from bisect import bisect_left
from collections.abc import Iterable, Iterator
from functools import cache

from pmureview.analyses.enclosing import enclosing_function_name
from pmureview.kernel.wiring import load_facts
from pmureview.lang.c import (
    call_name,
    enclosing_function,
    function_name,
    functions,
    language,
    nodes_of,
    parse,
    text,
    walk,
)
from pmureview.lazyre import lazy_re
from pmureview.rule.base import Rule
from pmureview.rule.model import Confidence, Finding, RuleDocs, RuleMeta, Scope, Severity
from pmureview.views.context import FileView, SeriesContext

MAX_DEPTH = 4
# Base files that hold exit handlers, trap handlers and what they call (full mode adds these to the
# series' own post-images to build the call graph).
GRAPH_PATHS = tuple(f"arch/arm64/kvm/{p}" for p in (
    "handle_exit.c", "mmu.c", "mmio.c", "sys_regs.c", "hypercalls.c", "psci.c", "emulate-nested.c",
    "inject_fault.c", "pmu-emul.c", "arch_timer.c", "nested.c", "at.c", "trng.c", "pvtime.c",
    "vgic/vgic-mmio.c", "vgic/vgic-mmio-v2.c", "vgic/vgic-mmio-v3.c", "vgic/vgic-its.c",
    "vgic-sys-reg-v3.c"))
_ACCESS = lazy_re(r"SYS_DESC\s*\([^()]*\)\s*,\s*([a-z_]\w*)\s*[,}]|\.access\s*=\s*([a-z_]\w*)")
# Host-side failures, not guest behaviour: allocation, mapping setup, KVM_BUG_ON paths.
# The macro names are matched case-sensitively: kvm_is_error_hva() is a guest's IPA without a
# memslot, and pr_warn() is one of the messages this rule is about, not a WARN().
_HOST_FAILURE = lazy_re(r"alloc|ENOMEM|(?-i:\bIS_ERR|KVM_BUG\w*|\bWARN\w*|\bBUG\w*)|cannot\s+(?:allocate|map)|"
                           r"failed\s+to\s+(?:allocate|map|create|init)", re.I)


_GRAPHS: dict[str, tuple[dict[str, frozenset[str]], frozenset[str]]] = {}


def _graph(key: str, src: str, root=None) -> tuple[dict[str, frozenset[str]], frozenset[str]]:
    """(function -> callees, sys_reg `.access` callbacks) of one file's text; cached by content.
    root: the parse of exactly `src` (or a function giving it) when the run already has it, else
    `src` is parsed here."""
    got = _GRAPHS.get(key)
    if got is None:
        got = _GRAPHS[key] = _stored_graph(src, root)
    return got


def _stored_graph(src: str, root) -> tuple[dict[str, frozenset[str]], frozenset[str]]:
    """_build_graph(), kept on disk by content and code: every hook process of a series in a kernel
    tree that meets a log call builds the graph of the same ~20 base files (a parse and a query of
    each, ~60 ms)."""
    from pmureview.cachefile import content_cache_file, content_key, read_marshal, write_content

    path = content_cache_file("call-graph", f"{content_key(src)}-{_code_stamp()}")
    got = read_marshal(path)
    if (isinstance(got, tuple) and len(got) == 2 and isinstance(got[0], dict) and isinstance(got[1], frozenset)
            and all(isinstance(v, frozenset) for v in got[0].values())):
        return got
    got = _build_graph(src, root)
    write_content(path, got)
    return got


@cache
def _code_stamp() -> str:
    from pmureview.cachefile import code_stamp
    from pmureview.lang import c

    return code_stamp([__file__, c.__file__])


def _build_graph(src: str, root) -> tuple[dict[str, frozenset[str]], frozenset[str]]:
    from tree_sitter import QueryCursor

    if callable(root):
        root = root()
    if root is None:
        root = parse(src.encode("utf-8", "surrogateescape")).root_node
    # one query over the file (calls, and identifiers passed as arguments: function pointers handed on
    # to helpers count as calls), then each function takes the nodes inside its byte range
    caps = QueryCursor(_edge_query()).captures(root)
    found = [sorted(caps.get(k, ()), key=lambda n: n.start_byte) for k in ("c", "a")]
    starts = [[n.start_byte for n in nodes] for nodes in found]
    edges: dict[str, set[str]] = {}
    for name, fn in functions(root):
        callees = edges.setdefault(name, set())
        for k, (nodes, at) in enumerate(zip(found, starts, strict=True)):
            i = bisect_left(at, fn.start_byte)
            while i < len(nodes) and at[i] <= fn.end_byte:
                n = nodes[i]
                i += 1
                if n.end_byte > fn.end_byte:
                    continue  # starts where the function ends: not inside it
                if k:
                    callees.add(text(n))
                elif callee := call_name(n):
                    callees.add(callee)
    access = {m.group(1) or m.group(2) for m in _ACCESS.finditer(src)} - {"NULL"}
    return {k: frozenset(v) for k, v in edges.items()}, frozenset(access)


@cache
def _edge_query():
    from tree_sitter import Query

    return Query(language(), "(call_expression) @c (argument_list (identifier) @a)")


def _file_graph(src: str, root=None) -> tuple[dict[str, frozenset[str]], frozenset[str]]:
    return _graph(src, src, root)  # keyed by the text itself (the views hold it): no hashlib import


_CALL = frozenset({"call_expression"})


def _calls_on_lines(root, first: int, last: int) -> list:
    """walk(root, call_expression) restricted to calls intersecting lines first..last: only calls on
    added lines are candidates, and a range-limited query skips the rest of a kernel-sized file."""
    found = nodes_of(root, _CALL, (first, last))
    return found if found is not None else list(walk(root, _CALL))


class GuestTriggerableLog(Rule):
    meta = RuleMeta(
        id="kvmarm/guest-triggerable-log",
        title="Non-ratelimited host log message a guest can trigger at will",
        severity=Severity.WARNING,
        confidence=Confidence.MEDIUM,
        scope=Scope.SERIES,
        uses_tree=True,
        # the call is on an added line, so its name is in the hunks: the curated plain log functions
        # (kernel/data/pack2-wiring.json "logging"; a test keeps this list a cover of them)
        evidence=("kvm_err|kvm_info|pr_err|pr_warn|pr_notice|pr_info|printk|dev_err|dev_warn|dev_info|"
                  "pr_emerg|pr_alert|pr_crit",),
        docs=RuleDocs(
            what="Flags an added kvm_err()/kvm_info()/pr_err()/pr_warn()/pr_info()/printk()/dev_err() "
                 "(not the _ratelimited or _once forms) in a function reachable, within four calls, "
                 "from a guest exit: the arm_exit_handlers[] members, kvm_handle_guest_abort() and "
                 "its callees, sys_reg table `.access` callbacks, hypercall/PSCI handlers and vGIC "
                 "MMIO/ITS command handlers. The call graph is the series' post-images plus, in full "
                 "mode, the base files holding those handlers.",
            why="A guest reaches these paths as often as it likes (it only has to fault or trap "
                "again), so an unconditional message lets it flood the host log; and the message "
                "never reaches the VMM, which is who could act on it. KVM does not log guest-caused "
                "conditions: it handles or reflects them, and tracepoints are how they are observed.",
            example="if (!device)\n\tkvm_err(\"unexpected FOO fault at hva %lx\\n\", hva);",
            use_instead="if (!device) {\n\ttrace_kvm_foo_fault(hva);\n\treturn kvm_inject_dabt(vcpu, "
                        "kvm_vcpu_get_hfar(vcpu));\n}",
            known_problems="Reachability is by name over the files the rule can see (same-named static "
                           "functions are merged); a message for a host failure on such a path "
                           "(allocation, KVM_BUG_ON) is skipped when the condition or text says so, "
                           "otherwise reported as a question. WARN*/BUG* are out of scope. In hunk-only "
                           "mode a hunk that shows only the middle of a function belongs to the "
                           "function its @@ heading names.",
            references=("DOMAIN-PACK2.md rule 26 and §1.6; kvm_pr_unimpl() and print_sys_reg_msg() "
                        "(ratelimited) as the existing forms",),
        ),
    )

    def check(self, ctx: SeriesContext) -> Iterator[Finding]:  # type: ignore[override]
        facts = load_facts(ctx.base_reader)
        plain = facts.plain_logs
        if not plain:
            return
        candidates: list[tuple[FileView, int, str, str]] = []
        for view in ctx.all_views():
            if not view.added or not view.path.endswith(".c") or "/hyp/" in view.path:
                continue
            # a candidate call starts on an added line, and its name (an identifier: one line) with it
            added = "\n".join(view.line_text(n) for n in view.added)
            if not any(p in added for p in plain):
                continue
            for c in _calls_on_lines(view.root, min(view.added), max(view.added)):
                line = view.node_line(c)
                if line not in view.added or call_name(c) not in plain:
                    continue
                name = call_name(c)
                fn = enclosing_function(c)
                # a hunk that shows only the middle of a function: its @@ heading names it
                fname = function_name(fn) if fn is not None else enclosing_function_name(view, line)
                if not fname or self._host_failure(c):
                    continue
                candidates.append((view, line, name, fname))
        if not candidates:
            return
        reach = self._reachable(ctx, facts, {fname for _v, _l, _n, fname in candidates})
        for view, line, log, fname in candidates:
            path = reach.get(fname)
            if path is None:
                continue
            via = " -> ".join(path)
            yield self.at_line(
                view, line, f"{log}() in {fname}(), reachable from a guest exit ({via}): can the "
                            f"guest flood the host log with it?",
                note=f"A guest can hit this as often as it likes, so it can flood the host log, and "
                     f"{log}() never reaches the VMM anyway. KVM should not log guest-caused "
                     f"conditions: drop it, or use a tracepoint if someone needs to observe it "
                     f"(kvm_pr_unimpl() if it is an unimplemented feature).")

    @staticmethod
    def _host_failure(call) -> bool:
        if _HOST_FAILURE.search(text(call)):
            return True
        n = call.parent
        while n is not None and n.type != "function_definition":
            if n.type == "if_statement" and _HOST_FAILURE.search(text(n.child_by_field_name("condition"))):
                return True
            n = n.parent
        return False

    @staticmethod
    def _reachable(ctx: SeriesContext, facts, wanted: set[str] | None = None) -> dict[str, list[str]]:
        """function -> the call path from an entry point (entry first), depth <= MAX_DEPTH; with
        `wanted`, exact for those functions only (the search stops once it has met them all)."""
        edges: dict[str, set[str]] = {}
        access: set[str] = set()
        finals = ctx.final_views()
        # a full-mode view was parsed from its text as it is: its tree is reused (hunk-only views
        # are parsed from a comment-closed copy, so their text is parsed here)
        texts: list[tuple[str, object]] = [(v.text, (lambda v=v: v.root) if v.parse_text is v.text else None)
                                           for p, v in finals.items() if p.endswith((".c", ".h"))]
        for p in GRAPH_PATHS:
            if p not in finals:
                try:
                    t = ctx.base_text(p)
                except Exception:  # an unreadable base file only shrinks the graph
                    t = None
                if t:
                    texts.append((t, lambda t=t: ctx.parsed(t).root_node))  # parsed once per run
        for t, root in texts:
            e, a = _file_graph(t, root)
            for k, v in e.items():
                edges.setdefault(k, set()).update(v)
            access |= a
        entries = set(facts.exit_handlers) | set(facts.guest_entry_points) | access
        entries |= _matching(edges, facts.guest_entry_patterns)
        out: dict[str, list[str]] = {e: [e] for e in entries}
        missing = None if wanted is None else {f for f in wanted if f not in out}
        frontier = sorted(entries)  # sorted: the path named in the message must not depend on hash seeds
        for _ in range(MAX_DEPTH):
            if missing is not None and not missing:
                break  # a function's path is the first one found: later levels change none of them
            nxt = []
            for f in frontier:
                for c in sorted(edges.get(f, ())):
                    if c not in out and c in edges:
                        out[c] = [*out[f], c]
                        nxt.append(c)
                        if missing is not None:
                            missing.discard(c)
            frontier = nxt
        return out


def _matching(names: Iterable[str], patterns: Iterable[str]) -> set[str]:
    """The names some pattern matches (re.match): a name without a pattern's literal prefix is not
    tried against it, and a pattern no name has the prefix of is not even compiled."""
    out: set[str] = set()
    for pattern in patterns:
        prefix = _literal_prefix(pattern)
        maybe = [n for n in names if n.startswith(prefix)]
        if maybe:
            rx = re.compile(pattern)
            out.update(n for n in maybe if rx.match(n))
    return out


@cache
def _literal_prefix(pattern: str) -> str:
    """Text every re.match of `pattern` starts with ('' when unsure): its leading run of letters,
    digits and underscores, after an optional `^`, when no `|` outside a group makes it optional."""
    depth, i, in_class = 0, 0, False
    while i < len(pattern):  # a top-level alternative: each branch starts on its own
        ch = pattern[i]
        if ch == "\\":
            i += 2
            continue
        if in_class:
            in_class = ch != "]"
        elif ch == "[":
            in_class = True
            i += 2 if pattern[i + 1:i + 2] == "]" else 3 if pattern[i + 1:i + 3] == "^]" else 1
            continue  # a `]` first in a class is one of its characters
        elif ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        elif ch == "|" and depth == 0:
            return ""
        i += 1
    start = 1 if pattern.startswith("^") else 0
    end = start
    while end < len(pattern) and (pattern[end].isascii() and (pattern[end].isalnum() or pattern[end] == "_")):
        end += 1
    if end < len(pattern) and pattern[end] in "*?{":  # the last character may be absent or repeated
        end -= 1
    return pattern[start:max(start, end)]
