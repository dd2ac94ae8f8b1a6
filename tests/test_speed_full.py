"""The full-mode speed work changes no answer: each fast path gives what the slow one gave.

- `lex_line`'s fast paths (lines without `/`, quotes; lines inside a comment without `*/`);
- `walk` through a tree-sitter query (small nodes once a type set walked enough) and the whole-tree
  union query behind `nodes_of` give the Python pre-order walk's nodes, in its order;
- a full view's comment state carried on from the previous patch's view is a fresh scan's;
- `kernel.predicates` reads its data without importlib.resources and parses base files once per run.
"""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from fixture_texts import SAMPLE_C, python_walk

from pmureview.lang import c

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "fixtures" / "series"

# -- the lexer ----------------------------------------------------------------------------------------

def test_lex_line_fast_paths_match_the_lexer() -> None:
    fixed = ["", "   ", "\t\\", " \\ \\ ", "x = 1;", "\u00a0", "\u00a0x", " * text", "*/", "a */ b",
             "/* c */ x", "// only", "s = \"/*\";", "c = '/';", "x \\", "\x0c", "int a; /* open",
             " * it's", "a / b", "p = \"str\" ;"]
    rng = random.Random(15)
    alphabet = ["a", " ", "\t", "\\", "/", "*", "\"", "'", "x", ";", "\u00a0", "\u3000", "(", "\n"[:0]]
    lines = fixed + ["".join(rng.choice(alphabet) for _ in range(rng.randint(0, 12))) for _ in range(4000)]
    for line in lines:
        for inside in (False, True):
            assert c.lex_line(line, inside) == c._lex_line_slow(line, inside), (line, inside)


# -- walks --------------------------------------------------------------------------------------------



def _sig(nodes) -> list[tuple]:
    return [(n.type, n.start_byte, n.end_byte, n.is_missing) for n in nodes]



_SETS = [frozenset(s) for s in (
    {"call_expression"}, {"identifier", "field_identifier"}, {"if_statement", "return_statement"},
    {"function_definition"}, {"declaration", "field_declaration", "function_definition", "preproc_def",
                              "preproc_function_def"}, {"ERROR"}, {"comment"}, {"compound_statement"},
    {"parenthesized_expression", "call_expression", "conditional_expression"},
)]


def _sources() -> list[bytes]:
    out = [SAMPLE_C]
    for p in sorted((ROOT / "fixtures" / "trees").rglob("*.[ch]"))[:12]:
        out.append(p.read_bytes())
    return out


def test_query_walk_matchespython_walk(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(c, "_WALK_BUDGET", -1)  # every small node through the query at once
    for src in _sources():
        root = c.parse(src).root_node
        for node in python_walk(root, None):
            if not node.child_count:
                continue
            for types in _SETS:
                assert _sig(c.walk(node, types)) == _sig(python_walk(node, types)), (node.type, types)
                assert _sig(c.walk(node, set(types))) == _sig(python_walk(node, types))


def test_whole_tree_union_gives_each_set_its_own_nodes() -> None:
    # a large file, asked one set after another (the union grows between the asks)
    src = SAMPLE_C * 60
    root = c.parse(src).root_node
    for types in _SETS + list(reversed(_SETS)):
        got = c.nodes_of(root, types)
        assert got is not None
        assert _sig(got) == _sig(python_walk(root, types)), types
        assert _sig(c.walk(root, types)) == _sig(got)
    # sets holding a frequent leaf type are queried on their own, same answer
    entry = c._whole_entry(root)
    assert entry is not None and entry.types.isdisjoint(c._NOT_SHARED)
    # a second tree starts from the whole union at once
    other = c.parse(src.replace(b"FOO", b"BAR")).root_node
    assert _sig(c.nodes_of(other, _SETS[0]) or []) == _sig(python_walk(other, _SETS[0]))
    assert c._whole_entry(other) is not None
    # a new run forgets the trees of the last one
    c.new_run()
    assert c._whole_entry(other) is None
    assert _sig(c.nodes_of(other, _SETS[1]) or []) == _sig(python_walk(other, _SETS[1]))


def test_lines_limited_queries_unchanged() -> None:
    root = c.parse(SAMPLE_C * 60).root_node
    got = c.nodes_of(root, frozenset({"call_expression"}), (5, 9))
    assert got and all(4 <= n.start_point[0] <= 9 or n.end_point[0] >= 4 for n in got)


# -- full views of a file touched by several patches -------------------------------------------------

def _full_views(case_root: Path, tmp: Path):
    from pmureview.api import _open_tree, load_series
    from pmureview.engine.review import Options
    from pmureview.testing import case_tree, git_tree
    from pmureview.views.image import build_views

    base = case_tree(case_root)
    opts = Options(tree=git_tree(base, tmp / "tree"))
    series, _ = load_series([str(case_root / "series.mbox")], opts)
    reader, _, _ = _open_tree(opts, series, hook=False)
    views, _ = build_views(series, reader)
    return [v for n in sorted(views) for v in views[n]]


def _multi_touch_cases() -> list[Path]:
    from pmureview.testing import discover_cases

    out = []
    for case in discover_cases(FIXTURES):
        if case.tree is None or not (case.root / "series.mbox").is_file():
            continue
        text = (case.root / "series.mbox").read_text("utf-8", "replace")
        paths = [ln[6:] for ln in text.splitlines() if ln.startswith("+++ b/") and ln.endswith((".c", ".h"))]
        if len(paths) != len(set(paths)):
            out.append(case.root)
    return out[:8]


# -- kernel/predicates ----------------------------------------------------------------------------------

def test_predicates_data_without_importlib_resources() -> None:
    from pmureview.kernel import predicates

    predicates.gating_data.cache_clear()
    data = predicates.gating_data()
    assert data.get("predicates")
    src = (Path(predicates.__file__).read_text("utf-8"))
    assert "from importlib" not in src and "import hashlib" not in src


def test_helpers_scan_uses_the_shared_parser(tmp_path: Path, monkeypatch) -> None:
    from pmureview.kernel.predicates import Helpers

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))  # base texts are also kept on disk by content

    asked: list[str] = []

    def parsed(text: str):
        asked.append(text)
        return c.parse(text.encode())

    code = "static inline bool has_thing(struct kvm *kvm) { return kvm_has_feat(kvm, X); }\n"
    h, cache = Helpers(), {}
    h.add_text(code, cache=cache, parsed=parsed)
    h.add_text(code, cache=cache, parsed=parsed)  # cached by text: parsed once
    assert asked == [code]
    assert h.bodies["has_thing"] == ["kvm_has_feat(kvm, X)"]


def test_first_added_line_is_the_line_scan(tmp_path: Path) -> None:
    cases = _multi_touch_cases()
    if not cases:
        pytest.skip("no fixture touches a file twice")
    checked = 0
    for v in _full_views(cases[0], tmp_path):
        if not v.is_c:
            continue
        for node in python_walk(v.root, None):
            want = next((n for n in v.node_lines(node) if n in v.added), None)
            assert v.first_added_line(node) == want
            assert v.touches_added(node) == (want is not None)
            checked += 1
        v.added = frozenset(range(1, len(v.lines), 7))  # a new set is noticed
        node = v.root
        assert v.first_added_line(node) == next((n for n in v.node_lines(node) if n in v.added), None)
    assert checked


def test_full_views_share_their_comment_state(tmp_path: Path) -> None:
    from pmureview.lang.c import comment_only_lines, comment_scan

    cases = _multi_touch_cases()
    if not cases:
        pytest.skip("no fixture touches a file twice")
    shared = 0
    for i, root in enumerate(cases):
        for v in _full_views(root, tmp_path / str(i)):
            if not v.is_c:
                continue
            prev = v._prev[0] if v._prev is not None else None
            shared += prev is not None and prev._comment_scan is not None
            assert v.comment_lines == comment_only_lines(v.parse_text.split("\n")), (root.name, v.path)
            assert v._comment_scan == comment_scan(v.lines)
    assert shared


def test_comment_scan_reuse_resynchronises() -> None:
    from pmureview.lang.c import comment_only_lines, comment_scan

    old = ["int a;", "/* one", " * two", " */", "int b;", "// three", "int c;", ""]
    scan = comment_scan(old)
    assert {i for i, f in enumerate(scan[0], 1) if f} == comment_only_lines(old)
    # a patch that opens a comment above shared lines: they are lexed again until the states agree
    for new, same in (
        (["/*", "int a;", "/* one", " * two", " */", "int b;", "// three", "int c;", ""], [(1, 0, 8)]),
        (["int a;", "x; /*", " */", " * two", " */", "int b;", "// three", "int c;", ""],
         [(0, 0, 1), (3, 2, 6)]),
        (["int a;", "int b;", "// three", "int c;", ""], [(0, 0, 1), (1, 4, 4)]),
    ):
        got = comment_scan(new, scan, same)
        assert got == comment_scan(new)
        assert {i for i, f in enumerate(got[0], 1) if f} == comment_only_lines(new)


def test_base_helpers_read_back_from_disk_are_the_scanned_ones(tmp_path: Path, monkeypatch) -> None:
    """kernel/predicates keeps a base file's helper bodies on disk by content: the second process of a
    series reads what the first scanned."""
    from pmureview.kernel import predicates

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    text = ("#define kvm_has_foo(k) ((k)->arch.flags & FOO)\n"
            "static inline bool vcpu_has_bar(struct kvm_vcpu *v)\n{\n\tif (!kvm_has_foo(v->kvm))\n"
            "\t\treturn false;\n\treturn v->arch.bar != 0;\n}\n")
    first = predicates._scan(text, cache={})
    again = predicates._scan(text, cache={})  # a new run: from the file the first one wrote
    assert {k: predicates._value(v) for k, v in first.items()} == again
    assert again["vcpu_has_bar"] == ["(!kvm_has_foo(v->kvm))", "false", "v->arch.bar != 0"]
    assert predicates._scan(text + "\n", cache={}) is not None  # another text: scanned, not misread


def test_the_content_cache_folder_is_trimmed(tmp_path: Path, monkeypatch) -> None:
    """One file per base-file version ever reviewed: past CONTENT_KEPT the oldest written go."""
    import os

    from pmureview import cachefile

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.setattr(cachefile, "CONTENT_KEPT", 3)
    paths = [cachefile.content_cache_file("t", f"{i:02d}") for i in range(5)]
    for i, p in enumerate(paths):
        cachefile.write_content(p, {"i": i})
        os.utime(p, ns=(i * 10**9, i * 10**9))  # distinct write times, whatever the clock's grain
    cachefile.write_content(paths[4], {"i": 4})
    assert sorted(os.listdir(os.path.dirname(paths[0]))) == sorted(os.path.basename(p) for p in paths[2:])
    assert cachefile.read_marshal(paths[4]) == {"i": 4}
