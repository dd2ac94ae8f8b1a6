"""Hunk-only speed at scale (issue 15): the cheap tests that skip work must never change a finding."""

from __future__ import annotations

from pathlib import Path

import pytest

from pmureview.api import Options, review
from pmureview.lang.pattern import Compiled, parse, regex_clause, required_clauses
from pmureview.rule.model import Severity
from pmureview.testing import discover_cases

ROOT = Path(__file__).resolve().parent.parent / "fixtures" / "series"
RULES = Path(__file__).resolve().parent.parent / "rules"


def test_regex_clause_reads_alternatives_classes_and_quantifiers():
    assert regex_clause("^&$") == {"&"}
    assert regex_clause("^(a|b)$") == {"a", "b"}
    assert regex_clause(r"\bWARN_ON\b") == {"WARN_ON"}
    assert regex_clause("^(read_sysreg(_s|_el[012])?|__vcpu_sys_reg)$") == {"read_sysreg", "__vcpu_sys_reg"}
    assert regex_clause("^ARM_(FUNC|OWNER)_NUM$") == {"ARM_FUNC_NUM", "ARM_OWNER_NUM"}
    assert regex_clause("^[|&^]=$") == {"|=", "&=", "^="}
    assert regex_clause("abc?") == {"ab"}  # the optional character is not required
    assert regex_clause("ab+c") == {"ab"}  # `abbc` holds `ab` and `bc`, not `abc`
    assert regex_clause("x{0,3}y") == {"y"}
    assert regex_clause("[a-z]_is_[a-z]+") == {"_is_"}
    # unsure: no clause (never a wrong one)
    for regex in ("(?i)mask", "[[:alpha:]]x", r"\x41", "a|", "^[A-Z]+$", ".*"):
        assert regex_clause(regex) is None, regex


def test_clauses_combine_any_branches_and_constraints():
    cfg = {"rule": {"any": [{"pattern": "foo($A)"}, {"pattern": "bar($A)"}]}}
    assert frozenset({"foo", "bar"}) in required_clauses(cfg)
    cfg = {"rule": {"pattern": "$M($$$A) >= 0"}, "constraints": {"M": {"regex": "^(FIELD_GET|sizeof)$"}}}
    assert frozenset({"FIELD_GET", "sizeof"}) in required_clauses(cfg)
    # a context pattern's selected node gives its words
    cfg = {"rule": {"pattern": {"context": "x = min(max($X, $LO), $HI);", "selector": "call_expression"}}}
    assert {frozenset({"min"}), frozenset({"max"})} <= required_clauses(cfg)
    # what surrounds the match is not inside it
    cfg = {"rule": {"pattern": "foo($A)", "inside": {"kind": "call_expression", "regex": "^(x|y)"}}}
    assert frozenset({"x", "y"}) in required_clauses(cfg)
    assert frozenset({"x", "y"}) not in required_clauses(cfg, inner=True)


def test_clauses_reject_texts_without_any_alternative():
    c = Compiled({"rule": {"kind": "call_expression", "has": {"field": "function", "regex": "^(kmalloc|kzalloc)$"}}})
    assert c.may_match("p = kzalloc(n, GFP_KERNEL);")
    assert not c.may_match("p = vmalloc(n);")
    src = "void f(void)\n{\n\tp = kzalloc(n, GFP_KERNEL);\n}\n"
    assert [m.start_line for m in c.run(parse(src))] == [3]


def test_run_config_keeps_only_the_utils_a_case_reaches():
    c = Compiled({"rule": {"matches": "a"}, "utils": {"a": {"has": {"matches": "b"}}, "b": {"kind": "identifier"},
                                                        "unused": {"regex": "(?i)slow"}}})
    assert set(c.sg["utils"]) == {"a", "b"}
    assert "utils" not in Compiled({"rule": {"kind": "identifier"}, "utils": {"u": {"kind": "x"}}}).sg


def _pattern_rule_cases() -> list:
    ids = {f"{p.parent.name}/{p.stem}" for p in RULES.glob("*/*.yml") if "\nrule:" in p.read_text()
           or "\ncases:" in p.read_text()}
    return [c for c in discover_cases(ROOT) if c.rule_id in ids]


@pytest.mark.parametrize("case", _pattern_rule_cases(), ids=lambda c: str(c.root.relative_to(ROOT)))
def test_pattern_prefilters_never_skip_a_reported_match(case, monkeypatch):
    """Every case of a pattern rule is run on every view; a match the rule would report must pass the
    text prefilters (`may_match` on the view, `may_match_inner` on the added lines for `cover`)."""
    import pmureview.rule.patternrule as pr

    original = pr.PatternRule.check
    checked: list[int] = []
    called: list[int] = []

    def check(self, ctx):
        called.append(1)
        view = ctx.view
        if view.is_c and view.added:
            added = pr._added_text(view)
            for c in self.cases:
                if not c.runs_on(view.path):
                    continue
                for m in c.compiled.run(view.sg_root(), statement=c.added == "statement"):
                    if c.anchor(view, m) is None:
                        continue
                    checked.append(1)
                    assert c.compiled.may_match(view.text), (self.meta.id, m)
                    assert c.added != "cover" or c.compiled.may_match_inner(added), (self.meta.id, m)
        yield from original(self, ctx)

    monkeypatch.setattr(pr.PatternRule, "check", check)
    review([str(case.root / "series.mbox")], Options(fail_on=Severity.CHECK, select=(case.rule_id,)))
    if case.kind == "bad" and called:
        assert checked, "a bad case reports a match"


def test_leak_walk_is_skipped_only_where_nothing_is_acquired():
    from pmureview.analyses import pairs
    from pmureview.lang.c import functions
    from pmureview.lang.c import parse as c_parse

    src = (b"int f(struct kvm *kvm)\n{\n\tint x = g(kvm);\n\tif (x)\n\t\treturn x;\n\treturn 0;\n}\n"
           b"int h(spinlock_t *l)\n{\n\tspin_lock(l);\n\tif (bad())\n\t\treturn -1;\n\tspin_unlock(l);\n"
           b"\treturn 0;\n}\n")
    fns = dict(functions(c_parse(src).root_node))
    assert not pairs._may_acquire(fns["f"]) and pairs.function_leaks(fns["f"]) == []
    assert pairs._may_acquire(fns["h"])
    assert [lk.exit_line for lk in pairs.function_leaks(fns["h"])] == [12]


def test_a_file_without_an_acquire_name_is_not_parsed_for_leaks():
    from pmureview.analyses import pairs

    words = pairs._acquire_words()
    for name in ("spin_lock", "mutex_lock", "foo_begin", "get_page", "kvm_faultin_pfn", "rcu_read_lock"):
        assert words.search(f"\t{name}(x);"), name
        assert pairs.pair_of(name) is not None
    # every name pair_of() knows holds one of the words (derive(): `lock`/`begin` segments)
    assert all(words.search(n) for n in pairs.table()[0])
    assert not words.search("\treturn frob(x) + 1;")


# -- ASCII regex classes sent to ast-grep -----------------------------------------------------------

def test_ascii_classes_rewrites_perl_classes_and_boundaries() -> None:
    import re

    from pmureview.lang.pattern import _run_config, ascii_classes

    cases = {
        r"^_*kvm_\w*cache$": r"^_*kvm_[0-9A-Za-z_]*cache$",
        r"\bGFP_KERNEL\b": r"(?-u:\b)GFP_KERNEL(?-u:\b)",
        r"^[\sA-Z0-9_|()]+$": r"^[\t\n\x0B\x0C\r A-Z0-9_|()]+$",
        r"\S\s*-\s*1": r"[^\t\n\x0B\x0C\r ][\t\n\x0B\x0C\r ]*-[\t\n\x0B\x0C\r ]*1",
        r"a\\w[\]\d]": r"a\\w[\]0-9]",  # an escaped backslash is not a class; a leading \] stays
        r"(?i)mask|bits$": r"(?i)mask|bits$",
    }
    for before, after in cases.items():
        assert ascii_classes(before) == after
        for text in ("kvm_x_cache", "GFP_KERNEL", "A | B", "x - 1", "a\\w]", "MASK", "é_cache"):
            py_before = re.compile(before.replace("(?-u:", "(?:"), re.ASCII)
            py_after = re.compile(after.replace("(?-u:\\b)", "\\b").replace("(?-u:\\B)", "\\B"), re.ASCII)
            assert bool(py_before.search(text)) == bool(py_after.search(text)), (before, text)
    cfg = {"rule": {"kind": "identifier", "regex": r"\w+", "has": {"regex": r"\d"}},
           "constraints": {"A": {"regex": r"\s"}}}
    run = _run_config(cfg)
    assert run["rule"]["regex"] == "[0-9A-Za-z_]+" and run["rule"]["has"]["regex"] == "[0-9]"
    assert run["constraints"]["A"]["regex"] == "[\\t\\n\\x0B\\x0C\\r ]"
    assert cfg["rule"]["regex"] == r"\w+"  # the rule's own config (token prefilters read it) is unchanged


def test_derived_prefilter_facts_survive_the_per_build_file(tmp_path, monkeypatch) -> None:
    """tokens/inner/clauses/... read back from the per-build file are the ones computed fresh."""
    import marshal

    import pmureview.lang.pattern as pattern
    from pmureview.cachefile import BuildCache
    from pmureview.engine.registry import load_registry

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    cache = BuildCache("pattern-derived-test", 3000)
    monkeypatch.setattr(pattern, "_DERIVED", cache)
    reg = load_registry(plugins=False)
    names = ("tokens", "inner", "clauses", "inner_clauses", "local")
    fresh = {}
    for rule in reg.rules.values():
        for case in getattr(rule, "cases", ()):
            c = case.compiled
            fresh[id(c)] = (c, [getattr(c, n) for n in names])
    assert fresh
    again_cache = BuildCache("pattern-derived-test-2", 3000)
    again_cache.data = marshal.loads(marshal.dumps(cache.load()))
    monkeypatch.setattr(pattern, "_DERIVED", again_cache)
    for c, values in fresh.values():
        again = pattern.Compiled(c.config, c.fix)
        assert [getattr(again, n) for n in names] == values


def test_a_stamped_build_cache_drops_the_files_of_other_stamps(tmp_path, monkeypatch) -> None:
    """One file per code version would pile up over upgrades: writing a stamped cache removes its
    other stamps' files (this Python build's only), and leaves other caches alone."""
    from pmureview.cachefile import BuildCache, per_build_file

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    old = BuildCache("shapes-hook", 10, stamp="aaaa1111")
    old.put("k", 1)
    old._save(per_build_file(old.name))
    other = BuildCache("shapes-cli", 10, stamp="aaaa1111")
    other.put("k", 1)
    other._save(per_build_file(other.name))
    foreign = tmp_path / "pmureview" / "shapes-hook-aaaa1111-other-build.marshal"
    foreign.write_bytes(b"")
    new = BuildCache("shapes-hook", 10, stamp="bbbb2222")
    assert new.get("k") is None  # another version's values are never read
    new.put("k", 2)
    new._save(per_build_file(new.name))
    names = sorted(p.name for p in (tmp_path / "pmureview").iterdir())
    assert [n for n in names if n.startswith("shapes-hook-")] == [
        "shapes-hook-aaaa1111-other-build.marshal", per_build_file("shapes-hook-bbbb2222").rsplit("/", 1)[1]]
    assert any(n.startswith("shapes-cli-aaaa1111-") for n in names)
