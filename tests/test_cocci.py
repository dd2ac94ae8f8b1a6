"""`check --cocci`: the tree's own scripts/coccinelle in report mode, on the lines the series adds.

The tree is fixtures/trees/cocci-mini (a KVM/arm64-shaped file with one pre-existing offending line and
our own report-mode script), committed into a temporary repository; the series is built with real
`git format-patch`. Tests that need the real spatch skip, saying so, when it is not installed.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from pmureview.api import Options, review
from pmureview.entry import main

ROOT = Path(__file__).resolve().parent.parent
TREE = ROOT / "fixtures" / "trees" / "cocci-mini"
C_FILE = "arch/arm64/kvm/pmu-mini.c"
H_FILE = "arch/arm64/include/asm/pmu-mini.h"
GIT = ["-c", "user.name=A U Thor", "-c", "user.email=author@example.org", "-c", "commit.gpgsign=false"]
HAVE_SPATCH = shutil.which("spatch") is not None
needs_spatch = pytest.mark.skipif(not HAVE_SPATCH, reason="spatch (Debian package coccinelle) is not installed")

NEW_FN = """\
static bool mini_counter_is_enabled(u64 pmcnten, int idx)
{
	return (pmcnten & BIT(idx)) && idx < 31 ? true : false;
}
"""
FIXED_LATER = "\tbool any = mask != 0 ? true : false;\n"
HEADER_FN = """\
static inline bool mini_is_last(int idx, int n)
{
	return idx == n - 1 ? true : false;
}

"""


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), *GIT, *args], check=True, capture_output=True,
                          text=True).stdout.strip()


def _commit(repo: Path, message: str) -> None:
    _git(repo, "add", "-A")
    _git(repo, "commit", "-q", "-m", message)


def _edit(path: Path, after: str, insert: str, *, count: int = 1) -> None:
    text = path.read_text()
    assert text.count(after) == count, after
    path.write_text(text.replace(after, after + insert, 1))


@pytest.fixture(scope="module")
def series(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str, Path]:
    """(repo, base sha, series.mbox): patch 1 adds an offender right under the pre-existing one and one
    that patch 2 removes again; patch 2 shifts the file and adds an offender to the header."""
    tmp = tmp_path_factory.mktemp("cocci")
    repo = tmp / "linux"
    shutil.copytree(TREE, repo)
    _git(repo, "init", "-q")
    _commit(repo, "base")
    base = _git(repo, "rev-parse", "HEAD")

    c = repo / C_FILE
    _edit(c, "\treturn (pmcr & BIT(idx)) != 0 ? true : false;\n}\n", "\n" + NEW_FN)
    _edit(c, "\tu64 mask = mini_counter_mask(vcpu);\n", FIXED_LATER)
    _commit(repo, "KVM: arm64: Add mini_counter_is_enabled()\n\nA helper for the tests.")

    _edit(c, "#include <asm/pmu-mini.h>\n", "#include <asm/sysreg.h>\n#include <asm/kvm_emulate.h>\n")
    c.write_text(c.read_text().replace(FIXED_LATER, "\tbool any = mask != 0;\n"))
    _edit(repo / H_FILE, "void mini_write_enable(struct kvm_vcpu *vcpu, u64 set, u64 clr);\n\n", HEADER_FN)
    _commit(repo, "KVM: arm64: Add mini_is_last()\n\nAnother helper for the tests.")

    out = subprocess.run(["git", "-C", str(repo), *GIT, "format-patch", "--stdout", "--cover-letter",
                          f"--base={base}", f"{base}..HEAD"], check=True, capture_output=True).stdout
    mbox = tmp / "series.mbox"
    mbox.write_bytes(out)
    return repo, base, mbox


def _cocci_findings(r) -> list[tuple]:
    return [(f.rule, f.location.patch, f.location.path, f.location.line) for f in r.findings
            if f.rule.startswith("cocci/")]


def _patch_line(mbox: Path, patch: int, path: str, text: str) -> int:
    """The new-side line number of an added line `text` in patch `patch`, counted from the mail."""
    from pmureview.api import load_series

    s, _ = load_series([str(mbox)], Options())
    change = next(c for c in s.patches[patch - 1].files if c.path == path)
    return next(ln.new_no for ln in change.added_lines() if ln.text.strip() == text.strip())


# -- the real spatch ----------------------------------------------------------------------------

@needs_spatch
def test_reports_only_lines_the_series_added(series):
    repo, base, mbox = series
    r = review(str(mbox), Options(tree=repo, base=base, cocci=True, select=("cocci",)))
    assert r.mode == "full"
    want = [
        ("cocci/boolcond", 1, C_FILE,
         _patch_line(mbox, 1, C_FILE, "\treturn (pmcnten & BIT(idx)) && idx < 31 ? true : false;")),
        ("cocci/boolcond", 2, H_FILE, _patch_line(mbox, 2, H_FILE, "\treturn idx == n - 1 ? true : false;")),
    ]
    # not: the pre-existing offender in patch 1's context, the one patch 2 fixes, the patch-only script,
    # the script that needs a newer spatch
    assert _cocci_findings(r) == want
    f = next(f for f in r.findings if f.rule.startswith("cocci/"))
    assert f.severity.value == "check"
    assert "comparison is already a bool" in f.message and "scripts/coccinelle/misc/boolcond.cocci" in f.message
    assert f.snippet and "? true : false" in f.snippet and f.location.column
    meta = r.rules["cocci/boolcond"]
    assert meta.title.startswith("A comparison is already a bool") and meta.confidence.value == "high"


@needs_spatch
def test_hunks_applied_at_an_offset_keep_the_patch_numbering(series, tmp_path):
    repo, base, mbox = series
    tree = tmp_path / "linux"
    shutil.copytree(repo, tree, symlinks=True)
    _git(tree, "checkout", "-q", "-b", "shifted", base)
    _edit(tree / C_FILE, " */\n", "\n/* three lines the series did not see */\n\n")
    _edit(tree / H_FILE, "#define __ASM_PMU_MINI_H\n", "\n/* nor these two */\n")
    _commit(tree, "shift the base")
    shifted = _git(tree, "rev-parse", "HEAD")
    r = review(str(mbox), Options(tree=tree, base=shifted, cocci=True, select=("cocci",)))
    assert not any(f.rule == "pmureview/apply-failed" for f in r.findings)
    exact = review(str(mbox), Options(tree=repo, base=base, cocci=True, select=("cocci",)))
    assert _cocci_findings(r) == _cocci_findings(exact) and len(_cocci_findings(r)) == 2


@needs_spatch
def test_cli_formats_list_the_script_as_a_rule(series, capsys):
    repo, base, mbox = series
    code = main(["check", str(mbox), "--tree", str(repo), "--base", base, "--cocci", "--select", "cocci",
                 "--format", "sarif"])
    out, err = capsys.readouterr()
    assert code == 0, err  # check-level findings do not fail the run
    assert err == ""
    run = json.loads(out)["runs"][0]
    rules = {r["id"]: r for r in run["tool"]["driver"]["rules"]}
    assert "A comparison is already a bool" in rules["cocci/boolcond"]["shortDescription"]["text"]
    assert [res["ruleId"] for res in run["results"] if res["ruleId"].startswith("cocci/")] == ["cocci/boolcond"] * 2

    code = main(["check", str(mbox), "--tree", str(repo), "--base", base, "--cocci", "--select", "cocci",
                 "--strict", "--format", "checkpatch"])
    out, _ = capsys.readouterr()
    assert code == 0 and out.count("CHECK:COCCI_BOOLCOND: the comparison is already a bool") == 2, out
    code = main(["check", str(mbox), "--tree", str(repo), "--base", base, "--cocci", "--select", "cocci",
                 "--fail-on", "check", "--format", "json"])
    assert code == 1  # findings at or above --fail-on
    capsys.readouterr()


@needs_spatch
def test_select_and_ignore_apply_to_scripts(series):
    repo, base, mbox = series
    r = review(str(mbox), Options(tree=repo, base=base, cocci=True, select=("cocci",), ignore=("cocci/boolcond",)))
    assert _cocci_findings(r) == []


@needs_spatch
def test_a_broken_script_is_one_line_and_the_others_still_report(series, tmp_path, capsys):
    repo, base, mbox = series
    tree = tmp_path / "linux"
    shutil.copytree(repo, tree, symlinks=True)
    (tree / "scripts/coccinelle/misc/broken.cocci").write_text(
        "/// Broken on purpose\nvirtual report\n\n@r@\nexpression E\n@@\nE ? ;\n")
    code = main(["check", str(mbox), "--tree", str(tree), "--base", base, "--cocci", "--select", "cocci",
                 "--format", "json"])
    out, err = capsys.readouterr()
    assert code == 0
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "broken.cocci" in lines[0] and lines[0].startswith("pmureview: "), err
    assert "Traceback" not in err
    assert [f["rule"] for f in json.loads(out)["findings"] if f["rule"].startswith("cocci/")] == ["cocci/boolcond"] * 2


@needs_spatch
def test_timing_is_bounded(series):
    repo, base, mbox = series
    t0 = time.monotonic()
    review(str(mbox), Options(tree=repo, base=base, cocci=True, select=("cocci",)))
    assert time.monotonic() - t0 < 60


# -- without spatch, without a tree, with a hanging spatch --------------------------------------

def _path_without_spatch(tmp_path: Path) -> str:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    git = shutil.which("git")
    assert git
    (bin_dir / "git").symlink_to(git)
    return str(bin_dir)


def test_missing_spatch_is_one_line_not_a_traceback(series, tmp_path, capsys, monkeypatch):
    repo, base, mbox = series
    monkeypatch.setenv("PATH", _path_without_spatch(tmp_path))
    monkeypatch.delenv("SPATCH", raising=False)
    code = main(["check", str(mbox), "--tree", str(repo), "--base", base, "--cocci", "--format", "json"])
    out, err = capsys.readouterr()
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "spatch not found" in lines[0], err
    findings = json.loads(out)["findings"]
    assert code == (1 if any(f["severity"] in ("warning", "error") for f in findings) else 0)
    assert not any(f["rule"].startswith("cocci/") for f in findings)


def test_hunk_only_says_it_needs_a_tree_and_runs_the_rest(series, capsys):
    _repo, _base, mbox = series
    code_plain = main(["check", str(mbox), "--format", "json"])
    plain, _ = capsys.readouterr()
    code = main(["check", str(mbox), "--cocci", "--format", "json"])
    out, err = capsys.readouterr()
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "needs a kernel tree" in lines[0], err
    assert code == code_plain
    assert json.loads(out)["findings"] == json.loads(plain)["findings"]


def test_a_hanging_script_times_out(series, tmp_path):
    from pmureview.api import load_series
    from pmureview.engine.cocci import run_cocci
    from pmureview.series.gitrepo import BlobReader
    from pmureview.views.context import FULL, SeriesContext
    from pmureview.views.image import build_views

    repo, base, mbox = series
    fake = tmp_path / "spatch"
    fake.write_text("#!/bin/sh\nexec sleep 30\n")
    fake.chmod(0o755)
    s, _ = load_series([str(mbox)], Options())
    reader = BlobReader(repo, base)
    views, _ = build_views(s, reader)
    ctx = SeriesContext(series=s, mode=FULL, views=views, base_reader=reader, base=base)
    warnings: list[str] = []
    t0 = time.monotonic()
    found, ran = run_cocci(ctx, repo, warn=warnings.append, spatch=str(fake), timeout=1, procs=1)
    assert time.monotonic() - t0 < 15
    assert found == [] and ran == {}
    assert len(warnings) == 1 and "boolcond.cocci" in warnings[0] and "timed out" in warnings[0]


def test_config_key_and_off_by_default(tmp_path):
    from pmureview.config import make_options

    assert Options().cocci is False
    cfg = tmp_path / "c.toml"
    cfg.write_text("cocci = true\n")
    assert make_options(config=cfg, cocci=None).cocci is True  # the CLI without --cocci: the config's
    assert make_options(config=cfg).cocci is False  # any other caller (the hooks): never from the config
    assert make_options(cocci=True).cocci is True


def test_hooks_never_import_cocci():
    hooks = ROOT / "src" / "pmureview" / "hooks"
    offenders = [p.name for p in hooks.rglob("*.py") if "cocci" in p.read_text("utf-8")]
    assert offenders == []
    assert os.path.exists(TREE / "scripts/coccinelle/misc/boolcond.cocci")
