"""series/fixes-tag-format: a Fixes: trailer not in the form the kernel uses, or split from the others."""

from __future__ import annotations

from collections.abc import Iterator

from pmureview.analyses import commitmsg as cmsg
from pmureview.rule.base import Rule
from pmureview.rule.model import Finding, RuleDocs, RuleMeta, Scope, Severity
from pmureview.views.context import PatchContext


class FixesTagFormat(Rule):
    meta = RuleMeta(
        evidence=('(?i)fixes',),  # cannot fire without it (prefilter)
        id="series/fixes-tag-format",
        title="Malformed Fixes: trailer",
        severity=Severity.WARNING,
        scope=Scope.PATCH,
        files=("*",),  # the commit message, whatever the patch touches
        docs=RuleDocs(
            what="Reports a Fixes: trailer that is not one line of the form 'Fixes: <12+ hex digits> "
                 "(\"<subject>\")' (wrapped, short or upper-case id, no quoted subject, 'commit' before "
                 "the id), and one that a blank line separates from the trailers after it. checkpatch.pl "
                 "reports the form (BAD_FIXES_TAG): that alone is a check here; the blank line is not "
                 "checkpatch's and makes it a warning.",
            why="Fixes: tags are read by tools (stable backports, `git interpret-trailers`, b4) that "
                "expect one line in the trailer block; a wrapped or detached tag is lost to them.",
            example='Fixes: 0123456789ab ("KVM: arm64: Walk the page tables to\ncompute the size")\n\n'
                    "Signed-off-by: Ann Author <ann@example.org>",
            use_instead='Fixes: 0123456789ab ("KVM: arm64: Walk the page tables to compute the size")\n'
                        "Signed-off-by: Ann Author <ann@example.org>",
            known_problems="Only Fixes: lines in the trailer paragraphs at the end of the message are "
                           "read: 'Fixes' in prose and anything below the '---' line are ignored. The id "
                           "is not looked up, so a wrong subject on one line is not found.",
            references=("Documentation/process/submitting-patches.rst, 'Describe your changes'",),
        ),
    )

    def check(self, ctx: PatchContext) -> Iterator[Finding]:  # type: ignore[override]
        cm = cmsg.of(ctx)
        for fx in cm.fixes if cm else ():
            if fx.well_formed:
                continue
            why = list(fx.problems) + (["a blank line separates it from the trailers after it"] if fx.split else [])
            at = fx.trailer.anchor
            fixed = f'Fixes: {fx.commit[:12].lower()} ("{fx.title}")' if fx.commit and fx.title else None
            yield self.at_section(ctx.patch.number, *at.at, f"malformed Fixes: tag: {'; '.join(why)}",
                                  severity=Severity.WARNING if fx.split else Severity.CHECK,
                                  suggestion=fixed, mail_line=at.mail_line, snippet=at.text)
