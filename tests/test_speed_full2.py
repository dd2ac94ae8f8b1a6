"""The third round of full-mode speed work changes no answer (issue 15).

- one query capturing every named node type answers every type set on small trees, short line
  ranges and inner nodes: its captures of a set are the set's own query's, in the same order, and a
  hook process on small (hunk-only) trees compiles no query of its own per type set;
- captures spanning the same bytes (a node and its only child) come ancestor first whatever query
  captured them, as the Python walk gives them;
- `SeriesSymbols.existed()` answers from stripped base lines when a use shows there (no parse): the
  shortcut says True only where `base_refs()` counts a use, a declaration or a definition;
- `redundant_capability.may_check` summarises only the definitions of the added calls' names: the
  same answer as the table of every series function it replaced.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Callable
from pathlib import Path

import pytest
from fixture_texts import SAMPLE_C, python_walk

from pmureview.lang import c

ROOT = Path(__file__).resolve().parent.parent





def _sig(nodes) -> list[tuple]:
    return [(n.kind_id, n.start_byte, n.end_byte, n.is_missing, n.parent.id if n.parent else None) for n in nodes]


def _sources() -> list[bytes]:
    out = [SAMPLE_C]
    for p in sorted((ROOT / "fixtures").rglob("*.[ch]"))[:60]:
        out.append(p.read_bytes())
    return out


def test_capture_of_every_type_answers_each_set() -> None:
    rng = random.Random(15)
    for src in _sources():
        c.new_run()
        root = c.parse(src).root_node
        named = [n for n in python_walk(root, None) if n.type in c._named_types()]
        present = sorted({n.type for n in named})
        sets = [frozenset([t]) for t in present]
        sets += [frozenset(rng.sample(present, min(len(present), k))) for k in (2, 3, 6)]
        rows = src.count(b"\n") + 1
        targets: list[tuple] = [(root, None)]
        for _ in range(3):
            first = rng.randint(1, rows)
            targets.append((root, (first, min(rows, first + rng.randint(0, 12)))))
        targets += [(n, None) for n in rng.sample(named, min(5, len(named)))]
        for node, lines in targets:
            for types in sets:
                own = c.query_nodes(node, types, lines)  # the set's own query
                assert _sig(c._from_all(node, types, lines)) == _sig(own), (node.type, lines, sorted(types))
                if lines is None and not any(n.is_missing for n in own):
                    assert _sig(own) == _sig(python_walk(node, types))


def test_same_span_captures_come_ancestor_first() -> None:
    root = c.parse(b"int f(void) { return sizeof(int); }\n").root_node
    types = frozenset({"parameter_declaration", "primitive_type", "type_descriptor"})
    walked = list(python_walk(root, types))
    assert any(a.start_byte == b.start_byte and a.end_byte == b.end_byte
               for a, b in itertools.pairwise(walked))
    for types_ in (types, frozenset({"parameter_declaration", "primitive_type"})):
        want = _sig(python_walk(root, types_))
        assert _sig(c.query_nodes(root, types_, None)) == want
        assert _sig(c._from_all(root, types_, None)) == want
        assert _sig(c.nodes_of(root, types_) or []) == want


def test_valid_sets_are_the_named_grammar_types() -> None:
    lang = c.language()
    names = {lang.node_kind_for_id(i) for i in range(lang.node_kind_count)} | {"ERROR", "expression"}
    for name in sorted(n for n in names if n.replace("_", "").isalnum()):
        types = frozenset({name})
        if c._valid(types):
            assert c._types_query(types) is not None, name
    assert not c._valid(frozenset({"expression"}))  # a supertype: keeps its own query (subtypes match)
    assert not c._valid(frozenset({"return"}))  # an anonymous keyword: walked in Python


def test_small_trees_compile_no_query_per_set(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(c, "_through_all", {})  # a fresh process: no set has used up its share yet
    root = c.parse(SAMPLE_C).root_node
    sets = (frozenset({"call_expression"}), frozenset({"if_statement", "return_statement"}),
            frozenset({"comment"}), frozenset({"function_definition", "declaration"}))
    ranged = {types: _sig(c.query_nodes(root, types, (5, 9))) for types in sets}  # the sets' own queries
    c._all_query()  # compiled once per process
    c.new_run()
    info = c._types_query.cache_info()
    for types in sets:
        assert _sig(c.walk(root, types)) == _sig(python_walk(root, types))
        assert _sig(c.nodes_of(root, types, (5, 9)) or []) == ranged[types]
        assert _sig(c.range_nodes(root, types, (5, 9)) or []) == ranged[types]
    assert [n for _, n in c.functions(root)] == list(python_walk(root, {"function_definition"}))
    after = c._types_query.cache_info()
    assert (after.hits, after.misses) == (info.hits, info.misses)  # no set's own query asked for


def test_sets_past_their_share_use_their_own_query(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(c, "_through_all", {})
    monkeypatch.setattr(c, "_ALL_BUDGET", 0)
    types = frozenset({"return_statement", "call_expression"})
    for _ in range(3):  # a long series: after its share, each tree gets the set's own query
        c.new_run()
        root = c.parse(SAMPLE_C).root_node
        assert _sig(c.nodes_of(root, types) or []) == _sig(python_walk(root, types))
    assert c._through_all[types] > 0


def test_large_ranges_and_trees_keep_their_own_queries() -> None:
    big = SAMPLE_C * 400
    root = c.parse(big).root_node
    assert root.descendant_count > c._SMALL_NODES
    c.new_run()
    types = frozenset({"call_expression"})
    rows = big.count(b"\n")
    got = c.range_nodes(root, types, (1, rows))
    assert got is not None and _sig(got) == _sig(python_walk(root, types))
    assert ("all", root, (1, rows)) not in c._run_cache  # not captured whole
    assert _sig(c.nodes_of(root, types) or []) == _sig(python_walk(root, types))


# -- the base shortcut of SeriesSymbols.existed() --------------------------------------------------------

def test_existed_shortcut_implies_base_refs(tmp_path: Path) -> None:
    from test_symbols import BASE_C, BASE_H, OTHER_C, _series

    from pmureview.analyses.symbols import MEMBER_NS, ORDINARY, symbols
    from pmureview.api import Options, _open_tree, load_series
    from pmureview.testing import git_tree
    from pmureview.views.context import FULL, SeriesContext
    from pmureview.views.image import build_views

    exporter = ("// SPDX-License-Identifier: GPL-2.0-only\nint foo_exported(int x)\n{\n\treturn x;\n}\n"
                "EXPORT_SYMBOL(foo_exported);\n/* foo_comment_only() */\nEXPORT_SYMBOL_GPL(foo_only_exported);\n"
                "struct foo_s { int foo_member; };\n")
    asm = "SYM_FUNC_START(foo_asm)\n\tbl\t__kvm_nvhe_foo_nvhe\nSYM_FUNC_END(foo_asm)\n"
    base = {"arch/arm64/kvm/foo.c": BASE_C, "arch/arm64/kvm/foo.h": BASE_H, "arch/arm64/kvm/other.c": OTHER_C,
            "arch/arm64/kvm/exporter.c": exporter, "arch/arm64/kvm/entry.S": asm}
    post = BASE_C + "\nvoid foo_new_call(int x)\n{\n\tfoo_helper(x);\n}\n"
    case = _series(tmp_path, [{"arch/arm64/kvm/foo.c": post}], base=base)
    opts = Options(tree=git_tree(case / "tree", tmp_path / "repo"))
    series, _ = load_series([str(case / "series.mbox")], opts)
    reader, commit = _open_tree(opts, series, hook=False)[:2]

    def _ctx(*_args: object) -> SeriesContext:  # a fresh run over the same tree
        return SeriesContext(series=series, mode=FULL, views=build_views(series, reader)[0],
                             base_reader=reader, base=commit)

    names = ["foo_global", "foo_exported", "foo_only_exported", "foo_comment_only", "foo_member", "foo_s",
             "foo_asm", "foo_nvhe", "foo_new_call", "foo_table", "foo_helper", "nothing_here"]
    for namespaces in ((ORDINARY,), (ORDINARY, MEMBER_NS)):
        ctx = _ctx(case, FULL, tmp_path)
        assert ctx.full
        fast, slow = symbols(ctx), symbols(_ctx(case, FULL, tmp_path))
        slow._used_at_base = lambda name, ns: False  # type: ignore[method-assign]
        for name in names:
            shortcut = fast._used_at_base(name, namespaces)
            refs = fast.base_refs(name, namespaces) or {}
            if shortcut:
                assert any(r.uses or r.declarations or r.definitions for r in refs.values()), name
            assert symbols(_ctx(case, FULL, tmp_path)).existed(name, namespaces) == slow.existed(name, namespaces), name
    # the shapes the shortcut must leave to the full answer
    ctx = _ctx(case, FULL, tmp_path)
    syms = symbols(ctx)
    assert syms._used_at_base("foo_global", (ORDINARY,))  # other.c calls it
    assert not syms._used_at_base("foo_only_exported", (ORDINARY,))  # an EXPORT_ line counts nothing
    assert not syms._used_at_base("foo_comment_only", (ORDINARY,))  # a comment is not a use
    assert syms._used_at_base("foo_asm", (ORDINARY,))  # assembly: any token counts


# -- redundant_capability.may_check ----------------------------------------------------------------------

def test_may_check_reads_only_the_named_definitions() -> None:
    import pmureview.analyses.redundant_capability as rc
    from pmureview.testing import discover_cases

    cases = [case for case in discover_cases(ROOT / "fixtures" / "series")
             if "capability" in str(case.root) or "feature" in str(case.root)]
    assert cases
    from pmureview.api import Options, load_series
    from pmureview.views.context import SeriesContext
    from pmureview.views.image import build_views

    for case in cases:
        series, _ = load_series([str(case.root / "series.mbox")], Options())
        views, _ = build_views(series, None)
        ctx = SeriesContext(series=series, views=views)
        every = set()  # what the replaced table listed: every series function with a summary
        for vs in ctx.views.values():
            for view in vs:
                if view.is_c:
                    for name, fn in view.functions():
                        got = rc._summary(ctx, view, fn)
                        if got is not None and (got[0] or got[1]):
                            every.add(name)
        for vs in ctx.views.values():
            for view in vs:
                names = {name for _call, name in rc._added_calls(view)}
                assert {n for n in names if rc._candidate_predicate(ctx, n)} == names & every, case.root


def test_summary_prefilter_keeps_direct_tests() -> None:
    import pmureview.analyses.redundant_capability as rc
    from pmureview.api import Options, load_series
    from pmureview.kernel import guards
    from pmureview.testing import discover_cases
    from pmureview.views.context import SeriesContext
    from pmureview.views.image import build_views

    seen = 0
    for case in discover_cases(ROOT / "fixtures" / "series"):
        if "capability" not in str(case.root) and "feature" not in str(case.root):
            continue
        series, _ = load_series([str(case.root / "series.mbox")], Options())
        ctx = SeriesContext(series=series, views=build_views(series, None)[0])
        for view in ctx.all_views():
            if not view.is_c:
                continue
            for _name, fn in view.functions():
                got = rc._summary(ctx, view, fn)
                if got is not None:
                    assert got[0] == frozenset(guards.predicate_caps(fn, {}))
                    seen += bool(got[0])
    assert seen


# -- rules' shortcuts ------------------------------------------------------------------------------------

def test_helper_word_lookup_is_the_word_list() -> None:
    from conftest import load_rule

    hwu = load_rule("series/helper-without-user.py")
    rng = random.Random(7)
    alphabet = ["foo", "_", "a", "1", " ", "\n", "(", "é", "\u00a0", "x", "foo_bar", "\u0663", "-"]
    for _ in range(3000):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 12)))
        for name in ("foo", "foo_bar", "a", "_", "foo1"):
            assert hwu._has_word(text, name) == (name in set(hwu._WORD.findall(text))), (text, name)


def test_write_once_scans_kept_per_commit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from conftest import load_rule

    mwo = load_rule("locking/missing-write-once.py")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    texts = {
        "arch/arm64/kvm/a.c": "x = READ_ONCE(v->arch.s.flag);\nWRITE_ONCE(v->arch.s.flag, 1);\n"
                              "y = READ_ONCE(p->q.r);\n",
        "arch/arm64/kvm/b.c": "WRITE_ONCE(p->q.r, 2);\nz = READ_ONCE(m->n.o);\n",
        "arch/arm64/kvm/c.c": "nothing here\n",
    }

    class _Series:
        base = "a" * 40
        reads = 0

        def base_files_using(self, word: str) -> list[str]:
            return sorted(texts)

        def all_views(self) -> list:
            return []

        def base_text(self, path: str) -> str:
            self.reads += 1
            return texts[path]

        def memo(self, key: object, factory: Callable[[], object]) -> object:
            return factory()

    want: dict = {}
    for path in sorted(texts):
        mwo._scan(texts[path], path, want)
    first, second = _Series(), _Series()
    assert mwo._base_accesses(first) == want and first.reads == 3
    assert mwo._base_accesses(second) == want and second.reads == 0  # from the commit's file
    other = _Series()
    other.base = None  # a plain folder: never kept
    assert mwo._base_accesses(other) == want and other.reads == 3
