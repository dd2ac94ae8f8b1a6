"""kvmarm/no-conditional-compilation: definitions equal up to the address-space helpers are one definition."""

from __future__ import annotations

import pytest
from conftest import load_rule


@pytest.fixture(scope="module")
def rule():
    return load_rule("kvmarm/no-conditional-compilation.py")


def _same(rule, a: str, b: str) -> bool:
    return rule.canonical(rule.tokens(a)) == rule.canonical(rule.tokens(b))


@pytest.mark.parametrize(("hyp", "kernel"), [
    # the vcpu_has_sve() idiom, with and without the macro argument's parentheses
    ("vcpu_has_foo(vcpu)\tkvm_has_foo(kern_hyp_va((vcpu)->kvm))", "vcpu_has_foo(vcpu) kvm_has_foo((vcpu)->kvm)"),
    ("f(v) \\\n\t(kern_hyp_va((v)->kvm)->arch.ctl)", "f(v) ((v)->kvm->arch.ctl)"),
    # a local holding the translated pointer, comments, blank lines
    ("static inline bool f(const struct kvm_vcpu *vcpu)\n{\n\tstruct kvm *kvm = kern_hyp_va(vcpu->kvm);\n\n"
     "\treturn test_bit(BIT_X, &kvm->arch.flags);\n}",
     "static inline bool f(const struct kvm_vcpu *vcpu)\n{\n\t/* direct */\n"
     "\treturn test_bit(BIT_X, &vcpu->kvm->arch.flags);\n}"),
    # per-CPU symbols, symbol addresses, physical addresses
    ("static inline struct s *g(void) { return this_cpu_ptr(&sym); }",
     "static inline struct s *g(void) { return this_cpu_ptr_hyp_sym(sym); }"),
    ("h(c) per_cpu_ptr(&sym, c)", "h(c) per_cpu_ptr_nvhe_sym(sym, c)"),
    ("p(x) foo(hyp_symbol_addr(tbl))", "p(x) foo(&tbl)"),
    ("q(x) foo(kvm_ksym_ref(&tbl))", "q(x) foo(&tbl)"),
    ("r(x) hyp_virt_to_phys(x)", "r(x) __pa(x)"),
    # the hyp object's copy of a kernel variable, declared from either side
    ("REG(id, name) extern struct arm64_ftr_reg name;", "REG(id, name) DECLARE_KVM_NVHE_SYM(name);"),
])
def test_same_up_to_address_space(rule, hyp: str, kernel: str) -> None:
    assert _same(rule, hyp, kernel)


@pytest.mark.parametrize(("hyp", "kernel"), [
    ("vcpu_has_foo(vcpu)\tfalse", "vcpu_has_foo(vcpu) kvm_has_foo((vcpu)->kvm)"),
    ("static inline bool f(struct kvm_vcpu *vcpu) { return false; }", "bool f(struct kvm_vcpu *vcpu);"),
    ("f(v) kvm_has_foo(kern_hyp_va((v)->kvm))", "f(v) kvm_has_bar((v)->kvm)"),
    # a local that is written to is not a name for its initialiser
    ("{ struct kvm *kvm = kern_hyp_va(vcpu->kvm); kvm = NULL; return kvm; }", "{ return vcpu->kvm; }"),
    ("{ u64 v = x; v++; return v; }", "{ return x; }"),
    # grouping is not dropped around an operator
    ("s(a, b) (a * (b + 1))", "s(a, b) (a * b + 1)"),
    # a physical address is not a virtual one
    ("r(x) __pa(x)", "r(x) (x)"),
    ("REG(id, name) extern struct arm64_ftr_reg name;", "REG(id, name) DECLARE_KVM_NVHE_SYM(other);"),
    ("int f(void);", "extern int f(void);"),
])
def test_different_answers_stay_different(rule, hyp: str, kernel: str) -> None:
    assert not _same(rule, hyp, kernel)


def test_fragments_never_raise(rule) -> None:
    for src in ("kern_hyp_va(", "f(kern_hyp_va((x)", ")))", "= ;", "int x = ", "hyp_symbol_addr("):
        rule.canonical(rule.tokens(src))
