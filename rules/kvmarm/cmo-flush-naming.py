"""kvmarm/cmo-flush-naming: a new KVM/arm64 name calls a cache-maintenance operation a 'flush'."""

from __future__ import annotations

from collections.abc import Iterator

from pmureview.analyses.symbols import MEMBER_NS, ORDINARY, symbols
from pmureview.lang.c import text
from pmureview.lazyre import lazy_re
from pmureview.rule.base import Rule
from pmureview.rule.model import Confidence, Finding, RuleDocs, RuleMeta, Scope, Severity
from pmureview.views.context import SeriesContext

_KVM = lazy_re(r"^(?:arch/arm64/kvm/|arch/arm64/include/asm/kvm|include/kvm/)")
# flush + a cache (or a point of coherency/unification), in either order; TLB flushes are not CMOs
_CMO_FLUSH = lazy_re(r"(?i)flush_?(?:[a-z]*_)?(?:[di]?cache|po[cu])\b|flush_?(?:[di]?cache|po[cu])|"
                     r"(?:[di]cache|cache)_?(?:[a-z]*_)?flush")
_NOT_CMO = lazy_re(r"(?i)tlb|tlbi|shadow|memslot|vmid|_ctx")


class CmoFlushNaming(Rule):
    meta = RuleMeta(
        evidence=(r"(?i)flush",),  # cannot fire without it (prefilter)
        id="kvmarm/cmo-flush-naming",
        title="'flush' used to name a cache-maintenance operation",
        severity=Severity.CHECK,
        confidence=Confidence.MEDIUM,
        scope=Scope.SERIES,
        docs=RuleDocs(
            what="Flags a function, prototype, macro, variable or struct member that a KVM/arm64 patch "
                 "introduces (arch/arm64/kvm, asm/kvm_*.h, include/kvm) whose name calls a data or "
                 "instruction cache operation a flush: flush_dcache, flush_icache, *_flush_*_cache, "
                 "dcache_flush, flush_*_poc.",
            why="'Flush' means different things to different architectures and people (clean? "
                "invalidate? both?). arm64 and KVM name cache maintenance after the architectural "
                "operation and its point: clean, invalidate, clean_inval, to PoC/PoU (dcache_clean_"
                "inval_poc(), icache_inval_pou()); maintainers ask new names to follow it.",
            example="void (*flush_dcache)(void *addr, size_t size);",
            use_instead="void (*dcache_clean_inval_poc)(void *addr, size_t size);",
            known_problems="A name the series only touches (it existed before, as the patch's removed or "
                           "context lines or the base show) is skipped; in hunk-only mode a name whose "
                           "earlier existence the hunks do not show counts as new. TLB flushes and "
                           "generic kernel APIs called (not defined) by the patch are not judged.",
            references=("arch/arm64/include/asm/cacheflush.h (dcache_clean_inval_poc, icache_inval_pou, "
                        "the 2021 rename away from __flush_dcache_area)",),
        ),
    )

    def check(self, ctx: SeriesContext) -> Iterator[Finding]:  # type: ignore[override]
        seen: set[str] = set()
        for view in ctx.all_views():
            if not view.added or not view.is_c or not _KVM.match(view.path) or "flush" not in view.text.lower():
                continue
            for ident in view.added_nodes(_IDENTS):
                name = text(ident)
                line = view.node_line(ident)
                if name in seen or not _CMO_FLUSH.search(name) or _NOT_CMO.search(name):
                    continue
                if not _declared(ident) or symbols(ctx).existed(name, (ORDINARY, MEMBER_NS)):
                    continue
                seen.add(name)
                yield self.at_line(
                    view, line, f"'{name}' names a cache-maintenance operation 'flush': say what it "
                                f"does (clean, invalidate, clean_inval, to PoC/PoU)", column=view.column(ident),
                    note="KVM/arm64 names cache maintenance after the architectural operation "
                         "(dcache_clean_inval_poc(), icache_inval_pou()); 'flush' is ambiguous.")


_IDENTS = frozenset({"identifier", "field_identifier"})
_DECLARATOR = frozenset({"function_declarator", "pointer_declarator", "parenthesized_declarator", "init_declarator",
                         "array_declarator", "field_declaration", "declaration", "preproc_def",
                         "preproc_function_def"})


def _declared(ident) -> bool:
    """Is this identifier the name a declaration, definition, member or macro introduces?"""
    parent = ident.parent
    if parent is None or parent.type not in _DECLARATOR:
        return False
    if parent.type == "parenthesized_declarator":
        return True
    field = "name" if parent.type.startswith("preproc_") else "declarator"
    named = parent.child_by_field_name(field)
    return named is not None and named.id == ident.id
