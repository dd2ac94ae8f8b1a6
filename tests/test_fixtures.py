"""The fixture harness: one test per case folder and mode; failures say Missing or Noisy."""

from __future__ import annotations

from pathlib import Path

import pytest

from pmureview.testing import discover_cases, run_case

ROOT = Path(__file__).resolve().parent.parent / "fixtures" / "series"
CASES = discover_cases(ROOT)


def _params():
    for case in CASES:
        for mode in case.modes():
            yield pytest.param(case, mode, id=f"{case.name}[{mode}]")


@pytest.mark.parametrize(("case", "mode"), list(_params()))
def test_fixture_case(case, mode):
    problems = run_case(case, mode=mode)
    assert not problems, "\n".join(problems)


def test_every_shipped_rule_has_bad_and_good_cases():
    from pmureview.engine.registry import load_registry

    reg = load_registry(plugins=False)
    kinds: dict[str, set[str]] = {}
    for case in CASES:
        for rule in case.rules:
            kinds.setdefault(rule, set()).add(case.kind)
    lacking = [rid for rid in reg.rules if kinds.get(rid, set()) != {"bad", "good"}]
    assert not lacking, f"rules without both a bad- and a good- fixture: {lacking}"
