"""style/macro-arg-not-parenthesised: a macro parameter dereferenced without parentheses."""

from __future__ import annotations

import re
from collections.abc import Iterator

from pmureview.lazyre import lazy_re
from pmureview.rule.base import Rule
from pmureview.rule.model import Confidence, Finding, RuleDocs, RuleMeta, Scope, Severity
from pmureview.views.context import FileContext

_DEFINE = lazy_re(r"^\s*#\s*define\s+\w+\((?P<params>[^)]*)\)(?P<body>.*)$")
# string and character literals and comments: nothing in them is an operand
_NOISE = lazy_re(r'"(?:\\.|[^"\\])*"|\'(?:\\.|[^\'\\])*\'|/\*.*?\*/|/\*.*$|//.*$')


class MacroArgNotParenthesised(Rule):
    meta = RuleMeta(
        evidence=(r"#\s*define",),  # cannot fire without it (prefilter)
        id="style/macro-arg-not-parenthesised",
        title="Macro parameter used without parentheses",
        severity=Severity.CHECK,
        confidence=Confidence.HIGH,
        scope=Scope.FILE,
        docs=RuleDocs(
            what="Flags a parameter of a function-like macro the patch adds that is used as the object "
                 "of a member access (`p->x`, `s.x`) without parentheses around it, once per parameter.",
            why="A macro argument is pasted as text: `v->arch` with the argument `vcpus[i]` works, but "
                "with `*pv` or `a ? b : c` it binds wrongly and fails to build or, worse, builds. "
                "Writing `(v)->arch` costs nothing; reviewers ask for it.",
            example="#define vcpu_flags(v)\t(v->arch.flags)",
            use_instead="#define vcpu_flags(v)\t((v)->arch.flags)",
            known_problems="Only member access is checked, not arithmetic or comparison operands, which "
                           "checkpatch.pl --strict reports as well (MACRO_ARG_PRECEDENCE). A parameter "
                           "used as a member name (`s->field`), pasted (`##`) or stringified (`#`) is "
                           "not an operand and is skipped.",
            references=("scripts/checkpatch.pl: MACRO_ARG_PRECEDENCE",),
        ),
    )

    def check(self, ctx: FileContext) -> Iterator[Finding]:  # type: ignore[override]
        view = ctx.view
        for start in sorted(view.added):
            m = _DEFINE.match(view.line_text(start))
            if not m or start in view.comment_lines:  # a #define quoted inside a block comment
                continue
            params = [p.strip() for p in m.group("params").split(",")]
            params = [p for p in params if re.fullmatch(r"[A-Za-z_]\w*", p)]
            if not params:
                continue
            body = [(start, m.group("body"))]
            line = start
            while view.line_text(line).rstrip().endswith("\\") and line + 1 in view.added:
                line += 1
                body.append((line, view.line_text(line)))
            reported: set[str] = set()
            for n, raw in body:
                if n in view.comment_lines:  # a comment spanning lines of the macro body
                    continue
                code = _NOISE.sub(" ", raw)
                for p in params:
                    if p in reported:
                        continue
                    hit = re.search(rf"(?<![\w.#>])(?<!->)(?<!#\s){re.escape(p)}\s*(?:->|\.(?![.\d]))", code)
                    if hit and "##" not in code[max(0, hit.start() - 3):hit.end() + 3]:
                        reported.add(p)
                        yield self.at_line(view, n, f"macro parameter '{p}' is dereferenced without "
                                           f"parentheses: write '({p})'",
                                           note="The argument is pasted as text, so an expression such "
                                                "as '*p' or 'a ? b : c' binds to the member access "
                                                "instead. checkpatch --strict: MACRO_ARG_PRECEDENCE.")
