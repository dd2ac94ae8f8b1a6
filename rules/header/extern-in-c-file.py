"""header/extern-in-c-file: an extern declaration added to a .c file instead of a header."""

from __future__ import annotations

from collections.abc import Iterator

from pmureview.analyses.symbols import EXTERN, PROTOTYPE, symbols
from pmureview.lazyre import lazy_re
from pmureview.rule.base import Rule
from pmureview.rule.model import Confidence, Finding, RuleDocs, RuleMeta, Scope, Severity
from pmureview.views.context import SeriesContext

_NOT_KERNEL = lazy_re(r"^(?:tools|scripts|samples|usr|Documentation)/")
# linker-script and assembler labels: `extern char __hyp_text_start[];` next to their only user
_LABEL = lazy_re(r"\bextern\s+(?:const\s+)?(?:unsigned\s+)?(?:char|u8|u32|u64|void\s*\*?)\s+\w+\s*\[\s*\]")


class ExternInCFile(Rule):
    meta = RuleMeta(
        evidence=('\\bextern\\b',),  # cannot fire without it (prefilter)
        id="header/extern-in-c-file",
        title="extern declaration in a .c file",
        severity=Severity.WARNING,
        confidence=Confidence.HIGH,
        scope=Scope.SERIES,
        docs=RuleDocs(
            what="Flags an `extern` function prototype added to a .c file (warning) and an `extern` "
                 "object declaration added to a .c file (check): the declaration belongs in the "
                 "header that goes with the definition.",
            why="A declaration repeated in a .c file is not checked against the definition: when the "
                "definition's type changes, the copy silently disagrees and the bug only shows at run "
                "time. A header shared by the definition and its users lets the compiler check both.",
            example="extern void clear_page(void *to);   /* in a .c file */",
            use_instead="#include <asm/page.h>   /* the header that declares it */",
            known_problems="Linker-script and assembler labels (`extern char __foo_start[];`), the "
                           "link-error declarations of an #else branch and tools/ are skipped. Object "
                           "declarations are only a check: a file-local alias of another object's "
                           "storage is sometimes accepted. checkpatch.pl reports AVOID_EXTERNS too.",
            references=("scripts/checkpatch.pl: AVOID_EXTERNS",),
        ),
    )

    def check(self, ctx: SeriesContext) -> Iterator[Finding]:  # type: ignore[override]
        seen: set[tuple[int, str]] = set()
        for s in symbols(ctx).added((PROTOTYPE, EXTERN)):
            if not (s.extern and s.path.endswith(".c")) or _NOT_KERNEL.match(s.path) or s.else_branch:
                continue
            if _LABEL.search(s.view.line_text(s.line)) or (s.patch, s.name) in seen:
                continue
            seen.add((s.patch, s.name))
            if s.kind == PROTOTYPE:
                yield self.at_line(s.view, s.line, f"extern declaration of {s.name}() in a .c file: include "
                                   "the header that declares it (or add it to one)",
                                   note="A prototype copied into a .c file is not checked against the "
                                        "definition; the compiler only sees a mismatch through a shared header.")
            else:
                yield self.at_line(s.view, s.line, f"extern declaration of {s.name} in a .c file: could it "
                                   "live in a header next to its definition?", severity=Severity.CHECK,
                                   confidence=Confidence.LOW)
