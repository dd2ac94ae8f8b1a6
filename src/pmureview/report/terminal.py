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


def _short(base: str) -> str:
    """A commit as 12 hex digits; a plain folder (`folder:<path>`) in full."""
    return clean(base) if base.startswith("folder:") else base[:12]


def render_terminal(review: Review, console: Console, *, quiet: bool = False) -> None:
    findings = review.visible()
    s = review.series
    if not quiet:
        head = Text()
        head.append(f"{clean(s.subject)}", style="bold")
        head.append(f"  (v{s.revision}, {len(s.patches)}/{s.total} patches, {review.mode}"
                    + (f", base {_short(review.base)}" if review.base else "") + ")")
        console.print(head)
    by_patch: dict[int, list[Finding]] = {}
    for f in findings:
        by_patch.setdefault(f.location.patch, []).append(f)
    subjects = {p.number: p.subject for p in s.patches}
    if s.cover:
        subjects[0] = s.cover.mail.subject
    for number in sorted(by_patch):
        console.print(Text(f"\n[{number}/{s.total}] {clean(subjects.get(number, ''))}", style="bold"))
        for f in _grouped(review, by_patch[number]):
            _finding(console, f, quiet, _tag(review, f))
    _versions(review, console)
    if not quiet:
        counts = {k: sum(1 for f in findings if f.severity.value == k) for k in ("error", "warning", "check")}
        hidden = len(review.findings) - len(findings)
        tail = f" ({hidden} check-level hidden; --strict shows them)" if hidden else ""
        console.print(Text(f"\n{counts['error']} errors, {counts['warning']} warnings, "
                           f"{counts['check']} checks{tail}"))


def _tag(review: Review, f: Finding) -> str:
    st = review.versions.status_of(f) if review.versions is not None else None
    if st is None:
        return ""
    return "new" if st.status == "new" else f"carried since v{st.since}"


def _grouped(review: Review, findings: list[Finding]) -> list[Finding]:
    """With a previous posting compared: a patch's new findings first, then the carried ones."""
    if review.versions is None or not review.versions.compared:
        return findings
    return sorted(findings, key=lambda f: _tag(review, f) != "new")


def _versions(review: Review, console: Console) -> None:
    """What the previous posting had that is gone, and its review comments still open."""
    v = review.versions
    if v is None or not v.compared:
        return
    rev = v.previous.revision
    if v.resolved:
        console.print(Text(f"\nResolved since v{rev} ({len(v.resolved)}):", style="bold"))
        for f in v.resolved:
            loc = f.location
            where = f"{loc.path}:{loc.line}" if loc.path else (loc.section or "patch")
            console.print(Text(f"  v{rev} patch {loc.patch} {clean(where)}: {clean(f.message)} [{f.rule}]"))
    if v.comments:
        console.print(Text(f"\nReview comments on v{rev} still open ({len(v.comments)}):", style="bold"))
        for c in v.comments:
            console.print(Text(f"  {clean(c.summary())}"))


def _finding(console: Console, f: Finding, quiet: bool, tag: str = "") -> None:
    loc = f.location
    where = f"{loc.path}:{loc.line}" if loc.path else f"{loc.section or 'patch'}:{loc.line or 1}"
    t = Text("  ")
    t.append(f"{f.severity.label}", style=_STYLE[f.severity.value])
    t.append(f" {clean(where)}: {clean(f.message)} ")
    t.append(f"[{f.rule}]", style="dim")
    if tag:
        t.append(f" ({tag})", style="bold magenta" if tag == "new" else "dim")
    if f.confidence.value != "high":
        t.append(f" (confidence: {f.confidence.value})", style="dim")
    console.print(t)
    if quiet:
        return
    if f.snippet:
        console.print(Text(f"    {loc.line or '':>5} | {clean(f.snippet.expandtabs(8))}", style="dim"))
    if f.note:
        console.print(Text("    " + clean(f.note).replace("\n", "\n    ")))
