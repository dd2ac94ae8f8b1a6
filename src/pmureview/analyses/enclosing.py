"""The struct/union or function a line of a view sits in.

From the C tree when the opener is known and parses cleanly (full mode, or a hunk that shows it);
else by a backward brace scan over the known lines; and in hunk-only mode, when the opener is
outside the hunk, from the hunk's section heading (git's funcname context after the second `@@`),
which names the last top-level line before the hunk. git keeps naming a struct or function after it
has closed, so the scan from the hunk's start to the line must not meet a top-level `}` or another
top-level declaration, and only indented lines count as inside; the depth of a struct member
(direct, or inside a nested struct) then comes from the line's indentation.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..lang.c import function_name, text
from ..lazyre import lazy_re
from ..record import dataclass

if TYPE_CHECKING:
    from tree_sitter import Node

    from ..series.model import Hunk
    from ..views.context import FileView

_OPENER = lazy_re(r"(struct|union)\s+([A-Za-z_]\w*)\s*\{")
_SECTION = lazy_re(r"(struct|union)\s+([A-Za-z_]\w*)\s*\{?\s*$")
_NOISE = lazy_re(r'/\*.*?(?:\*/|$)|//.*$|"(?:\\.|[^"\\])*"|\'(?:\\.|[^\'\\])*\'')
_AGGREGATE = {"struct_specifier", "union_specifier"}
_LABEL = lazy_re(r"[A-Za-z_]\w*:\s*(?:$|/[/*])")
# a function signature: `[qualifiers and type] name(`
_FUNC = lazy_re(r"^[A-Za-z_][\w\s*]*?\b([A-Za-z_]\w*)\s*\(")


@dataclass(frozen=True, slots=True)
class Enclosing:
    kind: str  # "struct" | "union"
    name: str  # the outermost named struct/union
    depth: int  # 1 = a direct member; 2 = a member of a nested struct/union inside it, ...
    source: str  # "tree" | "text" | "section": how it was found (section = the hunk heading)


def enclosing_struct(view: FileView, line: int) -> Enclosing | None:
    """The outermost named struct/union around post-image `line`, or None (not in one, or unknown)."""
    if line not in view.known:
        return None
    found = _struct_from_tree(view, line)
    if found is not None:
        return found or None
    top = _top_opener(view, line)
    if top is None:
        return None
    opener, levels, source = top
    m = (_SECTION if source == "section" else _OPENER).match(opener)
    if m is None:
        return None
    depth = max(levels, _indent(view.line_text(line))) if source == "section" else levels
    return Enclosing(m.group(1), m.group(2), depth, source)


def enclosing_function_name(view: FileView, line: int) -> str | None:
    """The name of the function whose body holds post-image `line`, or None (not in one, or unknown)."""
    if line not in view.known:
        return None
    if view.is_c:
        node: Node | None = _node_at(view, line)
        while node is not None and node.type != "function_definition":
            node = None if node.type == "ERROR" else node.parent
        if node is not None and all(n in view.known for n in range(view.node_line(node), line)):
            name = function_name(node)
            if name:
                return name
    top = _top_opener(view, line)
    if top is None or "=" in top[0] or top[0].rstrip().endswith(";"):
        return None
    m = _FUNC.match(top[0])
    return m.group(1) if m else None


def _node_at(view: FileView, line: int) -> Node:
    raw = view.line_text(line)
    col = len(raw.encode("utf-8", "surrogateescape")) - len(raw.lstrip().encode("utf-8", "surrogateescape"))
    return view.root.descendant_for_point_range((line - 1, col), (line - 1, col))


def _struct_from_tree(view: FileView, line: int) -> Enclosing | bool | None:
    """From the tree when it is trustworthy: False = surely not in a struct, None = cannot tell."""
    if not view.is_c:
        return None
    node: Node | None = _node_at(view, line)
    outer, depth = None, 0
    while node is not None:
        if node.type == "ERROR" or node.is_missing:
            return None
        if node.type == "field_declaration_list" and node.parent is not None and node.parent.type in _AGGREGATE:
            outer, depth = node.parent, depth + 1
        node = node.parent
    if outer is None:
        # a fragment that parses without errors may still sit in a struct whose opener is not shown
        return False if view.mode == "full" else None
    name = outer.child_by_field_name("name")
    # in hunk-only mode the opener must be in the same run of known lines (not in an earlier hunk)
    if name is None or any(n not in view.known for n in range(view.node_line(outer), line)):
        return None
    return Enclosing(outer.type.removesuffix("_specifier"), text(name), depth, "tree")


def _hunk_of(view: FileView, line: int) -> Hunk | None:
    at = view.patch_line(line)
    return next((h for h in view.change.hunks if h.new_start <= at < h.new_start + max(h.new_len, 1)), None)


def _top_opener(view: FileView, line: int) -> tuple[str, int, str] | None:
    """(the top-level line opening the block around `line`, how many blocks deep `line` is, "text" or
    "section"), by a backward brace scan. Kernel style starts every top-level construct at column 0
    and indents what is inside, so a column-0 `}` means the line is outside any block, and a
    column-0 declaration that opens nothing means it is at top level. In hunk-only mode the scan
    stops at the hunk's first line and falls back to the hunk heading for indented lines."""
    if view.mode == "full":
        first, section = 1, None
    else:
        hunk = _hunk_of(view, line)
        if hunk is None:
            return None
        first, section = hunk.new_start, hunk.section
    levels = balance = 0
    for n in range(line - 1, first - 1, -1):
        raw = view.line_text(n)
        if raw[:1] == "}":
            return None  # a top-level block closed between the opener and the line
        if raw[:1] in ("#", "/", "") or raw.lstrip().startswith("*") or _LABEL.match(raw):
            continue  # preprocessor, comments, blank lines, goto labels
        code = _NOISE.sub("", raw)
        balance += code.count("}") - code.count("{")
        if balance < 0:
            levels, balance = levels + 1, 0
        if raw[:1].isalpha() or raw[:1] == "_":
            return (raw, levels, "text") if levels else None
    if not section or not view.line_text(line)[:1].isspace():
        return None  # no heading, or a top-level line (kernel style indents what is inside a block)
    return section, levels + 1, "section"


def _indent(raw: str) -> int:
    """Kernel indentation levels: one tab (or eight spaces) each."""
    lead = raw[: len(raw) - len(raw.lstrip(" \t"))]
    return max(1, lead.count("\t") + lead.count(" ") // 8)
