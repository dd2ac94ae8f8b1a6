"""kvmarm/fgt-config-outside-config-c: FGT trap values built outside arch/arm64/kvm/config.c."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from pmureview.analyses.redundant_capability import CONFIG_C, is_static, series_functions
from pmureview.lang.c import call_name, function_name, text, walk
from pmureview.rule.base import Rule
from pmureview.rule.model import Confidence, Finding, RuleDocs, RuleMeta, Scope, Severity
from pmureview.views.context import FileView, SeriesContext

# Files whose business is FGT plumbing rather than FGT configuration (DOMAIN.md §5 rule 3).
_EXEMPT = ("arch/arm64/kvm/emulate-nested.c", "arch/arm64/kvm/hyp/", "arch/arm64/tools/",
           "tools/testing/")
_SCOPE = ("arch/arm64/kvm/", "arch/arm64/include/")
_MASK_OPS = {"|", "&", "^"}

_ASSIGNMENTS = frozenset({"assignment_expression"})


class FgtConfigOutsideConfigC(Rule):
    meta = RuleMeta(
        id="kvmarm/fgt-config-outside-config-c",
        title="FGT trap configuration done outside arch/arm64/kvm/config.c",
        severity=Severity.WARNING,
        confidence=Confidence.HIGH,
        scope=Scope.SERIES,
        # prefilter: needs *vcpu_fgt() or an <FGT register>_<field> constant; full mode reads base lines
        evidence=(r"(?#hunk-only)vcpu_fgt|FG[RWIx]TR2?_EL2_",),
        files=("*.c", "*.h"),
        uses_tree=True,
        docs=RuleDocs(
            what="Flags config.c applying to a per-vCPU FGT value (`*vcpu_fgt(vcpu, R) |= ...`) the "
                 "result of a non-static helper defined in another file, and new code outside "
                 "config.c that writes FGT values (`*vcpu_fgt(...)`) or returns a mask built from "
                 "FGT field constants. The helper's definition is searched in every file of the "
                 "series; when it was added by another patch it gets a finding of its own.",
            why="KVM computes every fine-grained trap in one place on purpose: kvm_vcpu_load_fgt() "
                "and the static __compute_<reg>() helpers of config.c, on top of the FGU and nested "
                "handling of __compute_fgt(). A mask exported from another file hides which bits "
                "are set, with which polarity, into which register, and spreads the FGT logic over "
                "files that reviewers of config.c do not read.",
            example="/* pmu-direct.c */\nu64 kvm_pmu_fgt_bits(void)\n{\n"
                    "\treturn HDFGRTR_EL2_PMOVS | HDFGRTR_EL2_PMCCFILTR_EL0;\n}\n\n"
                    "/* config.c */\n\t*vcpu_fgt(vcpu, HDFGRTR_EL2) |= kvm_pmu_fgt_bits();",
            use_instead="/* config.c */\n\tif (kvm_vcpu_pmu_is_partitioned(vcpu))\n"
                        "\t\t*vcpu_fgt(vcpu, HDFGRTR_EL2) |= HDFGRTR_EL2_PMOVS |\n"
                        "\t\t\t\t\t\tHDFGRTR_EL2_PMCCFILTR_EL0;",
            known_problems="The helper's definition is only found in files the series touches; a "
                           "helper defined elsewhere in the tree is not reported. emulate-nested.c "
                           "(trap tables), hyp code (activate/deactivate), the sysreg description "
                           "and selftests are exempt. A mask macro defined outside config.c is not "
                           "followed.",
            references=(
                "<aTiPvS49uMOJEBrf@kernel.org> (Oliver Upton on v5 10/24: keep the trap "
                "configuration inline in config.c; centralising it there was intentional)",
            ),
        ),
    )

    def check(self, ctx: SeriesContext) -> Iterator[Finding]:  # type: ignore[override]
        if not ctx.views:
            return
        defs: dict[str, list[tuple[FileView, Any]]] | None = None  # for config.c views only
        applied: set[str] = set()  # external helpers config.c applies (their own finding is here)
        reported_defs: set[str] = set()
        for number in sorted(ctx.views):
            for view in ctx.views[number]:
                if not view.is_c or not view.added or not view.text.strip():
                    continue
                if view.path.endswith(CONFIG_C):
                    if defs is None:
                        defs = series_functions(ctx, max(ctx.views))
                    for f, helpers in self._applied_in_config(view, defs):
                        yield f
                        for helper, dview, dline in helpers:
                            applied.add(helper)
                            if dview.patch.number != number and helper not in reported_defs:
                                reported_defs.add(helper)
                                yield self.at_line(
                                    dview, dline,
                                    f"{helper}() builds FGT trap bits that config.c applies (patch "
                                    f"{number}/{ctx.series.total}); keep them in config.c instead",
                                    note=_NOTE)
        for number in sorted(ctx.views):
            for view in ctx.views[number]:
                if (not view.is_c or not view.added or not view.text.strip()
                        or view.path.endswith(CONFIG_C) or view.path.startswith(_EXEMPT)
                        or not view.path.startswith(_SCOPE)):
                    continue
                yield from self._outside(ctx, view, applied)

    # -- config.c applying a mask from another file ---------------------------------------------
    def _applied_in_config(self, view: FileView, defs: dict[str, list[tuple[FileView, Any]]],
                           ) -> Iterator[tuple[Finding, list[tuple[str, FileView, int]]]]:
        for asg in view.added_nodes(_ASSIGNMENTS, touching=True):  # not every assignment of the file
            line = view.first_added_line(asg)
            if line is None:
                continue
            reg = _fgt_target(asg)
            if reg is None:
                continue
            helpers = []
            for name in _value_calls(asg.child_by_field_name("right"), asg):
                d = _external_definition(name, defs, view.path)
                if d is not None and name not in (h for h, _, _ in helpers):
                    helpers.append((name, d[0], d[1]))
            if not helpers:
                continue
            names = ", ".join(f"{h}()" for h, _, _ in helpers)
            where = ", ".join(sorted({d.path.rsplit("/", 1)[1] for _, d, _ in helpers}))
            fn = _enclosing_name(asg)
            target = f"{fn}()" if fn else "a config.c helper"
            msg = (f"{reg} trap bits come from {names} in {where}; open-code them in {target} "
                   f"instead of applying a mask built outside config.c")
            yield self.at_line(view, line, msg, note=_NOTE), helpers

    # -- FGT values built elsewhere ---------------------------------------------------------------
    def _outside(self, ctx: SeriesContext, view: FileView, applied: set[str]) -> Iterator[Finding]:
        kb = ctx.kb
        # what each finding needs in the file's text: a vcpu_fgt() slot written, or (in a return)
        # the field constants of an FGT register, whose names all hold "FG" (kernel.fgt.FGT_SPECS)
        source = view.root.text or b""
        writes = b"vcpu_fgt" in source
        for asg in view.added_nodes(_ASSIGNMENTS, touching=True) if writes else ():  # not every one of the file
            line = view.first_added_line(asg)
            if line is None:
                continue
            reg = _fgt_target(asg)
            if reg is not None:
                # `*vcpu_fgt(vcpu, reg)` in a helper: the register is its caller's, not named here.
                what = reg if kb.is_fgt_register(reg) else "An FGT"
                yield self.at_line(view, line,
                                   f"{what} trap value written outside config.c; compute it in "
                                   f"kvm_vcpu_load_fgt()'s __compute_*() helpers instead",
                                   note=_NOTE)
        if not view.path.endswith(".c") or b"FG" not in source:
            return
        for name, fn in view.functions():  # the named ones of walk(root, {"function_definition"})
            if not view.touches_added(fn) or name in applied or b"FG" not in (fn.text or b""):
                continue
            for ret in walk(fn, {"return_statement"}):
                expr = ret.named_children[0] if ret.named_children else None
                regs = _fgt_mask_registers(expr, kb) if expr is not None else None
                line = view.first_added_line(ret)
                if regs and line is not None:
                    yield self.at_line(
                        view, line,
                        f"{name}() builds {'/'.join(sorted(regs))} trap bits outside config.c; "
                        f"open-code them in the config.c helper that computes the register",
                        note=_NOTE, confidence=Confidence.MEDIUM)
                    break


_NOTE = ("FGT configuration is deliberately centralised in config.c (kvm_vcpu_load_fgt() and the "
         "__compute_<reg>() helpers, on top of __compute_fgt()'s FGU and nested handling). Please "
         "open-code these bits in a config.c helper instead of exporting a mask from another file: "
         "that way the register, the polarity of each bit and the condition are all visible where "
         "the trap value is computed.")


def _enclosing_name(node) -> str | None:
    n = node.parent
    while n is not None and n.type != "function_definition":
        n = n.parent
    return function_name(n) if n is not None else None


def _fgt_target(asg) -> str | None:
    """The FGT register an assignment writes: `*vcpu_fgt(vcpu, R) op= ...` (or a local that the
    function later stores with `*vcpu_fgt(vcpu, R) = local`)."""
    left = asg.child_by_field_name("left")
    if left is None:
        return None
    reg = _vcpu_fgt_reg(left)
    if reg is not None:
        return reg
    if left.type == "identifier":
        fn = asg.parent
        while fn is not None and fn.type != "function_definition":
            fn = fn.parent
        if fn is None:
            return None
        var = text(left)
        for other in walk(fn, {"assignment_expression"}):
            right = other.child_by_field_name("right")
            if other.start_byte > asg.start_byte and right is not None and text(right).strip() == var:
                reg = _vcpu_fgt_reg(other.child_by_field_name("left"))
                if reg is not None:
                    return reg
    return None


def _vcpu_fgt_reg(node) -> str | None:
    if node is None:
        return None
    if node.type == "pointer_expression":
        node = node.child_by_field_name("argument")
    while node is not None and node.type == "parenthesized_expression" and node.named_children:
        node = node.named_children[0]
    if node is not None and node.type == "call_expression" and call_name(node) == "vcpu_fgt":
        args = node.child_by_field_name("arguments")
        named = args.named_children if args is not None else []
        if len(named) >= 2:
            return text(named[1]).strip()
    return None


def _value_calls(expr, asg) -> list[str]:
    """Functions whose return value ends up in `expr` (mask positions, one level of locals)."""
    out: list[str] = []
    seen_vars: set[str] = set()

    def visit(node, depth: int) -> None:
        if node is None:
            return
        t = node.type
        if t == "call_expression":
            name = call_name(node)
            if name:
                out.append(name)
        elif t in ("parenthesized_expression", "cast_expression"):
            visit(node.named_children[-1] if node.named_children else None, depth)
        elif t == "unary_expression":
            visit(node.child_by_field_name("argument"), depth)
        elif t == "binary_expression":
            if text(node.child_by_field_name("operator")) in _MASK_OPS:
                visit(node.child_by_field_name("left"), depth)
                visit(node.child_by_field_name("right"), depth)
        elif t == "conditional_expression":
            visit(node.child_by_field_name("consequence"), depth)
            visit(node.child_by_field_name("alternative"), depth)
        elif t == "identifier" and depth == 0 and text(node) not in seen_vars:
            seen_vars.add(text(node))
            for src in _local_sources(asg, text(node)):
                visit(src, depth + 1)

    visit(expr, 0)
    return out


def _local_sources(asg, var: str) -> list:
    """Initialisers of and assignments to local `var` before `asg` in its function."""
    fn = asg.parent
    while fn is not None and fn.type != "function_definition":
        fn = fn.parent
    if fn is None:
        return []
    out = []
    for d in walk(fn, {"init_declarator"}):
        name = d.child_by_field_name("declarator")
        if name is not None and text(name).strip() == var and d.start_byte < asg.start_byte:
            out.append(d.child_by_field_name("value"))
    for a in walk(fn, {"assignment_expression"}):
        left = a.child_by_field_name("left")
        if (a.start_byte < asg.start_byte and left is not None and left.type == "identifier"
                and text(left) == var):
            out.append(a.child_by_field_name("right"))
    return out


def _external_definition(name: str, defs: dict[str, list[tuple[FileView, Any]]],
                         here: str) -> tuple[FileView, int] | None:
    """The real (non-stub) definition of `name` in another file of the series, if it is one that
    config.c cannot see as its own: a non-static function of a .c file, or a header inline with a
    non-constant body."""
    found = defs.get(name, ())
    if any(v.path == here for v, _ in found):
        return None  # defined in config.c itself
    for view, fn in found:
        if view.path.endswith(".c") and not is_static(fn):
            return view, view.node_line(fn)
    for view, fn in found:
        if view.path.endswith(".h") and not _constant_body(fn):
            return view, view.node_line(fn)
    return None


def _constant_body(fn) -> bool:
    body = fn.child_by_field_name("body")
    stmts = [c for c in (body.named_children if body is not None else []) if c.type != "comment"]
    if not stmts:
        return True
    if len(stmts) == 1 and stmts[0].type == "return_statement":
        val = text(stmts[0]).removeprefix("return").strip(" ;()")
        return val in ("0", "0UL", "0ULL", "false", "true", "")
    return False


def _fgt_mask_registers(expr, kb) -> set[str] | None:
    """The FGT registers whose field constants make up `expr`, when it is nothing but an OR/AND of
    such constants; None otherwise."""
    regs: set[str] = set()

    def ok(node) -> bool:
        t = node.type
        if t == "identifier":
            ref = kb.resolve_constant(text(node))
            if ref is None or ref.kind not in ("field", "mask") or not kb.is_fgt_register(ref.register):
                return False
            regs.add(ref.register)
            return True
        if t in ("parenthesized_expression",):
            return all(ok(c) for c in node.named_children)
        if t == "unary_expression" and text(node.child_by_field_name("operator")) == "~":
            return ok(node.child_by_field_name("argument"))
        if t == "binary_expression" and text(node.child_by_field_name("operator")) in _MASK_OPS:
            return ok(node.child_by_field_name("left")) and ok(node.child_by_field_name("right"))
        return False

    try:
        return regs if ok(expr) and regs else None
    except (AttributeError, TypeError):
        return None
