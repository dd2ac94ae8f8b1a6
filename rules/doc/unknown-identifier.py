"""doc/unknown-identifier: KVM API documentation naming a KVM_* identifier that nothing defines.

The identifier index is every KVM_* token of the base UAPI headers (include/uapi/linux/kvm.h and
arch/*/include/uapi/asm/kvm*.h, read once per base through `git grep`, a folder glob, or the reader)
plus every KVM_* token in the series' post-images. With the base and the whole series an unknown
identifier is a warning; otherwise only near misses of a known spelling are reported, as checks.
"""

from __future__ import annotations

import contextlib
from collections import Counter
from collections.abc import Iterator
from functools import lru_cache

from pmureview.lazyre import lazy_re
from pmureview.rule.base import Rule
from pmureview.rule.model import Confidence, Finding, RuleDocs, RuleMeta, Scope, Severity
from pmureview.views.context import FileContext, FileView, SeriesContext

_TOKEN = lazy_re(r"(?<![A-Za-z0-9_$])KVM_[A-Z0-9_]*[A-Z0-9](?![A-Za-z0-9_*<{])")
_ANY = lazy_re(r"(?<![A-Za-z0-9_])KVM_[A-Z0-9_]*[A-Z0-9]")
_ARCHES = ("arm64", "x86", "riscv", "loongarch", "s390", "powerpc", "mips", "arm")
_UAPI_FILES = ("kvm.h", "kvm_para.h", "kvm_perf.h")


class UnknownIdentifier(Rule):
    meta = RuleMeta(
        id="doc/unknown-identifier",
        title="KVM API documentation names a KVM_* identifier that is not defined",
        severity=Severity.WARNING,
        confidence=Confidence.HIGH,
        scope=Scope.FILE,
        # prefilter: the reported KVM_* token is on an added line
        evidence=(r"KVM_",),
        files=("Documentation/virt/kvm/api.rst", "Documentation/virt/kvm/devices/*.rst"),
        needs_base=True,
        uses_tree=True,
        docs=RuleDocs(
            what="Flags a KVM_* identifier on an added line of Documentation/virt/kvm/api.rst or "
                 "Documentation/virt/kvm/devices/*.rst that no UAPI header of the base "
                 "(include/uapi/linux/kvm.h, arch/*/include/uapi/asm/kvm*.h) and no file of the series "
                 "defines, and that the document did not mention before. It names the closest defined "
                 "spelling (an edit or two away, the same last two words, or one word spelt short in "
                 "one and in full in the other, such as MEM and MEMORY). Without a tree, or when "
                 "patches of the series are missing, only near "
                 "misses of a spelling the series defines (or uses more often) are reported, as checks.",
            why="The API document is what VMM authors code against; a misspelt ioctl, capability or "
                "attribute name sends them looking for a constant that does not exist, and such typos "
                "survive for years because nothing compiles documentation.",
            example="+  of type __u64[KVM_ARM_FOO_CTRL_WORDS]\n(the UAPI header defines "
                    "KVM_ARM64_FOO_CTRL_WORDS)",
            use_instead="+  of type __u64[KVM_ARM64_FOO_CTRL_WORDS]",
            known_problems="Wildcards and templates (KVM_ARM_VCPU_*, KVM_REG_ARM_FW_FEAT_BMAP_REG(n) "
                           "prefixes ending in _) are skipped. Identifiers that only exist in kernel "
                           "headers outside UAPI are reported if the document did not use them "
                           "before. Skipped by `check --files`.",
            references=("DOMAIN-PACK2.md rule 29 (documentation naming an undefined UAPI constant)",),
        ),
    )

    def check(self, ctx: FileContext) -> Iterator[Finding]:  # type: ignore[override]
        view = ctx.view
        if not view.added:
            return
        series = ctx.series
        complete = series.full and not series.series.missing
        defined = _series_tokens(series)
        base: frozenset[str] = frozenset()
        if complete:
            base = _base_tokens(series)
            if not base:
                complete = False  # the base has no UAPI header we can read: judge near misses only
        known = defined | base
        before = _pre_tokens(view)
        added_counts: Counter = Counter()
        for pv in series.patch_views(ctx.patch.number):
            if pv.path.endswith(".rst"):
                for line in pv.added:
                    added_counts.update(_TOKEN.findall(pv.line_text(line)))
        seen: set[str] = set()
        for line in sorted(view.added):
            for m in _TOKEN.finditer(view.line_text(line)):
                tok = m.group(0)
                if tok in seen or tok in known or tok in before:
                    continue
                seen.add(tok)
                if complete:
                    near = _nearest(tok, known)
                    hint = f"; did you mean {near}?" if near else ""
                    yield self.at_line(
                        view, line, f"{tok} is not defined by any UAPI header or by this series{hint}",
                        note=f"The documentation refers to {tok}, which is not defined anywhere"
                             + (f"; did you mean {near}?" if near else
                                ". Is it the name the UAPI header will use?")
                             + " VMM authors code against these names.",
                        column=m.start() + 1,
                        confidence=Confidence.HIGH if near else Confidence.MEDIUM)
                    continue
                pool = set(defined) | {t for t, n in added_counts.items() if n > added_counts[tok]}
                near = _nearest(tok, pool, strict=True)
                if near:
                    yield self.at_line(
                        view, line, f"{tok}: did you mean {near}?",
                        note=f"The documentation refers to {tok}, but the series spells it {near}. "
                             f"Which one is right?",
                        column=m.start() + 1, severity=Severity.CHECK, confidence=Confidence.MEDIUM)


def _edit_distance(a: str, b: str, limit: int = 3) -> int:
    if abs(len(a) - len(b)) > limit:
        return limit + 1
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i]
        for j, cb in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb)))
        prev = cur
    return prev[-1]


def _abbreviated(words: list[str], cw: list[str]) -> bool:
    """Same words but one, spelt short in one and long in the other (MEM / MEMORY, REG / REGISTER)."""
    if len(words) != len(cw) or len(words) < 3:
        return False
    diff = [(a, b) for a, b in zip(words, cw, strict=True) if a != b]
    if len(diff) != 1:
        return False
    short, long_ = sorted(diff[0], key=len)
    return len(short) >= 3 and long_.startswith(short)


def _nearest(tok: str, pool: set[str] | frozenset[str], strict: bool = False) -> str | None:
    """The closest spelling: same last two words, one word abbreviated or expanded, or edit distance
    <= 2 with the same word count."""
    words = tok.split("_")
    best: tuple[int, str] | None = None
    for cand in pool:
        if cand == tok:
            continue
        cw = cand.split("_")
        d = _edit_distance(tok, cand)
        same_tail = len(words) >= 3 and len(cw) >= 3 and cw[-2:] == words[-2:] and abs(len(cw) - len(words)) <= 1
        close = (d <= 2 and len(cw) == len(words)) or _abbreviated(words, cw)
        ok = close or (same_tail and (d <= 3 or not strict))
        if ok and (best is None or (d, cand) < best):
            best = (d, cand)
    return best[1] if best else None


def _series_tokens(series: SeriesContext) -> frozenset[str]:
    cached = getattr(series, "_pmureview_kvm_tokens", None)
    if cached is not None:
        return cached
    out: set[str] = set()
    for v in series.all_views():
        if v.path.endswith((".h", ".c")):
            if v.mode == "full":
                # every line: one pass over the text finds the same tokens (none spans a newline,
                # and a newline is a non-word character for the lookbehind, like a line start)
                out.update(_ANY.findall(v.text))
                continue
            lines = sorted(v.known)
            for n in lines:
                out.update(_ANY.findall(v.line_text(n)))
    res = frozenset(out)
    with contextlib.suppress(AttributeError):
        series._pmureview_kvm_tokens = res  # type: ignore[attr-defined]
    return res


def _pre_tokens(view: FileView) -> set[str]:
    out: set[str] = set()
    if view.pre_text:
        out.update(_ANY.findall(view.pre_text))
    for n in view.known - view.added:
        out.update(_ANY.findall(view.line_text(n)))
    for t in view.change.removed_text:
        out.update(_ANY.findall(t))
    return out


def _base_tokens(series: SeriesContext) -> frozenset[str]:
    reader = series.base_reader
    if reader is None:
        return frozenset()
    tree, rev = getattr(reader, "tree", None), getattr(reader, "rev", None)
    if tree is not None:
        got = _grep_tokens(str(tree), rev)
        if got is not None:
            return got
    out: set[str] = set()
    paths = ["include/uapi/linux/kvm.h"] + [f"arch/{a}/include/uapi/asm/{f}" for a in _ARCHES for f in _UAPI_FILES]
    for p in paths:
        try:
            t = reader(p)
        except Exception:
            t = None
        if t:
            out.update(_ANY.findall(t))
    return frozenset(out)


@lru_cache(maxsize=8)
def _grep_tokens(tree: str, rev: str | None) -> frozenset[str] | None:
    import subprocess  # only with a base tree (never on the hunk-only hook path)

    specs = ["include/uapi/linux/kvm.h", "arch/*/include/uapi/asm/kvm*.h"]
    try:
        if rev:
            r = subprocess.run(["git", "-C", tree, "grep", "-h", "-o", "-I", "-E", r"KVM_[A-Z0-9_]*[A-Z0-9]", rev,
                                "--", *specs], capture_output=True, text=True, timeout=60, check=False)
            if r.returncode not in (0, 1):
                return None
            return frozenset(ln.rsplit(":", 1)[-1] for ln in r.stdout.splitlines())
        from pathlib import Path  # a plain folder as the tree: not the hook's hunk-only path

        root = Path(tree)
        out: set[str] = set()
        for p in [root / "include/uapi/linux/kvm.h", *root.glob("arch/*/include/uapi/asm/kvm*.h")]:
            if p.is_file():
                out.update(_ANY.findall(p.read_text("utf-8", "surrogateescape")))
        return frozenset(out)
    except (OSError, subprocess.SubprocessError):
        return None
