"""api/errno-returned-as-bool: a negative error code returned from a function declared to return bool."""

from __future__ import annotations

import re
from collections.abc import Iterator

from pmureview.lang.c import text
from pmureview.lazyre import lazy_re
from pmureview.rule.base import Rule
from pmureview.rule.model import Confidence, Finding, RuleDocs, RuleMeta, Scope, Severity
from pmureview.views.context import FileView, SeriesContext

_ERRNO = lazy_re(r"^-\s*(E[A-Z0-9]+)$")
# a function head at column 0 that returns bool (not bool *)
_BOOL_HEAD = lazy_re(r"^(?:[a-z_]\w*\s+)*(?:bool|_Bool)\s+[A-Za-z_]\w*\s*\(")
_LABEL = lazy_re(r"^[A-Za-z_]\w*:")


def _head(view: FileView, line: int) -> str | None:
    """The column-0 line that opens the function around `line` (kernel style: a function head is the
    only column-0 code line before its body), by a backward scan over the known lines; where the
    hunk starts inside the function, git's section heading names it. None when unknown or outside."""
    n = line - 1
    comments = view.comment_lines  # a column-0 line inside a block comment is no function head
    while n >= 1 and n in view.known:
        raw = view.line_text(n)
        if n in comments:
            n -= 1
            continue
        if raw[:1] == "}":
            return None
        if (raw[:1].isalpha() or raw[:1] == "_") and not _LABEL.match(raw):
            return raw
        n -= 1
    if view.mode == "full":
        return None
    if n + 1 in comments and "/*" not in view.line_text(n + 1):
        return None  # the hunk starts inside a comment: git's heading may be a line of that comment
    at = view.patch_line(n + 1)
    hunk = next((h for h in view.change.hunks if h.new_start == at), None)
    return hunk.section if hunk is not None and hunk.section else None


def _tested(ret, name: str) -> bool:
    """`return name;` is the body of `if (name)`, `if (name < 0)`, `if (unlikely(name))`, `if (WARN_ON(name))`."""
    n = ret.parent
    if n is not None and n.type == "compound_statement":
        n = n.parent
    if n is None or n.type != "if_statement":
        return False
    cond = re.sub(r"\s+", "", text(n.child_by_field_name("condition")))
    v = re.escape(name)
    return re.fullmatch(rf"\((?:{v}|{v}<0|unlikely\({v}\)|WARN_ON(?:_ONCE)?\({v}\))\)", cond) is not None


def _int_from_call(view: FileView, head_line: int | None, line: int, name: str) -> bool:
    """Between the function head and the return: `int name` declared and `name = call(...)`."""
    comments = view.comment_lines
    lines = "\n".join(view.line_text(n) for n in range(head_line or 1, line) if n not in comments)
    v = re.escape(name)
    return (re.search(rf"^\s*int\s+(?:\w+(?:\s*=[^,;]*)?\s*,\s*)*{v}\b", lines, re.M) is not None and
            re.search(rf"\b{v}\s*=\s*[A-Za-z_][\w.>-]*\s*\(", lines) is not None)


_RETURNS = frozenset({"return_statement"})


class ErrnoReturnedAsBool(Rule):
    meta = RuleMeta(
        evidence=(r"\breturn\b",),  # cannot fire without it (prefilter)
        id="api/errno-returned-as-bool",
        title="Negative errno returned from a bool function",
        severity=Severity.WARNING,
        confidence=Confidence.HIGH,
        scope=Scope.SERIES,
        docs=RuleDocs(
            what="Flags, in a function declared to return bool, an added `return -EXXX;`, and `return ret;` "
                 "inside `if (ret)` / `if (ret < 0)` / `if (unlikely(ret))` / `if (WARN_ON(ret))` where "
                 "`ret` is a local `int` assigned from a call (the errno-propagation idiom).",
            why="The error code is silently turned into `true`. A bool function is a predicate or a "
                "\"did something\" flag (MMU notifier callbacks, exit handlers), so an error either reads "
                "as success or as the opposite of what the callee meant; the compiler says nothing.",
            example="bool widget_set_gfn(struct kvm *kvm, struct kvm_gfn_range *range)\n{\n\tint ret;\n\n"
                    "\tret = widget_sanitise(kvm, range);\n\tif (ret)\n\t\treturn ret;",
            use_instead="\tret = widget_sanitise(kvm, range);\n\tif (WARN_ON(ret))\n\t\treturn false;",
            known_problems="The return type is read from the function's head line (kernel style: at column "
                           "0, the type on the same line) or, when the hunk starts inside the function, from "
                           "git's hunk heading; a head split oddly or a hunk that does not tell is skipped. "
                           "Comment lines are never read as a head, and the heading is not trusted for a hunk "
                           "that starts inside a comment (git may have taken it from that comment). "
                           "`ret` assigned only from literals (a 0/1 status) is not reported, nor an error "
                           "code held in a variable of another type.",
            references=("kvm_set_spte_gfn() review: a negative error code returned from a function "
                        "returning bool",),
        ),
    )

    def check(self, ctx: SeriesContext) -> Iterator[Finding]:  # type: ignore[override]
        for view in ctx.all_views():
            if not view.added or not view.is_c or "bool" not in view.text:
                continue
            for ret in view.added_nodes(_RETURNS):  # on added lines, not the whole file's returns
                line = view.node_line(ret)
                if line not in view.added:
                    continue
                val = ret.named_children[0] if ret.named_child_count else None
                if val is None:
                    continue
                errno = _ERRNO.match(text(val))
                name = text(val) if val.type == "identifier" else None
                if not errno and not name:
                    continue
                head = _head(view, line)
                if head is None or not _BOOL_HEAD.match(head):
                    continue
                if errno:
                    yield self.at_node(view, ret, f"-{errno.group(1)} returned from a bool function: it "
                                                  f"becomes 'true'", note=_NOTE)
                    continue
                head_line = next((n for n in range(line - 1, 0, -1)
                          if view.line_text(n) == head and n not in view.comment_lines), None)
                if name and _tested(ret, name) and _int_from_call(view, head_line, line, name):
                    yield self.at_node(view, ret, f"{name} holds an error code, but the function returns "
                                                  f"bool: a negative errno becomes 'true'", note=_NOTE)


_NOTE = ("A bool function's result is converted to true/false: any non-zero error code reads as true, so "
         "the caller can no longer tell an error from success. Return an int error code and change the "
         "callers, or return false and report the error another way.")
