"""api/page-reference-leak-on-early-return: a return that drops a page/pfn reference without releasing it."""

from __future__ import annotations

from collections.abc import Iterator

from pmureview.analyses.pairs import PAGES, view_leaks
from pmureview.lang.c import text
from pmureview.rule.base import Rule
from pmureview.rule.model import Confidence, Finding, RuleDocs, RuleMeta, Scope, Severity
from pmureview.views.context import FileContext


class PageReferenceLeakOnEarlyReturn(Rule):
    meta = RuleMeta(
        evidence=(r"(?#hunk-only)get_page|pin_shared_mem|gfn_to_page|_to_pfn|faultin_pfn|_user_pages",),  # prefilter
        id="api/page-reference-leak-on-early-return",
        title="Early return leaks a page/pfn reference",
        severity=Severity.WARNING,
        confidence=Confidence.MEDIUM,
        scope=Scope.FILE,
        docs=RuleDocs(
            what="Reports an early return taken after a call that hands out a page reference succeeded "
                 "(`gfn_to_pfn*()`, `__gfn_to_pfn_memslot()`, `kvm_faultin_pfn()`, `gfn_to_page()`, "
                 "`get_page()`, `pin_user_pages*()`, `get_user_pages*()`, `hyp_pin_shared_mem()`) when "
                 "the same function releases that reference on its normal path "
                 "(`kvm_release_pfn_*()`, `kvm_release_page_*()`, `put_page()`, `unpin_user_page*()`, "
                 "`hyp_unpin_shared_mem()`) but not on this one.",
            why="The reference pins the page: leaking it keeps guest memory from ever being freed or "
                "migrated. A return whose condition mixes the call's failure test with another test "
                "(`is_error_pfn(pfn) || !writable`) is taken with the reference held.",
            example="\tpfn = __gfn_to_pfn_memslot(slot, gfn, false, false, NULL, true, &writable, NULL);\n"
                    "\tif (is_error_pfn(pfn) || !writable)\n\t\treturn false;\n\t...\n"
                    "\tkvm_release_pfn_clean(pfn);\n\treturn true;",
            use_instead="\tif (is_error_pfn(pfn))\n\t\treturn false;\n\tif (!writable) {\n"
                        "\t\tkvm_release_pfn_clean(pfn);\n\t\treturn false;\n\t}",
            known_problems="Only whole functions are followed. Returns taken because the call itself "
                           "failed (`is_error_pfn(pfn)`, `IS_ERR(page)`, `ret != npages`, `if (ret)` after "
                           "hyp_pin_shared_mem()) are understood; a reference stored in a structure, "
                           "returned, passed to an unknown function or overwritten is taken to be handed "
                           "over, and a reference also held at the normal exit is taken to belong to the "
                           "caller. Pfns of VM_PFNMAP memory that take no reference cannot be told apart.",
            references=("<87czkytvuv.wl-maz@kernel.org> (non-writable early return after "
                        "__gfn_to_pfn_memslot() leaks the reference)",),
        ),
    )

    def check(self, ctx: FileContext) -> Iterator[Finding]:  # type: ignore[override]
        view = ctx.view
        if not view.added or not view.is_c:
            return
        done: set[int] = set()
        for lk in view_leaks(view):
            if lk.pair.kind not in PAGES or lk.kind == "unreachable-release":
                continue
            line = next((n for n in (lk.exit_line, lk.acquire_line) if n in view.added), None)
            if line is None or line in done:
                continue
            done.add(line)
            acq = " ".join(text(lk.acquire).split()) if lk.acquire is not None else "the reference"
            name = acq.split("(", 1)[0]
            rel = "/".join(sorted(lk.pair.release)[:2])
            yield self.at_line(
                view, line,
                f"the reference taken by {name}() (line {lk.acquire_line}) on '{lk.key}' is not released "
                f"on this path out of {lk.function}()",
                note=f"This path returns after {name}() succeeded, without {rel}() and without handing the "
                     f"reference on. Release it before returning (or jump to the label that does).")
