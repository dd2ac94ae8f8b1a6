"""style/continuation-operator: a continued expression whose added line starts with the operator.

A Python rule, not a tree-sitter query: a query over every binary expression costs ~10 ms to compile in
each process (the hook runs one per patch), while the lines that can be meant are found by their text
and the operator token under each by one tree lookup.
"""

from __future__ import annotations

from collections.abc import Iterator

from pmureview.lazyre import lazy_re
from pmureview.rule.base import Rule
from pmureview.rule.model import Confidence, Finding, RuleDocs, RuleMeta, Scope, Severity
from pmureview.rule.yamlrule import continues_code_above
from pmureview.views.context import FileContext

_OPERATOR_START = frozenset(b"-+*/%^|&<>=!")
# `for_each_x(...)` without braces then `*p |= ...`, or a table of macro invocations then a negative
# number, parse as `call * ...` / `call - ...`: a macro invocation, not a continued expression
_MACRO_CALL_OPS = frozenset({"*", "-", "+", "&"})
_MACRO_CALL_HOLDERS = frozenset({"expression_statement", "initializer_list"})
# assembler macros in a header (`.macro` ... `.inst 0x... \` newline `| (\nx)`) are not C
_ASM = lazy_re(r"(^|\n)[ \t]*\.(macro|endm|inst|word|long|endif|error)\b")
_NOTE = ("Kernel style keeps the operator at the end of the line when an expression is continued, so "
         "each line reads as unfinished. checkpatch --strict says the same (LOGICAL_CONTINUATIONS).")


class ContinuationOperator(Rule):
    meta = RuleMeta(
        id="style/continuation-operator",
        title="Continued expression starts its line with a binary operator",
        severity=Severity.CHECK,
        confidence=Confidence.HIGH,
        scope=Scope.FILE,
        files=("*.c", "*.h"),
        # a line of the hunks whose first character can start a binary operator
        evidence=(r"(?m)^[ \t\f\v]*[-+*/%^|&<>=!]",),
        docs=RuleDocs(
            what="Flags an added line whose first token is a binary operator (`|`, `&`, `||`, `&&`, "
                 "`+`, `-`, ...) that continues the expression of the previous line.",
            why="Documentation/process/coding-style.rst and checkpatch's LOGICAL_CONTINUATIONS place "
                "the operator at the end of the broken line. Maintainers ask for it in review, and a "
                "multi-line mask built with leading `|` is the shape it most often takes in KVM/arm64 "
                "FGT helpers.",
            example="u64 mask = HDFGRTR_EL2_PMOVS\n         | HDFGRTR_EL2_PMCCFILTR_EL0\n"
                    "         | HDFGRTR_EL2_PMEVTYPERn_EL0;",
            use_instead="u64 mask = HDFGRTR_EL2_PMOVS |\n           HDFGRTR_EL2_PMCCFILTR_EL0 |\n"
                        "           HDFGRTR_EL2_PMEVTYPERn_EL0;",
            known_problems="Only binary expressions are checked (not `?` / `:` of a conditional). A "
                           "pointer dereference or a unary minus at the start of a statement is not a "
                           "binary operator and is not flagged, including after a brace-less "
                           "`for_each_*()` macro loop or in a table of macro invocations, which the C "
                           "parser reads as a multiplication or subtraction (such a statement or "
                           "initializer is skipped, so a genuine `CALL(x)` newline `- 1` initializer is "
                           "missed). A line is judged only when the line above it is known code: the "
                           "first line of a hunk (hunk-only mode) and a line below a preprocessor "
                           "directive (`#ifdef` inside an argument list, then `&arg,`) are not. Lines of "
                           "a block comment whose `/*` is above the hunk are comment "
                           "(FileView.parse_text), and assembler macros in headers (`.macro` / `.inst` "
                           "with leading `|`) are not C and are skipped.",
            references=("<20251209205121.1871534-11-coltonlewis@google.com> (the masks of kvm_pmu_fgt_bits())",),
        ),
    )

    def check(self, ctx: FileContext) -> Iterator[Finding]:  # type: ignore[override]
        view = ctx.view
        if not view.is_c or not view.added:
            return
        for line in sorted(view.added):
            raw = view.line_text(line).encode("utf-8", "surrogateescape")
            col = len(raw) - len(raw.lstrip())
            if col == len(raw) or raw[col] not in _OPERATOR_START or not continues_code_above(view, line):
                continue
            token = view.root.descendant_for_point_range((line - 1, col), (line - 1, col + 1))
            expr = token.parent if token is not None else None
            if expr is None or expr.type != "binary_expression" or token.start_point != (line - 1, col):
                continue
            if not _is_operator_of(expr, token) or _skipped(view, token):
                continue
            op = view.node_text(token)
            yield self.at_node(view, token, f"line starts with '{op}' continuing the previous line; "
                               "put the operator at the end of that line", note=_NOTE)


def _is_operator_of(expr, token) -> bool:
    op, left, right = (expr.child_by_field_name(f) for f in ("operator", "left", "right"))
    return op is not None and op.id == token.id and left is not None and right is not None \
        and left.is_named and right.is_named


def _skipped(view, token) -> bool:
    """Inside a macro invocation read as `call <op> ...`, or inside assembler-macro text."""
    node = token.parent
    while node is not None:
        if node.type == "binary_expression" and node.parent is not None \
                and node.parent.type in _MACRO_CALL_HOLDERS:
            left, op = node.child_by_field_name("left"), node.child_by_field_name("operator")
            if left is not None and left.type == "call_expression" and op is not None \
                    and op.type in _MACRO_CALL_OPS:
                return True
        if node.type in ("expression_statement", "ERROR") and _ASM.search(view.node_text(node)):
            return True
        node = node.parent
    return False
