"""series/missing-submitter-signoff: the person who sends the patch has not signed it off."""

from __future__ import annotations

from collections.abc import Iterator

from pmureview.analyses import commitmsg
from pmureview.rule.base import Rule
from pmureview.rule.model import Finding, RuleDocs, RuleMeta, Scope, Severity
from pmureview.views.context import PatchContext


class MissingSubmitterSignoff(Rule):
    meta = RuleMeta(
        id="series/missing-submitter-signoff",
        title="No Signed-off-by from the patch's sender",
        severity=Severity.WARNING,
        scope=Scope.PATCH,
        files=("*",),  # the commit message, whatever the patch touches
        docs=RuleDocs(
            what="Reports a patch mail whose sender (the mail's From:) has no Signed-off-by line in the "
                 "commit message, typically someone posting another author's patch (in-body From:) with "
                 "only the author's sign-off. A patch without any Signed-off-by is reported as a check: "
                 "checkpatch.pl already reports it (MISSING_SIGN_OFF), and NO_AUTHOR_SIGN_OFF when the "
                 "sender is the author; it does not report a sender who is not the author.",
            why="Everyone who handles a patch on its way upstream adds a Signed-off-by (the Developer's "
                "Certificate of Origin, submitting-patches.rst); the sender's must be the last one. "
                "Without it the patch cannot be applied.",
            example="From: Bob Sender <bob@example.org>\n\nFrom: Ann Author <ann@example.org>\n...\n"
                    "Signed-off-by: Ann Author <ann@example.org>",
            use_instead="Signed-off-by: Ann Author <ann@example.org>\n"
                        "Signed-off-by: Bob Sender <bob@example.org>",
            known_problems="The sender is matched by address, or by full name (one person, two "
                           "addresses; 'Name via B4 Relay' and list-rewritten senders). A sender's "
                           "sign-off that is not the last one is not reported: carried sign-offs of "
                           "reworked patches are often in historical order.",
            references=("Documentation/process/submitting-patches.rst, 'Sign your work'",),
        ),
    )

    def check(self, ctx: PatchContext) -> Iterator[Finding]:  # type: ignore[override]
        cm = commitmsg.of(ctx)
        if cm is None or not cm.sender.email or cm.sender_signoff is not None:
            return
        last = cm.signoffs[-1].anchor if cm.signoffs else (cm.lines[-1] if cm.lines else cm.subject)
        if not cm.signoffs:
            yield self.at_section(ctx.patch.number, *last.at, f"the patch has no Signed-off-by (sender {cm.sender})",
                                  severity=Severity.CHECK, mail_line=last.mail_line, snippet=last.text)
            return
        yield self.at_section(
            ctx.patch.number, *last.at, f"no Signed-off-by from the sender, {cm.sender}",
            note=f"{cm.sender} sends the patch but has not signed it off; whoever passes a patch on adds "
                 f"their own Signed-off-by after the author's.",
            suggestion=f"Signed-off-by: {cm.sender}", mail_line=last.mail_line, snippet=last.text)
