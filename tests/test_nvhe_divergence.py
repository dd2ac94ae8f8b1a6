"""kvmarm/no-conditional-compilation: how two definitions of one name under a hypervisor #ifdef
diverge — a stand-in for what EL2 lacks (silent), a different answer (warning), anything else (check)."""

from __future__ import annotations

import pytest
from conftest import load_rule


@pytest.fixture(scope="module")
def rule():
    return load_rule("kvmarm/no-conditional-compilation.py")


def _verdict(rule, name: str, hyp: str, host: str, *, partial: tuple[bool, bool] = (False, False)) -> str:
    forms = [[rule.canonical(rule.tokens(hyp))], [rule.canonical(rule.tokens(host))]]
    return rule.divergence(name, forms, list(partial))


_SILENT = [
    # RCU on the host, nothing at EL2
    ("s2_walk_enter", "static inline void s2_walk_enter(void) {}",
     "static inline void s2_walk_enter(void)\n{\n\trcu_read_lock();\n}"),
    ("s2_walk_locked", "static inline bool s2_walk_locked(void)\n{\n\treturn true;\n}",
     "static inline bool s2_walk_locked(void)\n{\n\treturn rcu_read_lock_held();\n}"),
    ("s2_deref", "static inline u64 *s2_deref(s2_ref_t r, bool shared)\n{\n\treturn r;\n}",
     "static inline u64 *s2_deref(s2_ref_t r, bool shared)\n{\n\treturn rcu_dereference_check(r, shared);\n}"),
    # tracing, preemption, locking around the same work
    ("foo_exit", "static inline void foo_exit(struct kvm_vcpu *v)\n{\n\t__foo_exit(v);\n}",
     "static inline void foo_exit(struct kvm_vcpu *v)\n{\n\ttrace_foo_exit(v);\n\tpreempt_disable();\n"
     "\t__foo_exit(v);\n\tpreempt_enable();\n}"),
    ("foo_note", "#define foo_note(x)", "#define foo_note(x) pr_debug(\"%llx\\n\", x)"),
    # an HVC from the host, a direct call in the hypervisor
    ("foo_flush", "static inline int foo_flush(u64 a)\n{\n\treturn __foo_flush(a);\n}",
     "static inline int foo_flush(u64 a)\n{\n\treturn kvm_call_hyp_nvhe(__foo_flush, a);\n}"),
    ("el2_call", "#define el2_call(f, ...) f(__VA_ARGS__)",
     "#define el2_call(f, ...) ({ struct arm_smccc_res res; arm_smccc_1_1_hvc(FN(f), ##__VA_ARGS__, &res); "
     "res.a1; })"),
    # one register, reached through its VHE (EL12/EL02) or its own encoding
    ("read_sysreg_foo", "#define read_sysreg_foo(r) read_sysreg_s(r##_EL12)",
     "#define read_sysreg_foo(r) read_sysreg_s(r##_EL1)"),
    # the kernel's name for the hypervisor object's symbol
    ("hyp_sym", "#define hyp_sym(sym) sym", "#define hyp_sym(sym) __kvm_nvhe_##sym"),
    # the host generates HVC stubs, the hypervisor needs none
    ("DECLARE_EL2_CALL", "#define DECLARE_EL2_CALL(ret, name)",
     "#define DECLARE_EL2_CALL(ret, name) static inline ret el2_##name(void) "
     "{ return (ret)__kvm_call_hyp_nvhe(name); }"),
    # only the hypervisor object may define it
    ("DEFINE_COPY", "#define DEFINE_COPY(name) struct ftr_copy name", "#define DEFINE_COPY(name) BUILD_BUG()"),
]


@pytest.mark.parametrize(("name", "hyp", "host"), _SILENT)
def test_stand_ins_for_what_el2_lacks_are_silent(rule, name: str, hyp: str, host: str) -> None:
    assert _verdict(rule, name, hyp, host) == rule.SILENT


def test_direct_call_against_a_partly_visible_wrapper(rule) -> None:
    # hunk-only: the host's macro body is cut by an unknown line
    hyp, host = "#define el2_call(f, ...) f(__VA_ARGS__)", "#define el2_call(f, ...) ({ struct foo res;"
    assert _verdict(rule, "el2_call", hyp, host, partial=(False, True)) == rule.SILENT
    # a fully visible other branch that is no call wrapper: not a stand-in
    assert _verdict(rule, "el2_call", hyp, "#define el2_call(f, ...) run_later(f, __VA_ARGS__)") == rule.OTHER


@pytest.mark.parametrize(("a", "b"), [
    ("#define DECLARE_COPY(name) extern struct ftr_copy name",
     "#define DECLARE_COPY(name) extern struct ftr_copy kvm_nvhe_sym(name)"),
    ("#define DECLARE_BUF(t, n) DECLARE_PER_CPU(t, n)", "#define DECLARE_BUF(t, n) DECLARE_KVM_NVHE_PER_CPU(t, n)"),
])
def test_the_hyp_objects_symbol_is_the_same_object(rule, a: str, b: str) -> None:
    assert rule.canonical(rule.tokens(a)) == rule.canonical(rule.tokens(b))


_ANSWER = [
    ("kvm_vcpu_foo_is_on", "static inline bool kvm_vcpu_foo_is_on(struct kvm_vcpu *v)\n{\n\treturn false;\n}",
     "bool kvm_vcpu_foo_is_on(struct kvm_vcpu *v);"),
    ("vcpu_has_foo", "#define vcpu_has_foo(v) false", "#define vcpu_has_foo(v) kvm_has_foo((v)->kvm)"),
    ("foo_supported", "static inline bool foo_supported(void) { return true; }",
     "static inline bool foo_supported(void) { return false; }"),
    ("foo_get_limit", "static inline u64 foo_get_limit(void)\n{\n\treturn 4;\n}",
     "static inline u64 foo_get_limit(void)\n{\n\treturn read_sysreg(foo_el1) & 0xf;\n}"),
    # another register is another answer
    ("foo_get_pfr", "static inline u64 foo_get_pfr(void) { return read_sysreg_s(SYS_ID_PFR0_EL1); }",
     "static inline u64 foo_get_pfr(void) { return read_sysreg_s(SYS_ID_PFR1_EL1); }"),
    # a bool function without a predicate name
    ("foo_trapped_here", "static inline bool foo_trapped_here(void) { return false; }",
     "bool foo_trapped_here(void);"),
    # a locking call does not excuse a different answer
    ("foo_level", "static inline int foo_level(void) { return 0; }",
     "static inline int foo_level(void) { int l; spin_lock(&foo_lock); l = foo_cur; spin_unlock(&foo_lock); "
     "return l; }"),
]


@pytest.mark.parametrize(("name", "hyp", "host"), _ANSWER)
def test_a_different_answer_warns(rule, name: str, hyp: str, host: str) -> None:
    assert _verdict(rule, name, hyp, host) == rule.ANSWER


def test_a_definition_cut_by_the_hunk_is_no_verdict(rule) -> None:
    hyp, host = "#define vcpu_has_foo(v) false", "#define vcpu_has_foo(v) (kvm_has_foo((v)->kvm) &&"
    assert _verdict(rule, "vcpu_has_foo", hyp, host, partial=(False, True)) == rule.OTHER


_OTHER = [
    ("foo_sync", "static inline void foo_sync(struct kvm_vcpu *v) {}", "void foo_sync(struct kvm_vcpu *v);"),
    ("foo_reset", "static inline void foo_reset(struct kvm_vcpu *v) {}",
     "static inline void foo_reset(struct kvm_vcpu *v)\n{\n\tfoo_clear_state(v);\n}"),
    ("foo_init", "static inline int foo_init(void) { return 0; }", "int foo_init(void);"),
    # the hypervisor's copy does nothing where the host asks EL2 to do the work
    ("foo_sync_hw", "static inline void foo_sync_hw(u64 v) {}",
     "static inline void foo_sync_hw(u64 v) { kvm_call_hyp(__foo_sync_hw, v); }"),
]


@pytest.mark.parametrize(("name", "hyp", "host"), _OTHER)
def test_anything_else_is_a_check(rule, name: str, hyp: str, host: str) -> None:
    assert _verdict(rule, name, hyp, host) == rule.OTHER


def test_fragments_never_raise(rule) -> None:
    for a, b in [("#define f(", "#define f(x) x"), ("{ rcu_read_lock(", "{ }"), ("int f(void", "{"),
                 ("#define f(g, ...) g(", "#define f"), ("{ kvm_call_hyp(", "{ return kvm_call_hyp(x"),
                 ("{ BUILD_BUG(", "{ rcu_dereference(")]:
        _verdict(rule, "f", a, b)
        _verdict(rule, "f", a, b, partial=(True, True))
