"""Hunk-only parse text: block comments do not leak across the gaps between hunks."""

from __future__ import annotations

from pmureview.lang.c import hunk_parse_lines, parse


def test_comment_left_open_is_closed_in_the_gap():
    lines = ["/* a comment whose end", " * is outside the hunk", "", "", "int later(void);"]
    out = hunk_parse_lines(lines, {1, 2, 5})
    assert out[2] == "*/" and out[4] == lines[4]
    root = parse("\n".join(out).encode()).root_node
    assert any(c.type == "declaration" and c.start_point[0] == 4 for c in root.children)


def test_hunk_starting_inside_a_comment_is_opened_before_it():
    lines = ["", "", " * the tail of a comment", " */", "static int x;"]
    out = hunk_parse_lines(lines, {3, 4, 5})
    assert out[1] == "/*"
    root = parse("\n".join(out).encode()).root_node
    assert [c.type for c in root.children] == ["comment", "declaration"]


def test_strings_and_line_comments_are_not_comments():
    lines = ['s = "/*";', "// /* not open", "", "int y;"]
    assert hunk_parse_lines(lines, {1, 2, 4}) == lines


def test_known_lines_never_change():
    lines = ["/* open", "", "x */", "int z;"]
    out = hunk_parse_lines(lines, {1, 3, 4})
    assert [out[i] for i in (0, 2, 3)] == [lines[i] for i in (0, 2, 3)]
