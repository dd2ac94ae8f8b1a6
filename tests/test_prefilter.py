"""The rule prefilter: a rule whose evidence is absent is not imported, and findings never change."""

from __future__ import annotations

import re
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


def test_hunk_only_evidence_holds_in_hunk_only_mode_only():
    from pmureview.rule.base import HUNK_ONLY, Rule
    from pmureview.rule.model import RuleMeta

    class Local(Rule):
        meta = RuleMeta(id="demo/local", title="t", severity=Severity.WARNING, evidence=(HUNK_ONLY + r"\bfoo\b",))

    assert Local().evidence(full=False) == (HUNK_ONLY + r"\bfoo\b",)
    assert Local().evidence(full=True) == ()  # full mode reads base lines the hunks do not show
    assert Prefilter("+foo();", ["a.c"], full=False).wants("file", ("*.c",), Local().evidence(full=False))


def test_the_index_is_dropped_when_the_engine_changes(tmp_path, monkeypatch):
    from pmureview.cachefile import write_json
    from pmureview.engine.registry import RuleIndex, _engine_stamp

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    idx = RuleIndex(tmp_path / "rules")
    write_json(idx.file, {"__engine__": ["0.0.0"], "/x.py": {"stamp": [1, 2], "value": []}})
    idx = RuleIndex(tmp_path / "rules")
    assert idx.data == {"__engine__": _engine_stamp()}


def test_rule_caches_are_kept_per_rules_folder(tmp_path, monkeypatch):
    """A run reads only its own folders' cached rule data, not that of every folder ever used."""
    from pmureview.engine.registry import RuleIndex, YamlCache

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    a, b = tmp_path / "a", tmp_path / "b"
    assert YamlCache(a).file != YamlCache(b).file and RuleIndex(a).file != RuleIndex(b).file
    assert YamlCache(a).file == YamlCache(a).file and RuleIndex(a).file == RuleIndex(a).file


def test_a_pattern_rule_without_its_words_is_not_even_built(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    pack = tmp_path / "rules" / "demo"
    pack.mkdir(parents=True)
    (pack / "frob.yml").write_text(
        "id: demo/frob\ntitle: t\nseverity: warning\nconfidence: high\n"
        "rule: {pattern: 'frobnicate($X)'}\nmessage: do not frobnicate\n")
    without = Prefilter("+int x;", ["a.c"], full=False)
    reg = load_registry([tmp_path / "rules"], shipped=False, plugins=False, eager=False, prefilter=without)
    assert "demo/frob" not in reg.rules and not reg.problems  # built once, to index it
    import pmureview.rule.yamlrule as yr

    def boom(*a, **k):
        raise AssertionError("built")

    monkeypatch.setattr(yr, "load_yaml_rule", boom)
    reg = load_registry([tmp_path / "rules"], shipped=False, plugins=False, eager=False, prefilter=without)
    assert "demo/frob" not in reg.rules and not reg.problems
    monkeypatch.undo()
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    with_word = Prefilter("+frobnicate(x);", ["a.c"], full=False)
    reg = load_registry([tmp_path / "rules"], shipped=False, plugins=False, eager=False, prefilter=with_word)
    assert "demo/frob" in reg.rules
    # in full mode a pattern may match words the hunks do not show: always built
    full = Prefilter("+int x;", ["a.c"], full=True)
    reg = load_registry([tmp_path / "rules"], shipped=False, plugins=False, eager=False, prefilter=full)
    assert "demo/frob" in reg.rules


def test_pattern_words_operators_kinds_and_plain_regexes_prefilter():
    from pmureview.lang.pattern import Compiled, required_tokens

    assert required_tokens({"rule": {"pattern": "($A < $B) ? $A : $B"}}) == {"<", "?"}
    assert required_tokens({"rule": {"kind": "conditional_expression"}}) == {"?"}
    assert required_tokens({"rule": {"kind": "if_statement", "has": {"regex": r"\bWARN_ON\b"}}}) == {"if", "WARN_ON"}
    assert required_tokens({"rule": {"kind": "call_expression", "regex": "^(a|b)$"}}) == set()
    c = Compiled({"rule": {"pattern": "foo($A)", "inside": {"pattern": "bar($B)", "stopBy": "end"}}})
    assert c.tokens == {"foo", "bar"} and c.inner == {"foo"}  # what surrounds a match is not in it
    assert c.local and not Compiled({"rule": {"pattern": "$X"}}).local
    assert not Compiled({"rule": {"kind": "preproc_ifdef"}}).local


def test_full_mode_pattern_search_in_the_touched_units_finds_what_the_whole_file_does():
    from pmureview.lang.pattern import Compiled, parse, units

    src = ("int a = 1;\n#ifdef CONFIG_X\nstatic int f(int x)\n{\n\tif (x >= 0)\n\t\treturn x;\n\tfoo();\n"
           "\tbar();\n\treturn 0;\n}\n#endif\nint g(void) { return 2 >= 0; }\n")
    root = parse(src)
    for rule in ({"pattern": "$X >= 0", "inside": {"kind": "preproc_ifdef", "stopBy": "end"}},
                 {"pattern": "foo();", "precedes": {"pattern": "bar();"}},
                 {"kind": "function_definition", "follows": {"kind": "preproc_ifdef"}},
                 {"kind": "declaration", "precedes": {"kind": "preproc_ifdef"}}):
        c = Compiled({"rule": rule})
        whole = [m.start_line for m in c.run(root)]
        within = [m.start_line for m in c.run(root, within=units(root, range(1, 13)))]
        assert whole == within and whole, rule
    assert [m.start_line for m in Compiled({"rule": {"pattern": "$X >= 0"}}).run(root, within=units(root, {12}))] \
        == [12]


@pytest.mark.parametrize("text", ["Signed-off-by: A <a@b>\n+\tandroid_hook();", "FROMlist: x", "nothing here",
                                  "pi\u017f", "\u212aVM", "Backport of \u0130t", "na\u00efve \u00c9t\u00e9 UPSTREAM"])
@pytest.mark.parametrize("regex", ["(?i)ANDROID|FROMLIST|UPSTREAM", "(?i)fixes", "(?i)pis", "(?i)kvm", "(?i)it"])
def test_case_insensitive_words_find_what_the_regex_finds(text: str, regex: str) -> None:
    pf = Prefilter(text, (), full=False)
    assert pf._has(regex) == (re.search(regex, text) is not None)


# regexes the exact fast paths take (a bounded word; `(?i)` lowered) and shapes they must refuse
_FAST = ["(?i)fine[- ]grained|\\bFG[TU]|context[- ]switch|sav(?:e|es|ed|ing) and restor|save/restore",
         "(?i)pmx?evtyper|ARMV8_PMU_(?:EX|IN)CLUDE", "(?i)this\\s+(?:patch|commit)", "(?i)(?:reviewed|acked)-by",
         "\\btypedef\\b", "(?#hunk-only)\\bextern\\b", "(?i)[A-z]+x", "(?i)\\x41B", "(?i)(a)\\1",
         "(?i)a(?-i:B)", "(?i)[^a-z]k", "(?i)\\Bvm\\b", "(?i)\\W\\d\\S",
         "(?i)FG[TU]", "(?i)[^A-Z0-9]Vm", "(?i)[A-F_]{2}", "(?i)[\\]x-]a"]
_TEXTS = ["Fine-Grained traps", "FGU and FGT", "PMEVTYPER0 armv8_pmu_exclude_el1", "This  Patch adds",
          "Acked-By: x", "typedefs only", "extern int x;", "[^_]X", "aA", "ab", "AB", "1K", "kvm kVM",
          "\u212aVM and \u0130", "x 9 y", "nothing", "-kvm", "Fg tfgt", "]A x-a", "_b AC"]


@pytest.mark.parametrize("regex", _FAST)
def test_fast_regex_paths_find_what_the_regex_finds(regex: str) -> None:
    import random

    rng = random.Random(15)  # and random texts over the letters and signs these regexes name
    alphabet = "aAbBfFgGtTuUvVmMkKxXzZ09 -_]\\\n\u212a"
    texts = _TEXTS + ["".join(rng.choice(alphabet) for _ in range(rng.randrange(12))) for _ in range(400)]
    for text in texts:
        pf = Prefilter(text, (), full=False)
        assert pf._has(regex) == (re.search(regex, text) is not None), (regex, text)


def test_lowered_patterns_are_refused_where_lowering_is_not_exact() -> None:
    from pmureview.engine.prefilter import _lowered_pattern

    assert _lowered_pattern("(?i)FG[TU]|Save\\s+X[A-F_]") == "fg[tu]|save\\s+x[a-f_]"
    assert _lowered_pattern("(?i)Ctx[- ]Switch\\b") == "ctx[- ]switch\\b"
    for refused in ("(?i)\\x41", "(?i)(a)\\1", "(?i)a(?-i:B)", "(?i)\\Aa", "FG", "(?i)\u00e9", "(?i)[A-z]",
                    "(?i)[0-Z]", "(?i)[a-Z]", "(?i)[]a]", "(?i)[\\x41]", "(?i)[ab"):
        assert _lowered_pattern(refused) is None, refused
