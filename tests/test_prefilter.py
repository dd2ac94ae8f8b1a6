"""The rule prefilter: a rule whose evidence is absent is not imported, and findings never change."""

from __future__ import annotations

from pathlib import Path

import pytest

from pmureview.api import Options, review
from pmureview.engine.prefilter import Prefilter
from pmureview.engine.registry import load_registry
from pmureview.rule.model import Severity
from pmureview.testing import discover_cases

ROOT = Path(__file__).resolve().parent.parent / "fixtures" / "series"


def test_wants_checks_globs_for_file_rules_and_any_evidence():
    pf = Prefilter("+extern int x;\nSubject: KVM: arm64: thing", ["arch/arm64/kvm/a.c"], full=False)
    assert pf.wants("file", ("*.c",), ())
    assert not pf.wants("file", ("*.S",), ())
    assert pf.wants("patch", ("*.S",), ())  # patch and series rules do not read files by glob
    assert pf.wants("file", ("*.c",), (r"\bbool\b", r"\bextern\b"))
    assert not pf.wants("file", ("*.c",), (r"\bbool\b",))
    assert pf.wants("file", ("*.c",), ("(unbalanced",))  # a broken regex never hides a rule


def test_a_rule_without_its_evidence_is_not_imported(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    pack = tmp_path / "rules" / "demo"
    pack.mkdir(parents=True)
    (pack / "needs-word.py").write_text(
        "import pathlib\n"
        "from pmureview.rule.base import Rule\n"
        "from pmureview.rule.model import RuleMeta, Severity\n"
        f"pathlib.Path({str(tmp_path / 'imported')!r}).touch()\n"
        "class NeedsWord(Rule):\n"
        "    meta = RuleMeta(id='demo/needs-word', title='t', severity=Severity.WARNING,\n"
        "                    evidence=(r'\\bfrobnicate\\b',))\n"
        "    def check(self, ctx):\n"
        "        return []\n")
    without = Prefilter("+int x;", ["a.c"], full=False)
    reg = load_registry([tmp_path / "rules"], shipped=False, plugins=False, eager=False, prefilter=without)
    assert "demo/needs-word" not in reg.rules  # first run: imported once to index it
    (tmp_path / "imported").unlink()
    reg = load_registry([tmp_path / "rules"], shipped=False, plugins=False, eager=False, prefilter=without)
    assert "demo/needs-word" not in reg.rules and not (tmp_path / "imported").exists()
    with_word = Prefilter("+frobnicate(x);", ["a.c"], full=False)
    reg = load_registry([tmp_path / "rules"], shipped=False, plugins=False, eager=False, prefilter=with_word)
    assert "demo/needs-word" in reg.rules


def _findings(mbox: Path) -> list[tuple]:
    result = review([str(mbox)], Options(fail_on=Severity.CHECK))
    return sorted((f.rule, f.location.patch, f.location.path or "", f.location.line or 0, f.message)
                  for f in result.findings)


@pytest.mark.parametrize("case", discover_cases(ROOT), ids=lambda c: c.name)
def test_every_fixture_gives_the_same_findings_with_and_without_the_prefilter(case, monkeypatch):
    """Hunk-only, every rule (not only the case's): the prefilter may only skip rules that stay silent."""
    on = _findings(case.root / "series.mbox")
    monkeypatch.setenv("PMUREVIEW_NO_PREFILTER", "1")
    assert _findings(case.root / "series.mbox") == on
