"""Terminal output for people: grouped by patch, a code frame of the added lines.

Mail and code text is untrusted: it only ever reaches rich as `Text` (never markup), and control
characters are made visible so a subject cannot move the cursor or recolour the terminal.
"""

from __future__ import annotations

import re

from rich.console import Console
from rich.text import Text

from ..engine.review import Review
from ..rule.model import Finding

_CTRL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
_STYLE = {"error": "bold red", "warning": "yellow", "check": "cyan"}


def clean(text: str) -> str:
    return _CTRL.sub(lambda m: f"\\x{ord(m.group(0)):02x}", text)


def render_terminal(review: Review, console: Console, *, quiet: bool = False) -> None:
    findings = review.visible()
    s = review.series
    if not quiet:
        head = Text()
        head.append(f"{clean(s.subject)}", style="bold")
        head.append(f"  (v{s.revision}, {len(s.patches)}/{s.total} patches, {review.mode}"
                    + (f", base {review.base[:12]}" if review.base else "") + ")")
        console.print(head)
    by_patch: dict[int, list[Finding]] = {}
    for f in findings:
        by_patch.setdefault(f.location.patch, []).append(f)
    subjects = {p.number: p.subject for p in s.patches}
    if s.cover:
        subjects[0] = s.cover.mail.subject
    for number in sorted(by_patch):
        console.print(Text(f"\n[{number}/{s.total}] {clean(subjects.get(number, ''))}", style="bold"))
        for f in by_patch[number]:
            _finding(console, f, quiet)
    if not quiet:
        counts = {k: sum(1 for f in findings if f.severity.value == k) for k in ("error", "warning", "check")}
        hidden = len(review.findings) - len(findings)
        tail = f" ({hidden} check-level hidden; --strict shows them)" if hidden else ""
        console.print(Text(f"\n{counts['error']} errors, {counts['warning']} warnings, "
                           f"{counts['check']} checks{tail}"))


def _finding(console: Console, f: Finding, quiet: bool) -> None:
    loc = f.location
    where = f"{loc.path}:{loc.line}" if loc.path else f"{loc.section or 'patch'}:{loc.line or 1}"
    t = Text("  ")
    t.append(f"{f.severity.label}", style=_STYLE[f.severity.value])
    t.append(f" {clean(where)}: {clean(f.message)} ")
    t.append(f"[{f.rule}]", style="dim")
    if f.confidence.value != "high":
        t.append(f" (confidence: {f.confidence.value})", style="dim")
    console.print(t)
    if quiet:
        return
    if f.snippet:
        console.print(Text(f"    {loc.line or '':>5} | {clean(f.snippet.expandtabs(8))}", style="dim"))
    if f.note:
        console.print(Text("    " + clean(f.note).replace("\n", "\n    ")))
