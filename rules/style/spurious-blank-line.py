"""style/spurious-blank-line: an added blank line next to another blank line."""

from __future__ import annotations

from collections.abc import Iterator

from pmureview.rule.base import Rule
from pmureview.rule.model import Confidence, Finding, RuleDocs, RuleMeta, Scope, Severity
from pmureview.views.context import FileContext


class SpuriousBlankLine(Rule):
    meta = RuleMeta(
        id="style/spurious-blank-line",
        title="Spurious blank-line change",
        severity=Severity.CHECK,
        confidence=Confidence.HIGH,
        scope=Scope.FILE,
        files=("*.c", "*.h", "*.S"),
        docs=RuleDocs(
            what="Flags a blank line the patch adds right before or after another blank line, so that "
                 "the code has two blank lines in a row (once per run of blank lines).",
            why="A doubled blank line is noise in the diff and in the file; reviewers ask not to add "
                "spurious blank lines. checkpatch.pl --strict reports it too (LINE_SPACING: \"Please "
                "don't use multiple blank lines\").",
            example="\tis_iabt = kvm_vcpu_trap_is_iabt(vcpu);\n\n+\n\t/* Synchronous External Abort? */",
            use_instead="\tis_iabt = kvm_vcpu_trap_is_iabt(vcpu);\n\n\t/* Synchronous External Abort? */",
            known_problems="Only C and assembly files. A hunk that only removes blank lines, or only adds "
                           "a single blank line between two lines of code the patch does not touch, is "
                           "not reported. In hunk-only mode a neighbour outside the hunk is unknown and "
                           "not judged.",
            references=("scripts/checkpatch.pl: LINE_SPACING",),
        ),
    )

    def check(self, ctx: FileContext) -> Iterator[Finding]:  # type: ignore[override]
        view = ctx.view
        reported: set[int] = set()
        for line in sorted(view.added):
            if view.line_text(line).strip() or line in reported:
                continue
            run = [line]
            while run[-1] + 1 in view.known and not view.line_text(run[-1] + 1).strip():
                run.append(run[-1] + 1)
            before = line - 1 in view.known and line > 1 and not view.line_text(line - 1).strip()
            reported.update(run)
            if before and line - 1 in view.added:
                continue  # the run started earlier and was reported there
            if before or len(run) > 1:
                yield self.at_line(view, line, "spurious blank line: this makes two blank lines in a row",
                                   note="Do not add blank lines where the code does not change; "
                                        "checkpatch --strict: LINE_SPACING.")
