"""Running rules over the contexts. A rule that raises becomes pmureview/internal-error, not a crash."""

from __future__ import annotations

from collections.abc import Iterable

from ..rule.base import Rule
from ..rule.model import Confidence, Finding, Location, Scope, Severity
from ..views.context import FileContext, PatchContext, SeriesContext
from .prefilter import glob_matches


def internal_error(rule_id: str, exc: BaseException, patch: int = 0, path: str | None = None) -> Finding:
    import traceback  # only a failing rule needs it (with textwrap: ~2 ms of every hook run)

    where = traceback.extract_tb(exc.__traceback__)[-1] if exc.__traceback__ else None
    at = f" at {where.filename.rsplit('/', 1)[-1]}:{where.lineno}" if where else ""
    return Finding(
        rule="pmureview/internal-error",
        severity=Severity.ERROR,
        confidence=Confidence.HIGH,
        message=f"rule {rule_id} raised {type(exc).__name__}: {exc}{at}",
        location=Location(patch=patch, path=path, section=None if path else "cover"),
        note="This is a bug in the rule, not in the patch; the other rules ran.",
    )


def run_rules(rules: Iterable[Rule], ctx: SeriesContext) -> list[Finding]:
    out: list[Finding] = []
    for rule in rules:
        scope = rule.meta.scope
        if scope == Scope.SERIES:
            out += _safe(rule, ctx, 0, None)
        elif scope == Scope.PATCH:
            for patch in ctx.patches:
                out += _safe(rule, PatchContext(ctx, patch), patch.number, None)
        else:
            for patch in ctx.patches:
                for view in ctx.patch_views(patch.number):
                    if _matches(view.path, tuple(rule.meta.files)):
                        out += _safe(rule, FileContext(ctx, patch, view), patch.number, view.path)
    return out


# every (file, rule) pair asks; 500 patches made fnmatch a tenth of the run
_matches = glob_matches


def _safe(rule: Rule, ctx: object, patch: int, path: str | None) -> list[Finding]:
    try:
        return list(rule.check(ctx) or ())  # type: ignore[arg-type]
    except Exception as exc:
        return [internal_error(rule.meta.id, exc, patch, path)]
