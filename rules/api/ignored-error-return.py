"""api/ignored-error-return: `(void)fn(...)` discarding the error code of an int function.

The callee must be one the series shows returning plain `int` (a definition or prototype at the
start of a line in any view of the series): in the kernel such a function returns 0 or a negative
errno. Functions whose name says they count or measure (count, num, nr, len, size, ...) are
skipped. In a caller that itself returns int the error could simply be propagated (warning);
elsewhere (a void caller, maybe by contract) it is a check.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from pmureview.lazyre import lazy_re
from pmureview.rule.base import Rule
from pmureview.rule.model import Confidence, Finding, RuleDocs, RuleMeta, Scope, Severity
from pmureview.views.context import FileView, SeriesContext

_VOID_CALL = lazy_re(r"^\s*\(\s*void\s*\)\s*([A-Za-z_]\w*)\s*\(")
_INT_FUNC = lazy_re(r"^(?:(?:static|inline|extern|__always_inline|noinline|__must_check|__init|__cold)\s+)*"
                    r"int\s+\**\s*([A-Za-z_]\w*)\s*\(", re.M)
_INT_HEAD = lazy_re(r"^(?:(?:static|inline|__always_inline|noinline|__must_check|__init)\s+)*int\s+\**\s*\w+\s*\(")
_VALUE_NAME = lazy_re(r"(?:^|_)(?:count|num|nr|len|size|idx|index|bits|level|order|cmp|weight|read|"
                      r"find|get|peek|test)(?:_|$)")


def _enclosing_returns_int(view: FileView, line: int) -> bool | None:
    """Whether the function around `line` returns int: the nearest top-level line above it (a
    function head starts in column 0), else the hunk's section heading; None when unknown."""
    for n in range(line - 1, 0, -1):
        if n not in view.known:
            break
        t = view.line_text(n)
        if t[:1].isalpha() or t[:1] == "_":
            return bool(_INT_HEAD.match(t)) if "(" in t else None
        if t.startswith("}"):
            return None
    for h in view.change.hunks:
        if any(ln.new_no == line for ln in h.lines):
            return bool(_INT_HEAD.match(h.section)) if "(" in h.section else None
    return None


class IgnoredErrorReturn(Rule):
    meta = RuleMeta(
        evidence=(r"\(\s*void\s*\)\s*[A-Za-z_]\w*\s*\(",),  # cannot fire without it (prefilter)
        id="api/ignored-error-return",
        title="Error return value discarded with a (void) cast",
        severity=Severity.WARNING,
        confidence=Confidence.MEDIUM,
        scope=Scope.SERIES,
        docs=RuleDocs(
            what="Flags an added `(void)fn(...);` statement whose callee the series shows returning "
                 "`int` (an error code): a warning when the caller returns int itself and could "
                 "propagate the error, a check otherwise.",
            why="A (void) cast tells the compiler and the reader that the failure does not matter. "
                "For a function that reports -EINVAL or -ENOMEM that is rarely true: the caller goes "
                "on with state that was never set up, and nobody learns why.",
            example="static int widget_init(struct kvm *kvm)\n{\n\t(void)widget_set_mode(kvm, MODE_A);\n"
                    "\treturn 0;\n}",
            use_instead="static int widget_init(struct kvm *kvm)\n{\n\treturn widget_set_mode(kvm, MODE_A);\n}",
            known_problems="Only callees whose int definition or prototype the series shows are "
                           "judged; names that read as counts or lookups (count, nr, len, get_, "
                           "find_ ...) are skipped. A void caller may be void by contract (a "
                           "callback): then it is only a check, and WARN_ON(fn()) is the usual way to "
                           "at least report the failure.",
            references=("Documentation/process/coding-style.rst, section 16",),
        ),
    )

    def check(self, ctx: SeriesContext) -> Iterator[Finding]:  # type: ignore[override]
        int_funcs = ctx.memo(("ignored-error-return", "int-funcs"), lambda: self._int_funcs(ctx))
        for view in ctx.all_views():
            if not view.path.endswith((".c", ".h")):
                continue
            for line in sorted(view.added):
                m = _VOID_CALL.match(view.line_text(line))
                if not m:
                    continue
                name = m.group(1)
                if name not in int_funcs or _VALUE_NAME.search(name):
                    continue
                try:
                    caller_int = _enclosing_returns_int(view, line)
                except Exception:
                    caller_int = None
                yield self.at_line(
                    view, line,
                    f"the error returned by {name}() is discarded with a (void) cast",
                    note=(f"{name}() returns an int error code. "
                          + ("This function returns int too: please propagate the error."
                             if caller_int else
                             "Please handle it, or return it to a caller that can, or at least "
                             "WARN_ON() it if it really cannot fail here.")),
                    severity=Severity.WARNING if caller_int else Severity.CHECK)

    @staticmethod
    def _int_funcs(ctx: SeriesContext) -> set[str]:
        out: set[str] = set()
        for view in ctx.all_views():
            if view.path.endswith((".c", ".h")) and "int" in view.text:
                out.update(_INT_FUNC.findall(view.text))
        return out
