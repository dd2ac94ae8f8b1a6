"""kvmarm/guest-state-host-cap-only: guest register switched on a host capability, not the VM's features."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from pmureview.kernel.predicates import HOST, Classifier, classify_path, gating_data, helpers_for
from pmureview.kernel.predicates import cond_text as _cond_text
from pmureview.lang.c import call_name, enclosing_function, text, walk
from pmureview.lazyre import lazy_re
from pmureview.rule.base import Rule
from pmureview.rule.model import Confidence, Finding, RuleDocs, RuleMeta, Scope, Severity
from pmureview.views.context import FileContext

if TYPE_CHECKING:
    from tree_sitter import Node

_STORAGE = ("ctxt_sys_reg", "__vcpu_sys_reg", "__ctxt_sys_reg")
_ASSIGN = ("__vcpu_assign_sys_reg",)
_HOSTISH = lazy_re(r"host|hctxt|kvm_host_data")


class GuestStateHostCapOnly(Rule):
    meta = RuleMeta(
        id="kvmarm/guest-state-host-cap-only",
        title="Guest register context-switched on a host capability instead of the VM's feature set",
        severity=Severity.WARNING,
        confidence=Confidence.MEDIUM,
        scope=Scope.FILE,
        # prefilter: every register move is a read_sysreg*/write_sysreg* statement; full mode: base lines
        evidence=(r"(?#hunk-only)read_sysreg|write_sysreg",),
        files=(
            "arch/arm64/kvm/hyp/include/hyp/sysreg-sr.h", "arch/arm64/kvm/hyp/vhe/sysreg-sr.c",
            "arch/arm64/kvm/hyp/nvhe/sysreg-sr.c", "arch/arm64/kvm/hyp/include/hyp/switch.h",
            "arch/arm64/kvm/hyp/vhe/switch.c", "arch/arm64/kvm/hyp/nvhe/switch.c",
        ),
        uses_tree=True,
        docs=RuleDocs(
            what="In the hyp context-switch code (sysreg-sr.h, {vhe,nvhe}/sysreg-sr.c, switch.h, "
                 "{vhe,nvhe}/switch.c) flags an added statement that moves a guest register between "
                 "memory and the CPU — write_sysreg*() of ctxt_sys_reg(ctxt, R) or "
                 "__vcpu_sys_reg(vcpu, R), or ctxt_sys_reg(ctxt, R) / __vcpu_assign_sys_reg() of a "
                 "read_sysreg*() value in a function taking a `struct kvm_cpu_context *` — when every "
                 "condition on its path (enclosing ifs, earlier early returns) is host-only "
                 "(cpus_have_final_cap(), system_supports_*(), ...) and none tests the VM.",
            why="The state is then switched for every VM on a capable host, even one configured "
                "without the feature: each such VM pays for state it cannot use, and the register "
                "keeps carrying values across a guest that should not have it. The kernel's pattern "
                "is a ctxt_has_<x>() helper: the host check as a shortcut, then kvm_has_feat() on "
                "the VM of the context (ctxt_has_s1pie(), ctxt_has_tcrx(), ctxt_has_mte()).",
            example="\tif (cpus_have_final_cap(ARM64_HAS_FOO))\n"
                    "\t\twrite_sysreg_s(ctxt_sys_reg(ctxt, FOO_EL1), SYS_FOO_EL1);",
            use_instead="\tif (ctxt_has_foo(ctxt))\n"
                        "\t\twrite_sysreg_s(ctxt_sys_reg(ctxt, FOO_EL1), SYS_FOO_EL1);",
            known_problems="State KVM must switch for every VM because the host itself uses it, a "
                           "value deliberately forced for VMs without the feature, and pKVM paths "
                           "with their own feature masks are reported too (answer with a comment). "
                           "Accesses that name host state (host_ctxt, hctxt, host_data_ptr()) are "
                           "exempt. A helper whose body cannot be found is unknown and keeps the "
                           "rule silent.",
            references=("DOMAIN-PACK2.md §2 rule 17 (ctxt_has_<x>() for optional guest state, as "
                        "asked for TCR2/S1PIE/POE context switching)",),
        ),
    )

    def check(self, ctx: FileContext) -> Iterator[Finding]:  # type: ignore[override]
        view = ctx.view
        if not view.added or not view.text.strip():
            return
        clf: Classifier | None = None
        forced = set(gating_data().get("context_switch", {}).get("always_switched", {}))
        seen: set[int] = set()
        moves = list(_moves(view.root))
        for node, reg in moves:
            line = view.first_added_line(node)
            if line is None or line in seen or reg in forced:
                continue
            if clf is None:
                clf = Classifier(helpers_for(ctx.series, ctx.patch.number))
            cls, host = classify_path(clf, node)
            host = [c for c in host if _feature_test(c)]
            if cls != HOST or not host or _switched_elsewhere(node, reg, moves):
                continue
            seen.add(line)
            gate = _cond_text(host[0])
            restore = "write_sysreg" in text(node)
            verb = "restored" if restore else "saved"
            yield self.at_line(
                view, line,
                f"{reg} is {verb} whenever the host has the feature ({gate}), also for VMs without it",
                note=f"{reg} is switched whenever the host has the feature, even for a VM configured "
                     "without it: every such VM pays for state it cannot use, and the register keeps "
                     "carrying values across a guest that should not have it. Please test the VM "
                     "with a ctxt_has_<feature>() helper (host check as a shortcut, then "
                     "kvm_has_feat() on the VM), like ctxt_has_s1pie().",
            )


_MODE = lazy_re(r"\b(?:has_vhe|has_hvhe|is_protected_kvm_enabled|IS_ENABLED|is_kernel_in_hyp_mode)\b")
_CAP = lazy_re(r"\bARM64_\w+")


def _feature_test(cond: Node) -> bool:
    """A host test of a feature: not only errata workarounds (ARM64_WORKAROUND_*) or the kernel's
    mode (has_vhe(), is_protected_kvm_enabled()), which say how to switch, not whether."""
    t = _MODE.sub("", text(cond))
    caps = _CAP.findall(t)
    if caps and all(c.startswith("ARM64_WORKAROUND_") for c in caps):
        return False
    return bool(caps) or "system_supports_" in t or "alternative_has_cap" in t


def _switched_elsewhere(node: Node, reg: str, moves: list[tuple[Node, str]]) -> bool:
    """The same register moved in the same direction elsewhere in the function (both sides of an
    ordering or erratum condition): the condition chooses how, not whether."""
    fn = enclosing_function(node)
    restore = "write_sysreg" in text(node)
    return any(other != node and r == reg and enclosing_function(other) == fn
               and ("write_sysreg" in text(other)) == restore for other, r in moves)


def _reg_of(call: Node) -> str | None:
    args = call.child_by_field_name("arguments")
    if args is None or len(args.named_children) < 2:
        return None
    first = text(args.named_children[0])
    if _HOSTISH.search(first):
        return None  # explicitly host state
    return text(args.named_children[1]).strip() or None


def _takes_ctxt(fn: Node | None) -> bool:
    if fn is None:
        return False
    decl = fn.child_by_field_name("declarator")
    params = next(walk(decl, {"parameter_list"}), None) if decl is not None else None
    return params is not None and "struct kvm_cpu_context" in text(params)


def _moves(root: Node) -> Iterator[tuple[Node, str]]:
    """(statement node, register) for each guest-register move between memory and the CPU."""
    for call in walk(root, {"call_expression"}):
        name = call_name(call) or ""
        args = call.child_by_field_name("arguments")
        if args is None:
            continue
        if name.startswith("write_sysreg") and args.named_children:
            src = args.named_children[0]
            inner = next((c for c in walk(src, {"call_expression"}) if call_name(c) in _STORAGE), None)
            if inner is not None and (reg := _reg_of(inner)):
                yield call, reg
        elif (name in _ASSIGN and "read_sysreg" in text(args) and _takes_ctxt(enclosing_function(call))
              and (reg := _reg_of(call))):
            yield call, reg
    for a in walk(root, {"assignment_expression"}):
        left, right = a.child_by_field_name("left"), a.child_by_field_name("right")
        if left is None or right is None or left.type != "call_expression":
            continue
        # ctxt_sys_reg(ctxt, R) = read_sysreg...(): the context may be the host's or the guest's
        if (call_name(left) in _STORAGE and "read_sysreg" in text(right)
                and (call_name(left) == "ctxt_sys_reg" or _takes_ctxt(enclosing_function(a)))
                and (reg := _reg_of(left))):
            yield a, reg
