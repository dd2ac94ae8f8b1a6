"""kvmarm/sysreg-visibility-not-per-vm: a new register shown to every VM, not only those with the feature."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from pmureview.kernel.predicates import HOST, Classifier, classify_path, helpers_for
from pmureview.kernel.predicates import cond_text as _cond_text
from pmureview.kernel.sysregtable import Entry, parse_lines, pre_entries, view_entries
from pmureview.lang.c import call_name, functions, text, walk
from pmureview.rule.base import Rule
from pmureview.rule.model import Confidence, Finding, RuleDocs, RuleMeta, Scope, Severity
from pmureview.views.context import FileContext

if TYPE_CHECKING:
    from tree_sitter import Node

    from pmureview.views.context import FileView

# values a visibility callback returns for "the register is there" (REG_RAZ alone still lists it in
# KVM_GET_REG_LIST); REG_RAZ | REG_USER_WI is the deliberate RAZ/WI-for-everyone emulation
_VISIBLE = {"0", "REG_RAZ", "(REG_RAZ)"}
_WRAPPERS = {"__el2_visibility"}
# access handlers that do not emulate the register for the guest (it UNDEFs, or reads as zero for all)
_NOT_EMULATED = {"", "NULL", "undef_access", "trap_undef", "bad_trap", "trap_raz_wi", "access_raz_wi"}


class SysregVisibilityNotPerVm(Rule):
    meta = RuleMeta(
        id="kvmarm/sysreg-visibility-not-per-vm",
        title="System register visible to every VM instead of only VMs configured with its feature",
        severity=Severity.WARNING,
        confidence=Confidence.MEDIUM,
        scope=Scope.FILE,
        files=("sys_regs.c",),
        uses_tree=True,
        docs=RuleDocs(
            what="Flags (a) a sys_reg_descs[] entry the series adds (after expanding wrapper macros "
                 "such as EL2_REG() or MTE_REG()) that has storage (a `.reg` index) or a ONE_REG "
                 "getter but no `.visibility` callback, for a register that had no storage-backed "
                 "entry before; and (b) a visibility callback added or changed by the series, or "
                 "referenced by an added entry, whose path returning 0 (visible) or REG_RAZ is "
                 "guarded only by host-only predicates (cpus_have_final_cap(), system_supports_*(), "
                 "...), never by the VM's feature set. For __el2_visibility() wrappers the inner "
                 "callback is judged.",
            why="Without a per-VM visibility the register appears in KVM_GET_REG_LIST and "
                "KVM_GET/SET_ONE_REG for every VM on a capable host, whether or not the VMM "
                "configured the feature: userspace sees state the guest can never produce, and "
                "save/restore breaks when the VM moves to a host without the feature. Since 2024 "
                "KVM hides the registers of optional features unless the VM has the feature "
                "(mte_visibility, s1pie_visibility, tcr2_visibility, sve_visibility).",
            example="static unsigned int foo_visibility(const struct kvm_vcpu *vcpu,\n"
                    "\t\t\t\t   const struct sys_reg_desc *rd)\n{\n"
                    "\tif (cpus_have_final_cap(ARM64_HAS_FOO))\n\t\treturn 0;\n\n"
                    "\treturn REG_HIDDEN;\n}\n\n"
                    "\t{ SYS_DESC(SYS_BAR_EL1), NULL, reset_unknown, BAR_EL1 },",
            use_instead="\tif (kvm_has_feat(vcpu->kvm, ID_AA64FOO0_EL1, FOO, IMP))\n\t\treturn 0;\n\n"
                        "\t{ SYS_DESC(SYS_BAR_EL1), NULL, reset_unknown, BAR_EL1,\n"
                        "\t  .visibility = foo_visibility },",
            known_problems="Registers KVM deliberately gives every VM (mandatory at the VM's minimum "
                           "architecture level, or emulated RAZ/WI for all) are reported too; a "
                           "comment saying so is the expected answer; a register the table already "
                           "emulated for every VM (an access handler, no visibility) is not. Entries "
                           "without storage "
                           "(undef_access or trap_raz_wi only) are never reported. In hunk-only "
                           "mode novelty is judged from the patch's own removed lines, and a "
                           "predicate whose body is neither in the series, the base nor the bundled "
                           "table is unknown and keeps the rule silent. Variant (a) does not run "
                           "with `check --files` (nothing to compare with).",
            references=(
                "DOMAIN-PACK2.md §2 rule 16 (per-VM visibility of optional-feature registers, "
                "as requested on the kvmarm list for TCR2/S1PIE/POE)",
            ),
        ),
    )

    def check(self, ctx: FileContext) -> Iterator[Finding]:  # type: ignore[override]
        view = ctx.view
        if not view.added or not view.text.strip():
            return
        entries = view_entries(view)
        added = [e for e in entries if any(n in view.added for n in range(e.start, e.end + 1))]
        if not ctx.series.files_mode:
            yield from self._missing_visibility(view, added)
        yield from self._host_only_callbacks(ctx, view, entries, added)

    # -- (a) -----------------------------------------------------------------------------------
    def _missing_visibility(self, view: FileView, added: list[Entry]) -> Iterator[Finding]:
        before = pre_entries(view)
        if before is None:
            return
        if view.pre_text is None:
            # hunk-only: the removed lines of several hunks do not parse as one table (a removed
            # comment or function body in between); read each removed entry line on its own too
            before = [*before, *_removed_entries(list(view.change.removed_text))]
        had = {e.key for e in before if e.has_storage}
        # a register every VM could already read (a real access handler, no visibility) is no
        # optional feature: giving it storage does not change which VMs see it (CLIDR_EL1, CTR_EL0)
        had |= {e.key for e in before if e.get("access") not in _NOT_EMULATED and not e.visibility}
        bare = [e for e in added if e.name and e.has_storage and not e.visibility and e.key not in had
                # hunk-only: an entry whose first line is context existed already, as it was unseen
                and (view.pre_text is not None or e.start in view.added)]
        if len(bare) > 3:
            # one point, made once: a block of new registers sharing the same missing visibility
            names = ", ".join(e.name for e in bare[:4] if e.name) + ", ..."
            line = next(n for n in range(bare[0].start, bare[0].end + 1) if n in view.added)
            yield self.at_line(
                view, line,
                f"{len(bare)} registers get storage but no .visibility ({names}): every VM sees them, "
                f"with or without the feature",
                note="They now show up in KVM_GET_REG_LIST and ONE_REG for every VM, whether or not the "
                     "VMM configured the feature they belong to. If they belong to one feature, one "
                     "visibility callback testing it with kvm_has_feat() (or a wrapper macro that sets "
                     "it) covers them all.")
            return
        for e in bare:
            line = next(n for n in range(e.start, e.end + 1) if n in view.added)
            yield self.at_line(
                view, line,
                f"{e.name} gets storage but no .visibility: every VM sees it, with or without the feature",
                note=f"{e.name} now shows up in KVM_GET_REG_LIST and ONE_REG for every VM, whether "
                     "or not the VMM configured the feature it belongs to. That exposes state the "
                     "guest can never produce and breaks save/restore between hosts. Unless this "
                     "register is architecturally mandatory for every guest (then please say so in "
                     "a comment), can it get a visibility callback that tests the VM's feature with "
                     "kvm_has_feat()?",
            )

    # -- (b) -----------------------------------------------------------------------------------
    def _host_only_callbacks(self, ctx: FileContext, view: FileView, entries: list[Entry],
                             added: list[Entry]) -> Iterator[Finding]:
        defs: dict[str, Node] = {}
        for name, fn in functions(view.root):
            defs.setdefault(name, fn)
        users: dict[str, list[Entry]] = {}
        for e in entries:
            if e.visibility:
                users.setdefault(e.visibility, []).append(e)
        todo: dict[str, Entry | None] = {}
        for name, fn in defs.items():
            if name.endswith("visibility") and view.touches_added(fn):
                todo.setdefault(name, None)
        for e in added:
            if e.visibility and e.visibility in defs:
                todo.setdefault(e.visibility, e)
        if not todo:
            return
        clf = Classifier(helpers_for(ctx.series, ctx.patch.number))
        for name, entry in sorted(todo.items()):
            fn = defs[name]
            judged = _inner(fn, defs) or fn
            hit = _host_only_visible(clf, judged)
            if hit is None:
                continue
            cond, ret = hit
            line = next((n for n in (view.node_line(cond), view.node_line(ret)) if n in view.added), None)
            if line is None and entry is not None:
                line = next(n for n in range(entry.start, entry.end + 1) if n in view.added)
            if line is None:
                line = view.first_added_line(fn)
            if line is None:
                continue
            regs = sorted({e.name for e in users.get(name, []) if e.name})
            what = ", ".join(regs[:3]) + (" ..." if len(regs) > 3 else "") if regs else "the register"
            gate = _cond_text(cond)
            yield self.at_line(
                view, line,
                f"{name}() makes {what} visible on a host-only test ({gate}), not on the VM's features",
                note=f"{what} now shows up in KVM_GET_REG_LIST and ONE_REG for every VM on a capable "
                     "host, whether or not the VMM configured the feature. That exposes state the "
                     "guest can never produce and breaks save/restore between hosts. Can the "
                     "visibility depend on kvm_has_feat(vcpu->kvm, ...) for the feature instead "
                     "(the host check can stay as a shortcut)?",
            )


def _removed_entries(removed: list[str]) -> Iterator[Entry]:
    """Each removed table entry line parsed on its own, closed when the entry goes on below (its
    fields up to there are what the entry had)."""
    for t in removed:
        if "SYS_DESC" not in t and "_REG(" not in t:
            continue
        group, depth = [t], t.count("{") - t.count("}")
        if depth > 0:
            # the rest of the entry may be context (only its first line changed): close it
            group = [t.rstrip().rstrip(",") + " " + "}" * depth + ","]
        yield from parse_lines(group)


def _inner(fn: Node, defs: dict[str, Node]) -> Node | None:
    """`return __el2_visibility(vcpu, rd, inner);` -> inner's definition."""
    for call in walk(fn, {"call_expression"}):
        if call_name(call) in _WRAPPERS:
            args = call.child_by_field_name("arguments")
            last = args.named_children[-1] if args is not None and args.named_children else None
            if last is not None and text(last) in defs:
                return defs[text(last)]
    return None


def _host_only_visible(clf: Classifier, fn: Node) -> tuple[Node, Node] | None:
    """(a host-only condition, the visible return it guards) when every condition on the path of a
    `return 0` / `return REG_RAZ` is host-only."""
    for ret in walk(fn, {"return_statement"}):
        if not ret.named_children or " ".join(text(ret.named_children[0]).split()) not in _VISIBLE:
            continue
        cls, host = classify_path(clf, ret)
        if cls == HOST and host:
            return host[0], ret
    return None
