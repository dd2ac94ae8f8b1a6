"""series/new-uapi-reg-without-get-reg-list: a register newly listed by KVM_GET_REG_LIST while the
series leaves the get-reg-list selftest alone.

KVM_GET_REG_LIST walks sys_reg_descs[] and lists every entry with a `.reg` or a `.get_user`
(walk_one_sys_reg()), plus the firmware pseudo-register ids of the u64 id arrays (fw_reg_ids[]).
The selftest keeps a blessed list of exactly those ids and fails on any new one, so a series that
adds one updates tools/testing/selftests/kvm/{aarch64,arm64}/get-reg-list.c too.

Read from the hunks alone: an added sys_reg_descs[] entry `{ SYS_DESC(X), access, reset, REG, ... }`
(or with `.reg =` / `.get_user =`) whose register the patch did not already list with a `.reg`, and
an added `KVM_REG_*,` element of a `u64 ...[] = {` array. Entries with any `.visibility` are skipped
(they may be hidden from userspace, or in a sub-list of the test).
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from pmureview.lazyre import lazy_re
from pmureview.rule.base import Rule
from pmureview.rule.model import Confidence, Finding, RuleDocs, RuleMeta, Scope, Severity
from pmureview.views.context import FileView, SeriesContext

_SELFTEST = lazy_re(r"^tools/testing/selftests/kvm/(?:aarch64|arm64)/get[-_]reg[-_]list\.c$")
_MENTION = lazy_re(r"get[-_]reg[-_]list", re.I)
_KVM_C = lazy_re(r"^arch/arm64/kvm/[^/]+\.c$")
_SYS_DESC = lazy_re(r"^\s*\{\s*SYS_DESC\(\s*(\w+)\s*\)\s*(.*)$")
_TOP_ARRAY = lazy_re(r"^[A-Za-z_].*?\b(\w+)\s*\[[^\]]*\]\s*=\s*\{")
_U64_ARRAY = lazy_re(r"^[A-Za-z_].*\bu64\s+\w+\s*\[[^\]]*\]\s*=\s*\{")
_REG_ID = lazy_re(r"^\s*(KVM_REG_[A-Z0-9_]+)\s*,?\s*(?:/\*.*)?$")


def _entry(view: FileView, line: int) -> str:
    """The text of a table entry starting on `line`, up to its closing brace (a few lines at most)."""
    parts = []
    for n in range(line, line + 8):
        t = view.line_text(n)
        parts.append(t)
        if "}" in t:
            break
    return " ".join(parts)


def _split_items(rest: str) -> list[str]:
    """The comma-separated items after SYS_DESC(X), up to the entry's closing brace."""
    items, depth, cur = [], 0, ""
    for ch in rest:
        if ch in "({":
            depth += 1
        elif ch in ")}":
            if depth == 0:
                break
            depth -= 1
        if ch == "," and depth == 0:
            items.append(cur.strip())
            cur = ""
            continue
        cur += ch
    if cur.strip():
        items.append(cur.strip())
    return [i for i in items if i]


def _listed(entry_rest: str) -> bool | None:
    """True when the entry (the text after SYS_DESC(X)) is listed by KVM_GET_REG_LIST; None when a
    visibility callback may hide it."""
    if re.search(r"\.visibility\s*=", entry_rest):
        return None
    if re.search(r"\.(?:get_user|__get_user)\s*=", entry_rest):
        return True
    m = re.search(r"\.reg\s*=\s*(\w+)", entry_rest)
    if m:
        return m.group(1) not in ("0", "NULL")
    items = [i for i in _split_items(entry_rest) if not i.startswith(".")]
    # positional after SYS_DESC(): access, reset, reg, val, get_user, set_user, visibility
    if len(items) >= 7:
        return None
    if len(items) >= 5 and items[4] not in ("0", "NULL"):
        return True
    return len(items) >= 3 and items[2] not in ("0", "NULL")


def _surely_unlisted(entry_rest: str) -> bool:
    """A removed entry with nothing but an access handler: no register behind it in any table
    KVM_GET_REG_LIST walks (an invariant_sys_regs[] entry has its getter second)."""
    if re.search(r"\.(?:reg|get_user|__get_user|visibility|reset)\s*=", entry_rest):
        return False
    return len([i for i in _split_items(entry_rest) if not i.startswith(".")]) <= 1


def _table_of(view: FileView, line: int) -> str | None:
    """The name of the top-level array whose initializer holds `line` (backward scan, then the
    hunk's section heading)."""
    for n in range(line - 1, 0, -1):
        t = view.line_text(n)
        if n not in view.known:
            break
        if t[:1].isalpha() or t[:1] == "_":
            m = _TOP_ARRAY.match(t)
            return m.group(1) if m else None
        if t.startswith("}"):
            return None
    hunk = next((h for h in view.change.hunks
                 if any(ln.new_no == line and ln.kind == "+" for ln in h.lines)), None)
    if hunk is None:
        return None
    m = _TOP_ARRAY.match(hunk.section.strip())
    return m.group(1) if m else None


def _u64_table(view: FileView, line: int) -> bool:
    for n in range(line - 1, 0, -1):
        t = view.line_text(n)
        if n not in view.known:
            break
        if t[:1].isalpha() or t[:1] == "_":
            return bool(_U64_ARRAY.match(t))
        if t.startswith("}"):
            return False
    hunk = next((h for h in view.change.hunks
                 if any(ln.new_no == line and ln.kind == "+" for ln in h.lines)), None)
    return bool(hunk and _U64_ARRAY.match(hunk.section.strip()))


class NewUapiRegWithoutGetRegList(Rule):
    meta = RuleMeta(
        evidence=(r"SYS_DESC\(|KVM_REG_",),  # cannot fire without it (prefilter)
        id="series/new-uapi-reg-without-get-reg-list",
        title="New userspace-visible register without a get-reg-list selftest update",
        severity=Severity.WARNING,
        confidence=Confidence.MEDIUM,
        scope=Scope.SERIES,
        docs=RuleDocs(
            what="Reports a register a series makes visible through KVM_GET_REG_LIST, an added "
                 "sys_reg_descs[] entry with a `.reg` (the third item after SYS_DESC()) or a "
                 "`.get_user`, or an added KVM_REG_* id in a u64 firmware-register id array, when no "
                 "patch of the series touches tools/testing/selftests/kvm/aarch64/get-reg-list.c.",
            why="The get-reg-list selftest holds the list of registers userspace may see and fails "
                "on every new one: a series that grows the ABI without updating it breaks the test "
                "for everybody, and the list is how reviewers notice the ABI grew.",
            example="{ SYS_DESC(SYS_FOO_EL1), trap_foo, reset_val, FOO_EL1, 0 },\n"
                    "/* and no change to tools/testing/selftests/kvm/aarch64/get-reg-list.c */",
            use_instead="Add ARM64_SYS_REG(3, 0, 1, 2, 3),	/* FOO_EL1 */ to the blessed list of "
                        "get-reg-list.c in a patch of the same series.",
            known_problems="Silent when patches of the series are missing (the selftest update may "
                           "be one of them) and when the cover letter or a commit message mentions "
                           "get-reg-list (an update posted separately). Entries with a .visibility callback, tables "
                           "built by macros (ID_SANITISED(), PMU_SYS_REG()) and registers the same "
                           "patch already listed are skipped; only sys_reg_descs[] is read.",
            references=("arch/arm64/kvm/sys_regs.c: walk_one_sys_reg()",
                        "tools/testing/selftests/kvm/aarch64/get-reg-list.c"),
        ),
    )

    def check(self, ctx: SeriesContext) -> Iterator[Finding]:  # type: ignore[override]
        if ctx.files_mode or ctx.series.missing:
            return
        for p in ctx.patches:
            if any(_SELFTEST.match(f.path) for f in p.files):
                return
        cover = ctx.series.cover
        if cover is not None and _MENTION.search(cover.body):
            return
        if any(_MENTION.search(p.notes or "") or _MENTION.search(p.message) for p in ctx.patches):
            return
        for view in ctx.all_views():
            if not _KVM_C.match(view.path):
                continue
            try:
                got = self._first(view)
            except Exception:
                continue
            if got is None:
                continue
            line, what = got
            yield self.at_line(
                view, line,
                f"{what} is now listed by KVM_GET_REG_LIST, but the series does not update the "
                f"get-reg-list selftest",
                note="tools/testing/selftests/kvm/aarch64/get-reg-list.c lists every register "
                     "userspace can see and fails on a new one. Please add it there in this series "
                     "(or say in the cover letter where the selftest update is).")

    def _first(self, view: FileView) -> tuple[int, str] | None:
        # a patch that moves a table (to another file) removes the same entries: not new
        removed = [t for f in view.patch.files for t in f.removed_text]
        for line in sorted(view.added):
            t = view.line_text(line)
            m = _SYS_DESC.match(t)
            if m:
                reg = m.group(1)
                if _table_of(view, line) != "sys_reg_descs":
                    continue
                if _listed(_entry(view, line).split(")", 1)[1]) is not True:
                    continue
                # every removed line naming the register (SYS_DESC() or a table macro such as
                # ID_SANITISED()) must be an entry userspace could not see
                word = re.compile(rf"\b(?:SYS_)?{re.escape(reg.removeprefix('SYS_'))}\b")
                before = [r for r in removed if word.search(r)]
                if any(not _SYS_DESC.match(r) or not _surely_unlisted(r.split(")", 1)[1]) for r in before):
                    continue  # listed before (here, by a macro, or in invariant_sys_regs[])
                return line, reg.removeprefix("SYS_")
            m = _REG_ID.match(t)
            if m and _u64_table(view, line):
                rid = m.group(1)
                if any(re.search(rf"\b{rid}\b", r) for r in removed):
                    continue
                return line, rid
        return None
