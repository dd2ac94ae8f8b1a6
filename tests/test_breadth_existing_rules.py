"""Issue 13 item 8: existing rules generalised to the shapes maintainers raised on real series."""

from __future__ import annotations

from pathlib import Path

from pmureview.api import review
from pmureview.engine.registry import load_registry
from pmureview.engine.review import Options
from pmureview.rule.model import Severity

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "series"


def _module(rule_id: str):
    """The loaded module of a shipped Python rule (rules are imported as pmureview_rules.*)."""
    import sys

    rule = load_registry(plugins=False).rules[rule_id]
    return sys.modules[type(rule).__module__]


def _findings(case: str, rule: str) -> list:
    opts = Options(select=(rule,), fail_on=Severity.CHECK)
    return [f for f in review([str(FIXTURES / case / "series.mbox")], opts).findings if f.rule == rule]


def test_unknown_identifier_abbreviated_word() -> None:
    mod = _module("doc/unknown-identifier")
    pool = {"KVM_ARM_VCPU_FOO_ATTR", "KVM_ARM_VCPU_FOO_CTRL"}
    assert mod._nearest("KVM_ARM_VCPU_FOO_ATTRIBUTE", pool, strict=True) == "KVM_ARM_VCPU_FOO_ATTR"
    # two words apart, or a short word that is no prefix of the other: no suggestion
    assert mod._nearest("KVM_ARM_VCPU_BAR_ATTRIBUTE", {"KVM_ARM_VCPU_FOO_ATTR"}, strict=True) is None
    assert mod._nearest("KVM_ARM_VCPU_FOO_CONFIG", {"KVM_ARM_VCPU_FOO_CFG"}, strict=True) is None
    # prefixes shorter than three letters are not abbreviations
    assert not mod._abbreviated(["KVM", "ARM", "X", "READ"], ["KVM", "ARM", "XY", "READ"])


def test_helper_without_user_names_the_later_patch_in_hunk_only_mode() -> None:
    got = _findings("series/helper-without-user/bad-existing-header-user-much-later",
                    "series/helper-without-user")
    assert len(got) == 1
    f = got[0]
    assert f.severity == Severity.CHECK and "patch 3/3" in f.message and "vcpu_is_protected" in f.message


def test_guest_triggerable_log_mid_function_hunk() -> None:
    got = _findings("kvmarm/guest-triggerable-log/bad-kvm-err-mid-function", "kvmarm/guest-triggerable-log")
    assert [f.location.line for f in got] == [38]
    assert "kvm_handle_guest_abort()" in got[0].message


def test_visibility_removed_entry_lines_parse_alone() -> None:
    # hunk-only: each removed entry line is read on its own, closed when the entry goes on below
    mod = _module("kvmarm/sysreg-visibility-not-per-vm")
    entries = list(mod._removed_entries(["\t{ SYS_DESC(SYS_FOO_EL1), access_foo, reset_val, FOO_EL1, 0,",
                                         "\t{ SYS_DESC(SYS_BAR_EL1), trap_raz_wi },", "\tx = 1;"]))
    assert [(e.name, e.get("access"), e.has_storage) for e in entries] == [
        ("FOO_EL1", "access_foo", True), ("BAR_EL1", "trap_raz_wi", False)]


def test_trap_handler_host_cap_is_linked_to_the_series_id_field() -> None:
    from pmureview.lang.c import parse, walk

    mod = _module("kvmarm/sysreg-visibility-not-per-vm")

    def cond(src: str):
        root = parse(f"void f(void) {{ if ({src}) return; }}".encode()).root_node
        return next(walk(root, {"if_statement"})).child_by_field_name("condition")

    assert mod._cond_features(cond("!cpus_have_final_cap(ARM64_HAS_S1PIE)")) == {"S1PIE"}
    assert mod._cond_features(cond("system_supports_qux()")) == {"QUX"}
    assert mod._cond_features(cond("cpus_have_final_cap(ARM64_WORKAROUND_2077)")) == {"2077"}


def test_trap_handler_finding_is_a_check_naming_the_feature() -> None:
    got = _findings("kvmarm/sysreg-visibility-not-per-vm/bad-trap-host-cap-with-vm-idreg",
                    "kvmarm/sysreg-visibility-not-per-vm")
    assert len(got) == 1 and got[0].severity == Severity.CHECK
    assert "access_quxcr()" in got[0].message and "QUX" in got[0].message
