"""Issue 15, pattern rules in full mode: a case searches a parse of the top-level items the added lines
lie in (`unit_text`) instead of the whole file, only where that finds the matches the whole file does."""

from __future__ import annotations

import random
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from fixture_texts import fixture_c_texts

from pmureview.lang.c import parse as ts_parse
from pmureview.lang.pattern import LEAF_ITEMS, Compiled, confined, parse, parse_units, unit_text, units

ROOT = Path(__file__).resolve().parent.parent / "fixtures"


@cache
def _cases() -> list[tuple[str, Any, str]]:
    """(rule id, Compiled, added mode) of every shipped pattern case."""
    from pmureview.engine.registry import load_registry

    reg = load_registry(plugins=False)
    return [(r.meta.id, c.compiled, c.added) for r in reg.rules.values() for c in getattr(r, "cases", ())]


def _items(text: str, touched: set[int]) -> tuple[Any, frozenset[str]] | None:
    lines = text.split("\n")
    made = unit_text(ts_parse(text.encode("utf-8", "surrogateescape")).root_node, lines, touched)
    if made is None:
        return None
    root = parse_units(made[0], made[1])
    return (root, made[2]) if root is not None else None


def _sig(m: Any, statement: bool) -> tuple:
    return (m.start_line, m.start_column, m.end_line, m.end_column, m.text, m.kind, sorted(m.vars.items()),
            sorted(m.lists.items()), sorted(m.statement_lines) if statement else None, m.fix)


SAMPLE = """\
#include <linux/kernel.h>
#ifdef CONFIG_FOO
static int a_table[] = { [0] = 1, };
#endif
FROB_MACRO(weird) tokens here )
struct frob {
\tint x;
};

static bool frob_ok(int v)
{
\tif (v == 3)
\t\treturn false;
\treturn true;
}

int frob(int v, unsigned long x)
{
\tint r = 0;
\tif (v)
\t\tr = memcpy(&x, &v, sizeof(v)) ? 1 : 0;
\treturn r;
}
"""


def test_items_text_keeps_places_and_blanks_the_rest() -> None:
    lines = SAMPLE.split("\n")
    touched = {21}  # inside frob()
    made = unit_text(ts_parse(SAMPLE.encode()).root_node, lines, touched)
    assert made is not None
    text, spans, others = made
    out = text.split("\n")
    assert len(out) == len(lines)
    assert [k for k, *_ in spans] == ["function_definition"] and not others
    assert out[16:23] == lines[16:23] and not any(out[:16])  # frob() kept where it was, the rest blank
    assert parse_units(text, spans) is not None


def test_no_items_text_for_an_if_line_an_error_or_a_touched_line_outside_items() -> None:
    tree = ts_parse(SAMPLE.encode()).root_node
    lines = SAMPLE.split("\n")
    assert unit_text(tree, lines, {2}) is None  # the #ifdef line itself
    assert unit_text(tree, lines, {5}) is None  # in the stretch the parser could not read
    made = unit_text(tree, lines, {3})  # an item inside the #ifdef: fine
    assert made is not None and [k for k, *_ in made[1]] == ["declaration"]
    made = unit_text(tree, lines, {7, 14})  # a field of the struct: its `;` comes along
    assert made is not None and [k for k, *_ in made[1]] == ["struct_specifier", ";", "function_definition"]
    assert made[2] == {"struct_specifier", ";"}


@pytest.mark.parametrize("rule, want", [
    ({"pattern": "foo($A)"}, True),
    ({"kind": "return_statement", "not": {"follows": {"kind": "if_statement", "stopBy": "end"}}}, True),
    ({"kind": "declaration", "follows": {"kind": "declaration"}}, False),  # a declaration may be an item
    ({"pattern": "int $X;", "precedes": {"pattern": "int $Y;"}}, False),
    ({"kind": "identifier", "inside": {"kind": "function_definition", "stopBy": "end"}}, True),
    ({"kind": "identifier", "inside": {"kind": "preproc_ifdef", "stopBy": "end"}}, False),  # a container
    ({"kind": "identifier", "inside": {"stopBy": "end", "regex": "x"}}, False),  # may match the file
    ({"kind": "identifier", "inside": {"kind": "if_statement", "follows": {"kind": "expression_statement"}}}, True),
    ({"kind": "identifier", "inside": {"kind": "declaration", "follows": {"kind": "declaration"}}}, False),
    ({"kind": "compound_statement", "has": {"nthChild": 1, "kind": "return_statement"}}, True),
    ({"kind": "function_definition", "nthChild": 1}, False),
    ({"pattern": "$X"}, False),  # any node, the file's too
])
def test_confined_rules(rule: dict[str, Any], want: bool) -> None:
    assert confined({"rule": rule}) is want


def test_constraints_count() -> None:
    rule = {"pattern": "foo($A)"}
    assert confined({"rule": rule, "constraints": {"A": {"kind": "identifier"}}})
    assert not confined({"rule": rule, "constraints": {"A": {"inside": {"kind": "translation_unit"}}}})


def test_every_shipped_case_is_confined() -> None:
    """Every shipped pattern case can search the items (a new case that cannot is still right: it
    parses the whole file; this only says the speed-up covers them all today)."""
    cases = _cases()
    assert len(cases) > 50
    assert [rid for rid, c, _added in cases if not c.confined] == []


def test_items_find_what_the_whole_file_finds_in_its_units() -> None:
    """Every fixture C text (the trees and the series' post-image views), several sets of touched lines:
    every confined shipped case finds the same matches (places, texts, metavariables, fixes and, for
    `added: statement`, statement lines) in the items' parse as in the whole file's units."""
    rnd = random.Random(15)
    cases = [(rid, c, added) for rid, c, added in _cases() if c.confined]
    compared = matches = 0
    for f, text in fixture_c_texts()[::2]:
        whole = parse(text)
        n = text.count("\n") + 1
        for touched in ({*range(1, n + 1, 7)}, {*range(a := rnd.randrange(1, n + 1), a + rnd.randrange(1, 30))}):
            got = _items(text, touched)
            if got is None:
                continue
            part, others = got
            within = units(whole, touched)
            for rid, c, added in cases:
                statement = added == "statement"
                if statement and others and not (others <= LEAF_ITEMS and c.leafless):
                    continue
                want = [_sig(m, statement) for m in c.run(whole, statement=statement, within=within)]
                assert [_sig(m, statement) for m in c.run(part, statement=statement)] == want, (rid, f, touched)
                compared += 1
                matches += len(want)
    assert compared > 1000 and matches > 30


def test_full_review_parses_no_whole_file_for_confined_cases(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A full-mode review of a fixture with a tree: pattern rules do not parse the whole views with
    ast-grep, and the findings are those of a run that does."""
    from pmureview.api import Options, review
    from pmureview.rule import patternrule
    from pmureview.testing import discover_cases, git_tree
    from pmureview.views.context import FileView

    case = next(c for c in discover_cases(ROOT / "series" / "style" / "redundant-boolean-construct") if c.tree)
    tree = git_tree(case.tree, tmp_path / "tree")

    def rows() -> list[tuple]:
        r = review([str(case.root / "series.mbox")], Options(tree=tree))
        return sorted((f.rule, f.location.patch, f.location.path, f.location.line, f.message) for f in r.findings)

    whole_parses: list[str] = []
    sg_root = FileView.sg_root

    def counted(self: FileView) -> Any:
        if self._sg is None:
            whole_parses.append(self.path)
        return sg_root(self)

    monkeypatch.setattr(FileView, "sg_root", counted)
    got = rows()
    assert whole_parses == []
    monkeypatch.setattr(patternrule, "_unit_root", lambda view, case: None)  # the whole file, as before
    assert rows() == got
    assert whole_parses


def test_statement_cases_need_statement_items() -> None:
    """`added: statement` looks for a match's statement up to its item: a comment item (no statement)
    is fine only for a case whose matches are never comments."""
    leafy = Compiled({"rule": {"pattern": "$X"}})
    pinned = Compiled({"rule": {"kind": "call_expression"}})
    assert not leafy.leafless and pinned.leafless


def test_a_case_whose_words_are_not_in_the_items_text_finds_nothing_there() -> None:
    """patternrule skips a confined case whose words are missing from the items' text (not only from
    the file's): every such case finds nothing in the items' parse."""
    rnd = random.Random(16)
    cases = [(rid, c, added) for rid, c, added in _cases() if c.confined]
    skipped = 0
    for f, text in fixture_c_texts()[1::2]:
        lines = text.split("\n")
        n = len(lines)
        for touched in ({*range(1, n + 1, 5)}, {*range(a := rnd.randrange(1, n + 1), a + rnd.randrange(1, 30))}):
            made = unit_text(ts_parse(text.encode("utf-8", "surrogateescape")).root_node, lines, touched)
            part = parse_units(made[0], made[1]) if made is not None else None
            if part is None:
                continue
            for rid, c, added in cases:
                if c.may_match(text) and not c.may_match(made[0]):
                    assert c.run(part, statement=added == "statement") == [], (rid, f, touched)
                    skipped += 1
    assert skipped > 200


def test_word_answers_are_kept_per_text_for_the_run() -> None:
    """may_match keeps what it learnt of a text's words for the run: the same answers as asking the
    text afresh, whatever was asked before, and forgotten when a run starts."""
    from pmureview.lang import c as lang_c
    from pmureview.lang import pattern

    cases = [c for _rid, c, _added in _cases()]
    texts = [t for _f, t in fixture_c_texts()[:40]]
    lang_c.new_run()
    for text in texts:
        first = [c.may_match(text) for c in cases]
        again = [c.may_match(text) for c in reversed(cases)][::-1]
        pattern._WORDS.clear()
        fresh = [c.may_match(text) for c in cases]
        assert first == again == fresh
    assert pattern._WORDS
    lang_c.new_run()
    assert not pattern._WORDS
