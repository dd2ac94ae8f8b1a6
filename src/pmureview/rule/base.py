"""The rule contract. Python rules subclass `Rule`; YAML rules are turned into the same objects."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, ClassVar

from .model import Confidence, Finding, Location, RuleMeta, Severity

if TYPE_CHECKING:
    from tree_sitter import Node

    from ..views.context import FileContext, FileView, PatchContext, SeriesContext

    Context = SeriesContext | PatchContext | FileContext


HUNK_ONLY = "(?#hunk-only)"  # an evidence regex prefix: sound in hunk-only mode only


class Rule:
    """A rule declares `meta` and yields findings from `check(ctx)`.

    The context type follows `meta.scope`: SeriesContext, PatchContext (once per patch) or
    FileContext (once per touched file whose path matches `meta.files`).
    """

    meta: ClassVar[RuleMeta]

    def evidence(self, *, full: bool) -> tuple[str, ...]:
        """Regexes one of which the series' text must match for this rule to fire (the prefilter);
        () means always. A rule kind may derive more than its declared `meta.evidence`.

        A declaration that starts with `(?#hunk-only)` (a regex comment) holds in hunk-only mode only,
        where everything a rule reads is hunk text; in full mode a rule may read base lines the hunks
        do not show, so such a rule is then always run."""
        ev = self.meta.evidence
        if full and any(e.startswith(HUNK_ONLY) for e in ev):
            return ()
        return ev

    def check(self, ctx: Context) -> Iterable[Finding]:
        raise NotImplementedError

    # -- helpers that build findings from the rule's metadata ---------------------------------

    def finding(self, location: Location, message: str, *, note: str | None = None,
                severity: Severity | None = None, confidence: Confidence | None = None,
                suggestion: str | None = None, snippet: str | None = None) -> Finding:
        """A finding of this rule; severity and confidence default to the rule's own."""
        return Finding(rule=self.meta.id, severity=severity or self.meta.severity,
                       confidence=confidence or self.meta.confidence, message=message, note=note,
                       suggestion=suggestion, snippet=snippet, location=location, origin=self.meta.origin)

    def at_line(self, view: FileView, line: int, message: str, *, column: int | None = None,
                end_line: int | None = None, **kw) -> Finding:
        """A finding anchored on post-image line `line` of `view` (note/severity/confidence/suggestion)."""
        loc = Location(patch=view.patch.number, path=view.path, line=view.patch_line(line), column=column,
                       end_line=view.patch_line(end_line) if end_line else None, mail_line=view.mail_line(line))
        return self.finding(loc, message, snippet=view.line_text(line), **kw)

    def at_node(self, view: FileView, node: Node, message: str, **kw) -> Finding:
        """A finding at a node; anchored on its first added line when it spans several."""
        line = view.first_added_line(node) or view.node_line(node)
        col = view.column(node) if line == view.node_line(node) else None
        kw.setdefault("column", col)
        return self.at_line(view, line, message, **kw)

    def at_section(self, patch: int, section: str, line: int, message: str, *,
                   mail_line: int | None = None, **kw) -> Finding:
        """A finding on the subject, commit message, trailers or cover letter (line within it)."""
        loc = Location(patch=patch, section=section, line=line, mail_line=mail_line)
        return self.finding(loc, message, **kw)
