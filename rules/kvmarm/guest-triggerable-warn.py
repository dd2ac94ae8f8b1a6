"""kvmarm/guest-triggerable-warn: WARN()/BUG_ON() on a condition that guest-controlled state decides."""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterator

from pmureview.lang.c import call_name, functions, nodes_of, text, walk
from pmureview.lazyre import lazy_re
from pmureview.rule.base import Rule
from pmureview.rule.model import Confidence, Finding, RuleDocs, RuleMeta, Scope, Severity
from pmureview.views.context import SeriesContext

_KVM = lazy_re(r"^(?:arch/arm64/kvm/|arch/arm64/include/asm/kvm|include/kvm/)")
# WARN forms that fire every time (the _ONCE forms cannot flood the log)
_WARNS = frozenset({"WARN_ON", "WARN", "BUG_ON", "WARN_ON_SMP"})
# accessors of the state the guest writes: its system registers, general-purpose registers and PSTATE
_GUEST_STATE = frozenset({"__vcpu_sys_reg", "vcpu_read_sys_reg", "ctxt_sys_reg", "__ctxt_sys_reg",
                          "vcpu_get_reg", "vcpu_cpsr", "vcpu_pc", "vcpu_gp_regs", "ctxt_gp_regs",
                          "__vcpu_read_sys_reg"})


_CALL = frozenset({"call_expression"})


def _readers(ctx: SeriesContext) -> dict[str, str]:
    """Functions the series defines (in any patch) that read guest state directly: name -> accessor."""
    out: dict[str, str] = {}
    for view in ctx.all_views():
        if not view.is_c or not _KVM.match(view.path) or not any(a in view.text for a in _GUEST_STATE):
            continue
        for name, acc in _file_readers(view.root):
            out.setdefault(name, acc)
    return out


def _file_readers(root) -> list[tuple[str, str]]:
    """(function, the first accessor it calls) for the functions of one tree that call one: the
    file's accessor calls once (in document order), each function taking those inside its bytes."""
    calls = _accessor_calls(root)
    starts = [c.start_byte for c in calls]
    out = []
    for name, fn in functions(root):
        i = bisect_left(starts, fn.start_byte)
        while i < len(calls) and starts[i] <= fn.end_byte:
            c = calls[i]
            i += 1
            if c.end_byte <= fn.end_byte:  # inside the function
                out.append((name, call_name(c) or ""))
                break
    return out


def _accessor_calls(root) -> list:
    """The calls of _GUEST_STATE accessors in the tree, in document order. Such a call starts with
    the accessor's name: only the calls starting where the source spells one are asked their name,
    not every call of a kernel file."""
    calls = nodes_of(root, _CALL)
    if calls is None:
        calls = list(walk(root, _CALL))
    data, base = root.text or b"", root.start_byte  # a root's text starts at its first byte
    spots: set[int] = set()
    for a in _GUEST_STATE:
        want = a.encode()
        i = data.find(want)
        while i >= 0:
            spots.add(i + base)
            i = data.find(want, i + 1)
    return [c for c in calls if c.start_byte in spots and call_name(c) in _GUEST_STATE]


class GuestTriggerableWarn(Rule):
    meta = RuleMeta(
        id="kvmarm/guest-triggerable-warn",
        title="WARN on a condition the guest controls",
        severity=Severity.WARNING,
        confidence=Confidence.MEDIUM,
        scope=Scope.SERIES,
        # prefilter: the reported WARN*/BUG_ON() call starts on an added line
        evidence=(r"WARN|BUG_ON",),
        docs=RuleDocs(
            what="Flags an added WARN_ON()/WARN()/BUG_ON() (not the _ONCE forms) in KVM/arm64 code whose "
                 "condition reads guest-controlled state: a guest system register (__vcpu_sys_reg(), "
                 "vcpu_read_sys_reg(), ctxt_sys_reg()), a guest GPR or PSTATE (vcpu_get_reg(), "
                 "vcpu_cpsr()), directly or through a helper the series defines that reads them.",
            why="What the guest writes into its own registers is not a KVM bug: a guest can make such a "
                "condition true as often as it likes and flood the host log with backtraces (or, with "
                "panic_on_warn / BUG_ON, take the host down). Guest-controlled values must be handled "
                "(ignored, sanitised, reflected as an exception), not warned about.",
            example="return vcpu_is_el2_ctxt(ctxt) ||\n\t(__widget_e2h_is_set(ctxt) && __widget_tge_is_set(ctxt)) ||"
                    "\n\tWARN_ON(__widget_tge_is_set(ctxt));",
            use_instead="return vcpu_is_el2_ctxt(ctxt) ||\n\t(__widget_e2h_is_set(ctxt) && __widget_tge_is_set(ctxt));"
                        "\n/* TGE without E2H: treat as not in the host context, as the architecture says */",
            known_problems="Helpers are followed one level, and only when the series' post-images define "
                           "them; a condition on guest state that KVM itself guarantees (a value KVM "
                           "sanitised on write) is reported as well. The existing "
                           "kvmarm/guest-triggerable-log covers printk-style messages on guest exit paths; "
                           "ESR-based conditions in trap handlers (KVM's routing guarantees them) and "
                           "VM_BUG_ON()/WARN_ON_ONCE() are not judged.",
            references=("Documentation/process/coding-style.rst §22 (Do not crash the kernel)",
                        "kvmarm/guest-triggerable-log"),
        ),
    )

    def check(self, ctx: SeriesContext) -> Iterator[Finding]:  # type: ignore[override]
        readers: dict[str, str] | None = None
        for view in ctx.all_views():
            if not view.added or not view.is_c or not _KVM.match(view.path):
                continue
            if not any(w in view.text for w in ("WARN", "BUG_ON")):
                continue
            for call in view.added_nodes(_CALL):  # on added lines: not the whole file's calls
                if call_name(call) not in _WARNS:
                    continue
                args = call.child_by_field_name("arguments")
                cond = args.named_children[0] if args is not None and args.named_child_count else None
                if cond is None:
                    continue
                if readers is None:
                    readers = _readers(ctx)
                why = None
                for c in [cond, *walk(cond, {"call_expression"})]:
                    name = call_name(c) if c.type == "call_expression" else None
                    if name in _GUEST_STATE:
                        why = f"{name}() is guest state"
                    elif name in readers:
                        why = f"{name}() reads guest state ({readers[name]}())"
                    if why:
                        break
                if why is None:
                    continue
                yield self.at_node(
                    view, call, f"{call_name(call)}({text(cond)}): the guest controls this condition "
                                f"({why}), so it can trigger the warning at will",
                    note="A guest can set its own registers as it likes; a WARN on them floods the host log "
                         "(and panics with panic_on_warn). Handle the value instead (ignore it, sanitise it, "
                         "or inject an exception), or use WARN_ON_ONCE() if it really is a KVM bug.")
