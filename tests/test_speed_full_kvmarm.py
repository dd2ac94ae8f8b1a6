"""Full-mode speed work on the kvmarm FGT/PMU/guest rules changes no answer (issue 15).

- fgtflow lists a file's FGT-writing functions from the spots its hint's literal parts occur at, and
  walks each function once for both of its node lists: the same functions and nodes as searching
  every function's text and walking twice;
- guest-triggerable-warn asks only the calls starting where an accessor is spelled for their name:
  the same readers as asking every call;
- the text tests that let pmu-register-residency and fgt-config-outside-config-c skip a scope or a
  file are necessary conditions: where one fails, the full check finds nothing either.
"""

from __future__ import annotations

from bisect import bisect_left
from pathlib import Path
from types import ModuleType, SimpleNamespace

import pytest
from fixture_texts import SAMPLE_C, fixture_c_texts, rule_module

from pmureview.analyses import fgtflow, pmu_access
from pmureview.kernel.knowledge import load_knowledge
from pmureview.lang.c import call_name, functions, parse, text, walk
from pmureview.views.context import FileView

ROOT = Path(__file__).resolve().parent.parent

# shapes the fixtures may lack: a root that does not start at byte 0, hint parts spanning functions,
# a fragment's loose statements after a function, non-ASCII text before the matches
EXTRA_C = [
    b"\n\n  /* lead */ static void a(struct kvm_vcpu *vcpu)\n{\n\t*vcpu_fgt(vcpu, HDFGRTR_EL2) |= x;\n}\n",
    "/* \u00e9\u00e8 */ static void b(void) { u64 v = 0; v |= HDFGRTR_EL2_PMOVS;\n"
    "write_sysreg_s(v, SYS_HDFGRTR_EL2); }\n"
    "int c(void) { return 0; }\nstatic int d(void) { return HFGxTR_EL2_nACCDATA_EL1; }\n".encode(),
    b"int e(void) { return 1; }\n\tr_set |= HFGRTR_EL2_nPIR_EL1;\n\tv &= ~clr;\n\tx++;\n",
    SAMPLE_C,
]


def _rule_module(rel: str) -> ModuleType:
    return rule_module(rel, "_speedk_")


def _roots() -> list:
    texts = [t.encode("utf-8", "surrogateescape") for _name, t in fixture_c_texts()] + EXTRA_C
    return [parse(t).root_node for t in texts]


@pytest.fixture(scope="module")
def roots() -> list:
    return _roots()


def test_hinted_functions_are_those_whose_text_matches_the_hint(roots: list) -> None:
    hits = 0
    for root in roots:
        want = [fn for _name, fn in functions(root) if fgtflow._WRITE_HINT.search(text(fn))]
        assert fgtflow._hinted_functions(root) == want
        hits += len(want)
        # the parts are a necessary condition of the whole-text search too (Flow._hinted)
        t = text(root)
        if fgtflow._WRITE_HINT.search(t):
            assert any(p in t for p in fgtflow._HINT_PARTS)
    assert hits > 20


def _walked(fn, what: str) -> list:
    """Flow._nodes as two separate walks (the reference)."""
    if what == "writes":
        found = list(walk(fn, {"assignment_expression", "call_expression"}))
    else:
        body = fgtflow._body(fn)
        found = [] if body is None else list(walk(body, {
            "init_declarator", "declaration", "assignment_expression", "update_expression"}))
    if fn.type != "function_definition":
        found = [n for n in found if not fgtflow._in_function(n)]
    return found


def test_one_walk_per_function_gives_both_node_lists(roots: list) -> None:
    for root in roots:
        flow = SimpleNamespace(_walks={})
        for fn in [root, *(f for _n, f in functions(root))]:
            for what in ("locals", "writes"):
                assert fgtflow.Flow._nodes(flow, fn, what) == _walked(fn, what)  # type: ignore[arg-type]
    # a function without a body (broken code) has no locals
    bodiless = SimpleNamespace(_walks={})
    broken = parse(b"int f(void) int x = 1;").root_node
    for fn in walk(broken, {"function_definition"}):
        assert fgtflow.Flow._nodes(bodiless, fn, "locals") == _walked(fn, "locals")  # type: ignore[arg-type]


def test_guest_state_readers_are_found_from_the_accessor_spellings(roots: list) -> None:
    mod = _rule_module("rules/kvmarm/guest-triggerable-warn.py")
    found = 0
    for root in roots:
        calls = list(walk(root, {"call_expression"}))  # the reference: every call asked its name
        starts = [c.start_byte for c in calls]
        want = []
        for name, fn in functions(root):
            i, acc = bisect_left(starts, fn.start_byte), None
            while acc is None and i < len(calls) and starts[i] <= fn.end_byte:
                c = calls[i]
                i += 1
                if c.end_byte <= fn.end_byte and call_name(c) in mod._GUEST_STATE:
                    acc = call_name(c)
            if acc:
                want.append((name, acc))
        assert mod._file_readers(root) == want
        found += len(want)
    assert found > 5


def test_pmu_residency_text_tests_are_necessary(roots: list) -> None:
    mod = _rule_module("rules/kvmarm/pmu-register-residency.py")
    for root in roots:
        for _name, fn in functions(root):
            t = fn.text or b""
            if not (b"pmu" in t.lower() and mod._PARTITIONED.search(t.decode("utf-8", "replace"))):
                for node in walk(fn, mod._BRANCH):
                    cond = node.child_by_field_name("condition")
                    assert cond is None or mod._partition_test(cond) is None
            if not pmu_access.may_write_both([t]):
                kinds = {a.where for a in pmu_access.accesses(fn) if a.op == "write" and a.reg}
                assert kinds != {"hw", "mem"}


def test_fgt_config_text_tests_are_necessary(roots: list) -> None:
    mod = _rule_module("rules/kvmarm/fgt-config-outside-config-c.py")
    kb = load_knowledge(None)
    targets = masks = 0
    for root in roots:
        source = root.text or b""
        for asg in walk(root, {"assignment_expression"}):
            reg = mod._fgt_target(asg)
            targets += reg is not None
            assert reg is None or b"vcpu_fgt" in source
        for _name, fn in functions(root):
            for ret in walk(fn, {"return_statement"}):
                expr = ret.named_children[0] if ret.named_children else None
                regs = mod._fgt_mask_registers(expr, kb) if expr is not None else None
                masks += bool(regs)
                assert not regs or b"FG" in (fn.text or b"")
    assert targets and masks


def _macro_views(macro: str, seed: int):
    """Views (text, lines, added lines) of fixture texts holding a #define and of `macro`, with
    several sets of added lines each, asking FileView's own added_may_be_in_define."""
    import random

    rng = random.Random(seed)
    for t in [*[t for _n, t in fixture_c_texts() if "define" in t][:80], macro, "int y;\n" + macro]:
        lines = t.split("\n")
        for added in ({rng.randrange(1, len(lines) + 1) for _ in range(3)}, set(range(1, len(lines) + 1)),
                      {n for n in range(1, len(lines) + 1) if n % 4 == 0}):
            view = SimpleNamespace(text=t, lines=lines, added=added, added_nodes=lambda *_a, **_k: [])
            view.added_may_be_in_define = lambda v=view: FileView.added_may_be_in_define(v)
            yield view


def _honoured_and_forced(view: SimpleNamespace, scan) -> tuple[list, list]:
    """scan(view) with the added-line test as it is, then forced open."""
    honoured = list(scan(view))
    view.added_may_be_in_define = lambda: True
    return honoured, list(scan(view))


def test_idreg_gates_skip_the_macro_scan_only_where_no_added_line_can_be_in_a_define() -> None:
    """idreg-field-not-writable scans the file for #define helpers only when an added line is a `#`
    line or follows a `\\` continuation: with the scan forced, every fixture text and many sets of
    added lines give the same gates (lines inside multi-line macros included)."""
    mod = _rule_module("rules/kvmarm/idreg-field-not-writable.py")
    macro = ("#define kvm_has_foo(kvm) \\\n\t(kvm_has_feat(kvm, ID_AA64PFR0_EL1, SVE, IMP) && \\\n"
             "\t kvm_has_feat(kvm, ID_AA64ISAR0_EL1, RNDR, IMP))\nint x;\n")
    compared = found = 0
    for view in _macro_views(macro, 20):
        honoured, forced = _honoured_and_forced(view, lambda v: mod._gates(v, {}))
        assert honoured == forced, (view.text[:60], sorted(view.added))
        compared += 1
        found += len(forced)
    assert compared > 100 and found > 0


def test_guest_flag_masks_skip_the_macro_scan_only_where_nothing_can_be_found() -> None:
    """unconditional-guest-feature-enable scans #defines for *GUEST_FLAGS* masks only when the text
    names one and an added line can lie in a macro: forcing the scan finds the same."""
    mod = _rule_module("rules/kvmarm/unconditional-guest-feature-enable.py")
    rule = next(v for v in vars(mod).values() if isinstance(v, type) and hasattr(v, "meta")
                and v.__module__ == mod.__name__)()
    rule._finding = lambda view, anchor, bits, where, feats: (anchor, tuple(bits), where)
    macro = ("#define VM_GUEST_FLAGS (HCR_TVM | \\\n\t\t\tHCR_TWE | \\\n\t\t\tHCR_API)\n"
             "#define HOST_GUEST_FLAGS HCR_API\nint x;\n")
    compared = found = 0
    for view in _macro_views(macro, 21):
        honoured, forced = _honoured_and_forced(view, lambda v: rule._static_masks(v, {}))
        assert honoured == forced, (view.text[:60], sorted(view.added))
        compared += 1
        found += len(honoured)
    assert compared > 100 and found > 0
