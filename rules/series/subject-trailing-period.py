"""series/subject-trailing-period: the subject line ends with a full stop."""

from __future__ import annotations

from collections.abc import Iterator

from pmureview.analyses import commitmsg as cmsg
from pmureview.rule.base import Rule
from pmureview.rule.model import Finding, RuleDocs, RuleMeta, Scope, Severity
from pmureview.views.context import PatchContext


class SubjectTrailingPeriod(Rule):
    meta = RuleMeta(
        id="series/subject-trailing-period",
        title="Subject ends with a full stop",
        severity=Severity.WARNING,
        scope=Scope.PATCH,
        files=("*",),  # the commit message, whatever the patch touches
        docs=RuleDocs(
            what="Reports a patch subject whose summary (after the [PATCH ...] tag) ends with a single "
                 "'.'. checkpatch.pl does not check this.",
            why="The subject becomes the commit's one-line summary, which is a title, not a sentence; "
                "maintainers ask for the full stop to be dropped.",
            example="[PATCH] KVM: arm64: Fix the use of VA_BITS.",
            use_instead="[PATCH] KVM: arm64: Fix the use of VA_BITS",
            known_problems="An ellipsis ('...') and abbreviations ('etc.', 'e.g.') are left alone.",
            references=("Documentation/process/submitting-patches.rst, 'The canonical patch format'",),
        ),
    )

    def check(self, ctx: PatchContext) -> Iterator[Finding]:  # type: ignore[override]
        cm = cmsg.of(ctx)
        if cm is not None and not cm.is_cover and cmsg.trailing_period(cm):
            yield self.at_section(ctx.patch.number, *cm.subject.at, "the subject ends with a full stop",
                                  suggestion=cm.title.rstrip()[:-1], snippet=cm.title)
