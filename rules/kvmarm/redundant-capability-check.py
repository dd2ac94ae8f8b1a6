"""kvmarm/redundant-capability-check: re-checking a capability the caller already returned without."""

from __future__ import annotations

from collections.abc import Iterator

from pmureview.analyses.redundant_capability import (
    CapabilityFlow,
    Why,
    added_checks,
    feature_name,
    may_check,
    series_functions,
    series_predicates,
)
from pmureview.kernel.guards import CAP_CALLS, FEAT_CALLS, predicate_caps
from pmureview.lang.c import call_name, function_name, walk
from pmureview.rule.base import Rule
from pmureview.rule.model import Confidence, Finding, RuleDocs, RuleMeta, Scope, Severity
from pmureview.views.context import PatchContext


class RedundantCapabilityCheck(Rule):
    meta = RuleMeta(
        id="kvmarm/redundant-capability-check",
        title="Capability re-checked where the caller already returned without it",
        severity=Severity.WARNING,
        confidence=Confidence.HIGH,
        scope=Scope.PATCH,
        # prefilter: every capability test roots in one of these calls; full mode: base predicates
        evidence=(r"(?#hunk-only)cpus_have_|this_cpu_has_cap|alternative_has_cap|kvm_has_feat|system_supports_",),
        files=("*.c", "*.h"),
        uses_tree=True,
        docs=RuleDocs(
            what="Flags an added test of a host capability (`cpus_have_final_cap(ARM64_HAS_FGT)`, "
                 "directly or through a predicate whose body tests it, such as one the series "
                 "itself introduces) in code that only runs once that capability is known: after "
                 "an early `return` without it in the same function, or in a `static` helper whose "
                 "every caller in the file sits after such a return (kvm_vcpu_load_fgt() returns "
                 "without FEAT_FGT at the top and without FEAT_FGT2 before the *2 registers; "
                 "__activate_traps_hfgxtr() without FEAT_FGT).",
            why="The second test can never fail, so it only hides which condition really matters "
                "here. When it comes through a broad predicate (\"partitioned and FGT and HPMN\"), "
                "the helper ends up depending on more than it needs, and reviewers ask for the "
                "narrower predicate at the call site.",
            example="static void __compute_hdfgrtr(struct kvm_vcpu *vcpu)\n{\n"
                    "\t__compute_fgt(vcpu, HDFGRTR_EL2);\n\n"
                    "\tif (kvm_vcpu_pmu_use_fgt(vcpu))   /* tests ARM64_HAS_FGT again */\n"
                    "\t\t*vcpu_fgt(vcpu, HDFGRTR_EL2) |= HDFGRTR_EL2_PMOVS;\n}",
            use_instead="\tif (kvm_vcpu_pmu_is_partitioned(vcpu))\n"
                        "\t\t*vcpu_fgt(vcpu, HDFGRTR_EL2) |= HDFGRTR_EL2_PMOVS;",
            known_problems="Only callers in the same file are followed, and only for `static` "
                           "functions whose address is not taken. In hunk-only mode a caller's "
                           "guard may be outside the hunks: the bundled guard table stands in, and "
                           "a static `__compute_<FGT register>()` helper of config.c whose callers "
                           "are not visible is assumed to be called from kvm_vcpu_load_fgt() "
                           "(reported with medium confidence). That table describes one kernel "
                           "(v6.18): for a series not dated after its release, a finding that rests "
                           "on it is only a check ending \"(as of v6.18)\"; with a base tree only the "
                           "tree's guards count. A predicate that is also needed "
                           "elsewhere (MDCR_EL2 programming) is not wrong in itself: the finding "
                           "asks for the narrower predicate at this call site. A predicate that tests the "
                           "capability and a state of its own (`return system_supports_sme() && "
                           "(t->svcr & SVCR_SM_MASK)`) with no narrower predicate to name is the "
                           "accessor for that state: calling it under the capability test is the "
                           "normal idiom and is not reported.",
            references=(
                "<aTiPvS49uMOJEBrf@kernel.org> (Oliver Upton on v5 10/24: condition on "
                "kvm_vcpu_pmu_is_partitioned(); kvm_vcpu_load_fgt() already checks FEAT_FGT)",
            ),
        ),
    )

    def check(self, ctx: PatchContext) -> Iterator[Finding]:  # type: ignore[override]
        preds: dict[str, set[str]] | None = None
        defs: dict | None = None  # the series' functions: read only for a finding
        upto = ctx.patch.number
        for view in ctx.views:
            if not view.is_c or not view.added or not view.text.strip() or not may_check(ctx.series, view, upto):
                continue
            if preds is None:
                preds = series_predicates(ctx.series, upto)
            flow = CapabilityFlow(view, preds, ctx.kb, ctx.series)
            seen: set[int] = set()
            for call, callee, caps in added_checks(view, preds):
                line = view.node_line(call)
                if line in seen or _is_definition_body(call, callee):
                    continue
                held = flow.at(call)
                redundant = sorted(c for c in caps if c in held)
                if not redundant:
                    continue
                cap = redundant[0]
                if defs is None:
                    defs = series_functions(ctx.series, upto)
                if _answers_more(callee, cap, preds, defs):
                    continue
                seen.add(line)
                why = held[cap]
                fn = _function_of(call)
                # a guard known only from the bundled table, for a series not dated after the
                # kernel it describes: at most a check that says so (docs/knowledge.md)
                dated = f" ({why.as_of})" if why.as_of else ""
                yield self.at_line(
                    view, line, _message(callee, cap, why, fn, call, preds, defs) + dated,
                    note=_note(callee, cap, why, fn, preds, defs),
                    severity=Severity.CHECK if dated else None,
                    confidence=Confidence.LOW if dated else Confidence.MEDIUM if why.assumed else Confidence.HIGH,
                    column=view.column(call))


def _function_of(node) -> str | None:
    n = node.parent
    while n is not None and n.type != "function_definition":
        n = n.parent
    return function_name(n) if n is not None else None


def _is_definition_body(call, callee: str) -> bool:
    """A predicate's own recursive mention is not a re-check (defensive)."""
    return _function_of(call) == callee


def _message(callee: str, cap: str, why: Why, fn: str | None, call, preds, defs) -> str:
    feat = feature_name(cap)
    label = f"{feat} ({cap})" if feat != cap else cap
    if not why.guard:
        head = f"{label} was already tested on line {why.line}"
    elif why.guard == fn:
        head = f"{fn}() only gets here with {label}"
    else:
        head = f"{why.guard}() already checks {label} before calling {why.via or fn}()"
    if callee in preds and callee not in CAP_CALLS and callee not in FEAT_CALLS:
        narrower = _narrower(callee, cap, preds, defs)
        if narrower:
            return (f"{head}; condition this on {narrower}() and drop the "
                    f"{feat.removeprefix('FEAT_')} check in {callee}()")
        return f"{head}; {callee}() tests it again here"
    return f"{head}; this {callee}({cap}) test can never fail"


def _answers_more(callee: str, cap: str, preds, defs) -> bool:
    """A predicate of the series that tests `cap` AND state of its own, with no narrower predicate
    to name instead (`thread_sm_enabled()`: the capability and a bit of the thread's SVCR): it is
    the accessor for that state, and calling it under a capability test is the normal idiom."""
    if callee not in defs or callee in CAP_CALLS or callee in FEAT_CALLS:
        return False
    if _narrower(callee, cap, preds, defs):
        return False
    for _view, fn in defs[callee]:
        for ret in walk(fn, {"return_statement"}):
            expr = next((c for c in ret.named_children if c.type != "comment"), None)
            while expr is not None and expr.type == "parenthesized_expression":
                expr = expr.named_children[0] if expr.named_children else None
            if expr is not None and expr.type == "binary_expression":
                return True
    return False


def _narrower(callee: str, cap: str, preds, defs) -> str | None:
    """The predicate the callee combines with `cap` in its body (when the series defines it)."""
    for _view, fn in defs.get(callee, ()):
        if cap not in predicate_caps(fn, preds):
            continue  # a stub
        for ret in walk(fn, {"return_statement"}):
            for c in walk(ret, {"call_expression"}):
                name = call_name(c)
                if name and name != callee and name in defs and cap not in preds.get(name, ()):
                    return name
    return None


def _note(callee: str, cap: str, why: Why, fn: str | None, preds, defs) -> str:
    feat = feature_name(cap)
    if not why.guard:
        where = f"{feat} was already tested on line {why.line} on the way here"
    elif why.guard == fn:
        where = f"{fn}() only reaches this line when the CPU has {feat}"
    else:
        where = (f"{why.guard}() returns early without {feat}, and {why.via or fn}() is only "
                 f"called after that")
    if callee in preds and callee not in CAP_CALLS and callee not in FEAT_CALLS:
        narrower = _narrower(callee, cap, preds, defs)
        head = f"{where}, so the {feat} test inside {callee}() cannot fail here."
        if narrower:
            tail = (f" Gate this on {narrower}() instead; if {callee}() is still needed "
                    f"elsewhere, where {feat} is not known yet, keep it for those callers.")
        else:
            tail = f" Gate this on the condition that matters here rather than on {callee}()."
        return head + tail + _assumed(why)
    return f"{where}, so this test cannot fail; drop it." + _assumed(why)


def _assumed(why: Why) -> str:
    if not why.assumed:
        return ""
    return (f" (The caller is outside the hunks: this assumes the helper is only called from "
            f"{why.guard}(), as config.c's __compute_*() helpers are. Is that right?)")
