"""style/missing-static: a symbol with global linkage that only its own file uses."""

from __future__ import annotations

from collections.abc import Iterator

from pmureview.analyses.symbols import symbols
from pmureview.lazyre import lazy_re
from pmureview.rule.base import Rule
from pmureview.rule.model import Confidence, Finding, RuleDocs, RuleMeta, Scope, Severity
from pmureview.views.context import SeriesContext

# generic hooks (their callers and prototypes are in code a hunk cannot show), program entry points
_HOOK = lazy_re(r"^(?:kvm_arch_|__kvm_arch_|arch_|__arch_|main$|init_module$|cleanup_module$)")
_NOT_KERNEL = lazy_re(r"^(?:tools|scripts|samples|usr|Documentation)/|/uapi/")
_PUBLIC = lazy_re(r"^(?:arch/[^/]+/)?include/")
_CALLED_FROM_ASM = lazy_re(r"\b(?:asmlinkage|__visible|__used|__bpf_kfunc|SYSCALL_DEFINE\d?)\b")


class MissingStatic(Rule):
    meta = RuleMeta(
        id="style/missing-static",
        title="Symbol with global linkage used only in its own file",
        severity=Severity.WARNING,
        confidence=Confidence.MEDIUM,
        scope=Scope.SERIES,
        uses_tree=True,
        docs=RuleDocs(
            what="Flags a function or object (DEFINE_PER_CPU() included) defined without `static` in a "
                 ".c file when the series adds it, makes it non-static or declares it in a header "
                 "(prototype, extern, DECLARE_PER_CPU()), and nothing outside its file refers to it: "
                 "no other file of the series, and with a base tree no other file of the tree. The "
                 "finding sits on the header declaration the series adds, else on the definition.",
            why="Global linkage is an interface: other files may start using the symbol, it clashes "
                "with same-named symbols elsewhere, and sparse warns that it was not declared. A "
                "header declaration nobody else needs widens every includer's view for nothing.",
            example="bool kvm_arm_vcpu_foo_pending(struct kvm_vcpu *vcpu)   /* only arm.c calls it */\n{\n"
                    "\treturn vcpu->arch.mp_state == KVM_MP_STATE_FOO;\n}",
            use_instead="static bool kvm_arm_vcpu_foo_pending(struct kvm_vcpu *vcpu)\n"
                        "(and drop the header declaration, if the patch adds one)",
            known_problems="In hunk-only mode a new function with no prototype in the series is only a "
                           "`check` (a header of the base may already declare it). "
                           "In hunk-only mode a symbol the series neither adds nor made static is not "
                           "judged (its users elsewhere in the tree are unknown); a symbol whose "
                           "references the series changes is judged only with a base tree. Users "
                           "through `##` pastes in other files, assembly (kvm_nvhe_sym() and "
                           "__kvm_nvhe_ aliases included), EXPORT_SYMBOL*(), __weak, asmlinkage, "
                           "kvm_arch_*()/arch_*() hooks and symbols with another definition elsewhere "
                           "keep it silent; so does a commit message that names the symbol as used by "
                           "a follow-up series, and a series with missing patches.",
            references=("sparse: \"symbol 'x' was not declared. Should it be static?\"",
                        "Documentation/process/coding-style.rst",),
        ),
    )

    def check(self, ctx: SeriesContext) -> Iterator[Finding]:  # type: ignore[override]
        syms = symbols(ctx)
        for g in syms.file_local_globals():
            first = min(g.definitions + g.declarations, key=lambda s: (not s.added, s.patch))
            if not syms.complete(0 if g.evidence in ("new", "declared") else first.patch):
                continue  # a missing patch may hold the user (or the prototype)
            if (not ctx.full and _HOOK.match(g.name)) or any(_NOT_KERNEL.search(d.path) for d in g.definitions):
                continue
            if g.evidence == "declared" and not any(_PUBLIC.match(d.path) for d in g.declarations):
                continue  # a subsystem's private header: its interface, whoever uses it today
            if any(_CALLED_FROM_ASM.search(d.head) for d in g.definitions):
                continue
            if syms.announced(g.name):
                continue
            files = ", ".join(sorted({d.path.rsplit("/", 1)[-1] for d in g.definitions}))
            what = f"{g.name}()" if g.definitions[0].kind == "function" else g.name
            conf = Confidence.HIGH if g.exact else Confidence.MEDIUM
            if g.evidence == "made-non-static":
                msg = f"{what} is made non-static, but nothing outside {files} refers to it: keep it static"
            elif g.declarations:
                msg = f"{what} is only used in {files}: make it static and drop this declaration"
            else:
                msg = f"{what} has {'no user' if g.evidence == 'new' else 'no user left'} outside {files}: " \
                      f"make it static"
            sev = None
            if g.evidence == "new" and not ctx.full:  # a base header may already declare it: ask
                sev, conf = Severity.CHECK, Confidence.MEDIUM
                msg = f"{what} has no prototype in the series and no user outside {files}: make it static " \
                      f"(unless a header of the base already declares it)"
            d = next((x for x in g.declarations + g.definitions if x.added), g.definitions[0])
            yield self.at_line(d.view, d.line, msg, confidence=conf, severity=sev,
                               note="Nothing outside its own file refers to it, so it needs neither global "
                                    "linkage nor a declaration in a header (sparse: 'not declared. Should "
                                    "it be static?').")

