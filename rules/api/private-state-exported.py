"""api/private-state-exported: a file-static object made global and declared extern in a header.

Read from the hunks: patch k removes `static <decl> name ...;` (or `static DEFINE_MUTEX(name);` and
the other lock definers) from a .c file and adds the same line without `static`; some patch of the
series adds `extern ... name;` to a header. Functions are not this rule's business (a de-static'ed
function with a prototype is an ordinary helper), nor are per-cpu objects (shared with the nVHE
object through kvm_nvhe_sym() by design).
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from pmureview.lazyre import lazy_re
from pmureview.rule.base import Rule
from pmureview.rule.model import Confidence, Finding, RuleDocs, RuleMeta, Scope, Severity
from pmureview.views.context import SeriesContext

_KERNEL_C = lazy_re(r"^(?!tools/|scripts/|samples/).*\.c$")
_DEFINER = lazy_re(r"^(DEFINE_(?:MUTEX|SPINLOCK|RAW_SPINLOCK|RWLOCK|SEMAPHORE|IDA|IDR|XARRAY\w*)|"
                   r"DECLARE_RWSEM)\(\s*(\w+)\s*\)\s*;")
# `type name;`, `type *name = ...;`, `type name[N];` -- an object, not a prototype
_OBJECT = lazy_re(r"^(?:const\s+)?(?:struct\s+|union\s+|enum\s+)?\w[\w\s]*?[\s*]+(\w+)\s*(?:\[[^\]]*\])?\s*"
                  r"(?:__\w+\s*)*(?:=[^;]*)?;")
_LOCKISH = lazy_re(r"\b(?:DEFINE_(?:MUTEX|SPINLOCK|RAW_SPINLOCK|RWLOCK|SEMAPHORE)|DECLARE_RWSEM|mutex|"
                   r"spinlock_t|raw_spinlock_t|rwlock_t|rw_semaphore|kvm_pgtable|pgd_t)\b")


def _norm(t: str) -> str:
    return " ".join(t.split())


def _destaticed(removed: str, added: set[str]) -> str | None:
    """The object name when `removed` is a file-scope static object definition and `added` holds
    the same definition without `static`."""
    if not removed.startswith("static ") or ("(" in removed.split("=")[0] and not _DEFINER.match(removed[7:])):
        return None
    rest = removed[len("static "):].strip()
    if "DEFINE_PER_CPU" in rest or re.search(r"\binline\b", rest):
        return None
    m = _DEFINER.match(rest)
    name = m.group(2) if m else None
    if name is None:
        m = _OBJECT.match(rest)
        if not m or "(" in rest.split("=")[0]:
            return None
        name = m.group(1)
    if _norm(rest) not in added:
        return None
    return name


class PrivateStateExported(Rule):
    meta = RuleMeta(
        evidence=(r"\bextern\b",),  # cannot fire without an added extern (prefilter)
        id="api/private-state-exported",
        title="File-private state made global and exported through a header",
        severity=Severity.WARNING,
        confidence=Confidence.MEDIUM,
        scope=Scope.SERIES,
        docs=RuleDocs(
            what="Flags a file-static object (a lock, a page-table root, any variable) that a patch "
                 "makes global by dropping `static`, when the series declares it `extern` in a header. "
                 "A lock or a page-table root is a warning, another object a check.",
            why="Once a lock or a data structure is global, every file can take it or walk it, and "
                "the rules that kept it consistent (which lock protects it, who may change it) are no "
                "longer in one place. A helper in the owning file keeps the state private and gives "
                "the new user exactly the operation it needs.",
            example="-static DEFINE_MUTEX(widget_table_lock);\n+DEFINE_MUTEX(widget_table_lock);\n"
                    "/* widget.h */\n+extern struct mutex widget_table_lock;",
            use_instead="/* widget.c */\nint widget_table_map(unsigned long addr, size_t size)\n{\n"
                        "\tguard(mutex)(&widget_table_lock);\n\treturn __widget_map(&table, addr, size);\n}"
                        "\n/* widget.h */\nint widget_table_map(unsigned long addr, size_t size);",
            known_problems="Only objects whose `static` the patch visibly drops are judged (objects "
                           "already global in the base are not); per-cpu objects and functions are "
                           "skipped, and an extern added to a .c file is header/extern-in-c-file's.",
            references=("Documentation/process/coding-style.rst, section 6",),
        ),
    )

    def check(self, ctx: SeriesContext) -> Iterator[Finding]:  # type: ignore[override]
        made_global: dict[str, tuple[int, str]] = {}  # name -> (patch, definition)
        for p in ctx.patches:
            for f in p.files:
                if not _KERNEL_C.match(f.path):
                    continue
                added = {_norm(ln.text) for ln in f.added_lines() if not ln.text[:1].isspace()}
                for r in f.removed_text:
                    if r[:1].isspace():
                        continue
                    name = _destaticed(r, added)
                    if name and name not in made_global:
                        made_global[name] = (p.number, r)
        if not made_global:
            return
        for view in ctx.all_views():
            if not view.path.endswith(".h"):
                continue
            for line in sorted(view.added):
                t = view.line_text(line)
                if not t.startswith("extern ") or "(" in t:
                    continue
                m = re.search(r"(\w+)\s*(?:\[[^\]]*\])?\s*;", t)
                if not m or m.group(1) not in made_global:
                    continue
                name = m.group(1)
                k, definition = made_global.pop(name)
                if k > view.patch.number:
                    continue
                lock = bool(_LOCKISH.search(definition) or _LOCKISH.search(t))
                yield self.at_line(
                    view, line,
                    f"{name} was static; exporting it through a header makes file-private state global",
                    note="Dropping `static` and adding an extern declaration lets every file use this "
                         "state directly. Please keep it private to the file that owns it and add a "
                         "helper there that does what the new user needs.",
                    severity=Severity.WARNING if lock else Severity.CHECK)
