"""kvmarm/sysreg-visibility-not-per-vm: a new register shown to every VM, not only those with the feature."""

from __future__ import annotations

import re
from bisect import bisect_left
from collections.abc import Iterator
from typing import TYPE_CHECKING

from pmureview.kernel.predicates import HOST, PER_VM, Classifier, classify_path, helpers_for
from pmureview.kernel.predicates import cond_text as _cond_text
from pmureview.kernel.sysregtable import Entry, parse_lines, pre_entries, view_entries
from pmureview.lang.c import call_name, functions, text, walk
from pmureview.lazyre import lazy_re
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
# (c) what makes a trapped register UNDEF for the guest
_UNDEF = {"undef_access", "kvm_inject_undefined", "trap_undef"}
# the series names a field of the VM's own ID registers: kvm_has_feat(kvm, REG, FIELD, ...), an
# ID_<REG>_EL1_<FIELD>[_SHIFT|_MASK|...] macro, or a Field/Enum line of arch/arm64/tools/sysreg
_FEAT_ARG = lazy_re(r"\bkvm_has_feat\w*\s*\([^,()]+(?:\([^()]*\))?[^,()]*,\s*\w+\s*,\s*(\w+)")
_ID_MACRO = lazy_re(r"\bID_[A-Z0-9]+_EL1_([A-Za-z0-9]+?)(?:_(?:SHIFT|MASK|WIDTH|IMP|NI|MAX))?\b")
_SYSREG_FIELD = lazy_re(r"^\s*(?:Field|UnsignedEnum|SignedEnum|Enum)\s+\S+\s+(\w+)")
_CAP_NOISE = {"ARM64", "HAS", "HAVE", "CAP", "CAPS", "CPUS", "FINAL", "SYSTEM", "SUPPORTS", "FEAT", "KVM",
              "THIS", "CPU", "WORKAROUND", "HOST", "ALTERNATIVE", "STATIC", "BRANCH", "LIKELY", "UNLIKELY"}
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
                 "callback is judged. (c) As a check: a trap handler (a `struct sys_reg_params *` "
                 "callback) the series adds or changes that makes its register UNDEF on a host "
                 "capability alone, when an earlier patch of the series (or this one) names the "
                 "VM's own ID register field of that same feature (kvm_has_feat(), an ID_*_EL1_<F> "
                 "macro, a Field of arch/arm64/tools/sysreg). More than three registers of one "
                 "patch missing a visibility are one finding.",
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
        order = sorted(view.added)  # an entry is added when one of its lines is (a bisection each)
        added = [e for e in entries if _touches(order, e.start, e.end)]
        if not ctx.series.files_mode:
            yield from self._missing_visibility(view, added)
        yield from self._host_only_callbacks(ctx, view, entries, added)
        yield from self._host_only_traps(ctx, view, entries, added)

    # -- (a) -----------------------------------------------------------------------------------
    def _missing_visibility(self, view: FileView, added: list[Entry]) -> Iterator[Finding]:
        # the added entries that could be bare, before reading the table the patch started from
        # (full mode: a whole sys_regs.c)
        maybe = [e for e in added if e.name and e.has_storage and not e.visibility
                 and (view.pre_text is not None or e.start in view.added)]
        if not maybe:
            return
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
        # hunk-only: an entry whose first line is context existed already, as it was unseen (maybe)
        bare = [e for e in maybe if e.key not in had]
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

    # -- (c) -----------------------------------------------------------------------------------
    def _host_only_traps(self, ctx: FileContext, view: FileView, entries: list[Entry],
                         added: list[Entry]) -> Iterator[Finding]:
        """A trap handler the series adds or changes that makes its register UNDEF on the host's
        capability alone, when the series itself defines the VM's ID register field of that very
        feature (so kvm_has_feat() could answer per VM)."""
        if "sys_reg_params" not in view.text:
            return
        fields = _series_id_fields(ctx)
        if not fields:
            return
        access: dict[str, list[Entry]] = {}
        for e in entries:
            a = e.get("access")
            if a and a not in _NOT_EMULATED:
                access.setdefault(a, []).append(e)
        new_entry = {e.get("access") for e in added}
        clf: Classifier | None = None
        for name, fn in functions(view.root):
            # a trap handler by its signature (hunk-only tables may not parse around the entry)
            decl = fn.child_by_field_name("declarator")
            if decl is None or "sys_reg_params" not in text(decl):
                continue
            if not (view.touches_added(fn) or name in new_entry):
                continue
            if any(e.visibility for e in access.get(name, ())):
                continue  # a visibility callback decides first (variant b judges it)
            clf = clf or Classifier(helpers_for(ctx.series, ctx.patch.number))
            hit = _host_only_undef(clf, fn, fields)
            if hit is None:
                continue
            cond, feats = hit
            line = next((n for n in (view.node_line(cond),) if n in view.added), None) or view.first_added_line(fn)
            if line is None:
                entry = next((e for e in added if e.get("access") == name), None)
                line = next((n for n in range(entry.start, entry.end + 1) if n in view.added), None) if entry else None
            if line is None:
                continue
            regs = sorted({e.name for e in access.get(name, ()) if e.name})
            what = ", ".join(regs[:3]) if regs else "its register"
            feat = ", ".join(sorted(feats))
            yield self.at_line(
                view, line,
                f"{name}() makes {what} UNDEF on the host's capability only ({_cond_text(cond)}), while "
                f"the series gives VMs their own {feat} ID field: should it test the VM's ID register?",
                note=f"A VM configured without {feat} still has the register on a capable host, and a VM "
                     f"that has it would lose it on migration to another host. kvm_has_feat(vcpu->kvm, "
                     f"...) (or a .visibility callback) decides per VM; the host capability only says "
                     f"what the VMM may enable.",
                severity=Severity.CHECK, confidence=Confidence.MEDIUM)

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


def _touches(order: list[int], start: int, end: int) -> bool:
    """Some line in start..end is in the sorted list `order`."""
    i = bisect_left(order, start)
    return i < len(order) and order[i] <= end


def _series_id_fields(ctx: FileContext) -> set[str]:
    """Fields of the VM's ID registers that the series names, up to the patch under review."""
    def build() -> dict[int, set[str]]:
        out: dict[int, set[str]] = {}
        acc: set[str] = set()
        for p in ctx.series.patches:
            for f in p.files:
                sysreg = f.path == "arch/arm64/tools/sysreg"
                for ln in f.added_lines():
                    t = ln.text
                    if sysreg:
                        acc.update(m.group(1).upper() for m in _SYSREG_FIELD.finditer(t))
                    elif "ID_" in t or "kvm_has_feat" in t:
                        acc.update(m.group(1).upper() for m in _FEAT_ARG.finditer(t))
                        acc.update(m.group(1).upper() for m in _ID_MACRO.finditer(t))
            out[p.number] = set(acc)
        return out
    got = ctx.series.memo(("sysreg-visibility-not-per-vm", "id-fields"), build)
    return got.get(ctx.patch.number, set())


def _cond_features(cond: Node) -> set[str]:
    """The feature words of a host predicate: ARM64_HAS_S1PIE -> S1PIE, system_supports_qux() -> QUX."""
    words = {w.upper() for tok in re.findall(r"[A-Za-z_]\w*", text(cond)) for w in tok.split("_")}
    return {w for w in words if len(w) >= 3 and w not in _CAP_NOISE}


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


def _host_only_undef(clf: Classifier, fn: Node, fields: set[str]) -> tuple[Node, set[str]] | None:
    """(host-only condition, the series' ID fields it names) guarding an UNDEF in `fn`, when nothing
    in `fn` tests the VM's configuration (an unknown predicate on the UNDEF's path keeps it silent)."""
    for iff in walk(fn, {"if_statement"}):
        if clf.classify(iff.child_by_field_name("condition")) == PER_VM:
            return None  # it does look at the VM somewhere
    for call in walk(fn, {"call_expression"}):
        if call_name(call) not in _UNDEF:
            continue
        cls, host = classify_path(clf, call)
        if cls != HOST or not host:
            continue
        for cond in host:
            feats = _cond_features(cond) & fields
            if feats:
                return cond, feats
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
