"""A review run: what it is told (Options) and what it produced (Review), for reporters and callers."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..record import dataclass, field
from ..rule.model import Finding, RuleMeta, Severity
from ..series.model import Series

if TYPE_CHECKING:
    from pathlib import Path


@dataclass
class Options:
    """Everything a review run can be told. CLI > config file > these defaults."""

    tree: str | Path | None = None  # a kernel git checkout (or a plain folder): full mode
    tree_found: str | None = None  # the tree came not from --tree but from this ("config", …): never its HEAD
    base: str | None = None  # --base REV
    revision: int | None = None  # --revision N
    range: str | None = None  # --range A..B (in `tree` or the current repo)
    files: bool = False  # `check --files`: each file reviewed as a new file
    midmask: str | None = None  # --midmask (beats a URL's own server)
    config_midmask: str | None = None  # from the config file (after $PMUREVIEW_MIDMASK)
    fetch_timeout: float = 60.0
    select: tuple[str, ...] = ()
    ignore: tuple[str, ...] = ()
    severity: dict[str, str] = field(default_factory=dict)  # rule id -> severity override
    per_path_ignores: dict[str, tuple[str, ...]] = field(default_factory=dict)  # glob -> rule ids
    fail_on: Severity = Severity.WARNING
    strict: bool = False
    preview: bool = False
    rules_dirs: tuple[Path, ...] = ()
    baseline: Path | None = None
    progress: bool = False  # progress on stderr (the CLI sets it on a tty only)
    per_patch: bool = False  # hooks: one patch of a series on purpose, the others are not "missing"
    cocci: bool = False  # --cocci: also run the tree's scripts/coccinelle in report mode (full mode only)
    since: str | None = None  # --since SOURCE: the previous posting (engine/versions.py)
    track_versions: bool = True  # find and compare the previous posting (off for hooks and earlier revisions)
    fail_on_new: bool = False  # --fail-on-new: only `new` findings count toward fail_on


@dataclass
class Review:
    series: Series
    findings: list[Finding]  # every finding, sorted, after selection (check level included)
    rules: dict[str, RuleMeta]  # the rules that ran, by id
    mode: str  # "full" | "hunk-only"
    base: str | None = None
    options: Options = field(default_factory=Options)
    versions: Any = None  # engine.versions.Versions when the previous posting was looked for

    def failed(self) -> bool:
        findings = self.findings
        if self.options.fail_on_new and self.versions is not None:
            findings = [f for f in findings if (st := self.versions.status_of(f)) is None or st.status == "new"]
        return any(f.severity.rank >= self.options.fail_on.rank for f in findings)

    @property
    def internal_error(self) -> bool:
        return any(f.rule == "pmureview/internal-error" for f in self.findings)

    def exit_code(self) -> int:
        if self.internal_error:
            return 2
        return 1 if self.failed() else 0

    def visible(self) -> list[Finding]:
        """What the terminal and checkpatch formats show: `check` only with --strict."""
        if self.options.strict or self.options.fail_on == Severity.CHECK:
            return list(self.findings)
        return [f for f in self.findings if f.severity != Severity.CHECK]
