"""Dated bundled facts and facts from the series itself (issue 13, class 1)."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from pmureview.analyses.series_facts import (
    ANY,
    ENTRY,
    FIELD,
    SANITISE,
    as_of_suffix,
    bundled_worth,
    idreg_touches,
    line_touches,
    sysreg_touched,
    touched,
)
from pmureview.api import Options, load_series
from pmureview.kernel import build
from pmureview.kernel.dating import DATA_DIR, GATING, SNAPSHOT, WIRING, Dated, dated, series_date, trust
from pmureview.views.context import HUNK_ONLY, SeriesContext
from pmureview.views.image import build_views

ROOT = Path(__file__).resolve().parents[1]
GATE_CASES = ROOT / "fixtures/series/kvmarm/idreg-field-not-writable"
EXPOSE_CASES = ROOT / "fixtures/series/kvmarm/idreg-exposed-unsanitised"


# -- the bundled files are dated ---------------------------------------------------------------

@pytest.mark.parametrize("name", sorted(p.name for p in DATA_DIR.glob("*.json")))
def test_every_bundled_file_records_its_kernel(name: str) -> None:
    data = json.loads((DATA_DIR / name).read_text("utf-8"))
    assert data["kernel_version"].startswith("v")
    dt.date.fromisoformat(data["release_date"])
    assert dated(name) is not None


def test_known_versions() -> None:
    assert dated(GATING) == Dated("v6.12", dt.date(2024, 11, 17))
    assert dated(WIRING) == Dated("v6.12", dt.date(2024, 11, 17))
    assert dated(SNAPSHOT) == Dated("v6.16", dt.date(2025, 7, 27))
    # a section describing another kernel carries its own pair
    assert dated(SNAPSHOT, "guards") == Dated("v6.18", dt.date(2025, 11, 30))
    assert dated(SNAPSHOT, "registers") == dated(SNAPSHOT)


def test_kb_build_writes_the_release(tmp_path: Path) -> None:
    tree = tmp_path / "linux"
    (tree / "arch/arm64/tools").mkdir(parents=True)
    (tree / "arch/arm64/tools/sysreg").write_text(
        "Sysreg\tFOO_EL1\t3\t0\t1\t2\t3\nRes0\t63:1\nField\t0\tEN\nEndSysreg\n")
    (tree / "Makefile").write_text("VERSION = 6\nPATCHLEVEL = 14\nSUBLEVEL = 0\nEXTRAVERSION = -rc2\n")
    assert build.release_of(tree) == ("v6.14", None)  # a plain folder: no date, so none written
    data = build.build_snapshot(tree)
    assert "kernel_version" not in data
    data = build.build_snapshot(tree, release_date="2025-03-24")
    assert list(data)[:3] == ["format", "kernel_version", "release_date"]
    assert (data["kernel_version"], data["release_date"]) == ("v6.14", "2025-03-24")
    env = {"GIT_AUTHOR_NAME": "A", "GIT_AUTHOR_EMAIL": "a@example.org", "GIT_COMMITTER_NAME": "A",
           "GIT_COMMITTER_EMAIL": "a@example.org", "GIT_AUTHOR_DATE": "2025-03-20T10:00:00+0000",
           "GIT_COMMITTER_DATE": "2025-03-20T10:00:00+0000", "PATH": "/usr/bin:/bin"}
    for args in (["init", "-q"], ["add", "-A"], ["commit", "-q", "-m", "base"]):
        subprocess.run(["git", "-C", str(tree), *args], check=True, env=env, capture_output=True)
    assert build.release_of(tree) == ("v6.14", "2025-03-20")  # no v6.14 tag: the last commit's date
    out = tmp_path / "snap.json"
    assert build.main(["--tree", str(tree), "--out", str(out), "--kernel-version", "v6.14",
                       "--release-date", "2025-03-24"]) == 0
    assert json.loads(out.read_text())["release_date"] == "2025-03-24"


# -- trust ---------------------------------------------------------------------------------------

@dataclass
class _Mail:
    date: str


@dataclass
class _Patch:
    mail: _Mail


@dataclass
class _Series:
    patches: tuple = ()
    cover: object = None


@dataclass
class _Ctx:
    series: _Series
    full: bool = False
    _memo: dict = field(default_factory=dict)


def _ctx(*dates: str, full: bool = False) -> _Ctx:
    return _Ctx(_Series(tuple(_Patch(_Mail(d)) for d in dates)), full)


def test_series_date_is_the_earliest_parseable_date() -> None:
    s = _ctx("Tue, 09 Dec 2025 20:51:01 +0000", "Mon, 08 Dec 2025 23:30:00 -0500", "garbage").series
    assert series_date(s) == dt.date(2025, 12, 9)  # 23:30 -0500 is 04:30 UTC on the 9th
    assert series_date(_ctx("", "not a date").series) is None


def test_trust_order_and_dating() -> None:
    after = trust(_ctx("Tue, 09 Dec 2025 20:51:00 +0000"), GATING)
    assert after.use and after.warn and as_of_suffix(after) == ""
    before = trust(_ctx("Tue, 14 May 2024 09:12:00 +0000"), GATING)
    assert before.use and not before.warn
    assert before.as_of == "as of v6.12" and as_of_suffix(before) == " (as of v6.12)"
    # the release day itself is not "after"
    assert not trust(_ctx("Sun, 17 Nov 2024 22:00:00 +0000"), GATING).warn
    assert not trust(_ctx("no date"), GATING).warn  # undated: at most a check
    tree = trust(_ctx("Tue, 09 Dec 2025 20:51:00 +0000", full=True), GATING)
    assert not tree.use and not tree.warn  # the tree wins
    assert trust(_ctx("Tue, 09 Dec 2025 20:51:00 +0000"), SNAPSHOT).warn
    assert not trust(_ctx("Wed, 02 Jul 2025 10:00:00 +0000"), SNAPSHOT).warn


# -- facts from the series itself ------------------------------------------------------------

SYS = "arch/arm64/kvm/sys_regs.c"


@pytest.mark.parametrize(("line", "want"), [
    ("\tID_WRITABLE(ID_AA64PFR1_EL1, ~(ID_AA64PFR1_EL1_RES0 |", {("ID_AA64PFR1_EL1", None, ENTRY)}),
    ("\tID_SANITISED(ID_AA64ISAR0_EL1),", {("ID_AA64ISAR0_EL1", None, ENTRY)}),
    ("\t{ SYS_DESC(SYS_ID_AA64DFR0_EL1),", {("ID_AA64DFR0_EL1", None, ENTRY)}),
    ("\t\t\t\t       ID_AA64PFR1_EL1_DF2 |", {("ID_AA64PFR1_EL1", "DF2", ENTRY)}),
    ("\tcase SYS_ID_AA64MMFR3_EL1:", {("ID_AA64MMFR3_EL1", None, SANITISE)}),
    ("\t\tval &= ~ID_AA64PFR1_EL1_DF2_MASK;", {("ID_AA64PFR1_EL1", "DF2", SANITISE)}),
    ("\t\tval &= ~ARM64_FEATURE_MASK(ID_AA64PFR0_EL1_AMU);", {("ID_AA64PFR0_EL1", "AMU", SANITISE)}),
    ("\tval |= SYS_FIELD_PREP_ENUM(ID_AA64PFR0_EL1, CSV2, IMP);", {("ID_AA64PFR0_EL1", "CSV2", SANITISE)}),
    ("\tval = read_sanitised_id_aa64dfr0_el1(vcpu, rd);", {("ID_AA64DFR0_EL1", None, SANITISE)}),
    ("#define ID_AA64FOO0_EL1_BAR_MASK\tGENMASK(7, 4)", {("ID_AA64FOO0_EL1", "BAR", FIELD)}),
    # uses, not definitions
    ("\tif (kvm_has_feat(kvm, ID_AA64PFR1_EL1, DF2, IMP))", set()),
    ("\tu8 v = SYS_FIELD_GET(ID_AA64DFR0_EL1, PMUVer, val);", set()),
    ("\t * ID_AA64PFR1_EL1_DF2 is hidden", set()),
])
def test_line_touches(line: str, want: set) -> None:
    assert set(line_touches(line, SYS)) == want


def test_field_constants_count_only_in_sanitisation_files() -> None:
    assert not set(line_touches("\tif (val & ID_AA64PFR1_EL1_DF2_MASK)", "arch/arm64/kvm/hyp/switch.h"))
    assert set(line_touches("\tif (val & ID_AA64PFR1_EL1_DF2_MASK)", SYS))


def _series_ctx(case: Path) -> SeriesContext:
    series, _ = load_series([str(case / "series.mbox")], Options())
    views, _ = build_views(series, None)
    return SeriesContext(series=series, mode=HUNK_ONLY, views=views)


def test_patch_3_lifting_the_hiding_is_seen_from_patch_5() -> None:
    ctx = _series_ctx(GATE_CASES / "good-earlier-patch-lifts-hiding")
    t = touched(ctx, "ID_AA64PFR1_EL1", "DF2")
    assert t is not None and t.patch == 3 and t.kind == SANITISE and t.line is None  # a removed line
    assert touched(ctx, "ID_AA64PFR1_EL1", "DF2", upto=2) is None
    assert touched(ctx, "ID_AA64PFR1_EL1", "MTE") is None  # another field stays trusted
    assert touched(ctx, "ID_AA64MMFR2_EL1", "E0PD", upto=2).kind == ENTRY
    assert bundled_worth(ctx, GATING, "ID_AA64PFR1_EL1", "DF2", upto=5) is None
    assert bundled_worth(ctx, GATING, "ID_AA64PFR1_EL1", "DF2", upto=2).warn  # dated after v6.12
    # the sysreg field of patch 4 sits in a visible block: ID_AA64MMFR4_EL1.ZQE
    assert any(t.register == "ID_AA64MMFR4_EL1" and t.field == "ZQE" for t in idreg_touches(ctx))
    assert sysreg_touched(ctx, "HCRX_EL2", "DF2En") is not None  # any register's block
    assert sysreg_touched(ctx, "HCRX_EL2", "DF2En", upto=0) is None


def test_older_series_introducing_a_field() -> None:
    ctx = _series_ctx(EXPOSE_CASES / "good-older-base-new-field")
    assert touched(ctx, "ID_AA64MMFR3_EL1", "QFX", kinds=(FIELD,)).patch == 1
    assert touched(ctx, "ID_AA64MMFR3_EL1", "S1PIE", kinds=(FIELD,)) is None
    t = bundled_worth(ctx, GATING, "ID_AA64MMFR3_EL1", None, kinds=(SANITISE,))
    assert t is not None and not t.warn and t.as_of == "as of v6.12"  # May 2024 < v6.12


def test_hidden_header_gives_any_register() -> None:
    # a hunk-only view whose block header is outside the hunk: the field counts for every register
    ctx = _series_ctx(EXPOSE_CASES / "good-older-base-new-field")
    sys_touch = next(t for t in idreg_touches(ctx) if t.field == "QFX")
    assert sys_touch.register in ("ID_AA64MMFR3_EL1", ANY)


def test_guard_table_is_dated_for_hunk_only_capability_facts() -> None:
    from types import SimpleNamespace

    from pmureview.analyses.redundant_capability import _table_as_of
    from pmureview.kernel.knowledge import snapshot_knowledge

    kb = snapshot_knowledge()

    def view(date: str) -> SimpleNamespace:
        return SimpleNamespace(patch=_Patch(_Mail(date)))

    assert _table_as_of(view("Tue, 09 Dec 2025 20:51:00 +0000"), kb) == ""
    assert _table_as_of(view("Mon, 03 Nov 2025 09:00:00 +0000"), kb) == "as of v6.18"
    tree_kb = SimpleNamespace(provenance={"guards": {"source": "tree + curated fallback"}})
    assert _table_as_of(view("Mon, 03 Nov 2025 09:00:00 +0000"), tree_kb) == ""


def test_stamp_dates_a_generated_file_in_place(tmp_path: Path) -> None:
    f = tmp_path / "pack2-wiring.json"
    f.write_text(json.dumps({"format": 1, "kernel_version": "v6.1", "vncr": {"data": {"X_EL1": "0x8"}}}))
    assert build.main(["--tree", str(tmp_path), "--stamp", str(f), "--kernel-version", "v6.19",
                       "--release-date", "2026-02-08"]) == 0
    data = json.loads(f.read_text())
    assert list(data)[:2] == ["kernel_version", "release_date"]
    assert data["kernel_version"] == "v6.19" and data["vncr"] == {"data": {"X_EL1": "0x8"}}
    assert build.main(["--tree", str(tmp_path), "--stamp", str(f)]) == 2  # nothing to date it with


def test_enum_value_constant_touches_its_field() -> None:
    from pmureview.analyses.series_facts import Touch

    (reg, fld, kind), = line_touches("\t\tval = ID_AA64DFR0_EL1_PMUVer_V3P5;", SYS)
    t = Touch(reg, fld, kind, 1, SYS, 10)
    assert t.covers("ID_AA64DFR0_EL1", "PMUVer") and not t.covers("ID_AA64DFR0_EL1", "PMU")
