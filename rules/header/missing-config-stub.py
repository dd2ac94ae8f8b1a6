"""header/missing-config-stub: a function declared only under CONFIG_X, called from code built without X."""

from __future__ import annotations

import re
from collections.abc import Iterator
from functools import cached_property

from pmureview.kernel.header_stubs import Arm, Structure, declarations, macro_functions, scan
from pmureview.lang.c import call_name, parse, text, walk
from pmureview.lazyre import lazy_re
from pmureview.record import dataclass
from pmureview.rule.base import Rule
from pmureview.rule.model import Confidence, Finding, RuleDocs, RuleMeta, Scope, Severity
from pmureview.views.context import FileView, SeriesContext

KVM_MAKEFILE = "arch/arm64/kvm/Makefile"
# Files arch/arm64/kvm/Makefile builds with CONFIG_KVM alone (`kvm-y`), in every kernel since the
# v5.x reorganisation; used only when the Makefile itself cannot be read (hunk-only mode).
ALWAYS_BUILT = frozenset({"arm.c", "mmu.c", "guest.c", "reset.c", "debug.c", "sys_regs.c", "handle_exit.c",
                          "config.c", "nested.c", "emulate-nested.c", "hypercalls.c", "inject_fault.c"})
# Options that are always on whenever a KVM file is built at all.
_ALWAYS_ON = {"CONFIG_KVM", "CONFIG_ARM64", "CONFIG_HAVE_KVM", "CONFIG_VIRTUALIZATION"}
_POS_ATOM = lazy_re(r"^(?:IS_ENABLED|IS_BUILTIN|IS_REACHABLE)\s*\(\s*(CONFIG_\w+)\s*\)$|"
                       r"^defined\s*\(?\s*(CONFIG_\w+)\s*\)?$|^(CONFIG_\w+)$")
_GUARD_NAME = lazy_re(r"^_*\w*_H_*$")


def _header_in_scope(path: str) -> bool:
    return path.endswith(".h") and (path.startswith(("arch/arm64/include/", "include/kvm/")))


def _caller_in_scope(path: str) -> bool:
    return path.endswith(".c") and path.startswith("arch/arm64/kvm/") and not path.startswith("arch/arm64/kvm/hyp/")


def _configs(arm: Arm) -> set[str] | None:
    """The options a positive `#if`/`#ifdef` arm requires (an && chain of them), else None."""
    if arm.index != 0 or arm.negated:
        return None
    if arm.kind == "ifdef":
        return {arm.cond} if arm.cond.startswith("CONFIG_") else None
    if "||" in arm.cond:
        return None
    out = set()
    for atom in (a.strip() for a in arm.cond.split("&&")):
        while atom.startswith("(") and atom.endswith(")") and atom.count("(") == atom.count(")"):
            atom = atom[1:-1].strip()
        m = _POS_ATOM.match(atom)
        if not m:
            return None
        out.add(next(g for g in m.groups() if g))
    return out or None


@dataclass(frozen=True)
class _Gap:
    name: str
    header: FileView
    decl_line: int
    arm: Arm
    configs: frozenset[str]


class MissingConfigStub(Rule):
    meta = RuleMeta(
        id="header/missing-config-stub",
        title="Function declared only under CONFIG_X but called from code built without it",
        severity=Severity.ERROR,
        confidence=Confidence.MEDIUM,
        scope=Scope.SERIES,
        uses_tree=True,
        # only headers the series touches are judged (_header_in_scope): one of them on a diff line
        evidence=(r"(?m) b/(?:arch/arm64/include/|include/kvm/)\S*\.h$",),
        docs=RuleDocs(
            what="Flags a function that a header declares only inside `#if IS_ENABLED(CONFIG_X)` (or "
                 "`#ifdef CONFIG_X`), with no stub in the `#else` branch, when the series adds or moves "
                 "that declaration (or removes the stub) and a KVM/arm64 file built without CONFIG_X "
                 "calls it. Whether the calling file is built without CONFIG_X comes from "
                 "arch/arm64/kvm/Makefile (`kvm-y` vs `kvm-$(CONFIG_X)`); without the Makefile only a "
                 "short list of files KVM always builds (sys_regs.c, arm.c, config.c, ...) is trusted.",
            why="With CONFIG_X=n the call has no declaration: an implicit-declaration build error that "
                "only randconfig builds (the 0-day robot) find, after the series is applied.",
            example="#if IS_ENABLED(CONFIG_HW_PERF_EVENTS) && IS_ENABLED(CONFIG_KVM)\n"
                    "u64 kvm_pmu_event_mask(struct kvm *kvm);\n#else\n/* no stub */\n#endif\n\n"
                    "/* sys_regs.c, built with CONFIG_KVM alone */\nmask = kvm_pmu_event_mask(vcpu->kvm);",
            use_instead="#else\nstatic inline u64 kvm_pmu_event_mask(struct kvm *kvm)\n{\n\treturn 0;\n}\n#endif",
            known_problems="Only callers in files the series touches are seen, and only KVM/arm64 files "
                           "(hyp objects excluded). A declaration in another header the caller also "
                           "includes is not seen. Calls inside an `IS_ENABLED(CONFIG_X)` test or "
                           "`#ifdef CONFIG_X` are skipped. Conditions with `||` are not analysed.",
            references=("<20251209205121.1871534-11-coltonlewis@google.com> (the partitioned PMU series: "
                        "PMU declarations moved to kvm_pmu.h)",),
        ),
    )

    def check(self, ctx: SeriesContext) -> Iterator[Finding]:  # type: ignore[override]
        reported: set[str] = set()
        headers: list[str] = []
        sources: list[str] = []
        for number in sorted(ctx.views):
            for v in ctx.patch_views(number):
                if _header_in_scope(v.path) and v.path not in headers:
                    headers.append(v.path)
                if _caller_in_scope(v.path) and v.path not in sources:
                    sources.append(v.path)
            built = _always_built(ctx, number)
            for hpath in headers:
                h = ctx.view_at(hpath, number)
                if h is None:
                    continue
                for gap in _gaps(h):
                    if gap.name in reported:
                        continue
                    f = self._judge(ctx, number, gap, sources, built)
                    if f is not None:
                        reported.add(gap.name)
                        yield f

    def _judge(self, ctx: SeriesContext, number: int, gap: _Gap, sources: list[str],
               built: frozenset[str] | None) -> Finding | None:
        hv = gap.header
        decl_new = hv.patch.number == number and gap.decl_line in hv.added
        stub_gone = hv.patch.number == number and any(
            re.search(rf"\b{re.escape(gap.name)}\s*\(", t) and "static" in t for t in hv.change.removed_text)
        if built is None:
            return None
        for spath, sv in _sources(ctx, number, sources, built):
            if any(d.name == gap.name for d in declarations(sv.root)):
                continue  # the file declares or defines it itself
            calls = [c for c in walk(sv.root, {"call_expression"}) if call_name(c) == gap.name
                     and not _guarded(sv, c, gap.configs)]
            if not calls:
                continue
            new_calls = [c for c in calls if isinstance(sv, FileView) and sv.patch.number == number
                         and sv.node_line(c) in sv.added]
            option = " && ".join(sorted(gap.configs - _ALWAYS_ON))
            msg = (f"{gap.name}() is declared only under {option}, with no stub in the #else, but "
                   f"{spath.rsplit('/', 1)[-1]} calls it and is built without it")
            note = (f"{gap.name}() has no !{option} stub, but {spath} is built whenever KVM is and calls "
                    f"it unconditionally: with {option}=n that is an implicit declaration and the build "
                    f"breaks (randconfig will find it). Add a static inline stub in the #else branch, or "
                    f"keep the declaration outside the conditional.")
            if new_calls:
                return self.at_node(sv, new_calls[0], msg, note=note)
            if decl_new:
                return self.at_line(hv, gap.decl_line, msg, note=note)
            if stub_gone and (line := _after_removal(hv, gap.name)) is not None:
                return self.at_line(hv, line, msg, note=note)
        return None


@dataclass
class _Untouched:
    """A KVM source file the series does not touch, read from the base (full mode)."""

    path: str
    text: str

    @property
    def lines(self) -> list[str]:
        return self.text.split("\n")

    @cached_property
    def root(self):
        return parse(self.text.encode("utf-8", "surrogateescape")).root_node

    @staticmethod
    def node_line(node) -> int:
        return node.start_point[0] + 1


def _sources(ctx: SeriesContext, number: int, touched: list[str], built: frozenset[str]):
    """(path, view) of every KVM source built without the option: touched ones as patch `number`
    leaves them, and in full mode the untouched ones from the base."""
    for spath in touched:
        sv = ctx.view_at(spath, number)
        if sv is not None and spath.rsplit("/", 1)[-1] in built:
            yield spath, sv
    if not ctx.full:
        return
    for name in sorted(built):
        spath = f"arch/arm64/kvm/{name}"
        if spath in touched:
            continue
        raw = ctx.base_text(spath)
        if raw is not None:
            yield spath, _Untouched(spath, raw)


def _gaps(h: FileView) -> Iterator[_Gap]:
    """Names declared only in a positive CONFIG arm whose conditional has no stub for them."""
    struct = scan(h.lines)
    decls = [*declarations(h.root), *macro_functions(h.lines)]
    by_name: dict[str, list] = {}
    for d in decls:
        by_name.setdefault(d.name, []).append(d)
    for name, ds in by_name.items():
        homes = {_config_arm(struct, d.line) for d in ds}
        if len(homes) != 1 or None in homes:
            continue  # declared outside the conditional too, or in several
        arm = homes.pop()
        cond = struct.conditionals.get(arm.if_line)
        if cond is None or cond.end_line is None or not all(
                n in h.known for n in range(cond.if_line, cond.end_line + 1)):
            continue  # the conditional is not fully visible (hunk-only mode)
        for other in cond.arms[1:]:
            if any(struct.arm_range(other).start <= d.line < struct.arm_range(other).stop for d in ds):
                break
        else:
            configs = _configs(arm) or set()
            if configs - _ALWAYS_ON:
                yield _Gap(name, h, min(d.line for d in ds), arm, frozenset(configs))


def _config_arm(struct: Structure, line: int) -> Arm | None:
    """The outermost positive CONFIG arm enclosing `line`; None when a non-config arm encloses it
    first (other than the include guard) or when there is none."""
    for arm in struct.arms(line):
        if arm.kind == "ifndef" and _GUARD_NAME.match(arm.cond):
            continue
        c = struct.conditionals.get(arm.if_line)
        first = c.arms[0] if c else arm
        if arm.index == 0 and _configs(arm):
            return arm
        if arm.index > 0 and _configs(first):
            return arm  # a declaration in the #else: the stub itself
        return None
    return None


def _guarded(view: FileView | _Untouched, call, configs: frozenset[str]) -> bool:
    wanted = configs - _ALWAYS_ON
    for arm in scan(view.lines).arms(view.node_line(call)):
        if any(c in arm.cond for c in wanted):
            return True
    n = call.parent
    while n is not None:
        if n.type in ("if_statement", "conditional_expression"):
            cond = n.child_by_field_name("condition")
            if cond is not None and any(c in text(cond) for c in wanted):
                return True
        n = n.parent
    return False


def _always_built(ctx: SeriesContext, number: int) -> frozenset[str] | None:
    """Source files under arch/arm64/kvm/ built with CONFIG_KVM alone."""
    mk = ctx.view_at(KVM_MAKEFILE, number)
    raw = mk.text if mk is not None and mk.mode == "full" else ctx.base_text(KVM_MAKEFILE)
    if raw is None:
        return ALWAYS_BUILT
    out = set()
    joined = re.sub(r"\\\n", " ", raw)
    for line in joined.split("\n"):
        m = re.match(r"^\s*(kvm|obj)-(y|\$\(CONFIG_KVM\))\s*[:+]?=\s*(.*)$", line)
        if m:
            out.update(o[:-2] + ".c" for o in m.group(3).split() if o.endswith(".o") and "/" not in o)
    return frozenset(out)


def _after_removal(view: FileView, name: str) -> int | None:
    """The post-image line where the patch removed `name`'s stub (the line following the removal)."""
    pat = lazy_re(rf"\b{re.escape(name)}\s*\(")
    for hunk in view.change.hunks:
        hit = False
        for hl in hunk.lines:
            if hl.kind == "-" and pat.search(hl.text):
                hit = True
            elif hit and hl.kind != "-" and hl.new_no:
                return _post(view, hl.new_no)
    return None


def _post(view: FileView, patch_no: int) -> int:
    """Map the patch's own numbering back to the post-image line (inverse of line_map)."""
    inv = {v: k for k, v in (view.line_map or {}).items()}
    return inv.get(patch_no, patch_no)
