"""series/stale-trailer: a Reviewed-by/Acked-by/Tested-by carried over a patch that changed since.

Needs the previous posting (version tracking attaches it to the context: `--since`, a source holding
both revisions, or the search on the user's public-inbox server); without it the rule is silent. The
analysis is analyses/trailers_history.py: the tag must have been given on vN-1 (in its patch or in a
reply of its thread) and the vN diff must differ from vN-1's beyond whitespace, comments, context and
line numbers.
"""

from __future__ import annotations

from collections.abc import Iterator

from pmureview.analyses.trailers_history import previous_of, stale_trailers
from pmureview.rule.base import Rule
from pmureview.rule.model import Confidence, Finding, RuleDocs, RuleMeta, Scope, Severity
from pmureview.views.context import SeriesContext


class StaleTrailer(Rule):
    meta = RuleMeta(
        id="series/stale-trailer",
        title="Review tag kept on a patch whose code changed since it was given",
        severity=Severity.CHECK,
        confidence=Confidence.MEDIUM,
        scope=Scope.SERIES,
        # prefilter: the stale tag is a trailer of the series (trailers are in the prefilter text)
        evidence=(r"(?i)(?:reviewed|acked|tested)-by",),
        files=("*",),
        docs=RuleDocs(
            what="With the previous posting compared (version tracking), reports a Reviewed-by:, "
                 "Acked-by: or Tested-by: on a patch of vN that was already given on vN-1 (carried in "
                 "the vN-1 patch, or sent as a reply to it or to its cover letter) when the vN diff "
                 "differs from the vN-1 diff in its added or removed lines. Whitespace, C comment-only "
                 "lines, context lines and line numbers do not count, so a rebase or a re-indent is "
                 "silent. A note below `---` saying the tags were kept (or a cover-letter change line "
                 "naming the person and 'kept') silences it.",
            why="A review tag vouches for the code the reviewer read. Maintainers ask authors to drop "
                "tags when a patch changes materially, and reviewers re-read a patch only when they "
                "see their tag is gone (submitting-patches.rst: 'the Reviewed-by tag ... should be "
                "removed' when the patch changes substantially).",
            example="v6 1/3 KVM: arm64: Trap PMU accesses\n...\nReviewed-by: Rae Viewer <rae@example.org>\n"
                    "(the tag came from v5; v6 rewrote the condition it guards)",
            use_instead="Drop the tag and say so below ---: \"v6: dropped Rae's R-b, the trap "
                        "condition changed\", or keep it and ask the reviewer to confirm.",
            known_problems="Only the previous posting is compared: a tag given on v3 and carried "
                           "unchanged through v4 is judged on the v4 -> v5 change alone. A tag given "
                           "off-list is not seen as given on vN-1 (silent). Whether a change is "
                           "'material' is a line comparison: a one-token fix in a long patch counts.",
            references=("Documentation/process/submitting-patches.rst, 'Using Reported-by:, Tested-by:, "
                        "Reviewed-by:, Suggested-by: and Fixes:'",),
        ),
    )

    def check(self, ctx: SeriesContext) -> Iterator[Finding]:  # type: ignore[override]
        prev = previous_of(ctx)
        if prev is None:
            return
        for st in stale_trailers(prev.series, prev.thread, ctx.series, prev.matches):
            where = "in the patch" if st.given_in == "patch" else "in a reply"
            yield self.at_section(
                st.patch, "trailers", st.index,
                f"{st.trailer.name} was given on v{st.revision} ({where}) but the patch changed since "
                f"({st.changed})",
                note="A review tag vouches for the code that was reviewed; drop it or ask the reviewer "
                     "to confirm it still holds.",
                snippet=str(st.trailer))
