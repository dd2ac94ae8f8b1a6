"""header/duplicate-typedef: a .c file adds a typedef that a header it includes already defines."""

from __future__ import annotations

import posixpath
from collections.abc import Iterator

from pmureview.lang.c import functions, text, walk
from pmureview.lazyre import lazy_re
from pmureview.rule.base import Rule
from pmureview.rule.model import Confidence, Finding, RuleDocs, RuleMeta, Scope, Severity
from pmureview.views.context import FileView, SeriesContext

_INCLUDE = lazy_re(r'^\s*#\s*include\s*[<"]([^>"]+)[>"]')
_GUARD = lazy_re(r"_H_*$|^_*[A-Z0-9_]*_H(?:_[A-Z0-9]*)?_*$")
_COND = frozenset({"preproc_if", "preproc_ifdef", "preproc_else", "preproc_elif", "preproc_elifdef"})


def _typedefs(view: FileView) -> Iterator[tuple[str, int, object]]:
    """(name, line, node) of each typedef in the view, not under a real #if (include guards aside)."""
    for td in walk(view.root, {"type_definition"}):
        if _conditional(td):
            continue
        for d in td.children_by_field_name("declarator"):
            while d is not None and d.type not in ("type_identifier", "identifier"):
                d = d.child_by_field_name("declarator") or next(
                    (c for c in d.named_children if "declarator" in c.type or c.type == "type_identifier"), None)
            if d is not None:
                yield text(d), view.node_line(d), td


def _conditional(node) -> bool:
    n = node.parent
    while n is not None:
        if n.type in _COND:
            name = n.child_by_field_name("name")
            if not (n.type == "preproc_ifdef" and name is not None and _GUARD.search(text(name))):
                return True
        n = n.parent
    return False


def _linked(c_view: FileView, header: FileView) -> bool:
    """Does the .c file include the header: an include line naming it, or (the includes being out of
    the hunks) the .c defines a function the header declares."""
    comments = c_view.comment_lines  # an `#include` inside a block comment includes nothing
    for n, line in enumerate(c_view.lines, 1):
        m = _INCLUDE.match(line) if n not in comments else None
        if m and (header.path.endswith("/" + m.group(1)) or
                  header.path == posixpath.normpath(posixpath.join(posixpath.dirname(c_view.path), m.group(1)))):
            return True
    defined = {n for n, _ in functions(c_view.root)}
    declared = {text(d.child_by_field_name("declarator")) for d in walk(header.root, {"function_declarator"})
                if d.parent is not None and d.parent.type == "declaration"}
    return bool(defined & declared)


class DuplicateTypedef(Rule):
    meta = RuleMeta(
        evidence=(r"(?#hunk-only)\btypedef\b",),  # prefilter
        id="header/duplicate-typedef",
        title="typedef defined twice in one translation unit",
        severity=Severity.CHECK,
        confidence=Confidence.MEDIUM,
        scope=Scope.SERIES,
        docs=RuleDocs(
            what="Flags a typedef added to a .c file when a header touched by the series defines the same "
                 "typedef name and the .c file includes that header (an #include naming it, or, when the "
                 "includes are outside the hunks, the .c file defines a function the header declares). An "
                 "#include inside a block comment does not count.",
            why="The second definition is redundant at best (C11 accepts an identical redefinition, clang "
                "still warns with -Wtypedef-redefinition) and a conflicting type at worst; the copy also "
                "drifts when the header's typedef changes. Use the header's typedef.",
            example="/* switch.h */  typedef int (*exit_handler_fn)(struct kvm_vcpu *);\n"
                    "/* switch.c, which includes switch.h */\ntypedef int (*exit_handler_fn)(struct kvm_vcpu *);",
            use_instead="/* switch.c */\n#include <hyp/switch.h>\t/* and no second typedef */",
            known_problems="Only headers the series touches are searched (a typedef in an untouched header "
                           "is not seen). Typedefs under #if/#ifdef (mutually exclusive branches) are "
                           "skipped, include guards aside. Clang reports the same (-Wtypedef-redefinition) "
                           "once the series is built with it.",
            references=("clang -Wtypedef-redefinition",),
        ),
    )

    def check(self, ctx: SeriesContext) -> Iterator[Finding]:  # type: ignore[override]
        headers: dict[str, list[tuple[FileView, int]]] = {}  # typedef name -> (header view, patch)
        for view in ctx.all_views():
            if view.path.endswith(".h") and "typedef" in view.text:
                for name, _line, _node in _typedefs(view):
                    headers.setdefault(name, []).append((view, view.patch.number))
        if not headers:
            return
        for view in ctx.all_views():
            if not view.path.endswith(".c") or not view.added or "typedef" not in view.text:
                continue
            for name, line, _node in _typedefs(view):
                if line not in view.added or name not in headers:
                    continue
                for hview, number in headers[name]:
                    if number <= view.patch.number and _linked(view, hview):
                        yield self.at_line(
                            view, line, f"typedef {name} is also defined in {hview.path}, which this file "
                                        f"includes: drop this copy",
                            note="Two typedefs of one name in a translation unit: clang warns "
                                 "(-Wtypedef-redefinition), and the copies drift apart when one changes.")
                        break

