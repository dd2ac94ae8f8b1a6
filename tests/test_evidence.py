"""Declared prefilter evidence stays a cover of the facts a rule reads: a fact added to a bundled
table must not leave the rule unable to run on the series that need it."""

from __future__ import annotations

import re

from pmureview.engine.registry import load_registry
from pmureview.kernel.wiring import snapshot_facts


def _rule(rule_id: str):
    reg = load_registry(plugins=False)
    return reg.rules[rule_id]


def test_guest_triggerable_log_evidence_covers_the_curated_log_functions() -> None:
    evidence = _rule("kvmarm/guest-triggerable-log").evidence(full=True)
    assert evidence  # declared, in both modes: the call it reports is on an added line
    for name in snapshot_facts().plain_logs:
        assert any(re.search(e, f"\tret = {name}(\"x\");") for e in evidence), name
