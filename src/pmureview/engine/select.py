"""Decisions apart from rules (flake8's style guide role): which rules run and which findings stay."""

from __future__ import annotations

from collections.abc import Iterable
from fnmatch import fnmatch
from typing import TYPE_CHECKING

from .. import lazyre
from ..errors import UsageError
from ..record import replace
from ..rule.base import Rule
from ..rule.model import Finding, RuleMeta, Severity
from ..views.context import SeriesContext

if TYPE_CHECKING:
    from pathlib import Path

_INLINE = lazyre.compile(r"pmureview:\s*ignore\[([^\]]*)\]")


def matches(rule_id: str, patterns: Iterable[str]) -> bool:
    """`kvmarm` selects the pack, `kvmarm/fgt-` a prefix, `kvmarm/fgt-trap-polarity` one rule."""
    for p in patterns:
        p = p.strip()
        if p in ("ALL", "all") or rule_id == p or rule_id.startswith(p.rstrip("/") + "/") or (
            p.endswith(("-", "*")) and rule_id.startswith(p.rstrip("*"))
        ):
            return True
    return False


def choose_rules(rules: Iterable[Rule], *, select: tuple[str, ...], ignore: tuple[str, ...],
                 preview: bool, files_mode: bool) -> list[Rule]:
    out = []
    for r in rules:
        m = r.meta
        if select and not matches(m.id, select):
            continue
        if ignore and matches(m.id, ignore):
            continue
        if m.status == "preview" and not preview:
            continue
        if files_mode and m.needs_base:
            continue
        out.append(r)
    return out


def load_baseline(path: Path | None) -> set[str]:
    if path is None:
        return set()
    try:
        with open(path, encoding="utf-8") as f:
            import json  # only with a baseline: the hook path imports json when it needs it
            data = json.loads(f.read())
    except (OSError, ValueError) as exc:
        raise UsageError(f"--baseline {path}: cannot read: {exc}") from None
    items = data.get("findings", data) if isinstance(data, dict) else data
    return {i["fingerprint"] if isinstance(i, dict) else str(i) for i in items}


def decide(findings: list[Finding], ctx: SeriesContext, *, severity: dict[str, str],
           per_path_ignores: dict[str, tuple[str, ...]], baseline: set[str]) -> list[Finding]:
    out: list[Finding] = []
    for f in findings:
        loc = f.location
        if loc.path and loc.line and _inline_ignored(f, ctx):
            continue
        if loc.path and any(fnmatch(loc.path, g) and matches(f.rule, ids) for g, ids in per_path_ignores.items()):
            continue
        if baseline and f.fingerprint() in baseline:
            continue
        if f.rule in severity:
            f = replace(f, severity=Severity(severity[f.rule]))
        out.append(f)
    return sorted(out, key=Finding.sort_key)


def _inline_ignored(f: Finding, ctx: SeriesContext) -> bool:
    view = ctx.view(f.location.patch, f.location.path or "")
    text = f.snippet if view is None else view.line_text(_post_line(view, f.location.line or 0))
    for m in _INLINE.finditer(text or ""):
        ids = [i.strip() for i in m.group(1).split(",") if i.strip()]
        if not ids or matches(f.rule, ids):
            return True
    return False


def _post_line(view, patch_line: int) -> int:
    if view.line_map:
        for post, new in view.line_map.items():
            if new == patch_line:
                return post
    return patch_line


def metas(rules: Iterable[Rule]) -> dict[str, RuleMeta]:
    return {r.meta.id: r.meta for r in rules}
