"""series/changelog-note-above-cutline: notes for the reviewers written into the commit message."""

from __future__ import annotations

from collections.abc import Iterator

from pmureview.analyses import commitmsg as cmsg
from pmureview.rule.base import Rule
from pmureview.rule.model import Finding, RuleDocs, RuleMeta, Scope, Severity
from pmureview.views.context import PatchContext


class ChangelogNoteAboveCutline(Rule):
    meta = RuleMeta(
        evidence=('(?i)\\bv\\d|change|revision|based|applie',),  # cannot fire without it (prefilter)
        id="series/changelog-note-above-cutline",
        title="Patch meta-notes above the '---' line",
        severity=Severity.WARNING,
        scope=Scope.PATCH,
        files=("*",),  # the commit message, whatever the patch touches
        docs=RuleDocs(
            what="Reports a paragraph of the commit message (above '---') that starts with a note to the "
                 "reviewers: a version changelog ('Changes in v2:', 'v1 -> v2:', 'v3: ...'), 'Based on "
                 "<branch or tag>', 'Applies on top of ...', 'Rebased on ...'. checkpatch.pl does not "
                 "check this.",
            why="Everything above '---' becomes the commit message in the kernel's history, where the "
                "version history and the base branch mean nothing. They belong below '---', which "
                "`git am` drops.",
            example="Fix the symbolisation of hypervisor addresses.\n\nBased on arm64 for-next/core.\n\n"
                    "Signed-off-by: Ann Author <ann@example.org>\n---",
            use_instead="Fix the symbolisation of hypervisor addresses.\n\n"
                        "Signed-off-by: Ann Author <ann@example.org>\n---\nBased on arm64 for-next/core.",
            known_problems="'Based on' counts only before a branch, tag, version or commit id, never "
                           "before a patch, spec or idea ('Based on an earlier patch by ...' credits "
                           "someone). A note inside a paragraph of prose is not seen.",
            references=("Documentation/process/submitting-patches.rst, 'The canonical patch format'",),
        ),
    )

    def check(self, ctx: PatchContext) -> Iterator[Finding]:  # type: ignore[override]
        cm = cmsg.of(ctx)
        for ln, what in cmsg.meta_notes(cm) if cm else ():
            yield self.at_section(ctx.patch.number, *ln.at, f"{what} in the commit message: it belongs below '---'",
                                  mail_line=ln.mail_line, snippet=ln.text)
