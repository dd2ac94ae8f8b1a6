"""kvmarm/unconditional-guest-feature-enable: a feature enable bit set for every guest."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import TYPE_CHECKING

from pmureview.kernel.predicates import HOST, NONE, Classifier, classify_path, gating_data, helpers_for
from pmureview.lang.c import functions, text, walk
from pmureview.lazyre import lazy_re
from pmureview.rule.base import Rule
from pmureview.rule.model import Confidence, Finding, RuleDocs, RuleMeta, Scope, Severity
from pmureview.views.context import FileContext

if TYPE_CHECKING:
    from tree_sitter import Node

    from pmureview.views.context import FileView

_HCRX = lazy_re(r"\bHCRX_EL2_(\w+)")
_HCR = lazy_re(r"\bHCR_(?:EL2_)?(\w+)")
_TARGET = lazy_re(r"(?:vcpu->arch\.|\barch\.|->)(hcrx?_el2)\b|\*\s*vcpu_hcrx?\(")
_DEFINE = lazy_re(r"^[ \t]*#[ \t]*define[ \t]+(\w+)[ \t]((?:[^\n]*\\\n)*[^\n]*)", re.M)
_NEEDS = lazy_re(r"NEEDS_FEAT\w*\(\s*((?:[^()]|\([^()]*\))*?),\s*(\w+)\s*\)")
_CONFIG = "arch/arm64/kvm/config.c"


def _enables(s: str) -> list[str]:
    """Enable-class bit names in a C expression (HCRX_EL2_TCR2En, HCR_ATA, ...)."""
    hcr = set(gating_data().get("enable_bits", {}).get("hcr", ()))
    out = []
    for m in _HCRX.finditer(s):
        f = m.group(1)
        if re.search(r"En(?![a-z])", f) and not f.endswith(("_MASK", "_SHIFT", "_WIDTH")):
            out.append(m.group(0))
    for m in _HCR.finditer(s):
        if m.group(1) in hcr and not m.group(0).startswith("HCRX"):
            out.append(m.group(0))
    return list(dict.fromkeys(out))


class UnconditionalGuestFeatureEnable(Rule):
    meta = RuleMeta(
        id="kvmarm/unconditional-guest-feature-enable",
        title="Feature enable bit set for every guest instead of per VM",
        severity=Severity.WARNING,
        confidence=Confidence.MEDIUM,
        scope=Scope.FILE,
        # prefilter: every enable bit reported is an HCR_*/HCRX_EL2_* name; full mode: base lines
        evidence=(r"(?#hunk-only)HCR_|HCRX_",),
        files=("*.c", "*.h"),
        uses_tree=True,
        docs=RuleDocs(
            what="Flags an enable-class trap-control bit — an HCRX_EL2 field whose name holds `En` "
                 "(TCR2En, SCTLR2En, MSCEn, EnFPM, ...) or HCR_EL2.API/APK/ATA/FIEN/EnSCXT/AMVOFFEN "
                 "— added (a) to a static guest mask (HCR_GUEST_FLAGS, HCRX_GUEST_FLAGS, any "
                 "*GUEST_FLAGS* macro), or (b) OR-ed or assigned into vcpu->arch.hcr_el2 / hcrx_el2 "
                 "in the trap-computation functions (kvm_calculate_traps(), kvm_init_sysreg(), "
                 "vcpu_set_hcr(), vcpu_set_hcrx(), vCPU reset) with no per-VM predicate on its path.",
            why="An enable bit set for every guest makes the feature work in a VM whose ID registers "
                "say it is absent, and the VMM cannot turn it off to migrate to a host without it. "
                "KVM sets each enable under kvm_has_feat() for the feature (newer trees record the "
                "pairing in config.c as NEEDS_FEAT(<bit>, FEAT_<x>)).",
            example="#define HCRX_GUEST_FLAGS (HCRX_EL2_SMPME | HCRX_EL2_FOOEn)",
            use_instead="\tif (kvm_has_feat(kvm, ID_AA64FOO0_EL1, FOO, IMP))\n"
                        "\t\tvcpu->arch.hcrx_el2 |= HCRX_EL2_FOOEn;",
            known_problems="Behaviour controls applied to all guests that are not feature enables "
                           "(SMPME, FnXS) are not enable-class and never reported; bits in "
                           "*HOST_FLAGS* are host configuration and ignored. A feature KVM gives every "
                           "VM by design is reported (say so in a comment). A condition whose helper "
                           "cannot be resolved keeps the rule silent.",
            references=("DOMAIN-PACK2.md §2 rule 18 (HCRX_EL2 enables set per VM under "
                        "kvm_has_feat(), as KVM does for MSCEn, TCR2En and EnFPM)",),
        ),
    )

    def check(self, ctx: FileContext) -> Iterator[Finding]:  # type: ignore[override]
        view = ctx.view
        if not view.added or not view.text.strip():
            return
        feats = _feature_map(ctx)
        yield from self._static_masks(view, feats)
        if "hcr" in view.text:
            yield from self._trap_functions(ctx, view, feats)

    def _static_masks(self, view: FileView, feats: dict[str, str]) -> Iterator[Finding]:
        if "GUEST_FLAGS" not in view.text or not view.added_may_be_in_define():
            return  # no such macro, or no added line in any macro: the whole-file scan finds nothing
        for m in _DEFINE.finditer(view.text):
            name = m.group(1)
            if "GUEST_FLAGS" not in name or "HOST" in name:
                continue
            first = view.text.count("\n", 0, m.start()) + 1
            bits: list[str] = []
            anchor = None
            for i, ln in enumerate(m.group(0).split("\n")):
                if first + i in view.added:
                    got = _enables(ln)
                    if got and anchor is None:
                        anchor = first + i
                    bits += got
            if anchor is None:
                continue
            yield self._finding(view, anchor, bits, f"in {name}", feats)

    def _trap_functions(self, ctx: FileContext, view: FileView, feats: dict[str, str]) -> Iterator[Finding]:
        wanted = set(gating_data().get("enable_bits", {}).get("trap_functions", ()))
        clf: Classifier | None = None
        scopes: list[tuple[str, Node, bool]] = [
            (name, fn, True) for name, fn in functions(view.root) if name in wanted and view.touches_added(fn)]
        if view.mode != "full":
            # hunk-only: a function whose header is outside the hunks is known by the hunk heading
            for h in view.change.hunks:
                m = re.search(r"(\w+)\s*\(", h.section or "")
                if m and m.group(1) in wanted and not any(m.group(1) == s for s, _, _ in scopes):
                    scopes.append((m.group(1), view.root, False))
        for name, fn, whole in scopes:
            stores = _stored_locals(fn)
            for a in walk(fn, {"assignment_expression"}):
                if not whole and (_in_function(a) or not _in_hunk_of(view, a, name)):
                    continue
                op = a.child_by_field_name("operator")
                left, right = a.child_by_field_name("left"), a.child_by_field_name("right")
                if op is None or left is None or right is None or text(op) not in ("|=", "="):
                    continue
                lt = text(left)
                if not (_TARGET.search(lt) or lt in stores):
                    continue
                line = view.first_added_line(a)
                bits = _enables(text(right))
                if line is None or not bits:
                    continue
                if clf is None:
                    clf = Classifier(helpers_for(ctx.series, ctx.patch.number))
                cls, _ = classify_path(clf, a)
                if cls not in (HOST, NONE) or (not whole and cls != HOST):
                    continue  # per-VM on the path, or something we cannot judge (only part seen)
                yield self._finding(view, line, bits, f"in {name}()", feats)

    def _finding(self, view: FileView, line: int, bits: list[str], where: str,
                 feats: dict[str, str]) -> Finding:
        names = ", ".join(bits)
        feat = next((feats[b] for b in bits if b in feats), None)
        gate = (f"kvm_has_feat() for {feat}" if feat else "kvm_has_feat() for the feature it enables")
        return self.at_line(
            view, line,
            f"{names} set for every guest {where}, not under a per-VM feature check",
            note=f"{names} is now set for every guest, so the feature works in a VM whose ID "
                 "registers say it is absent, and the VMM cannot turn it off for migration. "
                 f"Please set it per VM under {gate} instead.",
        )


def _in_function(node: Node) -> bool:
    p = node.parent
    while p is not None:
        if p.type == "function_definition":
            return True
        p = p.parent
    return False


def _in_hunk_of(view: FileView, node: Node, function: str) -> bool:
    line = view.node_line(node)
    for h in view.change.hunks:
        if h.new_start <= line < h.new_start + h.new_len:
            return bool(re.search(rf"\b{re.escape(function)}\s*\(", h.section or ""))
    return False


def _stored_locals(fn: Node) -> set[str]:
    """Locals later stored into vcpu->arch.hcr_el2/hcrx_el2 (`vcpu->arch.hcrx_el2 = val;`)."""
    out = set()
    for a in walk(fn, {"assignment_expression"}):
        left, right = a.child_by_field_name("left"), a.child_by_field_name("right")
        if left is not None and right is not None and _TARGET.search(text(left)) and right.type == "identifier":
            out.add(text(right))
    return out


def _feature_map(ctx: FileContext) -> dict[str, str]:
    """bit -> FEAT_<x> from config.c feature maps (series post-image, else base)."""
    series = ctx.series
    view = series.view_at(_CONFIG, ctx.patch.number)
    src = view.text if view is not None else series.base_text(_CONFIG)
    out: dict[str, str] = {}
    if not src or "NEEDS_FEAT" not in src:
        return out
    for m in _NEEDS.finditer(src):
        for b in re.findall(r"\b(?:HCRX_EL2|HCR_EL2|HCR)_\w+", m.group(1)):
            out.setdefault(b, m.group(2))
    return out
