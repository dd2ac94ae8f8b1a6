"""header/non-inline-function-in-header: a static function without inline defined in a shared header."""

from __future__ import annotations

from collections.abc import Iterator

from pmureview.analyses.symbols import FUNCTION, symbols
from pmureview.lazyre import lazy_re
from pmureview.rule.base import Rule
from pmureview.rule.model import Finding, RuleDocs, RuleMeta, Scope, Severity
from pmureview.views.context import SeriesContext

# headers meant for many includers; a private include/ folder of a subsystem (kvm/hyp/include/) holds
# code fragments included by one or two .c files by design
_SHARED = lazy_re(r"^(?:arch/[^/]+/)?include/(?!uapi/)(?!.*/uapi/)")


class NonInlineFunctionInHeader(Rule):
    meta = RuleMeta(
        evidence=('\\.h\\b',),  # cannot fire without it (prefilter)
        id="header/non-inline-function-in-header",
        title="static function (not inline) defined in a header",
        severity=Severity.WARNING,
        scope=Scope.SERIES,
        docs=RuleDocs(
            what="Flags a function the series adds to a shared header (arch/*/include/, include/) as "
                 "`static` without `inline`, `__always_inline` or `__maybe_unused`.",
            why="Every file including the header gets its own copy of the function, and every includer "
                "that does not call it gets a -Wunused-function warning.",
            example="static int notrace foo_unwind_next(struct unwind_state *state)\n{\n\treturn 0;\n}",
            use_instead="static inline int foo_unwind_next(struct unwind_state *state)\n{\n\treturn 0;\n}",
            known_problems="Private headers of a subsystem (e.g. arch/arm64/kvm/hyp/include/) are "
                           "skipped: they are often code fragments included by one or two .c files. "
                           "Functions the header already had before the series are not reported.",
            references=("Documentation/process/coding-style.rst, section 15 (inline)",),
        ),
    )

    def check(self, ctx: SeriesContext) -> Iterator[Finding]:  # type: ignore[override]
        syms = symbols(ctx)
        seen: set[tuple[str, str]] = set()
        for s in syms.added((FUNCTION,)):
            if not (s.in_header and s.static) or s.inline or s.always_inline or s.maybe_unused:
                continue
            if not _SHARED.match(s.path) or (s.path, s.name) in seen or syms.existed_in(s.name, s.path):
                continue
            seen.add((s.path, s.name))
            yield self.at_line(s.view, s.line, f"{s.name}() is defined static but not inline in a header: "
                               "make it static inline (or __maybe_unused)",
                               note="Each includer gets a copy of it, and those that do not call it a "
                                    "-Wunused-function warning.")
