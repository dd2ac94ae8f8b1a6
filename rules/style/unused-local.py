"""style/unused-local: a local variable the patch adds that nothing in its function mentions again."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator

from pmureview.lang.c import walk
from pmureview.lazyre import lazy_re
from pmureview.rule.base import Rule
from pmureview.rule.model import Confidence, Finding, RuleDocs, RuleMeta, Scope, Severity
from pmureview.views.context import FileContext

# annotations that say "unused on purpose", and register variables bound to asm operands
_EXEMPT = lazy_re(r"\b(?:__maybe_unused|__always_unused|__unused|__attribute__|asm|__asm__|register)\b")
# a name inside a string or a comment is not a use
_NOISE = lazy_re(r'"(?:\\.|[^"\\\n])*"|/\*.*?\*/|//[^\n]*', re.S)
_WORD = lazy_re(r"\w+")


class UnusedLocal(Rule):
    meta = RuleMeta(
        id="style/unused-local",
        title="Unused local variable",
        severity=Severity.WARNING,
        confidence=Confidence.HIGH,
        scope=Scope.FILE,
        docs=RuleDocs(
            what="Flags a local variable whose declaration the patch adds when its name appears nowhere "
                 "else in the function's code (macro arguments included; strings and comments do "
                 "not count).",
            why="An unused local is dead code, usually left over from an earlier version of the patch; "
                "it also hides a computation the author may have meant to use. The compiler warns "
                "(-Wunused-variable) once built, and reviewers ask for it to go.",
            example="static u64 timer_get_offset(struct arch_timer_context *ctxt)\n{\n"
                    "\tstruct arch_timer_cpu *timer = vcpu_timer(ctxt->vcpu);\n\n"
                    "\treturn ctxt->offset;\n}",
            use_instead="static u64 timer_get_offset(struct arch_timer_context *ctxt)\n{\n"
                        "\treturn ctxt->offset;\n}",
            known_problems="Judged only when the whole function is visible (in hunk-only mode a "
                           "function the hunks show in part is skipped). Any mention of the name "
                           "outside strings and comments counts as a use, so a variable that is only "
                           "written is not reported. `__maybe_unused` and register/asm variables are skipped.",
            references=("gcc -Wunused-variable",),
        ),
    )

    def check(self, ctx: FileContext) -> Iterator[Finding]:  # type: ignore[override]
        view = ctx.view
        if not view.is_c or not view.added:
            return
        for _, fn in view.functions():
            lines = view.node_lines(fn)
            if view.added.isdisjoint(lines):
                continue  # no added declaration in it (full mode: most functions of the file)
            body = fn.child_by_field_name("body")
            if body is None or not all(n in view.known for n in lines[:-1]) or fn.has_error:
                continue
            words: Counter[str] | None = None  # word -> uses in the body: one scan, not a regex per name
            for decl in walk(body, {"declaration"}):
                line = view.node_line(decl)
                if line not in view.added or _EXEMPT.search(view.node_text(decl)):
                    continue
                for d in decl.children_by_field_name("declarator"):
                    name_node = d.child_by_field_name("declarator") if d.type == "init_declarator" else d
                    while name_node is not None and name_node.type == "pointer_declarator":
                        name_node = name_node.child_by_field_name("declarator")
                    if name_node is None or name_node.type != "identifier":
                        continue
                    name = view.node_text(name_node)
                    if words is None:  # `\bname\b` matches exactly where a maximal word run is name
                        words = Counter(_WORD.findall(_NOISE.sub(" ", view.node_text(body))))
                    if words[name] == 1:
                        yield self.at_line(view, line, f"local variable '{name}' is never used",
                                           column=view.column(name_node),
                                           note="Drop it (the compiler warns: -Wunused-variable).")
