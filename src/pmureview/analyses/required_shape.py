"""Is a function required in exactly the shape it has? (shared by the scaffolding and linkage rules)

Some functions are what they are because something outside their body dictates it: a member of an
ops table (`.member = fn`, `[IDX] = fn`, a positional table entry, `ops->member = fn` at runtime),
a `__weak` default or the override of one, a BPF program (`SEC("...")`, `BPF_PROG()`,
`BPF_STRUCT_OPS()`), or a function whose address is handed on (`&fn`, a callback argument). A
constant body is then the callback's job, not a placeholder, and a header prototype may be what
another file's table needs. Rules ask `required_shape(ctx, name)` and decide what each reason is
worth (e.g. only uses in another file justify a global symbol).

Uses come from every post-image view of the series (tree-sitter where it parses, a designated-
initializer line pattern where a hunk fragment does not); weak definitions also from the base tree
in full mode (one `git grep` per name). A function that is only called directly has no reason.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import TYPE_CHECKING

from ..lang.c import function_name, text
from ..lazyre import lazy_re
from ..record import dataclass
from .symbols import FUNCTION, SeriesSymbols, strip_comments, symbols

if TYPE_CHECKING:
    from tree_sitter import Node

    from ..views.context import FileView, SeriesContext

OPS_TABLE = "ops-table"  # an initializer entry (designated or positional) or `x->member = fn`
ADDRESS = "address"  # `&fn`, fn passed as an argument, assigned to a pointer
WEAK_DEFAULT = "weak-default"  # the function is itself `__weak`
WEAK_OVERRIDE = "weak-override"  # a `__weak` definition of the same name exists elsewhere
BPF_PROGRAM = "bpf-program"  # SEC("...") / BPF_PROG() / BPF_STRUCT_OPS()

_WEAK = lazy_re(r"\b__weak\b|__attribute__\s*\(\(\s*(?:__)?weak\b")
_SEC = lazy_re(r"^\s*SEC\s*\(\s*\"")
_BPF_MACRO = lazy_re(r"\b(?:BPF_PROG\w*|BPF_STRUCT_OPS\w*|BPF_KPROBE\w*|BPF_KRETPROBE\w*|BPF_USDT|"
                     r"BPF_UPROBE|BPF_URETPROBE|BPF_KSYSCALL)\s*\(\s*(\w+)")
# callers of a name that are not a use by address: exporting, stringifying, sizes
_NOT_ADDRESS_CALLS = frozenset({"EXPORT_SYMBOL", "EXPORT_SYMBOL_GPL", "EXPORT_SYMBOL_NS", "EXPORT_SYMBOL_NS_GPL",
                                "__stringify", "sizeof", "typeof", "__typeof__", "__is_defined",
                                "IS_ENABLED", "NOKPROBE_SYMBOL", "ALLOW_ERROR_INJECTION"})
_WRAPPERS = frozenset({"cast_expression", "pointer_expression", "parenthesized_expression"})


@dataclass(frozen=True)
class Reason:
    """One thing that needs the function exactly as it is."""

    kind: str  # OPS_TABLE | ADDRESS | WEAK_DEFAULT | WEAK_OVERRIDE | BPF_PROGRAM
    path: str  # where the need is (the table, the weak definition, the program)
    line: int  # its post-image line (0 for a base file)
    patch: int  # the patch whose view shows it (0: the base tree)
    text: str  # the line, stripped, for messages

    def describe(self) -> str:
        where = f"{self.path}:{self.line}" if self.line else self.path
        what = {OPS_TABLE: "is an ops-table entry", ADDRESS: "has its address taken",
                WEAK_DEFAULT: "is a __weak default", WEAK_OVERRIDE: "overrides a __weak default",
                BPF_PROGRAM: "is a BPF program"}[self.kind]
        return f"{what} ({where})"


def required_shape(ctx: SeriesContext, name: str) -> tuple[Reason, ...]:
    """Every reason the series (and, in full mode, the base) gives for `name` to exist as it is."""
    return ctx.memo(("analyses.required_shape", name), lambda: tuple(_reasons(ctx, name)))


def required_elsewhere(ctx: SeriesContext, name: str, def_path: str) -> tuple[Reason, ...]:
    """The reasons that also need global linkage: a table or address use in a file other than the
    definition's, a weak default or override, a BPF program."""
    return tuple(r for r in required_shape(ctx, name)
                 if r.kind not in (OPS_TABLE, ADDRESS) or r.path != def_path)


def definition_shape(view: FileView, fn: Node) -> str | None:
    """What the definition itself says: WEAK_DEFAULT, BPF_PROGRAM, or None."""
    try:
        body = fn.child_by_field_name("body")
        head = text(fn)[: body.start_byte - fn.start_byte] if body is not None else text(fn)
        if _WEAK.search(head):
            return WEAK_DEFAULT
        if _BPF_MACRO.search(head) or _SEC.match(head):
            return BPF_PROGRAM
        first = view.node_line(fn)
        for back in (1, 2):  # SEC("...") on the line(s) above the head
            prev = view.line_text(first - back)
            if _SEC.match(prev):
                return BPF_PROGRAM
            if prev.strip():
                break
    except Exception:  # a fragment the parser split oddly: no claim
        return None
    return None


def program_name(fn: Node) -> str | None:
    """The name a function definition defines: `BPF_PROG(name, ...)` names its program."""
    name = function_name(fn)
    body = fn.child_by_field_name("body")
    head = text(fn)[: body.start_byte - fn.start_byte] if body is not None else ""
    m = _BPF_MACRO.search(head)
    return m.group(1) if m else name


# -- the search ----------------------------------------------------------------------------------------

def _reasons(ctx: SeriesContext, name: str) -> Iterator[Reason]:
    out: dict[tuple[str, str, int, str], Reason] = {}
    for r in _series_reasons(ctx, name):
        out.setdefault((r.kind, r.path, r.line, r.text), r)
    yield from out.values()
    if not any(r.kind in (WEAK_DEFAULT, WEAK_OVERRIDE) for r in out.values()):
        yield from _base_weak(ctx, name)


def _series_reasons(ctx: SeriesContext, name: str) -> Iterator[Reason]:
    syms = symbols(ctx)
    defs = [s for s in syms.named(name) if s.kind == FUNCTION]
    weak_paths = {s.path for s in defs if s.weak}
    for s in defs:
        if s.weak:
            yield Reason(WEAK_DEFAULT, s.path, s.line, s.patch, s.view.line_text(s.line).strip())
        elif weak_paths - {s.path}:
            w = next(d for d in defs if d.weak and d.path != s.path)
            yield Reason(WEAK_OVERRIDE, w.path, w.line, w.patch, w.view.line_text(w.line).strip())
    word = lazy_re(rf"\b{re.escape(name)}\b")
    for view in ctx.all_views():
        if not view.is_c or name not in view.text:
            continue
        yield from _view_uses(syms, view, name, word)


def _designated(name: str) -> re.Pattern[str]:
    # `.member = fn,` / `[IDX] = fn,` / `.member = (void *)&fn }` on one line of a hunk fragment
    return lazy_re(rf"(?:\.\s*\w+|\[[^\]]*\])\s*=\s*(?:\(\s*[\w\s*]+\)\s*)?&?\s*{re.escape(name)}\s*(?:[,}}]|$)")


def _view_uses(syms: SeriesSymbols, view: FileView, name: str, word) -> Iterator[Reason]:
    try:
        code = syms.code_lines(view)  # comments and strings blanked, cached per view
        parsed = getattr(view, "parse_text", view.text).split("\n")  # the text the tree was parsed from
    except Exception:
        return
    designated = _designated(name)
    for i, ln in enumerate(code, 1):
        if name not in ln or not word.search(ln):
            continue
        kind = None
        try:
            kind = _kind_on_line(view, parsed[i - 1] if i <= len(parsed) else "", i, name, word)
        except Exception:  # a fragment the parser split oddly: the line pattern still applies
            kind = None
        if kind is None and designated.search(ln):
            kind = OPS_TABLE
        if kind is None:
            continue
        yield Reason(kind, view.path, i, view.patch.number, view.line_text(i).strip())


def _kind_on_line(view: FileView, line_text: str, line: int, name: str, word) -> str | None:
    """Classify each occurrence of `name` on one line through the node at its position (a whole
    kernel file is not walked once per name)."""
    for m in word.finditer(line_text):
        col = len(line_text[: m.start()].encode("utf-8", "surrogateescape"))
        node = view.root.descendant_for_point_range((line - 1, col), (line - 1, col + len(name)))
        if node is None or node.type != "identifier" or text(node) != name:
            continue  # a comment, a string, a member of the same spelling
        kind = _classify(node)
        if kind is not None:
            return kind
    return None


def _classify(ident: Node) -> str | None:
    """OPS_TABLE / ADDRESS for an identifier used as a value, None for a call or a declaration."""
    node, parent = ident, ident.parent
    while parent is not None and parent.type in _WRAPPERS:
        if parent.type == "cast_expression" and node != parent.child_by_field_name("value"):
            return None
        node, parent = parent, parent.parent
    if parent is None:
        return None
    t = parent.type
    if t == "initializer_pair":
        return OPS_TABLE if node == parent.child_by_field_name("value") else None
    if t == "initializer_list":
        return OPS_TABLE
    if t == "assignment_expression" and node == parent.child_by_field_name("right"):
        left = parent.child_by_field_name("left")
        return OPS_TABLE if left is not None and left.type == "field_expression" else ADDRESS
    if t == "init_declarator" and node == parent.child_by_field_name("value"):
        return ADDRESS
    if t == "argument_list":
        call = parent.parent
        callee = call.child_by_field_name("function") if call is not None else None
        if callee is not None and text(callee) in _NOT_ADDRESS_CALLS:
            return None
        return ADDRESS
    if node is not ident and node.type == "pointer_expression":
        return ADDRESS  # `&fn` anywhere else (a comparison, a return)
    if t == "return_statement" and node is ident:
        return ADDRESS
    return None


def _base_weak(ctx: SeriesContext, name: str) -> Iterator[Reason]:
    """Full mode: a `__weak` definition of `name` in a base file the series does not touch."""
    paths = ctx.base_files_using(name, ("*.c", "*.h"))
    if not paths:
        return
    touched = {v.path for v in ctx.all_views()}
    head = lazy_re(rf"(?:^|[;}}])[^;{{}}]*?(?:{_WEAK.pattern})[^;{{}}]*?\b{re.escape(name)}\s*\("
                   rf"|(?:^|[;}}])[^;{{}}]*?\b{re.escape(name)}\s*\([^;{{}}]*\)\s*(?:{_WEAK.pattern})")
    for path in paths[:20]:
        if path in touched:
            continue
        try:
            src = ctx.base_text(path)
        except Exception:
            src = None
        if not src or "weak" not in src:
            continue
        code = "\n".join(strip_comments(src.split("\n"), None))
        if head.search(code):
            yield Reason(WEAK_OVERRIDE, path, 0, 0, f"__weak {name}()")
            return
