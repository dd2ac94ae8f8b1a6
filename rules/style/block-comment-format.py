"""style/block-comment-format: a new multi-line comment with text on its opening /* line."""

from __future__ import annotations

from collections.abc import Iterator

from pmureview.lazyre import lazy_re
from pmureview.rule.base import Rule
from pmureview.rule.model import Confidence, Finding, RuleDocs, RuleMeta, Scope, Severity
from pmureview.views.context import FileContext

# networking code wants exactly this style (checkpatch NETWORKING_BLOCK_COMMENT_STYLE)
_NET = lazy_re(r"^(?:net/|drivers/net/|include/net/)")
_OPENING_TEXT = lazy_re(r"^/\*(?![*!])[ \t]*(?P<text>\S.*)$")


_COMMENTS = frozenset({"comment"})


class BlockCommentFormat(Rule):
    meta = RuleMeta(
        evidence=(r"/\*",),  # cannot fire without it (prefilter)
        id="style/block-comment-format",
        title="Multi-line comment with text on the opening /* line",
        severity=Severity.WARNING,
        confidence=Confidence.HIGH,
        scope=Scope.FILE,
        docs=RuleDocs(
            what="Flags a multi-line `/* ... */` comment the patch adds whose opening line holds text "
                 "after `/*` (outside networking code), when the comment starts its line.",
            why="Documentation/process/coding-style.rst (section 8): the preferred style for long "
                "comments opens with `/*` alone on its line; only net/ and drivers/net/ use the other "
                "form. Maintainers ask for it to be fixed.",
            example="\t/* Make sure the fault can be handled in the fast path.\n"
                    "\t * Only write faults on small pages are handled.\n\t */",
            use_instead="\t/*\n\t * Make sure the fault can be handled in the fast path.\n"
                        "\t * Only write faults on small pages are handled.\n\t */",
            known_problems="Comments inside macro definitions are not parsed and not checked. A "
                           "comment after code on the same line (a struct member's note) and "
                           "kernel-doc `/**` blocks are skipped, as are comments the patch only moves "
                           "or re-indents (the same first line is removed). checkpatch.pl checks this "
                           "style only for networking code.",
            references=("Documentation/process/coding-style.rst: 8) Commenting",),
        ),
    )

    def check(self, ctx: FileContext) -> Iterator[Finding]:  # type: ignore[override]
        view = ctx.view
        if not view.is_c or not view.added or _NET.match(view.path):
            return
        removed = {" ".join(t.split()) for f in ctx.patch.files for t in f.removed_text}
        for node in view.added_nodes(_COMMENTS):  # a comment all added starts on an added line
            start, end = node.start_point[0] + 1, node.end_point[0] + 1
            if end == start or not all(n in view.added for n in range(start, end + 1)):
                continue
            line = view.line_text(start)
            col = node.start_point[1]
            if line[:col].strip():
                continue  # a trailing comment after code
            m = _OPENING_TEXT.match(line[col:])
            if not m or m.group("text").startswith("SPDX") or " ".join(line.split()) in removed:
                continue
            yield self.at_line(view, start, "multi-line comment with text on the opening '/*' line",
                               column=col + 1,
                               note="Kernel style outside networking code opens a block comment with "
                                    "'/*' alone on its line and starts the text on the next one.")
