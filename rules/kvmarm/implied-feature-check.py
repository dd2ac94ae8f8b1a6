"""kvmarm/implied-feature-check: testing a feature that the feature already known implies."""

from __future__ import annotations

from collections.abc import Iterator

from pmureview.analyses.redundant_capability import (
    CapabilityFlow,
    Why,
    added_checks,
    feature_name,
    may_check,
    series_predicates,
)
from pmureview.kernel.guards import CAP_CALLS, FEAT_CALLS
from pmureview.lang.c import function_name
from pmureview.rule.base import Rule
from pmureview.rule.model import Confidence, Finding, RuleDocs, RuleMeta, Scope, Severity
from pmureview.views.context import PatchContext


class ImpliedFeatureCheck(Rule):
    meta = RuleMeta(
        id="kvmarm/implied-feature-check",
        title="Check for a feature that the feature already known implies",
        severity=Severity.CHECK,
        confidence=Confidence.HIGH,
        scope=Scope.PATCH,
        # prefilter: the implied capability tested (kb.implications) is named in the hunks; full: base predicates
        evidence=(r"(?#hunk-only)ARM64_HAS_FGT|FEAT_FGT",),
        files=("*.c", "*.h"),
        uses_tree=True,
        docs=RuleDocs(
            what="Flags an added test of capability F (directly or through a predicate whose body "
                 "tests it) in code that only runs once a capability G is known, where G "
                 "architecturally implies F: FEAT_FGT2 implies FEAT_FGT, FEAT_GCIE (GICv5) implies "
                 "v9.3 and so FEAT_FGT, SME implies FEAT_FGT. G is known from an early return "
                 "without it, an enclosing `if (G)`, the left side of `G && F`, or the guarded "
                 "callers of a static helper. Re-testing G itself is "
                 "kvmarm/redundant-capability-check.",
            why="A \"what if F is missing\" path next to G describes a machine that cannot exist. It "
                "is dead code that still has to be read, and it suggests to the next reader that "
                "the combination is possible.",
            example="\tif (cpus_have_final_cap(ARM64_HAS_GICV5_CPUIF)) {\n"
                    "\t\tif (!cpus_have_final_cap(ARM64_HAS_FGT))\n\t\t\tgoto skip;\n"
                    "\t\t__compute_ich_hfgrtr(vcpu);\n\t}",
            use_instead="\tif (cpus_have_final_cap(ARM64_HAS_GICV5_CPUIF))\n"
                        "\t\t__compute_ich_hfgrtr(vcpu);",
            known_problems="The implication table is small and deliberately precise (kb."
                           "implications): GICv5 does not imply FEAT_FGT2, so an FGT2 check next "
                           "to GICv5 is not reported. Implications that only hold for real "
                           "hardware (SME => FGT) may not hold for a model or an emulator. Where G "
                           "is known only from the bundled guard table (hunk-only mode; it "
                           "describes v6.18), a series not dated after that release gets the "
                           "finding with \"(as of v6.18)\"; with a base tree only its guards count.",
            references=(
                "<86o6o3oehl.wl-maz@kernel.org> (Marc Zyngier on GICv5 09/32: a 'GICv5 but no "
                "FGT' path is not a valid architectural construct)",
                "<87y2346on8.wl-maz@kernel.org> (Marc Zyngier on SME traps: if FGT is mandatory "
                "when SME exists, simplify the condition)",
            ),
        ),
    )

    def check(self, ctx: PatchContext) -> Iterator[Finding]:  # type: ignore[override]
        kb = ctx.kb
        preds: dict[str, set[str]] | None = None
        upto = ctx.patch.number
        for view in ctx.views:
            if not view.is_c or not view.added or not view.text.strip() or not may_check(ctx.series, view, upto):
                continue
            if preds is None:
                preds = series_predicates(ctx.series, upto)
            flow = CapabilityFlow(view, preds, kb, ctx.series)
            seen: set[int] = set()
            for call, callee, caps in added_checks(view, preds):
                line = view.node_line(call)
                if line in seen:
                    continue
                held = flow.at(call)
                hit = next(((f, g) for f in sorted(caps) if f not in held
                            for g in sorted(held) if g != f and kb.implies(g, f)), None)
                if hit is None:
                    continue
                seen.add(line)
                f, g = hit
                why = held[g]
                # G known only from the bundled guard table, for a series not dated after the
                # kernel it describes: a check that says so (docs/knowledge.md)
                dated = f" ({why.as_of})" if why.as_of else ""
                yield self.at_line(view, line, _message(callee, f, g, why, call) + dated,
                                   note=_note(f, g, why, kb),
                                   severity=Severity.CHECK if dated else None,
                                   confidence=(Confidence.LOW if dated else Confidence.MEDIUM if why.assumed
                                               else Confidence.HIGH),
                                   column=view.column(call))


def _where(g: str, why: Why, fn: str | None) -> str:
    feat = feature_name(g)
    if not why.guard or why.guard == fn or why.via is None:
        return f"this code only runs with {feat}"
    return f"{why.via}() only runs after {why.guard}() has checked {feat}"


def _message(callee: str, f: str, g: str, why: Why, call) -> str:
    fn = _function_of(call)
    ff, fg = feature_name(f), feature_name(g)
    how = (f"{callee}({f})" if callee in CAP_CALLS or callee in FEAT_CALLS
           else f"{callee}() (which tests {f})")
    return f"{fg} implies {ff}, and {_where(g, why, fn)}: {how} cannot fail here"


def _note(f: str, g: str, why: Why, kb) -> str:
    ff, fg = feature_name(f), feature_name(g)
    reason = next((w for a, b, w, _ in getattr(kb, "implications", ()) if a == g and b == f and w), "")
    text = (f"{fg} implies {ff}" + (f" ({reason})" if reason else "") +
            f", so a CPU without {ff} never gets here: this test always succeeds, and any path for "
            f"the case where it fails can never be taken. Drop it and simplify the condition.")
    if why.assumed:
        text += (f" (The caller is outside the hunks: this assumes the helper is only called from "
                 f"{why.guard}(). Is that right?)")
    return text


def _function_of(node) -> str | None:
    n = node.parent
    while n is not None and n.type != "function_definition":
        n = n.parent
    return function_name(n) if n is not None else None
