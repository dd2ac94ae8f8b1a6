"""api/uapi-implementation-limit: a 'maximum' / 'last valid' constant added to a KVM UAPI header.

A constant whose name says it is a bound (`*_MAX`, `*_MAX_*`, `*_LAST`, `KVM_NR_*`) or whose comment
says "last valid", added by the patch to a KVM UAPI header, freezes how far the implementation goes
today into the ABI. Skipped: a bound that sizes an array of a UAPI structure (then it *is* the ABI,
e.g. `__u64 regs[KVM_FOO_MAX_REGS]`) and names the patch removes elsewhere (moves).
"""

from __future__ import annotations

from collections.abc import Iterator

from pmureview.lazyre import lazy_re
from pmureview.rule.base import Rule
from pmureview.rule.model import Confidence, Finding, RuleDocs, RuleMeta, Scope, Severity
from pmureview.views.context import FileContext

_UAPI = lazy_re(r"^(?:include/uapi/linux/kvm[\w-]*\.h|arch/[^/]+/include/uapi/asm/kvm[\w-]*\.h)$")
_DEFINE = lazy_re(r"^\s*#\s*define\s+(KVM_[A-Z0-9_]+)\s+(\S.*)$")
_ENUMERATOR = lazy_re(r"^\s+(_*KVM_[A-Z0-9_]+)\s*(?:=\s*[^,]+)?,?\s*(?:/\*.*|//.*)?$")
_BOUND = lazy_re(r"_MAX$|_MAX_|^KVM_MAX_|_LAST$|^KVM_NR_")
_LAST_VALID = lazy_re(r"(?i)/[*/].*\b(?:last\s+valid|highest\s+valid|max(?:imum)?\s+(?:supported|valid))\b")


class UapiImplementationLimit(Rule):
    meta = RuleMeta(
        evidence=(r"(?i)max|last|highest|KVM_NR_",),  # cannot fire without it (prefilter)
        id="api/uapi-implementation-limit",
        title="Implementation limit frozen into a UAPI header",
        severity=Severity.WARNING,
        confidence=Confidence.MEDIUM,
        scope=Scope.FILE,
        files=("include/uapi/linux/kvm*.h", "arch/*/include/uapi/asm/kvm*.h"),
        docs=RuleDocs(
            what="Flags a `#define KVM_..._MAX` (or `_LAST`, `KVM_NR_*`, a 'last valid' comment) added "
                 "to a KVM UAPI header: a bound of what the implementation supports today. An enum "
                 "sentinel (`KVM_FOO_MAX` last in an enum) is a check.",
            why="Whatever is in a UAPI header is ABI: userspace compiles the value in. The bound of a "
                "bitmap or an id space grows with the next feature, and then the header either lies "
                "to old binaries or can never change. Keep it in a kernel-internal header.",
            example="#define KVM_REG_ARM_WIDGET_BIT_MAX	2	/* Last valid bit */  /* uapi/asm/kvm.h */",
            use_instead="#define KVM_REG_ARM_WIDGET_BIT_MAX	2  /* in include/kvm/arm_widget.h */",
            known_problems="Only KVM UAPI headers are read (netlink-style `__FOO_MAX` sentinels are "
                           "the norm elsewhere). A bound that sizes an array in a UAPI structure is "
                           "skipped, as are names the series removes elsewhere; a bound fixed by an "
                           "external specification is still reported (say so in a comment).",
            references=("Documentation/virt/kvm/api.rst",),
        ),
    )

    def check(self, ctx: FileContext) -> Iterator[Finding]:  # type: ignore[override]
        view = ctx.view
        if not _UAPI.match(view.path):
            return
        removed = " ".join(t for p in ctx.series.patches for f in p.files for t in f.removed_text)
        text = "\n".join(view.line_text(n) for n in sorted(view.known))
        for line in sorted(view.added):
            t = view.line_text(line)
            m = _DEFINE.match(t)
            sentinel = False
            if not m:
                m = _ENUMERATOR.match(t)
                if not m:
                    continue
                sentinel = True
            name = m.group(1)
            if not (_BOUND.search(name) or _LAST_VALID.search(t)):
                continue
            if lazy_re(rf"\b{name}\b").search(removed):
                continue  # moved, not new
            if lazy_re(rf"\[[^\]\n]*\b{name}\b[^\]\n]*\]").search(text):
                continue  # sizes a UAPI array: part of the ABI by design
            if sentinel and not self._last_enumerator(view, line):
                continue
            yield self.at_line(
                view, line,
                f"{name} freezes an implementation limit into the UAPI",
                note="A bound of what KVM supports today changes with the next feature, but a UAPI "
                     "header is ABI: userspace builds the value in. Please keep it in a "
                     "kernel-internal header (and let userspace discover the limit at run time).",
                severity=Severity.CHECK if sentinel else Severity.WARNING)

    @staticmethod
    def _last_enumerator(view, line: int) -> bool:
        """The enumerator is followed by the enum's closing brace."""
        for n in range(line + 1, line + 4):
            t = view.line_text(n).strip()
            if not t or t.startswith(("/*", "*", "//")):
                continue
            return t.startswith("}")
        return False
