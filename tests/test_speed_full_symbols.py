"""Full-mode speed work on the symbols analysis, style/missing-static and series/helper-without-user
changes no answer.

- strip_comments() lexes a whole text with one regex: the same lines as lex_line() line by line;
- _file_local()'s early None (_ruled_out()) is a None the whole computation reaches too, and the
  removed lines' word index answers _reference_changed() as the regex did;
- helper-without-user's macro-argument lookup around a word's occurrences, its `##` lines and its
  search for the nodes touching added lines answer as the index, the split and first_added_line().
"""

from __future__ import annotations

import random
import re
from pathlib import Path
from types import ModuleType

from fixture_texts import fixture_c_texts, rule_module

from pmureview.analyses.symbols import SeriesSymbols, _strip_lines, strip_comments
from pmureview.lang.c import functions, parse, walk
from pmureview.views.context import FULL

ROOT = Path(__file__).resolve().parent.parent


def _rule_module(rel: str) -> ModuleType:
    return rule_module(rel, "_speed_sym_")


def _random_texts(alphabet: list[str], n: int, seed: int, most: int = 30) -> list[str]:
    rnd = random.Random(seed)
    return ["".join(rnd.choice(alphabet) for _ in range(rnd.randint(0, most))) for _ in range(n)]


# -- strip_comments ----------------------------------------------------------------------------------------

_LEXER_ALPHABET = ["/", "*", '"', "'", "\\", "\n", "a", " ", "/*", "*/", "//", "\r", "x\\\"", "'\\''", "\t"]


def test_whole_text_strip_is_the_line_lexer() -> None:
    texts = [t for _, t in fixture_c_texts()] + _random_texts(_LEXER_ALPHABET, 30000, 1)
    texts += ["", "/*", "a /* b\n c */ d", "x = '\"'; /* \"*/ y", "s = \"a\\\"/*b\"; // c\nd */ e /* f"]
    for text in texts:
        lines = text.split("\n")
        assert strip_comments(lines, None) == _strip_lines(lines, None), text


def test_lines_holding_a_newline_take_the_line_lexer() -> None:
    lines = ["a /* b", "c\n*/ d", "e"]
    assert strip_comments(lines, None) == _strip_lines(lines, None)
    assert strip_comments([], None) == []


# -- missing-static's early answers -------------------------------------------------------------------------

class _Straight(SeriesSymbols):
    """Every name read in every view, as before _ruled_out()."""

    def _ruled_out(self, name: str, path: str) -> bool:
        return False


def _full_ctx(tmp_path: Path):
    from test_speed_full3 import _full_ctx as full_ctx

    return full_ctx(tmp_path)


def _key(s) -> tuple:
    return (s.name, s.kind, s.path, s.patch, s.line, s.added, s.static, s.head)


def _removed_reference(ctx, name: str) -> int | None:
    word = re.compile(rf"\b{re.escape(name)}\b")
    return next((p.number for p in ctx.patches for f in p.files if any(word.search(t) for t in f.removed_text)), None)


def _linkage_ctx(tmp_path: Path):
    """A full-mode series with an answer of each kind: a new function, one made non-static, a global
    whose last user outside its file goes (and one static, one with a prototype in another file)."""
    from test_symbols import BASE_C, BASE_H, OTHER_C, _ctx, _edit, _series

    post = BASE_C.replace("static const int *foo_table(void)", "const int *foo_table(void)")
    post = _edit(post, "\treturn foo_helper(x);", "\treturn foo_helper(x) + !foo_table() + foo_fresh();")
    post = _edit(post, "\treturn NULL;", "\treturn foo_global(3) ? NULL : NULL;")
    post += "\nint foo_fresh(void)\n{\n\treturn 0;\n}\n\nstatic int foo_quiet(void)\n{\n\treturn foo_fresh();\n}\n"
    head = BASE_H.replace("static const int *foo_table(void);", "const int *foo_table(void);")
    other = _edit(OTHER_C, "foo_global(2);", "2;")
    case = _series(tmp_path, [{"arch/arm64/kvm/foo.c": post, "arch/arm64/kvm/foo.h": head},
                              {"arch/arm64/kvm/other.c": other}])
    return _ctx(case, FULL, tmp_path)


def test_ruled_out_names_have_no_answer(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    assert _same_linkage_answers(_full_ctx(tmp_path / "a")) == []
    assert _same_linkage_answers(_linkage_ctx(tmp_path / "b")) == [
        ("foo_table", "made-non-static"), ("foo_fresh", "new"), ("foo_global", "base")]


def _same_linkage_answers(ctx) -> list[tuple[str, str]]:
    fast, straight = SeriesSymbols(ctx), _Straight(ctx)
    sites = list(straight.all_sites())
    pairs = sorted({(s.name, s.path) for s in sites})
    assert pairs
    ruled = 0
    for name, path in pairs:
        want = straight._file_local(name, path)
        if fast._ruled_out(name, path):
            ruled += 1
            assert want is None, name
        got = fast._file_local(name, path)
        assert (got is None) == (want is None), name
        if got is not None and want is not None:
            assert (got.name, got.evidence, got.local, got.exact) == (want.name, want.evidence, want.local, want.exact)
            for a, b in ((got.definitions, want.definitions), (got.declarations, want.declarations)):
                assert [_key(d) for d in a] == [_key(d) for d in b], name
    assert ruled
    got = [(g.name, g.evidence) for g in fast.file_local_globals()]
    assert got == [(g.name, g.evidence) for g in straight._file_local_globals()]
    return got


def test_removed_word_index_is_the_regex(tmp_path: Path) -> None:
    ctx = _full_ctx(tmp_path)
    sy = SeriesSymbols(ctx)
    words = {w for p in ctx.patches for f in p.files for t in f.removed_text for w in re.findall(r"\w+", t)}
    assert words
    for name in [*sorted(words), "foo", "oo_gone", "nothing_here", "foo_gone(", "é"]:
        assert sy._reference_changed(name) == _removed_reference(ctx, name), name


# -- helper-without-user ------------------------------------------------------------------------------------

def _args_index(mod: ModuleType, text: str) -> set[str]:
    """_view_args() of a view with this text: every word of every upper-case macro call's arguments."""
    return set(mod._ARG_WORD.findall("\n".join([m.group(1) for m in mod._MACRO_CALL.finditer(text)])))


def _word_rx(word: str) -> re.Pattern:
    return re.compile(rf"{re.escape(word)}(?<!\w{re.escape(word)})(?!\w)")


def test_macro_argument_lookup_is_the_index() -> None:
    mod = _rule_module("rules/series/helper-without-user.py")
    rnd = random.Random(2)
    for _, text in fixture_c_texts():
        args = _args_index(mod, text)
        words = sorted(set(re.findall(r"[A-Za-z_]\w*", text)))
        for word in sorted(args) + rnd.sample(words, min(len(words), 40)) + ["nothing_here"]:
            if word.isascii():
                assert mod._in_macro_args(text, _word_rx(word)) == (word in args), word
    alphabet = ["FOO", "A", "x", "_", "9", "(", ")", " ", "\n", "bar", "é", "\xa0", "DEVICE_ATTR_RO", "(foo)", ",",
                "\t"]
    for text in _random_texts(alphabet, 20000, 3, 14):
        args = _args_index(mod, text)
        for word in ("x", "bar", "foo", "A", "x_bar", "FOO", "_"):
            assert mod._in_macro_args(text, _word_rx(word)) == (word in args), (text, word)


def test_lines_with_a_needle_are_the_split_ones() -> None:
    mod = _rule_module("rules/series/helper-without-user.py")
    texts = [t for _, t in fixture_c_texts()] + _random_texts(["#", "##", "a", "\n", " ", "x##y"], 10000, 4)
    for text in texts:
        assert list(mod._lines_with(text, "##")) == [ln for ln in text.split("\n") if "##" in ln], text


def _touches(node, added: frozenset[int]) -> bool:
    """view.first_added_line(node) is not None."""
    return any(node.start_point[0] + 1 <= a <= node.end_point[0] + 1 for a in added)


class _Added:
    """What _touching() reads of a view."""

    def __init__(self, added: set[int]) -> None:
        self.added = frozenset(added)

    def first_added_line(self, node) -> int | None:
        return 1 if _touches(node, self.added) else None


def _touched(nodes: list, added: set[int]) -> list[int]:
    return [i for i, n in enumerate(nodes) if _touches(n, frozenset(added))]


def test_touching_nodes_are_first_added_line() -> None:
    mod = _rule_module("rules/series/helper-without-user.py")
    mod._FEW_NODES = 0  # every list through the search from the added lines
    rnd = random.Random(5)
    for _, text in fixture_c_texts()[::3]:
        root = parse(text.encode("utf-8", "surrogateescape")).root_node
        nrows = text.count("\n") + 2
        lists = [([fn for _, fn in functions(root)], "function_definition"),
                 (list(walk(root, frozenset({"declaration"}))), "declaration")]
        for _ in range(4):
            added = {rnd.randint(1, nrows) for _ in range(rnd.randint(0, 6))}
            if rnd.random() < 0.5 and nrows > 3:  # a run of added lines
                start = rnd.randint(1, nrows - 2)
                added |= set(range(start, min(nrows, start + rnd.randint(1, 30))))
            for nodes, node_type in lists:
                assert mod._touching(_Added(added), nodes, node_type) == _touched(nodes, added)


def test_nested_functions_are_touched_through_their_parent() -> None:
    mod = _rule_module("rules/series/helper-without-user.py")
    mod._FEW_NODES = 0
    text = "int a(void)\n{\n\tint b(void)\n\t{\n\t\treturn 1;\n\t}\n\treturn b();\n}\nint c;\n"
    root = parse(text.encode()).root_node
    nodes = [fn for _, fn in functions(root)]
    for line in range(1, 11):
        assert mod._touching(_Added({line}), nodes, "function_definition") == _touched(nodes, {line}), line
