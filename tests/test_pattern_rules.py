"""C pattern rules (ast-grep): loading, `added:` modes, messages and fixes, the prefilter, and a
third-party rules folder run on a real git format-patch series and through `pmureview rules test`."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from pmureview.engine.registry import load_registry
from pmureview.entry import main
from pmureview.lang.pattern import metavariables, required_tokens
from pmureview.rule.patternrule import PatternRule
from pmureview.rule.yamlrule import YamlRuleError, load_yaml_rule
from pmureview.series.model import ChangeKind, FileChange, Message, Patch
from pmureview.testing import build_series
from pmureview.views.context import FileContext, FileView

MIN_RULE = """\
id: demo/open-coded-min
title: Open-coded min()
severity: warning
confidence: medium
rule:
  pattern: '($A < $B) ? $A : $B'
fix: min($A, $B)
message: "open-coded min(): use min({A}, {B})"
note: "{A} and {B} are compared twice"
docs: {what: x, why: y, example: z, use_instead: w}
"""

CASES_RULE = """\
id: demo/minmax
title: Open-coded min() or max()
severity: check
added: overlap
cases:
  - rule: {pattern: '($A < $B) ? $A : $B'}
    fix: min($A, $B)
    message: "use min({A}, {B})"
  - rule: {pattern: '($A > $B) ? $A : $B'}
    message: "use max({A}, {B})"
    added: cover
  - rule: {pattern: {context: 'x = WARN_ON($$$ARGS);', selector: call_expression}}
docs: {what: x}
message: "WARN_ON({ARGS})"
"""

SOURCE = """\
int f(int a, int b)
{
\tint x = foo(a,
\t\t    b);
\tif (bar(a) &&
\t    baz(b)) {
\t\tx = 1;
\t}
\tx = (a < b) ? a : b; y = (a > b) ? a : b;
\treturn x;
}
"""


def _load(tmp_path: Path, text: str, name: str = "demo/rule.yml", eager: bool = True):
    p = tmp_path / "rules" / name
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(text)
    return load_yaml_rule(p, eager=eager)


def _ctx(text: str, added: set[int], path: str = "arch/arm64/kvm/foo.c") -> FileContext:
    mail = Message(msgid="m@x", subject="[PATCH] x", title="x", author_name="A", author_email="a@x", date="")
    patch = Patch(number=1, mail=mail, message="", message_start=1)
    change = FileChange(path=path, old_path=None, kind=ChangeKind.MODIFIED)
    view = FileView(patch=patch, change=change, text=text, added=frozenset(added))
    return FileContext(series=None, patch=patch, view=view)  # type: ignore[arg-type]


def _run(rule, added: set[int], text: str = SOURCE) -> list[tuple[int, int | None, str]]:
    return [(f.location.line, f.location.column, f.message) for f in rule.check(_ctx(text, added))]


# -- loading -----------------------------------------------------------------------------------------

def test_single_case_form_loads_and_fires_with_metavariables_and_fix(tmp_path):
    rule = _load(tmp_path, MIN_RULE)
    assert isinstance(rule, PatternRule) and rule.meta.id == "demo/open-coded-min"
    [f] = rule.check(_ctx(SOURCE, {9}))
    assert (f.location.line, f.location.column) == (9, 6)
    assert f.message == "open-coded min(): use min(a, b)" and f.note == "a and b are compared twice"
    assert f.suggestion == "min(a, b)" and f.snippet == SOURCE.split("\n")[8]


def test_cases_form_inherits_message_and_folds_one_line(tmp_path):
    rule = _load(tmp_path, CASES_RULE, "demo/minmax.yml")
    assert len(rule.cases) == 3 and [c.added for c in rule.cases] == ["overlap", "cover", "overlap"]
    # line 9 holds a min and a max: one finding per line, the first case wins
    assert _run(rule, {9}) == [(9, 6, "use min(a, b)")]
    text = SOURCE.replace("x = 1;", "x = WARN_ON(a, b);")
    assert _run(rule, {7}, text) == [(7, 7, "WARN_ON(a, b)")]


@pytest.mark.parametrize(("text", "problem"), [
    (MIN_RULE + "sevrity: error\n", "unknown keys: sevrity"),
    (MIN_RULE.replace("use min({A}, {B})", "use min({A}, {C})"), "no pattern has: $C"),
    (MIN_RULE.replace("'($A < $B) ? $A : $B'", "'foo($A)'").replace(", {B}", "").replace("{B}", "x")
     .replace("min($A, $B)", "m"), "parses as a type"),
    (MIN_RULE.replace("pattern:", "patern:"), "unknown ast-grep rule key(s) patern"),
    (MIN_RULE.replace("rule:\n", "query: x\nrule:\n"), "exactly one of query:, regex:, rule: or cases:"),
    (MIN_RULE + "constraints: {Z: {regex: x}}\n", "Undefined meta var `Z`"),
    (MIN_RULE + "added: sometimes\n", "added: must be one of"),
    (CASES_RULE.replace("    added: cover\n", "    added: cover\n    tone: x\n"), "cases[1]: unknown keys: tone"),
    (CASES_RULE.replace("message: \"WARN_ON({ARGS})\"\n", ""), "cases[2]: missing key: message"),
])
def test_malformed_pattern_rule_fails_at_load(tmp_path, text, problem):
    with pytest.raises(YamlRuleError, match=re.escape(problem)):
        _load(tmp_path, text)


def test_rules_list_exits_2_naming_the_broken_file(tmp_path, capsys):
    _load(tmp_path, MIN_RULE, "demo/open-coded-min.yml")
    bad = tmp_path / "rules" / "demo" / "broken.yml"
    bad.write_text(MIN_RULE.replace("open-coded-min", "broken").replace("'($A < $B) ? $A : $B'", "'($A < $B) ? $A :'"))
    assert main(["rules", "list", "--rules-dir", str(tmp_path / "rules")]) == 2
    err = capsys.readouterr().err
    assert str(bad) in err and "does not parse as C" in err


def test_lazy_load_validates_on_first_use(tmp_path):
    text = MIN_RULE.replace("'($A < $B) ? $A : $B'", "'($A < $B) ? $A : $B'\n  kind: no_such_kind")
    rule = _load(tmp_path, text, eager=False)  # a review loads without ast-grep
    with pytest.raises(YamlRuleError, match="no_such_kind"):
        list(rule.check(_ctx(SOURCE, {9})))


def test_transform_metavariables_reach_message_and_fix(tmp_path):
    text = MIN_RULE + "transform: {SHORT: {substring: {source: $A, endChar: 1}}}\n"
    text = text.replace("fix: min($A, $B)", "fix: min($SHORT, $B)")
    text = text.replace("use min({A}, {B})", "use min({SHORT}, {B})")
    [f] = _load(tmp_path, text).check(_ctx(SOURCE.replace("(a < b) ? a : b", "(ab < b) ? ab : b"), {9}))
    assert (f.message, f.suggestion) == ("open-coded min(): use min(a, b)", "min(a, b)")


def test_fragments_and_undecodable_bytes_do_not_raise(tmp_path):
    rule = _load(tmp_path, MIN_RULE)
    broken = b"\t\tx = (a < b) ? a : b; /* \xff\xfe */\n\t}\n}\n#if\n\tif (\n".decode("utf-8", "surrogateescape")
    assert _run(rule, {1, 2, 3, 4, 5}, broken) == [(1, 7, "open-coded min(): use min(a, b)")]


# -- added: modes ----------------------------------------------------------------------------------

CALL = """\
id: demo/call
title: t
severity: check
added: {mode}
rule: {{pattern: {{context: 'x = {fn}($$$ARGS);', selector: call_expression}}}}
message: "{fn}({{ARGS}})"
"""


@pytest.mark.parametrize(("mode", "fn", "added", "want"), [
    ("cover", "foo", {3}, []),  # foo(a,\n b) spans 3-4
    ("cover", "foo", {3, 4}, [(3, 10, "foo(a,\n\t\t    b)")]),
    ("overlap", "foo", {4}, [(4, None, "foo(a,\n\t\t    b)")]),
    ("statement", "foo", {4}, [(4, None, "foo(a,\n\t\t    b)")]),
    ("overlap", "bar", {6}, []),  # bar(a) is on line 5
    ("statement", "bar", {6}, [(6, None, "bar(a)")]),  # the if's condition spans 5-6
    ("statement", "bar", {7}, []),  # a new line in the if's body is not the condition
    ("statement", "baz", {5}, [(5, None, "baz(b)")]),
])
def test_added_modes(tmp_path, mode, fn, added, want):
    rule = _load(tmp_path, CALL.format(mode=mode, fn=fn), "demo/call.yml")
    assert _run(rule, added) == want


def test_statement_mode_in_a_table_is_the_element(tmp_path):
    table = "static const int tbl[] = {\n\tfoo(1),\n\tfoo(2),\n\t[3] = foo(3),\n};\n"
    rule = _load(tmp_path, CALL.format(mode="statement", fn="foo"), "demo/call.yml")
    assert [line for line, _, _ in _run(rule, {3}, table)] == [3]  # not every entry of the table
    assert [line for line, _, _ in _run(rule, {4}, table)] == [4]
    assert [line for line, _, _ in _run(rule, {1}, table)] == []


# -- the lang layer ----------------------------------------------------------------------------------

def test_required_tokens():
    assert required_tokens({"rule": {"pattern": "foo($A, $$$B);"}}) == {"foo"}
    both = {"rule": {"all": [{"pattern": "foo($A);"}, {"inside": {"pattern": "if ($C) $$$B", "stopBy": "end"}}],
                     "not": {"pattern": "bar($A);"}}}
    assert required_tokens(both) == {"foo", "if"}
    assert required_tokens({"rule": {"any": [{"pattern": "foo($A, x);"}, {"pattern": "foo(y, $A);"}]}}) == {"foo"}
    assert required_tokens({"rule": {"matches": "u"}, "utils": {"u": {"pattern": "kfree($P);"}}}) == {"kfree"}
    call = {"context": "x = kfree($P);", "selector": "call_expression"}
    assert required_tokens({"rule": {"pattern": call}}) == {"kfree"}  # the only call of the context
    nested = {"context": "x = f(kfree($P));", "selector": "call_expression"}
    assert required_tokens({"rule": {"pattern": nested}}) == set()  # which call? unsure: no prefilter
    assert required_tokens({"rule": {"pattern": {"context": "x = $F($P);", "selector": "call_expression"}}}) == set()
    assert required_tokens({"rule": {"kind": "call_expression"}}) == set()


def test_metavariables():
    names, multi = metavariables({"rule": {"pattern": "foo($A, $$$B, $_C, $$D)"}, "transform": {"E": {}}})
    assert names == {"A", "B", "D", "E"} and multi == {"B"}


def test_prefilter_skips_files_without_the_words(tmp_path, monkeypatch):
    rule = _load(tmp_path, CALL.format(mode="overlap", fn="foo").replace(
        "{pattern: {context: 'x = foo($$$ARGS);', selector: call_expression}}", "{pattern: 'foo($$$ARGS);'}"),
        "demo/call.yml")
    ctx = _ctx("int g(void)\n{\n\treturn 0;\n}\n", {3})
    assert list(rule.check(ctx)) == [] and ctx.view._sg is None  # never parsed


def test_hook_path_does_not_import_ast_grep_without_a_matching_file(tmp_path):
    """A pattern rule on a series touching no C file (or no file with its words) costs no import."""
    root = tmp_path / "rules"
    _load(tmp_path, MIN_RULE, "demo/open-coded-min.yml")
    from mailfactory import patch_mail, simple_diff, write

    for name, diff, imported in [("doc", simple_diff("Documentation/x.rst", ("text",)), False),
                                 ("c", simple_diff(added=("\tx = (a < b) ? a : b;",)), True)]:
        mail = write(tmp_path, f"{name}.patch", patch_mail(diff=diff))
        r = subprocess.run([sys.executable, "-X", "importtime", "-m", "pmureview", "check", str(mail),
                            "--rules-dir", str(root), "--select", "demo"], capture_output=True, text=True)
        assert ("ast_grep_py" in r.stderr) == imported, name


# -- a third-party rules folder ----------------------------------------------------------------------

BASE_C = """\
#include <linux/kernel.h>

static int pick(int a, int b)
{
\treturn a;
}
"""


def _case(root: Path, kind: str, body: str, expected: dict) -> Path:
    case = root / "demo" / "open-coded-min" / f"{kind}-case"
    (case / "tree" / "drivers").mkdir(parents=True)  # a base tree: the case runs in both modes
    (case / "src" / "1" / "drivers").mkdir(parents=True)
    (case / "tree" / "drivers" / "pick.c").write_text(BASE_C)
    (case / "src" / "1" / "drivers" / "pick.c").write_text(BASE_C.replace("\treturn a;\n", body))
    (case / "src" / "series.yml").write_text(yaml.safe_dump({
        "version": 2, "patches": [{"subject": "drivers: pick the smaller one",
                                   "message": "Pick it.\n\nSigned-off-by: Ann Author <ann@example.org>"}]}))
    (case / "expected.yml").write_text(yaml.safe_dump(expected))
    build_series(case)
    return case


def test_third_party_pattern_folder_fires_on_a_real_series_and_passes_rules_test(tmp_path, capsys):
    rules = tmp_path / "rules"
    _load(tmp_path, MIN_RULE, "demo/open-coded-min.yml")
    fixtures = tmp_path / "fixtures"
    want = {"rule": "demo/open-coded-min", "patch": 1, "path": "drivers/pick.c", "line": 5, "severity": "warning"}
    bad = _case(fixtures, "bad", "\treturn (a < b) ? a : b;\n", {"findings": [want]})
    _case(fixtures, "good", "\treturn (a < b) ? b : a;\n", {})  # that is max(): a near-miss

    assert main(["check", str(bad / "series.mbox"), "--rules-dir", str(rules), "--select", "demo",
                 "--format", "json"]) != 2
    out = json.loads(capsys.readouterr().out)
    got = [(f["rule"], f["path"], f["line"], f["column"], f["suggestion"]) for f in out["findings"]]
    assert got == [("demo/open-coded-min", "drivers/pick.c", 5, 9, "min(a, b)")]

    assert main(["rules", "test", str(fixtures), "--rules-dir", str(rules)]) == 0
    report = capsys.readouterr().out
    for case in ("bad-case", "good-case"):
        for mode in ("hunk-only", "full"):
            assert f"ok   demo/open-coded-min/{case} [{mode}]" in report
    assert "4 passed, 0 failed" in report


def test_shipped_and_cached_load_keeps_pattern_rules_lazy(tmp_path, monkeypatch):
    """A review loads YAML from the JSON cache without compiling: the pattern is checked on first use."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    _load(tmp_path, MIN_RULE, "demo/open-coded-min.yml")
    reg = load_registry([tmp_path / "rules"], shipped=False, plugins=False, eager=False)
    rule = reg.rules["demo/open-coded-min"]
    assert isinstance(rule, PatternRule) and not rule._compiled
    assert _run(rule, {9}) == [(9, 6, "open-coded min(): use min(a, b)")] and rule._compiled


def test_docs_worked_example_loads_and_fires(tmp_path):
    """The worked example of docs/pattern-rules.md is a real rule: it loads and flags its try.c."""
    text = (Path(__file__).resolve().parent.parent / "docs" / "pattern-rules.md").read_text()
    start = text.index("```yaml\nid: acme/free-null-check\n") + len("```yaml\n")
    rule = _load(tmp_path, text[start:text.index("```", start)], "acme/free-null-check.yml")
    try_c = "void demo(char *buf, char *other)\n{\n\tif (buf)\n\t\tkfree(buf);\n\tif (other)\n" \
            "\t\tkfree(other);\n\telse\n\t\tother = NULL;\n\tif (buf != NULL) {\n\t\tvfree(buf);\n\t}\n}\n"
    got = [(f.location.line, f.message, f.suggestion) for f in rule.check(_ctx(try_c, set(range(1, 13))))]
    assert got == [(3, "kfree(NULL) is a no-op: drop the 'if (buf)'", "kfree(buf);"),
                   (9, "vfree(NULL) is a no-op: drop the 'if (buf != NULL)'", "vfree(buf);")]
