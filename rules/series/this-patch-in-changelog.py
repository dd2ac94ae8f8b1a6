"""series/this-patch-in-changelog: 'This patch ...' instead of the imperative mood."""

from __future__ import annotations

from collections.abc import Iterator

from pmureview.analyses import commitmsg as cmsg
from pmureview.rule.base import Rule
from pmureview.rule.model import Finding, RuleDocs, RuleMeta, Scope, Severity
from pmureview.views.context import PatchContext


class ThisPatchInChangelog(Rule):
    meta = RuleMeta(
        evidence=('(?i)this\\s+(?:patch|commit)',),  # cannot fire without it (prefilter)
        id="series/this-patch-in-changelog",
        title="'This patch' / 'In this patch' in the commit message",
        severity=Severity.CHECK,
        scope=Scope.PATCH,
        files=("*",),  # the commit message, whatever the patch touches
        docs=RuleDocs(
            what="Reports a sentence of the commit message that starts with 'This patch', 'In this "
                 "patch', 'With this patch' or 'This commit' (once per patch, on the first). "
                 "checkpatch.pl does not check this. A check: it is a style point many accepted commits "
                 "still break.",
            why="submitting-patches.rst asks for the change to be described in imperative mood, as "
                "orders to the code base; in the history the commit is not 'this patch'.",
            example="In this patch, we move the I-cache invalidation to the fault handlers.",
            use_instead="Move the I-cache invalidation to the fault handlers.",
            known_problems="'this patch' inside a sentence ('it is expected that this patch ...') is "
                           "left alone, as are quoted and indented lines, references to other patches "
                           "and 'This commit' right after a commit id (it names that commit).",
            references=("Documentation/process/submitting-patches.rst, 'Describe your changes'",),
        ),
    )

    def check(self, ctx: PatchContext) -> Iterator[Finding]:  # type: ignore[override]
        cm = cmsg.of(ctx)
        found = cmsg.this_patch_phrases(cm) if cm else []
        if found:
            ln, phrase = found[0]
            more = f" (and {len(found) - 1} more)" if len(found) > 1 else ""
            yield self.at_section(ctx.patch.number, *ln.at,
                                  f"'{phrase}' in the commit message{more}: use the imperative mood",
                                  mail_line=ln.mail_line, snippet=ln.text)
