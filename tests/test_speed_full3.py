"""The fourth round of full-mode speed work changes no answer (issue 15).

- `SeriesSymbols` in full mode reads only the site nodes an answer needs (those touching added lines
  for `added()`, those holding a name for `named()`, the definitions naming a removed token for the
  linkage candidates): the same sites, in the same order, as the same Symbol objects as reading every
  site of every view;
- rewritten regexes and scans give the same matches as the ones they replace: helper-without-user's
  upper-case macro calls, missing-write-once's READ_ONCE()/WRITE_ONCE(), pairs' return lines,
  predicates' `#define`s;
- pmu_access's merged line spans answer as the set of every line they cover, redundant_capability's
  per-view return statements as a walk of each function.
"""

from __future__ import annotations

import random
import re
from pathlib import Path
from types import ModuleType

from fixture_texts import rule_module

from pmureview.analyses import pmu_access, redundant_capability
from pmureview.analyses.symbols import SeriesSymbols
from pmureview.kernel import predicates
from pmureview.lang.c import walk
from pmureview.views.context import FULL

ROOT = Path(__file__).resolve().parent.parent


def _rule_module(rel: str) -> ModuleType:
    return rule_module(rel, "_speed3_")


def _sig(rx, text: str) -> list[tuple]:
    return [(m.start(), m.end(), m.groups()) for m in rx.finditer(text)]


def _random_texts(alphabet: list[str], n: int, seed: int) -> list[str]:
    rnd = random.Random(seed)
    return ["".join(rnd.choice(alphabet) for _ in range(rnd.randint(1, 14))) for _ in range(n)]


# -- symbols ---------------------------------------------------------------------------------------------

_POST_C = """\
// SPDX-License-Identifier: GPL-2.0-only
#include "foo.h"

struct foo_state {
	int foo_count;
	int foo_added_member;
};

#define foo_twice(x)	((x) * 2)
#define FOO_NEW_LIMIT	8

extern int foo_extern_copy(int x);

static int foo_table[4];

int foo_global(int x)
{
	return x + foo_helper(x) + foo_twice(x);
}

static int foo_new_static(void)
{
	int void_local = 0;

	return void_local + foo_table[0];
}

int foo_new_global(int x)
{
	return foo_new_static() + x;
}
"""


def _full_ctx(tmp_path: Path):
    from test_symbols import BASE_C, BASE_H, OTHER_C, _ctx, _series

    base_c = BASE_C.replace("int foo_global(", "int foo_old_global(", 1) + "\nint foo_gone(void)\n{\n\treturn 0;\n}\n"
    base = {"arch/arm64/kvm/foo.c": base_c, "arch/arm64/kvm/foo.h": BASE_H, "arch/arm64/kvm/other.c": OTHER_C}
    case = _series(tmp_path, [{"arch/arm64/kvm/foo.c": _POST_C},
                              {"arch/arm64/kvm/foo.c": _POST_C + "\nvoid foo_later(void)\n{\n\tfoo_gone();\n}\n"}],
                   base=base)
    ctx = _ctx(case, FULL, tmp_path)
    assert ctx.full
    return ctx


def _key(s) -> tuple:
    return (s.name, s.kind, s.path, s.patch, s.line, s.added, s.static, s.extern, s.weak, s.head, s.container)


def test_partial_site_reads_match_every_site(tmp_path: Path) -> None:
    ctx = _full_ctx(tmp_path)
    partial, whole = SeriesSymbols(ctx), SeriesSymbols(ctx)
    list(whole.all_sites())  # every view read in full: the reference answers
    names = sorted({s.name for s in whole.all_sites()} | {"void", "foo_helper", "nothing_here"})
    added = list(partial.added())
    assert [_key(s) for s in added] == [_key(s) for s in whole.added()]
    assert any(s.name == "foo_new_global" for s in added)
    for name in names:
        assert [_key(s) for s in partial.named(name)] == [_key(s) for s in whole.named(name)], name
    assert [_key(s) for s in partial._linkage_candidates()] == [_key(s) for s in whole._linkage_candidates()]
    # one Symbol per site, whichever question built it first
    same = {id(s) for name in names for s in partial.named(name)}
    assert all(id(s) in same for s in added)
    # no full read happened on the partial side (full views only)
    assert not partial._sites


def test_partial_reads_on_the_bench_series() -> None:
    bench = Path.home() / ".cache/pmureview-bench/series-6.1-24"
    if not (bench / "kvm-repo").is_dir():
        import pytest

        pytest.skip("no bench series here")
    from pmureview.api import Options, _open_tree, load_series
    from pmureview.views.context import SeriesContext
    from pmureview.views.image import build_views

    opts = Options(tree=bench / "kvm-repo")
    series, _ = load_series([str(bench / "series/series.mbox")], opts)
    reader, commit = _open_tree(opts, series, hook=False)[:2]
    ctx = SeriesContext(series=series, mode=FULL, views=build_views(series, reader)[0], base_reader=reader, base=commit)
    partial, whole = SeriesSymbols(ctx), SeriesSymbols(ctx)
    list(whole.all_sites())
    assert [_key(s) for s in partial.added()] == [_key(s) for s in whole.added()]
    names = [*sorted({s.name for s in whole.all_sites()})[::7], "void", "kvm_inject_undefined"]
    for name in names:
        assert [_key(s) for s in partial.named(name)] == [_key(s) for s in whole.named(name)], name
    assert [_key(s) for s in partial._linkage_candidates()] == [_key(s) for s in whole._linkage_candidates()]


# -- regexes and scans ------------------------------------------------------------------------------------

def test_macro_call_pattern_is_the_word_boundary_one() -> None:
    mod = _rule_module("rules/series/helper-without-user.py")
    old = re.compile(r"\b[A-Z][A-Z0-9_]*\s*\(([^()]*)\)")
    alphabet = ["FOO", "A", "x", "_", "9", "(", ")", " ", "\n", "bar", "é", "Ä", "DEVICE_ATTR_RO", "(foo)", ","]
    for text in _random_texts(alphabet, 20000, 1):
        assert _sig(mod._MACRO_CALL, text) == _sig(old, text), text
        words = {a for m in old.finditer(text) for a in re.findall(r"\b[A-Za-z_]\w*\b", m.group(1))}
        joined = set(mod._ARG_WORD.findall("\n".join(m.group(1) for m in mod._MACRO_CALL.finditer(text))))
        assert joined == words, text


def test_once_pattern_is_the_word_boundary_one() -> None:
    mod = _rule_module("rules/locking/missing-write-once.py")
    old = re.compile(r"\b(READ_ONCE|WRITE_ONCE)\s*\(\s*&?\s*([A-Za-z_][\w.\->\s]*?)\s*[,)]")
    alphabet = ["READ_ONCE", "WRITE_ONCE", "x", "_", "(", ")", " ", "&", "a->b", ".c", ",", "\n", "é", "9", "R", "W"]
    for text in _random_texts(alphabet, 20000, 2):
        assert _sig(mod._ONCE, text) == _sig(old, text), text


def test_return_lines_are_the_per_line_matches() -> None:
    from pmureview.analyses.pairs import _RETURN_LINES

    per_line = re.compile(r"^(\s*)return\b")
    alphabet = ["\treturn", " return", "return", "returnx", "\x1c", "\xa0", "\r", "\n", "x", ";", "\t", " "]
    for text in _random_texts(alphabet, 20000, 3):
        want = [(i, m.group(1)) for i, ln in enumerate(text.split("\n"), 1) if (m := per_line.match(ln))]
        got, row, at = [], 1, 0
        for m in _RETURN_LINES.finditer(text):
            row += text.count("\n", at, m.start())
            at = m.start()
            got.append((row, m.group(1)))
        assert got == want, text


def test_defines_are_finditer() -> None:
    alphabet = ["#define", "# define", "#  define", "define", "F(a)", "G(x, y)", " ", "\t", "\\\n", "\n", "x", "(",
                ")", "defin", "e", "#", "X(", "_1"]
    for text in _random_texts(alphabet, 30000, 4):
        assert [(m.start(), m.end(), m.groups()) for m in predicates._defines(text)] == _sig(predicates._DEFINE, text)


def test_merged_spans_are_their_lines() -> None:
    rnd = random.Random(5)
    for _ in range(5000):
        spans = [(a, a + rnd.randint(0, 20)) for a in (rnd.randint(1, 100) for _ in range(rnd.randint(0, 8)))]
        lines = pmu_access._Lines(spans)
        every = {n for first, last in spans for n in range(first, last + 1)}
        assert all((n in lines) == (n in every) for n in range(0, 130))


def test_view_returns_are_each_functions_walk(tmp_path: Path) -> None:
    ctx = _full_ctx(tmp_path)
    seen = 0
    for view in ctx.all_views():
        for _name, fn in view.functions():
            got = redundant_capability._returns(view, fn)
            assert got == list(walk(fn, {"return_statement"}))
            seen += len(got)
    assert seen
