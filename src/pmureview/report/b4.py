"""`--format b4`: the `b4 review` check-command JSON (b4 0.16, ECOSYSTEM §3.3).

One object summarising the review, in a list (b4 accepts an object or a list):
`{"tool", "status": pass|warn|fail, "summary", "url", "details"}`. error -> fail, warning -> warn,
check counts (as warn) only with --strict; `details` lists the checkpatch-style lines.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from ..rule.model import Severity
from .lines import format_line

if TYPE_CHECKING:
    from ..engine.review import Review

TOOL = "pmureview"


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def b4_result(review: Review, *, patch: int | None = None) -> dict[str, str]:
    shown = review.visible()
    if patch is not None:
        shown = [f for f in shown if f.location.patch == patch]
    counts = {s: sum(1 for f in shown if f.severity == s) for s in Severity}
    if counts[Severity.ERROR]:
        status = "fail"
    elif counts[Severity.WARNING] or counts[Severity.CHECK]:
        status = "warn"
    else:
        status = "pass"
    if shown:
        parts = [_plural(counts[s], s.value) for s in Severity if counts[s]]
        summary = ", ".join(parts)
    else:
        summary = "no findings"
    # path:line is what a reviewer looks up beside the diff; commit-message findings stay `-:N`
    details = "\n".join(format_line(f, stdin=False) for f in shown)
    return {"tool": TOOL, "status": status, "summary": summary, "url": "", "details": details}


def render_b4(review: Review, *, patch: int | None = None) -> str:
    return json.dumps([b4_result(review, patch=patch)], indent=2, ensure_ascii=False) + "\n"
