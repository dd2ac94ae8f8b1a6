"""Full mode: pre-images from the base, the series applied in memory, base selection, fallbacks."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from mailfactory import mbox, patch_mail

from pmureview.api import Options, review
from pmureview.series.parse import parse_series
from pmureview.views.image import apply_hunks

GIT = ["-c", "user.name=A", "-c", "user.email=a@example.org"]
BASE = "".join(f"line {i}\n" for i in range(1, 31))


def _repo(tmp_path: Path, files: dict[str, str]) -> tuple[Path, str]:
    repo = tmp_path / "tree"
    repo.mkdir()
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    for rel, text in files.items():
        (repo / rel).parent.mkdir(parents=True, exist_ok=True)
        (repo / rel).write_text(text)
    subprocess.run(["git", "-C", str(repo), *GIT, "add", "-A"], check=True)
    subprocess.run(["git", "-C", str(repo), *GIT, "commit", "-qm", "base"], check=True)
    sha = subprocess.run(["git", "-C", str(repo), "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()
    return repo, sha


def _diff(old_start: int, ctx: list[str], added: list[str], path: str = "a.c", index: str = "") -> str:
    body = "".join(f" {c}\n" for c in ctx[:2]) + "".join(f"+{a}\n" for a in added) + f" {ctx[2]}\n"
    idx = f"index {index} 100644\n" if index else ""
    return (f"diff --git a/{path} b/{path}\n{idx}--- a/{path}\n+++ b/{path}\n"
            f"@@ -{old_start},3 +{old_start},{3 + len(added)} @@\n{body}")


def test_apply_with_offset_keeps_the_patch_numbering():
    series, _ = parse_series([patch_mail(diff=_diff(5, ["line 7", "line 8", "line 9"], ["\tif (0)"])).encode()])
    lines, line_map = apply_hunks(BASE, series.patches[0].files[0].hunks)
    assert lines[8] == "\tif (0)"  # placed by context at line 9, two lines below where the hunk said
    assert line_map[9] == 7  # ...and mapped back to the patch's own line number


def test_findings_use_patch_lines_after_offset(tmp_path):
    repo, _ = _repo(tmp_path, {"a.c": BASE})
    p = tmp_path / "p.patch"
    p.write_text(patch_mail(diff=_diff(5, ["line 7", "line 8", "line 9"], ["\tif (0)"])))
    r = review(str(p), Options(tree=repo, select=("series",)))
    assert r.mode == "full"
    assert [(f.rule, f.location.line) for f in r.findings] == [("series/debug-scaffolding", 7)]


def test_hunk_that_does_not_apply_falls_back(tmp_path):
    repo, _ = _repo(tmp_path, {"a.c": BASE})
    p = tmp_path / "p.patch"
    p.write_text(patch_mail(diff=_diff(5, ["nope 1", "nope 2", "nope 3"], ["\tif (0)"])))
    r = review(str(p), Options(tree=repo))
    rules = [(f.rule, f.location.path) for f in r.findings]
    assert ("pmureview/apply-failed", "a.c") in rules
    assert ("series/debug-scaffolding", "a.c") in rules  # still reviewed from the hunks


def test_patch_n_sees_what_earlier_patches_left(tmp_path):
    repo, _ = _repo(tmp_path, {"a.c": BASE})
    p1 = patch_mail(subject="[PATCH 1/2] a", msgid="1@x", diff=_diff(1, ["line 1", "line 2", "line 3"], ["x1"]))
    # patch 2's context includes the line patch 1 added: it only applies on top of patch 1
    p2 = patch_mail(subject="[PATCH 2/2] b", msgid="2@x", diff=_diff(2, ["line 2", "x1", "line 3"], ["\tif (0)"]))
    s = tmp_path / "s.mbox"
    s.write_text(mbox(p1, p2))
    r = review(str(s), Options(tree=repo))
    assert not [f for f in r.findings if f.rule == "pmureview/apply-failed"]
    assert [(f.location.patch, f.location.line) for f in r.findings if f.rule == "series/debug-scaffolding"] == [(2, 4)]


def test_base_selection_order(tmp_path):
    repo, first = _repo(tmp_path, {"a.c": BASE})
    (repo / "a.c").write_text(BASE.replace("line 2\n", "line two\n"))
    subprocess.run(["git", "-C", str(repo), *GIT, "commit", "-qam", "second"], check=True)
    blob = subprocess.run(["git", "-C", str(repo), "rev-parse", f"{first}:a.c"], capture_output=True,
                          text=True).stdout.strip()[:12]
    diff = _diff(1, ["line 1", "line 2", "line 3"], ["x"], index=f"{blob}..1234567")
    p = tmp_path / "p.patch"
    p.write_text(patch_mail(diff=diff))
    # blob ids pick the first commit (HEAD has "line two", where the hunk would not apply)
    r = review(str(p), Options(tree=repo))
    assert r.base == first and not [f for f in r.findings if f.rule == "pmureview/apply-failed"]
    # --base wins
    r = review(str(p), Options(tree=repo, base="HEAD"))
    assert r.base != first
    assert [f.rule for f in r.findings if f.rule == "pmureview/apply-failed"]
    # base-commit: in the mail wins over blob ids
    p.write_text(patch_mail(diff=diff, body=f"x\n\nSigned-off-by: A <a@x>\n---\nbase-commit: {first}\n"))
    assert review(str(p), Options(tree=repo)).base == first


def test_unknown_base_is_a_usage_error(tmp_path):
    from pmureview.errors import UsageError

    repo, _ = _repo(tmp_path, {"a.c": BASE})
    p = tmp_path / "p.patch"
    p.write_text(patch_mail(diff=_diff(1, ["line 1", "line 2", "line 3"], ["x"])))
    with pytest.raises(UsageError, match="no such commit"):
        review(str(p), Options(tree=repo, base="deadbeef"))


def test_base_grep_is_cached_per_tree(tmp_path, monkeypatch):
    import pmureview.series.gitrepo as gitrepo

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    repo, sha = _repo(tmp_path, {"a.c": "int helper(void);\n", "b.c": "int x = helper();\n", "c.h": "int y;\n"})
    assert gitrepo.BlobReader(repo, sha).grep_files("helper") == ["a.c", "b.c"]
    calls = []
    real_run = subprocess.run

    def spy(argv, *a, **kw):
        calls.append(argv)
        return real_run(argv, *a, **kw)

    monkeypatch.setattr(gitrepo.subprocess, "run", spy)
    again = gitrepo.BlobReader(repo, sha)  # a new run (the hook's next patch): answered from the cache
    assert again.grep_files("helper") == ["a.c", "b.c"]
    assert not [c for c in calls if "grep" in c]
    assert again.grep_files("y") == ["c.h"] and [c for c in calls if "grep" in c]


def _error_share_reference(view) -> float:
    """api._error_share as first written: every node above an error is walked."""
    if not view.added or not view.root.has_error:
        return 0.0
    bad: set[int] = set()
    stack = [view.root]
    while stack:
        n = stack.pop()
        if n.type == "ERROR" or n.is_missing:
            bad.update(range(n.start_point[0] + 1, n.end_point[0] + 2))
        elif n.has_error:
            stack.extend(n.children)
    return len(bad & view.added) / len(view.added)


def test_error_share_walks_only_what_holds_added_lines():
    from fixture_texts import fixture_c_views

    from pmureview.api import _error_share

    seen = 0
    for path, view in fixture_c_views():
        if view.added:
            assert _error_share(view) == _error_share_reference(view), (path, view.path)
            seen += view.root.has_error
    assert seen > 20  # views with errors were compared, not only clean ones
