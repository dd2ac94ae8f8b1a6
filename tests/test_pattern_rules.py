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
from pmureview.rule.patternrule import PatternRule, removed_lines
from pmureview.rule.yamlrule import YamlRuleError, load_yaml_rule
from pmureview.series.model import ChangeKind, FileChange, Hunk, HunkLine, Message, Patch
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
        probe = ("import sys\nfrom pmureview.entry import main\nmain(sys.argv[1:])\n"
                 "print('LOADED', any(m.startswith('ast_grep_py') for m in sys.modules))")
        r = subprocess.run([sys.executable, "-c", probe, "check", str(mail), "--rules-dir", str(root),
                            "--select", "demo"], capture_output=True, text=True)
        assert f"LOADED {imported}" in r.stdout, (name, r.stdout, r.stderr)


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
    """A review loads YAML from the JSON cache without compiling, and runs it without the validation
    probe (`rules list` and the tests validate): only the matching is paid for."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    _load(tmp_path, MIN_RULE, "demo/open-coded-min.yml")
    reg = load_registry([tmp_path / "rules"], shipped=False, plugins=False, eager=False)
    rule = reg.rules["demo/open-coded-min"]
    assert isinstance(rule, PatternRule) and not rule._compiled
    assert _run(rule, {9}) == [(9, 6, "open-coded min(): use min(a, b)")] and not rule._compiled


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


# -- engine filters: severity, files, exclude-files, function, not-function, new-only (A1b) -----------

FILTERS = """\
id: demo/filters
title: t
severity: check
{top}cases:
  - rule: {{pattern: '($A < $B) ? $A : $B'}}
    message: "min"
{case}
  - rule: {{pattern: '($A > $B) ? $A : $B'}}
    message: "max"
docs: {{what: x}}
"""


def _filters(tmp_path, top: str = "", case: str = ""):
    return _load(tmp_path, FILTERS.format(top=top, case=case), "demo/filters.yml")


def _fctx(text: str, added: set[int], path: str = "arch/arm64/kvm/foo.c", *, known: bool = True,
          removed: tuple[tuple[str, str], ...] = ()) -> FileContext:
    """A context whose view knows every line (or none), in a patch whose files remove `removed`
    ((path, line text) pairs) besides touching `path`."""
    mail = Message(msgid="m@x", subject="[PATCH] x", title="x", author_name="A", author_email="a@x", date="")
    change = FileChange(path=path, old_path=None, kind=ChangeKind.MODIFIED)
    others = tuple(FileChange(path=p, old_path=None, kind=ChangeKind.MODIFIED, hunks=(
        Hunk(old_start=1, old_len=1, new_start=1, new_len=0, section="",
             lines=(HunkLine(kind="-", text=t, old_no=1, new_no=None),)),)) for p, t in removed)
    patch = Patch(number=1, mail=mail, message="", message_start=1, files=(change, *others))
    n = text.count("\n")
    view = FileView(patch=patch, change=change, text=text, added=frozenset(added),
                    mode="full" if known else "hunk-only", known=frozenset(range(1, n + 1)) if known else frozenset())
    return FileContext(series=None, patch=patch, view=view)  # type: ignore[arg-type]


def _frun(rule, ctx) -> list[tuple[int, str, str]]:
    return [(f.location.line, f.message, f.severity.value) for f in rule.check(ctx)]


def test_severity_per_case_overrides_the_top_level(tmp_path):
    rule = _filters(tmp_path, case="    severity: error")
    assert rule.meta.severity.value == "check" and [c.severity.value for c in rule.cases] == ["error", "check"]
    two_lines = SOURCE.replace("; y = (a > b)", ";\n\ty = (a > b)")
    assert _frun(rule, _fctx(two_lines, {9, 10})) == [(9, "min", "error"), (10, "max", "check")]
    single = _load(tmp_path, MIN_RULE.replace("severity: warning", "severity: error"))
    assert [f.severity.value for f in single.check(_fctx(SOURCE, {9}))] == ["error"]


def test_files_and_exclude_files_per_case_and_top_level(tmp_path):
    rule = _filters(tmp_path, top='exclude-files: ["include/uapi/*", "tools/*"]\n',
                    case='    files: ["arch/arm64/kvm/hyp/nvhe/*"]\n    exclude-files: ["setup.c"]')
    run = lambda path: [m for _, m, _ in _frun(rule, _fctx(SOURCE, {9}, path))]  # noqa: E731
    assert run("arch/arm64/kvm/hyp/nvhe/mem.c") == ["min"]  # line 9 holds both: the first case wins
    assert run("arch/arm64/kvm/hyp/nvhe/setup.c") == ["max"]  # the case's exclude: by basename
    assert run("arch/arm64/kvm/arm.c") == ["max"]  # outside the case's files
    assert run("include/uapi/linux/kvm.h") == [] and run("tools/testing/x.c") == []  # the top-level exclude
    # a case's files decides alone; the rule's meta.files lets the runner hand every such file over
    wide = _filters(tmp_path, top='files: ["virt/*"]\n', case='    files: ["arch/*"]')
    assert wide.meta.files == ("arch/*", "virt/*") and [c.files for c in wide.cases] == [("arch/*",), ("virt/*",)]
    assert _frun(wide, _fctx(SOURCE, {9}, "virt/kvm/x.c")) == [(9, "max", "check")]
    assert _filters(tmp_path).meta.files == ("*.c", "*.h")


def test_function_and_not_function(tmp_path):
    def msgs(top: str = "", case: str = "", known: bool = True, text: str = SOURCE) -> list[str]:
        return [m for _, m, _ in _frun(_filters(tmp_path, top, case), _fctx(text, {9}, known=known))]

    assert msgs(case="    function: '^f$'") == ["min"]
    assert msgs(case="    function: '^g'") == ["max"]  # min is silent: the line goes to the next case
    assert msgs(case="    not-function: '^f'") == ["max"]
    assert msgs(case="    not-function: '_load$'") == ["min"]
    assert msgs(top="function: 'vcpu_load'\n") == []  # the top level applies to every case
    assert msgs(top="function: 'vcpu_load'\n", case="    function: '^f'") == ["min"]  # the case wins
    # the enclosing function unknown (no line of the view known): both keys stay silent
    assert msgs(case="    function: '.'", known=False) == ["max"]
    assert msgs(case="    not-function: 'nothing'", known=False) == ["max"]
    # at top level, outside any function
    outside = "int x = (a < b) ? a : b;\n"
    assert [m for _, m, _ in _frun(_filters(tmp_path, case="    not-function: 'z'"), _fctx(outside, {1}))] == []


def test_new_only_drops_moved_lines(tmp_path):
    rule = _filters(tmp_path, top="new-only: true\n")
    line9 = SOURCE.split("\n")[8]
    moved = ("arch/arm64/kvm/other.c", "  x = (a < b) ?   a : b;  y = (a > b) ? a : b;")  # whitespace differs
    assert _frun(rule, _fctx(SOURCE, {9}, removed=(moved,))) == []  # moved from another file
    assert _frun(rule, _fctx(SOURCE, {9}, removed=(("x.c", line9 + " z"),))) == [(9, "min", "check")]
    assert _frun(_filters(tmp_path), _fctx(SOURCE, {9}, removed=(moved,))) == [(9, "min", "check")]
    # a removed `}` or blank line says nothing about moved code
    ctx = _fctx(SOURCE, {9}, removed=(("x.c", "\t}"), ("y.c", "\t"), ("z.c", "\tint  q;")))
    assert removed_lines(ctx.view) == {"int q;"}
    call = _load(tmp_path, CALL.format(mode="overlap", fn="bar").replace("overlap", "overlap\nnew-only: true"),
                 "demo/call.yml")
    assert [ln for ln, _, _ in _frun(call, _fctx(SOURCE, {5, 6}))] == [5]
    assert _frun(call, _fctx(SOURCE, {5, 6}, removed=(("x.c", "if (bar(a) &&"),))) == []
    # statement mode: the statement's added lines count when the match itself has none
    stmt = _load(tmp_path, CALL.format(mode="statement", fn="bar").replace("added: statement",
                 "added: statement\nnew-only: true"), "demo/call.yml")
    assert [ln for ln, _, _ in _frun(stmt, _fctx(SOURCE, {6}))] == [6]
    assert _frun(stmt, _fctx(SOURCE, {6}, removed=(("x.c", "baz(b)) {"),))) == []


@pytest.mark.parametrize(("top", "case", "problem"), [
    ("", "    severity: fatal", "cases[0]: severity: must be one of"),
    ("", "    files: '*.c'", "cases[0]: `files:` must be a list of globs"),
    ('exclude_files: ["x"]\n', "", "unknown keys: exclude_files"),
    ("", "    not_function: x", "cases[0]: unknown keys: not_function (did you mean not-function?)"),
    ("", "    function: 'kvm_(vcpu'", "cases[0]: `function:` bad regex 'kvm_(vcpu'"),
    ("not-function: '['\n", "", "`not-function:` bad regex"),
    ("", "    new-only: yes please", "cases[0]: new-only: must be true or false"),
    ("exclude-files: x\n", "", "`exclude-files:` must be a list of globs"),
])
def test_malformed_filters_fail_at_load(tmp_path, top, case, problem):
    with pytest.raises(YamlRuleError, match=re.escape(problem)):
        _filters(tmp_path, top, case)


def test_bad_function_regex_names_the_file_in_rules_list(tmp_path, capsys):
    bad = tmp_path / "rules" / "demo" / "filters.yml"
    bad.parent.mkdir(parents=True)
    bad.write_text(FILTERS.format(top="", case="    function: '('"))
    assert main(["rules", "list", "--rules-dir", str(tmp_path / "rules")]) == 2
    err = capsys.readouterr().err
    assert str(bad) in err and "bad regex" in err


def test_function_from_the_hunk_heading_on_a_real_diff(tmp_path):
    """Hunk-only: the function's header is outside the hunk; its name comes from the hunk heading."""
    from mailfactory import patch_mail

    from pmureview.series.parse import parse_series
    from pmureview.views.image import build_views

    base = ("static void timer_vcpu_load(int a, int b)\n{\n\tint x;\n\n\tx = a;\n\tx += b;\n\tx -= a;\n\tx *= b;\n"
            "\tx /= 2;\n\tuse(x);\n}\n")
    repo = tmp_path / "repo"
    (repo / "arch").mkdir(parents=True)
    (repo / "arch" / "t.c").write_text(base)
    git = ["git", "-C", str(repo), "-c", "user.name=T", "-c", "user.email=t@example.org"]
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    subprocess.run([*git, "add", "-A"], check=True)
    subprocess.run([*git, "commit", "-qm", "base"], check=True)
    (repo / "arch" / "t.c").write_text(base.replace("\tx /= 2;\n", "\tx /= 2;\n\tx = (a < b) ? a : b;\n"))
    diff = subprocess.run([*git, "diff"], check=True, capture_output=True, text=True).stdout
    series, _ = parse_series([patch_mail(diff=diff).encode()])
    views, _ = build_views(series, None)
    view = views[1][0]
    assert view.mode == "hunk-only" and 1 not in view.known and "timer_vcpu_load" in view.change.hunks[0].section
    ctx = FileContext(series=None, patch=series.patches[0], view=view)  # type: ignore[arg-type]
    for key, want in [("function: '_vcpu_(load|put)$'", ["min"]), ("not-function: 'vcpu_load'", [])]:
        rule = _load(tmp_path, FILTERS.format(top=key + "\n", case=""), "demo/filters.yml")
        assert [m for _, m, _ in _frun(rule, ctx)] == want, key
