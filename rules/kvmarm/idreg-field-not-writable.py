"""kvmarm/idreg-field-not-writable: a feature given to guests on an ID field the VMM cannot change."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import TYPE_CHECKING

from pmureview.analyses.series_facts import as_of_suffix, bundled_worth
from pmureview.kernel.dating import GATING
from pmureview.kernel.idregs import facts, is_id_register
from pmureview.kernel.predicates import helpers_for
from pmureview.lang.c import call_name, function_name, text
from pmureview.lazyre import lazy_re
from pmureview.rule.base import Rule
from pmureview.rule.model import Confidence, Finding, RuleDocs, RuleMeta, Scope, Severity
from pmureview.views.context import SeriesContext

if TYPE_CHECKING:
    from tree_sitter import Node

    from pmureview.views.context import FileView

_FEAT_CALLS = ("kvm_has_feat", "kvm_has_feat_enum", "kvm_has_feat_range")
_FEAT_TEXT = lazy_re(
    r"(!\s*)?\bkvm_has_feat(?:_enum|_range)?\s*\(\s*[^,()]+(?:\([^()]*\))?[^,]*,\s*(\w+)\s*,\s*(\w+)")
_HIDING = lazy_re(r"\bfgu\b|RES0|res0|REG_HIDDEN|undef|-E[A-Z]+|&=\s*~")
_DEFINE = lazy_re(r"^[ \t]*#[ \t]*define[ \t]+(\w+)\(([^)]*)\)((?:[^\n]*\\\n)*[^\n]*)", re.M)
_HELPER = lazy_re(r"^(?:ctxt_has_|kvm_has_|vcpu_has_)\w+$")


class IdregFieldNotWritable(Rule):
    meta = RuleMeta(
        id="kvmarm/idreg-field-not-writable",
        title="Per-VM feature gate on an ID-register field the VMM cannot write",
        severity=Severity.WARNING,
        confidence=Confidence.MEDIUM,
        scope=Scope.SERIES,
        # prefilter: every gate is a kvm_has_feat*() / *_has_*() call or macro; full mode: base lines
        evidence=(r"(?#hunk-only)ctxt_has_|kvm_has_|vcpu_has_",),
        files=("*.c", "*.h"),
        needs_base=True,
        uses_tree=True,
        docs=RuleDocs(
            what="Flags a positive per-VM gate the series adds on an ID-register field R.F — "
                 "kvm_has_feat*(kvm, R, F, ...) directly, or through one level of "
                 "kvm_has_<x>()/ctxt_has_<x>() — whose true branch gives the guest something "
                 "(visibility, a context switch, an enable bit), while R's sys_reg_descs[] entry "
                 "(base + series) does not make F writable: ID_SANITISED, F outside an allow-list, "
                 "or F among a complement's exclusions. When the sanitisation path also clears F "
                 "for every VM the gate can never be true, which is reported as a check. One "
                 "finding per field per series, at its first gate.",
            why="A gate on a non-writable field is true whenever the host has the feature: the "
                "VMM has no way to turn the feature off, so a VM started on this host cannot "
                "migrate to a host without it and back. Maintainers ask for the field to be made "
                "writable together with the code that depends on it.",
            example="\tID_WRITABLE(ID_AA64FOO0_EL1, ID_AA64FOO0_EL1_BAR),\n...\n"
                    "\tif (kvm_has_feat(vcpu->kvm, ID_AA64FOO0_EL1, FOO, IMP))\n\t\treturn 0;",
            use_instead="\tID_WRITABLE(ID_AA64FOO0_EL1, ID_AA64FOO0_EL1_BAR |\n"
                        "\t\t\t\t    ID_AA64FOO0_EL1_FOO),",
            known_problems="Negative uses (`!kvm_has_feat()` feeding FGU, RES0 or UNDEF) only hide "
                           "and never trigger. Sub-features deliberately tied to a writable parent "
                           "field are reported too. With patches of the series missing the finding "
                           "is a check (the field may be made writable there). In hunk-only mode "
                           "the descriptor comes from the series' hunks or the bundled facts, which "
                           "are dated (docs/knowledge.md): silent when the series changes that "
                           "register's entry, sanitisation or fields, a check saying 'as of vX.Y' "
                           "when the series is not newer than the facts. "
                           "Needs a base: skipped by `check --files`.",
            references=("DOMAIN-PACK2.md §2 rule 20 and §1.3 (writable masks and migration)",),
        ),
    )

    def check(self, ctx: SeriesContext) -> Iterator[Finding]:  # type: ignore[override]
        seen: set[tuple[str, str]] = set()
        helpers = None
        partial = bool(getattr(ctx.series, "missing", ()))
        for view in ctx.all_views():
            if not view.is_c or not view.added or not view.text.strip():
                continue
            if helpers is None:
                helpers = helpers_for(ctx)
            for line, reg, fld in _gates(view, helpers.bodies):
                if (reg, fld) in seen or not is_id_register(reg):
                    continue
                f = facts(ctx, reg)
                if f.mask is None:
                    continue
                ok = f.mask.writable(fld)
                if ok is None or ok:
                    continue
                never = f.hidden or (f.limits is not None and f.limits.clears(fld))
                # a bundled fact: silent when the series changes R's definitions (any patch: the
                # facts are the series' final state), at most a check unless the series postdates it
                worth = None
                if f.source == "snapshot" or (never and f.limits_source == "snapshot"):
                    worth = bundled_worth(ctx, GATING, reg, fld)
                    if worth is None:
                        continue
                seen.add((reg, fld))
                as_of = as_of_suffix(worth)
                if never:
                    yield self.at_line(
                        view, line,
                        f"gate on {reg}.{fld} can never be true: KVM hides the field from every VM{as_of}",
                        severity=Severity.CHECK, confidence=Confidence.LOW,
                        note=f"This tests {reg}.{fld}, but the sanitisation path clears that field "
                             "for every VM and the VMM cannot set it, so the branch is dead code. "
                             "Did the series forget to stop hiding the field (and make it writable)?",
                    )
                    continue
                yield self.at_line(
                    view, line,
                    f"{reg}.{fld} gates a guest feature but is not writable by the VMM{as_of}",
                    severity=Severity.CHECK if partial or as_of else None,
                    confidence=Confidence.LOW if as_of else None,
                    note=f"The feature is given to the guest whenever the host has it, but {reg}.{fld} "
                         "is not writable, so the VMM has no way to turn it off: a VM started here "
                         "cannot migrate to a host without it and back. Please make the field "
                         "writable in the sys_reg_descs[] entry (and check what depends on it).",
                )


_CALLS = frozenset({"call_expression"})


def _gates(view: FileView, bodies: dict[str, list[str]]) -> Iterator[tuple[int, str, str]]:
    """(line, register, field) for each added positive per-VM gate that gives the guest something."""
    for call in view.added_nodes(_CALLS, touching=True):  # the calls holding an added line
        name = call_name(call)
        if name is None or not (name in _FEAT_CALLS or (_HELPER.match(name) and name in bodies)):
            continue
        line = view.first_added_line(call)
        if line is None:
            continue
        if name in _FEAT_CALLS:
            args = call.child_by_field_name("arguments")
            kids = args.named_children if args is not None else []
            if len(kids) >= 3 and _positive_gate(call, view):
                yield line, text(kids[1]).strip(), text(kids[2]).strip()
        elif _HELPER.match(name) and name in bodies and _positive_gate(call, view, definition=False):
            for expr in bodies[name]:
                for m in _FEAT_TEXT.finditer(expr):
                    if not m.group(1):
                        yield line, m.group(2), m.group(3)
    # function-like macros: #define kvm_has_foo(kvm) kvm_has_feat((kvm), R, F, IMP)
    if not view.added_may_be_in_define():
        return
    pos, first = 0, 1
    for m in _DEFINE.finditer(view.text):
        first += view.text.count("\n", pos, m.start())  # running count, not from 0 per macro
        pos = m.start()
        span = range(first, first + m.group(0).count("\n") + 1)
        if not _HELPER.match(m.group(1)) or not any(n in view.added for n in span):
            continue
        for g in _FEAT_TEXT.finditer(m.group(3)):
            if not g.group(1):
                yield first, g.group(2), g.group(3)


def _positive_gate(call: Node, view: FileView, definition: bool = True) -> bool:
    """The call decides, un-negated, an if whose branch gives something, or is returned by a
    has/visibility predicate (a gate definition)."""
    child, node = call, call.parent
    while node is not None:
        t = node.type
        if t == "unary_expression" and text(node).lstrip().startswith("!"):
            return False
        if t == "binary_expression":
            op = node.child_by_field_name("operator")
            if op is None or text(op) not in ("&&", "||"):
                return False
        elif t == "if_statement":
            if child != node.child_by_field_name("condition"):
                return False
            cons = node.child_by_field_name("consequence")
            return cons is not None and not _HIDING.search(text(cons))
        elif t == "return_statement":
            if not definition:
                return False
            fn = node.parent
            while fn is not None and fn.type != "function_definition":
                fn = fn.parent
            fname = function_name(fn) if fn is not None else None
            return bool(fname and ("has" in fname or fname.endswith("visibility")))
        elif t not in ("parenthesized_expression", "condition_clause", "argument_list"):
            return False
        child, node = node, node.parent
    return False
