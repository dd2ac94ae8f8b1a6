"""Issue 15, pattern rules and scale: what is kept across patches or calls must never change a finding."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from fixture_texts import fixture_c_texts
from mailfactory import mbox, patch_mail

from pmureview.analyses import fgtflow
from pmureview.api import Options, load_series
from pmureview.series.mail import split_mbox
from pmureview.series.parse import parse_series
from pmureview.views.context import HUNK_ONLY, SeriesContext
from pmureview.views.image import build_views

ROOT = Path(__file__).resolve().parent.parent / "fixtures" / "series"
BENCH = Path.home() / ".cache" / "pmureview-bench"


def _ctx_of(series: Any) -> SeriesContext:
    views, _ = build_views(series, None)
    return SeriesContext(series=series, mode=HUNK_ONLY, views=views)


def _where(src: Any) -> tuple[str, int | None]:
    return src.path, getattr(getattr(src, "patch", None), "number", None)


def _analysis(ctx: SeriesContext, *, memo: bool, monkeypatch: pytest.MonkeyPatch) -> Any:
    with monkeypatch.context() as m:
        if not memo:
            m.setattr(fgtflow.Flow, "_answers_same", lambda self, deps: False)
        groups, masks = fgtflow.analyse(ctx)
    return ([(*_where(g.src), g.line, g.register, g.op, [b.name for b in g.bits],
              [h.name for b in g.bits for h in b.hops], g.direct, g.primary, g.writer, g.named,
              g.stmt.start_byte if g.stmt is not None else None) for g in groups],
            [(*_where(s.src), s.line, s.name, s.kind, [b.name for b in s.bits]) for s in masks])


def _fgt_series() -> list[Path]:
    cases = sorted(p.parent for rule in ("fgt-trap-polarity", "fgt-cross-register-field", "fgt-config-outside-config-c")
                   for p in (ROOT / "kvmarm" / rule).glob("*/series.mbox"))
    cases += sorted(p.parent for p in (ROOT / "series" / "commit-message-claim-unbacked").glob("*/series.mbox"))
    return cases + [d for n in (24, 100) if (d := BENCH / f"series-6.1-{n}" / "series").is_dir()]


@pytest.mark.parametrize("case", _fgt_series(), ids=lambda p: f"{p.parent.name}/{p.name}")  # bench: <n>/series
def test_fgt_writes_kept_across_patches_change_nothing(case: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def fresh() -> SeriesContext:
        series, _ = load_series([str(case / "series.mbox")], Options())
        return _ctx_of(series)

    assert _analysis(fresh(), memo=True, monkeypatch=monkeypatch) == \
        _analysis(fresh(), memo=False, monkeypatch=monkeypatch)


def _diff(path: str, start: int, lines: list[str]) -> str:
    plus = "".join(f"+{ln}\n" for ln in lines)
    return (f"diff --git a/{path} b/{path}\nindex 1111111..2222222 100644\n--- a/{path}\n+++ b/{path}\n"
            f"@@ -{start},0 +{start},{len(lines)} @@\n{plus}")


def test_an_unchanged_writer_is_read_again_when_a_later_patch_defines_its_helper(
        monkeypatch: pytest.MonkeyPatch) -> None:
    writer = _diff("arch/arm64/kvm/config.c", 10, [
        "static void setup_fgt(struct kvm_vcpu *vcpu)", "{",
        "\t*vcpu_fgt(vcpu, HDFGRTR2_EL2) |= pmu_trap_bits();", "}"])
    helper = _diff("arch/arm64/kvm/pmu.c", 20, [
        "static u64 pmu_trap_bits(void)", "{", "\treturn HDFGRTR2_EL2_nPMICNTR_EL0;", "}"])
    other = _diff("arch/arm64/kvm/pmu.c", 40, ["static int unrelated;"])
    mails = [patch_mail(subject=f"[PATCH {i}/3] KVM: arm64: Step {i}", msgid=f"p{i}@example.org", diff=d)
             for i, d in enumerate((writer, helper, other), 1)]
    series, _ = parse_series(split_mbox(mbox(*mails).encode()))

    kept = _analysis(_ctx_of(series), memo=True, monkeypatch=monkeypatch)
    assert kept == _analysis(_ctx_of(series), memo=False, monkeypatch=monkeypatch)
    # the helper patch makes the write resolve: the finding goes on the helper, in patch 2
    assert any(g[:2] == ("arch/arm64/kvm/pmu.c", 2) and "HDFGRTR2_EL2_nPMICNTR_EL0" in g[5] for g in kept[0])


# -- the relaxed rule a pattern case asks first --------------------------------------------------------

def test_relaxed_rule_keeps_only_conditions_every_match_meets() -> None:
    from pmureview.lang.pattern import _anonymous, relaxed

    assert _anonymous("$A & ($B - 1) + $$$REST + $_X") == "$_ & ($_ - 1) + $$$ + $_"
    cfg = {"rule": {"kind": "binary_expression", "has": {"field": "operator", "regex": "^&$"},
                    "pattern": "$N & ($N - 1)", "not": {"inside": {"kind": "if_statement"}},
                    "any": [{"matches": "u"}, {"kind": "call_expression"}],
                    "inside": {"kind": "function_definition", "stopBy": {"not": {"kind": "comment"}}}},
           "utils": {"u": {"kind": "identifier", "regex": "^[A-Z]+$", "has": {"pattern": "$X"}}},
           "constraints": {"N": {"regex": "^x$"}}}
    assert relaxed(cfg) == {"rule": {"all": [
        {"kind": "binary_expression"},  # the operator's regex and the `not` are left out
        {"pattern": "$_ & ($_ - 1)"},  # a repeated name no longer has to match the same text
        {"any": [{"all": [{"kind": "identifier"}, {"has": {"pattern": "$_"}}]}, {"kind": "call_expression"}]},
        # the stopBy rule could stop the search sooner once relaxed: the relation is left out
    ]}}
    # an `any` branch that says nothing once relaxed: the `any` says nothing
    assert relaxed({"rule": {"kind": "x", "any": [{"regex": "a"}, {"kind": "y"}]}}) == {"rule": {"kind": "x"}}
    # a relation whose target relates further is left out (a search per node it reaches)
    cfg = {"rule": {"kind": "x", "regex": "a", "has": {"kind": "y"},
                    "inside": {"kind": "function_definition", "has": {"kind": "z", "stopBy": "end"}, "stopBy": "end"}}}
    assert relaxed(cfg) == {"rule": {"all": [{"kind": "x"}, {"has": {"kind": "y"}}]}}
    # nothing costly to leave out (no regex): the case runs as it is
    assert relaxed({"rule": {"pattern": "foo($A)", "not": {"kind": "x"}}}) is None
    assert relaxed({"rule": {"regex": "^foo$"}}) is None  # nothing left


def _registry_cases() -> list[tuple[str, Any]]:
    from pmureview.engine.registry import load_registry

    reg = load_registry(plugins=False)
    return [(r.meta.id, c.compiled) for r in reg.rules.values() for c in getattr(r, "cases", ())]


def test_every_match_of_a_shipped_case_matches_its_relaxed_rule() -> None:
    """Over every C file of the fixtures (the tracked trees, and every series' hunk-only post-image
    views): a node a case matches matches the relaxed rule, and no text where the relaxed rule finds
    nothing holds a match."""
    from pmureview.lang.pattern import parse

    cases = [(rid, c) for rid, c in _registry_cases() if c.pre is not None]
    assert len(cases) > 20
    matches = 0
    for f, text in fixture_c_texts():
        root = parse(text).root()
        for rid, c in cases:
            if not c.may_match(text):
                continue
            full = root.find_all(c.sg)
            assert not full or root.find(c.pre) is not None, (rid, f)
            for node in full:
                matches += 1
                assert node.matches(**c.pre["rule"]), (rid, f, node.text())
    assert matches > 50


# -- building pattern rules on the hook path ---------------------------------------------------------------

def _metavariables_by_walk(config: dict[str, Any]) -> tuple[set[str], set[str]]:
    """The former reading: the rule's patterns following `matches:`, then every util's."""
    import re

    from pmureview.lang.pattern import _patterns

    names: set[str] = set()
    multi: set[str] = set()
    utils = config.get("utils") or {}
    texts = list(_patterns(config.get("rule"), utils))
    for util in utils.values():
        texts += _patterns(util, utils)
    for text in texts:
        for m in re.finditer(r"\$(\$\$)?([A-Z_][A-Z0-9_]*)", text):
            if not m.group(2).startswith("_"):
                names.add(m.group(2))
                if m.group(1):
                    multi.add(m.group(2))
    names |= {str(n) for n in config.get("transform") or {}}
    return names, multi


def test_metavariables_read_once_per_shared_util_are_the_same() -> None:
    from pmureview.lang.pattern import metavariables

    cases = _registry_cases()
    assert len(cases) > 50
    memo: dict[Any, Any] = {}
    for rid, c in cases:
        want = _metavariables_by_walk(c.config)
        assert metavariables(c.config) == want, rid
        assert metavariables(c.config, memo) == want, rid
        assert (c.names, c.multi) == want, rid


def test_a_bad_shared_util_is_still_named() -> None:
    from pmureview.rule.model import RuleMeta, Severity
    from pmureview.rule.patternrule import PatternRule
    from pmureview.rule.yamlrule import YamlRuleError

    meta = RuleMeta(id="x/y", title="t", severity=Severity.WARNING)
    data = {"id": "x/y", "title": "t", "severity": "warning", "message": "m",
            "utils": {"good": {"kind": "identifier"}, "bad": {"kind": "identifier", "hass": {"kind": "x"}}},
            "cases": [{"rule": {"pattern": "a($A)"}}, {"rule": {"pattern": "b($A)"}}]}
    with pytest.raises(YamlRuleError, match=r"utils\.bad: unknown ast-grep rule key\(s\) hass"):
        PatternRule(meta, data, eager=False)
    data["utils"]["bad"] = {"kind": "identifier"}
    data["cases"][1]["utils"] = {"good": {"pattern": "$X", "nope": 1}}  # a case's own util of the same name
    with pytest.raises(YamlRuleError, match=r"utils\.good: unknown ast-grep rule key\(s\) nope"):
        PatternRule(meta, data, eager=False)


def test_relaxed_rule_changes_no_run_whole_file_or_units() -> None:
    """Compiled.run with the relaxed rule asked first gives the matches it gives without it, on the
    whole file and on the units of some lines (full mode), on every fixture C file."""
    from pmureview.lang.pattern import Compiled, parse, units

    cases = [(rid, c) for rid, c in _registry_cases() if c.pre is not None]
    plain = {id(c): Compiled(c.config, c.fix) for _rid, c in cases}
    for c in plain.values():
        c.__dict__["pre"] = None  # the cached property, unset: no relaxed rule
    compared = 0
    for f, text in fixture_c_texts()[::3]:
        root = parse(text)
        within = units(root, range(1, text.count("\n") + 1, 5))
        for rid, c in cases:
            if not c.may_match(text):
                continue
            for w in (None, within):
                got = [(m.start_line, m.start_column, m.text, m.vars) for m in c.run(root, within=w)]
                want = [(m.start_line, m.start_column, m.text, m.vars) for m in plain[id(c)].run(root, within=w)]
                assert got == want, (rid, f)
                compared += bool(want)
    assert compared > 10
