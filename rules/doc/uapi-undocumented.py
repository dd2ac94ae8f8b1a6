"""doc/uapi-undocumented: a new KVM UAPI constant that no documentation the series writes names.

A KVM UAPI constant is a `#define KVM_...` (object-like) or a `KVM_...` enumerator added to a KVM
UAPI header (include/uapi/linux/kvm*.h, arch/*/include/uapi/asm/kvm*.h). Every ioctl and every
KVM_CAP_* is documented in Documentation/virt/kvm/api.rst; the other constants (sub-commands,
kvm_run flags, attributes, register ids) anywhere under Documentation/virt/kvm/. A constant counts
as documented when its name (or a `PREFIX_*` wildcard covering it) appears in an added line of such
a file in the series, or, in full mode, in that documentation at the base.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from pmureview.lazyre import lazy_re
from pmureview.rule.base import Rule
from pmureview.rule.model import Confidence, Finding, RuleDocs, RuleMeta, Scope, Severity
from pmureview.views.context import FileView, SeriesContext

_UAPI = lazy_re(r"^(?:include/uapi/linux/kvm[\w-]*\.h|arch/[^/]+/include/uapi/asm/kvm[\w-]*\.h)$")
_DEFINE = lazy_re(r"^\s*#\s*define\s+(KVM_[A-Z0-9_]+)\s+(\S.*)$")
_ENUMERATOR = lazy_re(r"^\s+(KVM_[A-Z0-9_]+)\s*(?:=\s*[^,]+)?,?\s*(?:/\*.*|//.*)?$")
_FUNC_DEFINE = lazy_re(r"^\s*#\s*define\s+(KVM_[A-Z0-9_]+)\([^)]*\)\s+(\S.*)$")
_IOCTL = lazy_re(r"\b_IO(?:R|W|WR)?\s*\(\s*KVMIO\b")
# layout helpers of the ABI, not ABI entry points a user looks up
_INTERNAL = lazy_re(r"_(?:SHIFT|MASK|WIDTH|SIZE|MAX|MIN|BITS|OFFSET|MAGIC|H|NUM|COUNT)$|^KVM_ARM_TARGET_")
_DOC = lazy_re(r"^Documentation/virt/kvm/")
_API_RST = "Documentation/virt/kvm/api.rst"
def _norm(value: str) -> str:
    return " ".join(re.sub(r"/\*.*?(?:\*/|$)|//.*$", "", value).split())


_WORD = lazy_re(r"\bKVM_[A-Z0-9_]*\*?")


class UapiUndocumented(Rule):
    meta = RuleMeta(
        evidence=(r"\bKVM_[A-Z0-9_]+",),  # cannot fire without it (prefilter)
        id="doc/uapi-undocumented",
        title="New UAPI not documented in Documentation/virt/kvm/",
        severity=Severity.WARNING,
        confidence=Confidence.MEDIUM,
        scope=Scope.SERIES,
        needs_base=True,
        docs=RuleDocs(
            what="Reports a KVM UAPI constant a series adds (an ioctl, a KVM_CAP_*, an ioctl "
                 "sub-command, a kvm_run flag, a device attribute, a register id: a `#define KVM_*` "
                 "or a KVM_* enumerator in a KVM UAPI header) that no documentation of the series "
                 "names: ioctls and capabilities must appear in Documentation/virt/kvm/api.rst, the "
                 "rest anywhere under Documentation/virt/kvm/.",
            why="The UAPI is forever and userspace authors read the documentation, not the headers. "
                "KVM maintainers do not take a new ioctl, capability or flag without its "
                "description in the API file.",
            example="#define KVM_ARM_WIDGET_CTRL	_IOW(KVMIO, 0xe1, struct kvm_arm_widget)\n"
                    "/* and no change to Documentation/virt/kvm/api.rst */",
            use_instead="Add a section for KVM_ARM_WIDGET_CTRL (capability, architectures, type, "
                        "parameters, returns, description) to Documentation/virt/kvm/api.rst in the "
                        "same series.",
            known_problems="Only a check when patches of the series are missing (the documentation "
                           "may be in one of them). Layout helpers (_SHIFT, _MASK, _SIZE, _MAX, _COUNT ...) "
                           "and constants the series removes elsewhere (moves, renames) are skipped. "
                           "A constant is documented when its name appears anywhere in the added "
                           "documentation, whatever the text says about it.",
            references=("Documentation/virt/kvm/api.rst",),
        ),
    )

    def check(self, ctx: SeriesContext) -> Iterator[Finding]:  # type: ignore[override]
        if ctx.files_mode:
            return
        api_words: set[str] = set()
        doc_words: set[str] = set()
        removed: set[str] = set()
        blocks: set[str] = set()  # names other added UAPI definitions are built from
        old_values: set[str] = set()  # values of UAPI definitions the series removes (renames)
        for p in ctx.patches:
            for f in p.files:
                if _UAPI.match(f.path):
                    continued = False  # the previous added line ended in a backslash
                    for ln in f.added_lines():
                        code = _norm(ln.text)
                        m = _DEFINE.match(ln.text) or _FUNC_DEFINE.match(ln.text)
                        if m:
                            blocks.update(_WORD.findall(_norm(m.group(2))))
                        elif continued:
                            blocks.update(_WORD.findall(code))
                        continued = ln.text.rstrip().endswith("\\")
                for t in f.removed_text:
                    removed.update(_WORD.findall(t))
                    m = _DEFINE.match(t)
                    if m and _UAPI.match(f.path):
                        old_values.add(_norm(m.group(2)))
                if _DOC.match(f.path):
                    words = {w for ln in f.added_lines() for w in _WORD.findall(ln.text)}
                    doc_words |= words
                    if f.path == _API_RST:
                        api_words |= words
        for view in ctx.all_views():
            if not _UAPI.match(view.path):
                continue
            try:
                yield from self._view(ctx, view, api_words, doc_words, removed | blocks, old_values)
            except Exception:
                continue

    def _view(self, ctx: SeriesContext, view: FileView, api_words: set[str], doc_words: set[str],
              removed: set[str], old_values: set[str]) -> Iterator[Finding]:
        undocumented: list[tuple[int, str, bool]] = []
        for line in sorted(view.added):
            t = view.line_text(line)
            m = _DEFINE.match(t)
            if m:
                name, value = m.group(1), m.group(2)
            else:
                m = _ENUMERATOR.match(t)
                if not m or not self._in_enum(view, line):
                    continue
                name, value = m.group(1), ""
            if name in removed or (value and _norm(value) in old_values):
                continue  # moved or renamed (or a building block of other definitions)
            api = bool(_IOCTL.search(value)) or name.startswith("KVM_CAP_")
            if not api and _INTERNAL.search(name):
                continue
            words = api_words if api else doc_words
            if name in words or any(w.endswith("*") and name.startswith(w[:-1]) for w in words):
                continue
            if self._base_documented(ctx, name, api):
                continue
            undocumented.append((line, name, api))
        if not undocumented:
            return
        line, name, api = undocumented[0]
        where = "Documentation/virt/kvm/api.rst" if api else "Documentation/virt/kvm/"
        others = [n for _, n, _ in undocumented[1:]]
        more = f" (and {len(others)} more: {', '.join(others[:4])}{', ...' if len(others) > 4 else ''})" \
            if others else ""
        if ctx.series.missing:
            # the documentation may be one of the patches not at hand: ask, do not claim
            yield self.at_line(
                view, line,
                f"new UAPI {name}{more}: documented in {where} by a patch that is not here?",
                note="No patch at hand documents it; if none of the missing patches of the series "
                     "does either, please add it to the KVM documentation.",
                severity=Severity.CHECK, confidence=Confidence.LOW)
            return
        yield self.at_line(
            view, line,
            f"new UAPI {name}{more} is not documented in {where}",
            note="Every new KVM ioctl and capability is described in Documentation/virt/kvm/api.rst, "
                 "and flags, sub-commands, attributes and register ids in the KVM documentation; "
                 "no patch of this series mentions it there. Please document it in the same series.")

    @staticmethod
    def _in_enum(view: FileView, line: int) -> bool:
        """The enumerator line sits in an `enum ... {` (scan up over known lines)."""
        for n in range(line - 1, max(0, line - 200), -1):
            if n not in view.known:
                break
            t = view.line_text(n)
            if re.match(r"^\s*(?:typedef\s+)?enum\b[^;]*\{?\s*$", t):
                return True
            if t.startswith(("}", "#")) or t.rstrip().endswith(";"):
                return False
        for h in view.change.hunks:
            if any(ln.new_no == line for ln in h.lines):
                return bool(re.match(r"^\s*enum\b", h.section))
        return False

    @staticmethod
    def _base_documented(ctx: SeriesContext, name: str, api: bool) -> bool:
        if not ctx.full:
            return False
        files = ctx.base_files_using(name, ("*.rst", "*.txt"))
        if files is None:
            return True  # full mode but the grep failed: do not guess
        return any(f == _API_RST if api else _DOC.match(f) for f in files)
