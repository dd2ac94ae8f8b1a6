"""review(): the one entry point for the CLI, the hooks, the tests and plugins."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .engine.review import Options, Review
from .rule.model import Finding, Severity

if TYPE_CHECKING:
    from .series.model import Series

__all__ = ["Options", "Review", "review"]


_PROBLEM_SEVERITY = {
    "pmureview/missing-patch": Severity.WARNING,
    "pmureview/apply-failed": Severity.CHECK,
    "pmureview/unparsable": Severity.CHECK,
    "pmureview/duplicate-patch": Severity.CHECK,
}


def _engine_finding(rule: str, patch: int, message: str, *, path: str | None = None,
                    line: int | None = None, note: str | None = None) -> Finding:
    from .rule.model import Confidence, Location

    return Finding(rule=rule, severity=_PROBLEM_SEVERITY.get(rule, Severity.CHECK), confidence=Confidence.HIGH,
                   message=message, note=note,
                   location=Location(patch=patch, path=path, line=line, section=None if path else "cover"))


def load_series(sources: list[str], options: Options, *, stdin: bytes | None = None,
                keep: list[bytes] | None = None) -> tuple[Series, list]:
    """`keep`, when given, receives the raw mails read (version tracking reads the replies in them)."""
    from .series.parse import parse_series
    from .series.source import read_range, read_sources

    if options.range or options.files:
        from pathlib import Path  # not on the hook path (~4 ms with the urllib it imports)
    if options.range:
        repo = options.tree if options.tree and not options.tree_found else Path.cwd()
        raws, label, from_stdin = read_range(repo, options.range), f"--range {options.range}", False
    elif options.files:
        from .series.files import files_as_series

        return files_as_series([Path(s) for s in sources], options.tree), []
    else:
        raws, label, from_stdin = read_sources(sources, stdin=stdin, midmask=options.midmask,
                                               config_midmask=options.config_midmask,
                                               fetch_timeout=options.fetch_timeout)
    if keep is not None:
        keep.extend(raws)
    return parse_series(raws, revision=options.revision, source=label, from_stdin=from_stdin)


def review(sources: str | list[str], options: Options | None = None, *, stdin: bytes | None = None,
           hook: bool = False) -> Review:
    """Read, parse, view, run the rules, decide. Raises PmuError when nothing can be reviewed."""
    from .engine.registry import load_registry
    from .engine.runner import run_rules
    from .engine.select import choose_rules, decide, load_baseline
    from .views.context import FULL, HUNK_ONLY, SeriesContext
    from .views.image import build_views

    options = options or Options()
    if isinstance(sources, str):
        sources = [sources]
    raws: list[bytes] = []
    series, problems = load_series(sources, options, stdin=stdin, keep=raws)
    previous = None
    if options.track_versions and not hook and not options.files and not options.range and not options.per_patch:
        from .engine.versions import locate

        previous = locate(series, raws, sources, options)

    reader = None
    base = label = None
    if options.tree is not None:
        reader, base, label = _open_tree(options, series, hook=hook)
    views, failures = build_views(series, reader)

    from .engine.prefilter import Prefilter

    prefilter = Prefilter.of(series, full=reader is not None, select=options.select, ignore=options.ignore)
    registry = load_registry(options.rules_dirs, eager=False, prefilter=prefilter)
    rules = choose_rules(registry.sorted(), select=options.select, ignore=options.ignore,
                         preview=options.preview, files_mode=options.files)
    ctx = SeriesContext(series=series, mode=FULL if reader else HUNK_ONLY, views=views,
                        base_reader=reader, base=base, files_mode=options.files)
    if previous is not None:
        from .engine.versions import attach_previous

        attach_previous(ctx, previous)
    findings = run_rules(rules, ctx)
    metas = {r.meta.id: r.meta for r in rules}
    if options.cocci and not hook:
        findings += _cocci(ctx, options, metas)

    if series.missing and not options.per_patch:
        n = len(series.missing)
        which = _ranges(series.missing)
        findings.append(_engine_finding(
            "pmureview/missing-patch", 0,
            f"{'patch' if n == 1 else 'patches'} {which} of {series.total} {'is' if n == 1 else 'are'} missing "
            "from the series; the others were reviewed without them", ))
    for p in problems:
        findings.append(_engine_finding(p.rule, p.patch, p.message))
    for fail in failures:
        findings.append(_engine_finding("pmureview/apply-failed", fail.patch, f"{fail.path}: {fail.message}",
                                        path=fail.path, line=fail.line))
    for view in ctx.all_views():
        # full mode only: hunk fragments are expected to parse partly as errors
        if view.mode == FULL and view.is_c and view._tree is not None and (share := _error_share(view)) > 0.5:
            findings.append(_engine_finding(
                "pmureview/unparsable", view.patch.number,
                f"{view.path}: {share:.0%} of the added lines parse as C syntax errors; rules may miss things "
                "there", path=view.path, line=min(view.added)))
    for prob in registry.problems:
        findings.append(_engine_finding("pmureview/rule-not-loaded", 0, f"{prob.origin}: {prob.message}"))
    # engine findings obey --select/--ignore too (all but internal errors, which are never hidden)
    findings = [f for f in findings if f.rule == "pmureview/internal-error" or not f.rule.startswith("pmureview/")
                or _selected(f.rule, options)]
    findings = decide(findings, ctx, severity=options.severity, per_path_ignores=options.per_path_ignores,
                      baseline=load_baseline(options.baseline))
    if reader is not None and hasattr(reader, "close"):
        reader.close()
    result = Review(series=series, findings=findings, rules=metas, mode=ctx.mode, base=label, options=options)
    if previous is not None:
        from .engine.versions import compare

        result.versions = compare(result, previous, review)
    return result


def _cocci(ctx, options: Options, metas: dict) -> list[Finding]:
    """The tree's own semantic patches (opt-in, never on hook paths); problems are one stderr line each."""
    import sys

    from .engine.cocci import run_cocci

    def warn(message: str) -> None:
        sys.stderr.write(f"pmureview: {' '.join(message.split())}\n")

    try:
        found, ran = run_cocci(ctx, options.tree, warn=warn, select=options.select, ignore=options.ignore)
    except Exception as exc:  # a bug here is reported like a crashing rule, never a traceback
        from .engine.runner import internal_error

        return [internal_error("--cocci", exc)]
    metas.update(ran)
    return found


def _selected(rule: str, options: Options) -> bool:
    from .engine.select import matches

    if options.select and not matches(rule, options.select) and not matches(rule, ("pmureview",)):
        return False
    return not (options.ignore and matches(rule, options.ignore))


def _ranges(numbers: tuple[int, ...]) -> str:
    """(1, 2, 3, 5) -> '1-3, 5'."""
    out: list[str] = []
    start = prev = numbers[0]
    for n in (*numbers[1:], None):
        if n is not None and n == prev + 1:
            prev = n
            continue
        out.append(str(start) if start == prev else f"{start}-{prev}")
        if n is not None:
            start = prev = n
    return ", ".join(out)


def _error_share(view) -> float:
    """The share of added lines inside tree-sitter ERROR nodes (kernel macros the grammar cannot see)."""
    if not view.added or not view.root.has_error:
        return 0.0
    bad: set[int] = set()
    stack = [view.root]
    while stack:
        n = stack.pop()
        if not view.touches_added(n):  # no added line among its rows: nothing under it counts
            continue
        if n.type == "ERROR" or n.is_missing:
            bad.update(range(n.start_point[0] + 1, n.end_point[0] + 2))
        elif n.has_error:
            stack.extend(n.children)
    return len(bad & view.added) / len(view.added)


def _note(message: str) -> None:
    """One line on stderr about how the run was set up (which tree, which base)."""
    import sys

    sys.stderr.write(f"pmureview: {' '.join(message.split())}\n")


def _open_tree(options: Options, series: Series, *, hook: bool):
    """-> (reader, base commit, what JSON/SARIF report as the base); (None, None, None): hunk-only."""
    import os

    from .errors import UsageError
    from .series.gitrepo import BlobReader, FolderReader, choose_base, is_git_tree

    tree = options.tree
    assert tree is not None
    where = (f"tree {tree} (from {options.tree_found})" if options.tree_found
             else f"kernel tree {tree}" if hook else f"--tree {tree}")
    if not os.path.isdir(tree):
        raise UsageError(f"{where}: not a folder")
    if not is_git_tree(tree):
        from .views.image import folder_base

        state = folder_base(series, FolderReader(tree))
        if state.applied and state.base:
            _note(f"{where}: a plain folder; {state.applied} of the files the series changes already hold it "
                  "applied (their base was rebuilt by reverse-applying the patches), the others are its base")
        elif state.applied:
            _note(f"{where}: a plain folder that already holds the series applied; its base was rebuilt "
                  "by reverse-applying the patches")
        else:
            _note(f"{where}: a plain folder, used as the series' base")
        return state.reader, None, f"folder:{os.path.realpath(tree)}"
    # a tree found by itself or named in the config: its HEAD is the reviewer's work, not the base
    # (files mode excepted: there the files of the work tree are what is reviewed)
    found = options.tree_found is not None and not options.files
    chosen = choose_base(tree, series, options.base, allow_head=not hook and not found)
    if chosen is None:
        _note(f"{where}: no base for the series there (no --base, base-commit: not in the tree, pre-image "
              "blob ids not found; never HEAD); reviewing from the hunks only")
        return None, None, None
    sha, how = chosen
    if options.tree_found:
        _note(f"full mode in the kernel tree {tree} (found from {options.tree_found}), base {sha[:12]} "
              f"from {how}; --no-tree to review from the hunks only")
    return BlobReader(tree, sha), sha, sha
