"""Full-mode speed work on the capability rules and guest-triggerable-log changes no answer.

- redundant_capability's per-patch predicate table summarises only the functions whose text names a
  test word or a predicate found so far: the same table, in the same order, as summarising every
  function of the series; `may_check(..., upto)` holds wherever `added_checks` finds something;
- `_FnIndex.holding` is `word in fn.text` for every function of a file;
- guest-triggerable-log's entry-pattern prefilter gives re.match's set, and its search stopped once
  every wanted function is met gives those functions the same paths.
"""

from __future__ import annotations

import random
from pathlib import Path
from types import ModuleType, SimpleNamespace

import pytest
from fixture_texts import SAMPLE_C, fixture_c_texts, rule_module

from pmureview.analyses import redundant_capability as rc
from pmureview.lang.c import functions, parse
from pmureview.views.context import FULL, HUNK_ONLY

ROOT = Path(__file__).resolve().parent.parent


def _rule_module(rel: str) -> ModuleType:
    return rule_module(rel, "_speedcap_")


# -- _FnIndex ---------------------------------------------------------------------------------------------

def _index(text: str) -> tuple[rc._FnIndex, list]:
    root = parse(text.encode("utf-8", "surrogateescape")).root_node
    fns = list(functions(root))
    view = SimpleNamespace(parse_text=text, functions=lambda: fns)
    return rc._FnIndex(view), fns  # type: ignore[arg-type]


NESTED_C = """\
int outer(void)
{
	int inner(void) { return cpus_have_final_cap(ARM64_HAS_FGT); }
	return inner();
}
static bool p(void) { return kvm_has_feat(kvm, ID_AA64PFR0_EL1, EL2, IMP); }
"""


def test_holding_is_substring_of_function_text() -> None:
    texts = [*[t for _name, t in fixture_c_texts()][::3], SAMPLE_C.decode(), NESTED_C, "int é(void) { return ü(); }\n"]
    rnd = random.Random(7)
    checked = 0
    for text in texts:
        index, fns = _index(text)
        words = list(rc._TEST_WORD_STRS) + [n for n, _fn in fns[:6]] + ["return", "(", "é", "ü()", "nothing_here"]
        words += [text[i:i + rnd.randint(1, 12)] for i in (rnd.randrange(len(text)) for _ in range(4)) if text]
        for w in words:
            want = w.encode("utf-8", "surrogateescape")
            exact = [k for k, (_n, fn) in enumerate(fns) if want in (fn.text or b"")]
            got = index.holding((w,))
            assert set(got) >= set(exact), (w, text[:80])
            if index._layout is None or index._layout[2]:  # functions apart: exactly the substring test
                assert got == exact, (w, text[:80])
            checked += 1
        pair = tuple(words[:2])
        assert index.holding(pair) == sorted(set(index.holding(pair[:1])) | set(index.holding(pair[1:])))
    assert checked > 1000


# -- the predicate table ---------------------------------------------------------------------------------

def _contexts(tmp: Path):
    from test_symbols import _ctx

    from pmureview.testing import discover_cases

    n = 0
    for case in discover_cases(ROOT / "fixtures" / "series"):
        if not any(w in str(case.root) for w in ("capability", "feature", "fgt")):
            continue
        for mode in case.modes():
            if mode == FULL:
                from pmureview.api import Options, _open_tree, load_series
                from pmureview.testing import git_tree
                from pmureview.views.context import SeriesContext
                from pmureview.views.image import build_views

                n += 1
                opts = Options(tree=git_tree(case.tree, tmp / f"t{n}"))
                series, _ = load_series([str(case.root / "series.mbox")], opts)
                reader, base = _open_tree(opts, series, hook=False)[:2]
                yield case.root, SeriesContext(series=series, mode=FULL, views=build_views(series, reader)[0],
                                               base_reader=reader, base=base)
            else:
                yield case.root, _ctx(case.root, HUNK_ONLY)


def _same_tables(where: object, ctx) -> int:
    seen = 0
    for upto in sorted(ctx.views):
        fast = rc.series_predicates(ctx, upto)
        assert rc._candidates(ctx, upto) is not None, where
        slow = rc._series_predicates(ctx, upto, dict(rc.series_functions(ctx, upto)))  # every function
        assert fast == slow, (where, upto)
        names = rc._candidates(ctx, upto).names
        assert {k for k, v in slow.items() if v} <= names, (where, upto)
        for view in ctx.views[upto]:
            if view.is_c and any(rc.added_checks(view, slow)):
                assert rc.may_check(ctx, view, upto), (where, upto, view.path)
                seen += 1
    return seen


def test_candidate_table_is_the_every_function_table(tmp_path: Path) -> None:
    seen = sum(_same_tables(where, ctx) for where, ctx in _contexts(tmp_path))
    assert seen


def _chain_series(tmp: Path) -> Path:
    from test_symbols import _series

    # series_functions() order puts p3 first (a.c's stub), then b.c's p0, p1, p2: the table's two
    # passes then give p3, p2 and p1, not p0; ordering by the definitions that test (b.c, then c.c)
    # would give p3 and p2 only
    base = {"arch/arm64/kvm/a.c": "void p3(void)\n{\n}\n", "arch/arm64/kvm/b.c": "int z;\n",
            "arch/arm64/kvm/c.c": "int y;\n"}
    post = {"arch/arm64/kvm/a.c": "void p3(void)\n{\n}\nint w;\n",
            "arch/arm64/kvm/b.c": "int z;\nint p0(void)\n{\n\treturn p1();\n}\n\nint p1(void)\n{\n\treturn p2();\n}\n\n"
                                  "int p2(void)\n{\n\treturn p3() && z;\n}\n\n"
                                  "void use(void)\n{\n\tif (p0())\n\t\tz = 1;\n}\n",
            "arch/arm64/kvm/c.c": "int y;\nbool p3(void)\n{\n\treturn cpus_have_final_cap(ARM64_HAS_FGT);\n}\n"}
    return _series(tmp, [post], base=base)


@pytest.mark.parametrize("mode", [HUNK_ONLY, FULL])
def test_candidate_table_keeps_the_order_of_every_function(tmp_path: Path, mode: str) -> None:
    from test_symbols import _ctx

    ctx = _ctx(_chain_series(tmp_path), mode, tmp_path)
    _same_tables("chain", ctx)
    table = rc.series_predicates(ctx, 1)
    assert {k for k, v in table.items() if v} >= {"p3", "p2", "p1"} and "p0" not in table
    assert {"p0", "p1", "p2", "p3"} <= rc._candidates(ctx, 1).names  # found over several rounds


def test_too_many_names_fall_back_to_every_function(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from test_symbols import _ctx

    monkeypatch.setattr(rc, "_MAX_SEARCHED", len(rc._TEST_WORD_STRS) + 1)
    ctx = _ctx(_chain_series(tmp_path), HUNK_ONLY)
    assert rc._candidates(ctx, 1) is None
    assert rc.series_predicates(ctx, 1) == rc._series_predicates(ctx, 1, dict(rc.series_functions(ctx, 1)))


# -- guest-triggerable-log -------------------------------------------------------------------------------

def test_entry_patterns_prefilter_is_re_match() -> None:
    import re

    mod = _rule_module("rules/kvmarm/guest-triggerable-log.py")
    patterns = [r"^vgic_mmio_(read|write|uaccess)_\w+$", r"^vgic_its_cmd_handle_\w+$", r"^vgic_v[23]_(read|write)_\w+$",
                r"^ab*c", r"abc|^x", r"a[|]b", r"a\|b", r"[]|]x", r"(?i)vgic", r"^handle_?x", r"x{2}y", r"^\w+_foo",
                r"^kvm_(a|b)", r"", r"^", r"abc(?=d)", r"vgic+_mmio"]
    names = ["vgic_mmio_read_foo", "vgic_mmio_write_", "vgic_its_cmd_handle_x", "vgic_v2_read_a", "vgic_v4_read_a",
             "ac", "abbc", "xyz", "abc", "a|b", "|x", "]x", "VGIC_x", "handlex", "handle_x", "xxy", "a_foo",
             "kvm_a", "kvm_c", "abcd", "vgiccc_mmio", "other"]
    for p in patterns:
        assert mod._matching(names, [p]) == {n for n in names if re.match(p, n)}, p
    assert mod._literal_prefix(r"^vgic_mmio_(read|write)_\w+$") == "vgic_mmio_"
    assert mod._literal_prefix(r"abc|^x") == ""


def test_reachable_stops_without_changing_wanted_paths() -> None:
    mod = _rule_module("rules/kvmarm/guest-triggerable-log.py")
    rnd = random.Random(3)
    names = [f"f{i}" for i in range(60)]
    for trial in range(40):
        graph = {n: frozenset(rnd.sample(names, rnd.randint(0, 4))) for n in names}
        key = f"speedcap-{trial}"
        mod._GRAPHS[key] = (graph, frozenset(rnd.sample(names, 2)))
        facts = SimpleNamespace(exit_handlers=set(rnd.sample(names, 2)), guest_entry_points=set(),
                                guest_entry_patterns=(r"^f1\d$",))
        ctx = SimpleNamespace(final_views=dict, base_text=lambda p: None)
        orig = mod._file_graph
        mod._file_graph = lambda t, root=None, key=key: mod._GRAPHS[key]
        try:
            ctx.final_views = lambda: {"x.c": SimpleNamespace(text="", parse_text="", root=None)}
            full = mod.GuestTriggerableLog._reachable(ctx, facts)
            wanted = set(rnd.sample(names, 3))
            part = mod.GuestTriggerableLog._reachable(ctx, facts, wanted)
        finally:
            mod._file_graph = orig
        assert {f: full.get(f) for f in wanted} == {f: part.get(f) for f in wanted}
