"""The rule engine: loading (shipped, --rules-dir, entry points), isolation, YAML validation, runner."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from mailfactory import patch_mail, simple_diff, write

from pmureview.api import Options, review
from pmureview.engine.registry import load_registry
from pmureview.entry import main

RAISING = '''
from pmureview.rule.model import RuleMeta, Severity, Scope
from pmureview.rule.base import Rule

class Boom(Rule):
    meta = RuleMeta(id="acme/boom", title="raises", severity=Severity.WARNING, scope=Scope.FILE)

    def check(self, ctx):
        raise RuntimeError("kaboom")
'''

GOOD_YAML = '''
id: acme/bar-call
title: bar() is called
severity: warning
query: |
  (call_expression function: (identifier) @fn (#eq? @fn "bar")) @call
report: call
message: "{fn}() is called here"
docs: {what: x, why: y}
'''


def _rules(tmp_path: Path, files: dict[str, str]) -> Path:
    root = tmp_path / "rules"
    for rel, text in files.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)
    return root


def _patch(tmp_path: Path) -> Path:
    return write(tmp_path, "p.patch", patch_mail(diff=simple_diff(added=("\tbar();",))))


def test_yaml_query_rule_from_rules_dir(tmp_path):
    root = _rules(tmp_path, {"acme/bar-call.yml": GOOD_YAML})
    r = review(str(_patch(tmp_path)), Options(rules_dirs=(root,), select=("acme",)))
    assert [(f.rule, f.location.line, f.message) for f in r.findings] == [("acme/bar-call", 12, "bar() is called here")]


@pytest.mark.parametrize(("text", "problem"), [
    (GOOD_YAML.replace("#eq?", "#eqq?"), "unknown predicate #eqq"),
    (GOOD_YAML.replace("report: call", "report: nope"), "report capture @nope"),
    (GOOD_YAML + "sevrity: error\n", "unknown keys: sevrity"),
    (GOOD_YAML.replace("id: acme/bar-call", "id: acme/other"), "must equal its place"),
    (GOOD_YAML.replace("call_expression", "call_expresion"), "QueryCompileError"),
])
def test_broken_yaml_fails_at_load_and_others_still_run(tmp_path, problem, text, capsys):
    root = _rules(tmp_path, {"acme/bar-call.yml": text, "acme/ok.yml": GOOD_YAML.replace("bar-call", "ok")})
    reg = load_registry([root], shipped=False, plugins=False)
    assert list(reg.rules) == ["acme/ok"]
    assert len(reg.problems) == 1 and problem in reg.problems[0].message
    assert main(["rules", "list", "--rules-dir", str(root)]) == 2  # a broken rule fails `rules list`
    assert problem in capsys.readouterr().err


def test_duplicate_ids_are_rejected(tmp_path):
    a = _rules(tmp_path / "a", {"acme/bar-call.yml": GOOD_YAML})
    b = _rules(tmp_path / "b", {"acme/bar-call.yml": GOOD_YAML})
    reg = load_registry([a, b], shipped=False, plugins=False)
    assert list(reg.rules) == ["acme/bar-call"]
    assert "duplicate rule id acme/bar-call" in reg.problems[0].message


def test_raising_rule_becomes_internal_error_and_exit_2(tmp_path, capsys):
    root = _rules(tmp_path, {"acme/boom.py": RAISING, "acme/bar-call.yml": GOOD_YAML})
    code = main(["check", str(_patch(tmp_path)), "--rules-dir", str(root), "--select", "acme", "--format", "json"])
    out = json.loads(capsys.readouterr().out)
    assert code == 2
    rules = [f["rule"] for f in out["findings"]]
    assert "acme/bar-call" in rules  # the other rules still ran and were printed
    internal = [f for f in out["findings"] if f["rule"] == "pmureview/internal-error"]
    assert internal and "acme/boom raised RuntimeError: kaboom" in internal[0]["message"]


def test_entry_point_plugins_load_and_are_isolated(tmp_path, monkeypatch):
    import importlib.metadata as md
    import sys

    pkg = tmp_path / "acme_plugin.py"
    pkg.write_text(RAISING.replace("raise RuntimeError(\"kaboom\")", "return []")
                   + "\ndef rules():\n    return [Boom]\n\ndef broken():\n    raise ImportError('nope')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    eps = [md.EntryPoint("acme", "acme_plugin:rules", "pmureview.rules"),
           md.EntryPoint("bad", "acme_plugin:broken", "pmureview.rules")]
    monkeypatch.setattr(md, "entry_points", lambda group=None: [e for e in eps if e.group == group])
    reg = load_registry(shipped=False)
    assert "acme/boom" in reg.rules and reg.rules["acme/boom"].meta.origin == "plugin:acme"
    assert [p.origin for p in reg.problems] == ["plugin:bad"]
    sys.modules.pop("acme_plugin", None)


def test_rules_test_command_runs_the_harness(tmp_path, capsys):
    case = Path(__file__).resolve().parent.parent / "fixtures" / "series"
    code = main(["rules", "test", str(case / "series" / "debug-scaffolding")])
    out = capsys.readouterr().out
    assert code == 0 and "failed" in out and "ok" in out


def test_rule_docs_are_complete_and_in_sync(tmp_path, capsys):
    """Every shipped rule documents what / why / example / use instead, and docs/rules is current."""
    reg = load_registry(plugins=False)
    for rule in reg.rules.values():
        d = rule.meta.docs
        missing = [k for k in ("what", "why", "example", "use_instead") if not getattr(d, k).strip()]
        assert not missing, f"{rule.meta.id}: docs lack {missing}"
    assert main(["rules", "docs", "--out", str(tmp_path)]) == 0
    docs = Path(__file__).resolve().parent.parent / "docs" / "rules"
    stale = [p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*.md")
             if not (docs / p.relative_to(tmp_path)).is_file()
             or (docs / p.relative_to(tmp_path)).read_text() != p.read_text()]
    assert not stale, f"docs/rules is out of date (run `pmureview rules docs`): {stale}"


def test_plugin_scan_is_cached_until_the_import_path_changes(tmp_path, monkeypatch):
    import importlib.metadata as md
    import sys

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    plug = tmp_path / "plug"
    (plug / "__pycache__").mkdir(parents=True)  # as in a real site-packages: imports do not touch plug/
    (plug / "acme_cached.py").write_text(RAISING.replace("raise RuntimeError(\"kaboom\")", "return []")
                                         + "\ndef rules():\n    return [Boom]\n")
    monkeypatch.syspath_prepend(str(plug))
    calls = []
    eps = [md.EntryPoint("acme", "acme_cached:rules", "pmureview.rules")]

    def scan(group=None):
        calls.append(group)
        return [e for e in eps if e.group == group]

    monkeypatch.setattr(md, "entry_points", scan)
    assert "acme/boom" in load_registry(shipped=False, eager=False).rules
    assert "acme/boom" in load_registry(shipped=False, eager=False).rules
    assert len(calls) == 1  # the second review reused the scan
    eps.clear()
    newdir = tmp_path / "site"
    newdir.mkdir()
    monkeypatch.syspath_prepend(str(newdir))  # "a package was installed": the path changed
    assert "acme/boom" not in load_registry(shipped=False, eager=False).rules
    assert len(calls) == 2
    sys.modules.pop("acme_cached", None)
