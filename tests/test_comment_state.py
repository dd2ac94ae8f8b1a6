"""Comment state in hunk-only views when a block comment's `/*` or `*/` is outside the hunks."""

from __future__ import annotations

from pathlib import Path

from pmureview.lang.c import comment_only_lines, hunk_parse_lines, parse, walk

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "series" / "style" / "continuation-operator"


def _binary_rows(lines: list[str]) -> set[int]:
    root = parse("\n".join(lines).encode()).root_node
    return {n.start_point[0] + 1 for n in walk(root, {"binary_expression"})}


def test_run_of_comment_body_lines_is_a_comment():
    # both the `/*` and the `*/` are outside the hunk (lines 3-5 known)
    lines = ["", "", "\t * counts when E &&", "\t * Pn are set, the total", "\t * + 1 for the cycle", "", "x = 1;"]
    out = hunk_parse_lines(lines, {3, 4, 5, 7})
    assert out[1] == "/*" and out[5] == "*/"
    assert not _binary_rows(out)
    assert comment_only_lines(out) >= {3, 4, 5}


def test_multiplication_continuation_is_not_a_comment():
    # ` * b` lines followed by code: a continued expression, not the inside of a comment
    lines = ["", "", "\t\t * b", "\t\t * c;", "\treturn x;"]
    assert hunk_parse_lines(lines, {3, 4, 5}) == lines


def test_pointer_statements_are_not_comment_lines():
    lines = ["", "", "\t*p = 1;", "\t*q = 2;"]
    assert hunk_parse_lines(lines, {3, 4}) == lines


def test_comment_open_at_the_end_is_closed_after_the_last_line():
    lines = ["", "", "\tfoo();", "\t/*", "\t * the cache to the PoC.", "\t * more"]
    out = hunk_parse_lines(lines, {3, 4, 5, 6})
    assert out[:6] == lines and out[6:] == ["*/"]
    assert not _binary_rows(out)


def test_close_in_the_hunk_means_everything_above_is_comment():
    lines = ["", "", " * a && b", " * - c", " */", "int x = a", "\t| b;"]
    out = hunk_parse_lines(lines, {3, 4, 5, 6, 7})
    assert out[1] == "/*"
    assert _binary_rows(out) == {6}


def test_comment_only_lines():
    lines = ["/* a", " * b && c", " */", "x = 1; /* y */", "// z", "", "int q;", "\t/* one */", 's = "/*";', "*p = 2;"]
    assert comment_only_lines(lines) == frozenset({1, 2, 3, 5, 8})


def test_view_comment_lines_in_hunk_only_mode():
    from pmureview.api import load_series
    from pmureview.engine.review import Options
    from pmureview.views.image import build_views

    series, _ = load_series([str(FIXTURES / "good-comment-opened-above-hunk" / "series.mbox")], Options())
    views, _ = build_views(series, None)
    view = views[1][0]
    added_comment = {n for n in view.added if view.line_text(n).lstrip().startswith("* ")}
    assert added_comment and added_comment <= view.comment_lines
    assert not any(n in view.comment_lines for n in view.added if "&extra" in view.line_text(n))


def test_leading_operator_needs_the_line_above():
    """style/continuation-operator: an operator starting the first line of a hunk (the line above is
    unknown) or following a preprocessor line is not judged; one after a known code line is."""
    from types import SimpleNamespace

    from pmureview.rule.yamlrule import continues_code_above

    lines = ["", "\tfoo(a,", "#ifdef CONFIG_X", "\t    &b);", "", "\t    && c", "\tx = a", "", "\t    | b;"]
    view = SimpleNamespace(known=frozenset({2, 3, 4, 6, 7, 8, 9}), lines=lines,
                           line_text=lambda n: lines[n - 1] if 0 < n <= len(lines) else "")
    assert not continues_code_above(view, 4)  # below an #ifdef
    assert not continues_code_above(view, 6)  # line 5 unknown: first line of a hunk
    assert continues_code_above(view, 9)  # a blank line between is skipped, line 7 is code
