"""series/vendor-tree-tag: a downstream tree's tag (ANDROID:, FROMLIST:, ...) left in the subject."""

from __future__ import annotations

from collections.abc import Iterator

from pmureview.analyses import commitmsg as cmsg
from pmureview.rule.base import Rule
from pmureview.rule.model import Finding, RuleDocs, RuleMeta, Scope, Severity
from pmureview.views.context import PatchContext


class VendorTreeTag(Rule):
    meta = RuleMeta(
        # cannot fire without one of the tags (prefilter)
        evidence=("(?i)ANDROID|FROMLIST|FROMGIT|UPSTREAM|BACKPORT|CHROMIUM|NOUPSTREAM|FROMTREE",),
        id="series/vendor-tree-tag",
        title="Downstream tree tag in the subject",
        severity=Severity.WARNING,
        scope=Scope.PATCH,
        files=("*",),  # the commit message, whatever the patch touches
        docs=RuleDocs(
            what=f"Reports a subject whose first prefix is a downstream tree's tag ({', '.join(cmsg.VENDOR_TAGS)}), "
                 "as in a patch taken from an Android or ChromeOS branch and posted as is.",
            why="The tag says where the patch came from downstream; upstream it is noise in the "
                "permanent history and hides the subsystem prefix.",
            example="[PATCH 12/12] ANDROID: KVM: arm64: Add the frobnicator",
            use_instead="[PATCH 12/12] KVM: arm64: Add the frobnicator",
            known_problems="Only the upper-case tags listed are known. A revert ('Revert \"ANDROID: ...\"') "
                           "does not start with the tag and is left alone.",
        ),
    )

    def check(self, ctx: PatchContext) -> Iterator[Finding]:  # type: ignore[override]
        cm = cmsg.of(ctx)
        tag = cmsg.vendor_tag(cm) if cm else None
        if cm is not None and tag:
            yield self.at_section(ctx.patch.number, *cm.subject.at,
                                  f"the subject starts with the downstream tag '{tag}:'",
                                  suggestion=cm.title[len(tag) + 1:].strip(), snippet=cm.title)
