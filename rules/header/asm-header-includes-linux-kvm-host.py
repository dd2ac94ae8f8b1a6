"""header/asm-header-includes-linux-kvm-host: an existing asm/ header gains #include <linux/kvm_host.h>."""

from __future__ import annotations

from collections.abc import Iterator
from fnmatch import fnmatch

from pmureview.lazyre import lazy_re
from pmureview.rule.base import Rule
from pmureview.rule.model import Confidence, Finding, RuleDocs, RuleMeta, Scope, Severity
from pmureview.series.model import ChangeKind
from pmureview.views.context import FileContext

_INCLUDE = lazy_re(r"^\s*#\s*include\s*<linux/kvm_host\.h>")


class AsmHeaderIncludesLinuxKvmHost(Rule):
    meta = RuleMeta(
        evidence=(r"linux/kvm_host\.h",),  # cannot fire without it (prefilter)
        id="header/asm-header-includes-linux-kvm-host",
        title="asm/ header includes <linux/kvm_host.h>",
        severity=Severity.WARNING,
        confidence=Confidence.MEDIUM,
        scope=Scope.FILE,
        files=("arch/*/include/asm/*.h",),
        docs=RuleDocs(
            what="Flags `#include <linux/kvm_host.h>` added to an existing architecture asm/ header "
                 "(arch/*/include/asm/*.h, not uapi).",
            why="linux/kvm_host.h includes the arch's asm/kvm_host.h and friends, so an asm/ header "
                "that other headers already include, including it back, creates a transitive linux -> "
                "asm -> linux inclusion. Maintainers refuse these: they break in odd ways once a header "
                "in the loop needs something from another one, which is why the asm/ KVM headers "
                "express such helpers as macros.",
            example="/* arch/arm64/include/asm/kvm_widget.h */\n#include <linux/kvm_host.h>\n\n"
                    "static inline bool widget_ipa_valid(struct kvm *kvm, phys_addr_t ipa)\n{\n"
                    "\treturn !(ipa & ~kvm_phys_mask(&kvm->arch.mmu));\n}",
            use_instead="/* a macro needs no struct definitions where it is defined */\n"
                        "#define widget_ipa_valid(kvm, ipa)\t(!((ipa) & ~kvm_phys_mask(&(kvm)->arch.mmu)))",
            known_problems="Only <linux/kvm_host.h> itself is judged, not other linux/ headers that reach "
                           "asm/kvm_*.h in turn. A header the patch creates is not reported (nothing "
                           "includes it yet, and KVM has accepted new asm/ headers built on kvm_host.h, "
                           "such as kvm_nested.h); neither is an include the patch only moves within the "
                           "file, nor one the header already had.",
            references=("arch/arm64/include/asm/kvm_mmu.h: helpers written as macros to avoid including "
                        "linux/kvm_host.h",),
        ),
    )

    def check(self, ctx: FileContext) -> Iterator[Finding]:  # type: ignore[override]
        view = ctx.view
        if view.change.kind == ChangeKind.ADDED or fnmatch(view.path, "*/uapi/*"):
            return
        if any(_INCLUDE.match(t) for t in view.change.removed_text):
            return  # moved within the file
        for line in sorted(view.added):
            if _INCLUDE.match(view.line_text(line)):
                yield self.at_line(
                    view, line, "an asm/ header includes <linux/kvm_host.h>, which includes asm/ KVM headers "
                                "in turn: a linux -> asm -> linux include cycle",
                    note="<linux/kvm_host.h> pulls in <asm/kvm_host.h> and much of the arch's KVM headers. "
                         "Including it from an asm/ header makes the include order matter (whichever is "
                         "included first sees the other half-defined). Use a macro (evaluated where the "
                         "types are known), move the helper to a .c file or a linux/ header, or include a "
                         "narrower header (<linux/kvm_types.h>).")
