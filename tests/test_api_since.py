"""Dated advice (issue 13, class 1): since when an API a rule recommends exists (kernel/api_since.py),
and the dated capability facts of kvmarm/redundant-capability-check and kvmarm/implied-feature-check."""

from __future__ import annotations

import datetime as dt
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from pmureview.api import review
from pmureview.cli import run
from pmureview.engine.review import Options
from pmureview.kernel.api_since import API_SINCE, ApiWorth, api, api_worth

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "fixtures/series"


# -- the table ------------------------------------------------------------------------------------

def _version(v: str) -> tuple[int, ...]:
    return tuple(int(x) for x in v.lstrip("v").split("."))


def test_table_is_consistent() -> None:
    assert API_SINCE
    for key, a in API_SINCE.items():
        assert re.fullmatch(r"v\d+\.\d+", a.since), key
        assert a.grep == key and re.compile(a.pattern), key
        assert a.added_by and a.defined_in
    # later releases have later dates
    ordered = sorted(API_SINCE.values(), key=lambda a: _version(a.since))
    assert [a.released for a in ordered] == sorted(a.released for a in ordered)


def test_known_entries() -> None:
    assert api("vcpu_set_flag").since == "v5.19"
    assert api("KVM_ARCH_FLAG_RETURN_NISV_IO_ABORT_TO_USER").since == "v5.18"
    assert api("cpus_have_final_cap").since == "v5.7"
    assert api("cpu_reg").since == "v5.11"
    assert api("kvm_mmu_memory_cache_alloc").since == "v5.9"
    assert api("no_such_api") is None


# -- api_worth: the series itself, then the tree, then the date ------------------------------------

@dataclass
class _Mail:
    date: str


@dataclass
class _Patch:
    mail: _Mail
    number: int = 1


@dataclass
class _View:
    text: str


@dataclass
class _Ctx:
    series: Any
    full: bool = False
    views: dict = field(default_factory=dict)
    base: dict | None = None  # path -> text at the base (full mode)
    grep: list | None = None  # what a `git grep` at the base finds (None: it failed)

    def base_text(self, path: str) -> str | None:
        return (self.base or {}).get(path)

    def base_files_using(self, word: str, globs: tuple[str, ...] = ()) -> list[str] | None:
        return self.grep


def _ctx(date: str, **kw: Any) -> _Ctx:
    return _Ctx(SimpleNamespace(patches=(_Patch(_Mail(date)),), cover=None), **kw)


AFTER = "Tue, 09 Aug 2022 10:00:00 +0000"  # after v5.19 (2022-07-31)
BEFORE = "Wed, 10 Nov 2021 10:00:00 +0000"  # before v5.18 and v5.19


def test_date_decides_without_tree() -> None:
    w = api_worth(_ctx(AFTER), "vcpu_set_flag")
    assert (w.give, w.warn, w.source, w.suffix) == (True, True, "date", "")
    w = api_worth(_ctx(BEFORE), "vcpu_set_flag")
    assert (w.give, w.warn, w.source) == (True, False, "date")
    assert w.suffix == " (vcpu_{get,set,clear}_flag() exists since v5.19)"
    # undated: never a warning on the table alone
    assert not api_worth(_ctx("not a date"), "vcpu_set_flag").warn


def test_series_itself_shows_the_api() -> None:
    ctx = _ctx(BEFORE, views={1: [_View("\tvcpu_set_flag(vcpu, ON_UNSUPPORTED_CPU);\n")]})
    w = api_worth(ctx, "vcpu_set_flag", upto=1)
    assert (w.warn, w.source) == (True, "series")
    # a later patch of the series does not count for an earlier one
    ctx = _ctx(BEFORE, views={2: [_View("\tvcpu_set_flag(vcpu, X);\n")]})
    assert api_worth(ctx, "vcpu_set_flag", upto=1).source == "date"


def test_tree_decides_when_present() -> None:
    header = "arch/arm64/include/asm/kvm_host.h"
    has = _ctx(BEFORE, full=True, base={header: "#define vcpu_set_flag(v, f) __vcpu_set_flag(v, f)\n"})
    assert api_worth(has, "vcpu_set_flag") == ApiWorth(True, True, api("vcpu_set_flag"), "tree")
    # the defining file lacks it and nothing at the base uses it: no such advice at all
    lacks = _ctx(AFTER, full=True, base={header: "struct kvm_vcpu_arch { u64 flags; };\n"}, grep=[])
    w = api_worth(lacks, "vcpu_set_flag")
    assert (w.give, w.warn, w.suffix) == (False, False, "")
    # found elsewhere at the base by git grep
    assert api_worth(_ctx(BEFORE, full=True, grep=["arch/arm64/kvm/arm.c"]), "vcpu_set_flag").warn
    # the grep failed: the date stands in
    assert api_worth(_ctx(BEFORE, full=True, grep=None), "vcpu_set_flag").source == "date"


def test_unknown_api_is_not_weighed() -> None:
    w = api_worth(_ctx(BEFORE), "no_such_api")
    assert w.give and w.warn and w.suffix == ""


# -- the rules ------------------------------------------------------------------------------------

def _findings(case: Path, rule: str, tree: Path | None = None) -> list:
    opts = Options(select=(rule,), tree=tree, track_versions=False)
    return [f for f in review([str(case / "series.mbox")], opts).findings if f.rule == rule]


def test_bool_instead_of_flag_follows_the_series_date() -> None:
    old = _findings(FIXTURES / "kvmarm/bool-instead-of-flag/bad-old-tree-kvm-arch", "kvmarm/bool-instead-of-flag")
    by_patch = {f.location.patch: f for f in old}
    assert by_patch[1].severity.value == "check"
    assert by_patch[1].message.endswith("(KVM_ARCH_FLAG_* exists since v5.18)")
    # 2021: the vCPU flags of the time, with the newer helpers named as such
    assert by_patch[2].severity.value == "warning"
    assert "KVM_ARM64_* bit of vcpu->arch.flags" in by_patch[2].message
    assert "since v5.19" in by_patch[2].message
    new = _findings(FIXTURES / "kvmarm/bool-instead-of-flag/bad-new-bool-members", "kvmarm/bool-instead-of-flag")
    assert new and all(f.severity.value == "warning" and "exists since" not in f.message for f in new)
    assert any("vcpu_{get,set,clear}_flag()" in f.message and "KVM_ARM64_" not in f.message for f in new)


@pytest.mark.parametrize(("case", "rule", "severity", "as_of"), [
    ("kvmarm/redundant-capability-check/bad-direct-recheck", "kvmarm/redundant-capability-check", "check", True),
    ("kvmarm/redundant-capability-check/bad-direct-recheck-after-release", "kvmarm/redundant-capability-check",
     "warning", False),
    ("kvmarm/implied-feature-check/bad-table-guard-before-release", "kvmarm/implied-feature-check", "check", True),
    ("kvmarm/implied-feature-check/bad-table-guard-after-release", "kvmarm/implied-feature-check", "check", False),
])
def test_capability_facts_from_the_bundled_table_are_dated(case: str, rule: str, severity: str,
                                                           as_of: bool) -> None:
    found = _findings(FIXTURES / case, rule)  # hunk-only: no tree given
    assert len(found) == 1
    assert found[0].severity.value == severity
    assert found[0].message.endswith("(as of v6.18)") == as_of


def test_kb_build_cli_passes_the_dating_options(tmp_path: Path) -> None:
    f = tmp_path / "facts.json"
    f.write_text(json.dumps({"format": 1}))
    rc = run(["kb", "build", "--tree", str(tmp_path), "--stamp", str(f), "--kernel-version", "v6.19",
              "--release-date", "2026-02-08"])
    assert rc == 0
    data = json.loads(f.read_text())
    assert (data["kernel_version"], data["release_date"]) == ("v6.19", "2026-02-08")
    assert dt.date.fromisoformat(data["release_date"])


def test_guard_table_follows_the_series_and_the_tree() -> None:
    from pmureview.analyses.redundant_capability import _table_as_of
    from pmureview.kernel.knowledge import snapshot_knowledge

    kb = snapshot_knowledge()
    view = SimpleNamespace(patch=_Patch(_Mail("Tue, 09 Dec 2025 20:51:00 +0000")))
    # the series' earliest mail dates it (a cover letter posted before v6.18 counts)
    older = _ctx("Mon, 03 Nov 2025 09:00:00 +0000")
    assert _table_as_of(view, kb, older) == "as of v6.18"
    assert _table_as_of(view, kb, _ctx("Tue, 09 Dec 2025 20:51:00 +0000")) == ""
    # a base tree is present: the bundled table does not stand in at all
    assert _table_as_of(view, kb, _ctx("Tue, 09 Dec 2025 20:51:00 +0000", full=True)) is None
