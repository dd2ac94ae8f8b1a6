"""style/sym-func-start-end-mismatch: SYM_*_END(name) that closes another symbol's SYM_*_START."""

from __future__ import annotations

from collections.abc import Iterator

from pmureview.lazyre import lazy_re
from pmureview.rule.base import Rule
from pmureview.rule.model import Confidence, Finding, RuleDocs, RuleMeta, Scope, Severity
from pmureview.views.context import FileContext

# include/linux/linkage.h: SYM_FUNC_START[_LOCAL|_WEAK|_NOALIGN...](name) ... SYM_FUNC_END(name)
_START = lazy_re(r"^\s*SYM_(?P<kind>FUNC|CODE|DATA|TYPED_FUNC)_START\w*\(\s*(?P<name>[\w.$]+)\s*[,)]")
_END = lazy_re(r"^\s*SYM_(?P<kind>FUNC|CODE|DATA|TYPED_FUNC)_END\w*\(\s*(?P<name>[\w.$]+)\s*[,)]")


class SymFuncStartEndMismatch(Rule):
    meta = RuleMeta(
        evidence=(r"SYM_\w*_END",),  # cannot fire without it (prefilter)
        id="style/sym-func-start-end-mismatch",
        title="SYM_*_END name does not match SYM_*_START",
        severity=Severity.WARNING,
        confidence=Confidence.HIGH,
        scope=Scope.FILE,
        files=("*.S",),
        docs=RuleDocs(
            what="In an assembly file, flags an added `SYM_FUNC_END(name)` (or `SYM_CODE_END`, "
                 "`SYM_DATA_END`) whose name is not the one of the `SYM_*_START(name)` it closes.",
            why="The END annotation sets the symbol's type and size from its START; with the wrong "
                "name the opened symbol gets no size and the named one a wrong one (objtool, "
                "backtraces and kallsyms suffer). It is usually a copy-and-paste slip.",
            example="SYM_FUNC_START(__sve_save_state)\n\tsve_save 0, x1, x2, 3\n\tret\n"
                    "SYM_FUNC_END(__sve_restore_state)",
            use_instead="SYM_FUNC_START(__sve_save_state)\n\tsve_save 0, x1, x2, 3\n\tret\n"
                        "SYM_FUNC_END(__sve_save_state)",
            known_problems="Only judged when every line from the START to the END is visible (in "
                           "hunk-only mode a START outside the hunk is not guessed). Names built in "
                           "assembler macros (`\\name`) and SYM_FUNC_ALIAS()/SYM_INNER_LABEL() are not "
                           "START/END pairs and are skipped.",
            references=("Documentation/core-api/asm-annotations.rst",),
        ),
    )

    def check(self, ctx: FileContext) -> Iterator[Finding]:  # type: ignore[override]
        view = ctx.view
        if not view.added:
            return
        open_: tuple[str, int] | None = None  # (name, line) of the START not yet closed
        for n in range(1, len(view.lines) + 1):
            if n not in view.known:
                open_ = None  # a gap: what stands in it is unknown
                continue
            text = view.line_text(n)
            if m := _START.match(text):
                open_ = (m.group("name"), n)
            elif m := _END.match(text):
                if open_ is not None and open_[0] != m.group("name") and n in view.added:
                    yield self.at_line(view, n, f"SYM_{m.group('kind')}_END({m.group('name')}) closes "
                                       f"{open_[0]}, opened on line {view.patch_line(open_[1])}",
                                       note="The END annotation must name the symbol its START opened; "
                                            "otherwise the symbol's type and size are wrong.")
                open_ = None
