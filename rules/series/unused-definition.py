"""series/unused-definition: a struct member, upper-case macro or asm-offsets constant nothing uses."""

from __future__ import annotations

import re
from collections.abc import Iterator

from pmureview.analyses.symbols import ASM_OFFSET, MACRO, MEMBER, symbols
from pmureview.lazyre import lazy_re
from pmureview.rule.base import Rule
from pmureview.rule.model import Confidence, Finding, RuleDocs, RuleMeta, Scope, Severity
from pmureview.views.context import SeriesContext

_NOT_KERNEL = lazy_re(r"^(?:tools|scripts|samples|usr|Documentation)/|/uapi/")
_UPPER = lazy_re(r"^[A-Z][A-Z0-9_]*$")
_PADDING = lazy_re(r"^(?:_|pad|padding|reserved|rsvd|res\d*|unused|spare)", re.I)
_EMPTY_BODY = lazy_re(r"^\s*(?:do\s*\{\s*\}\s*while\s*\(\s*0\s*\)|\(\s*void\s*\)\s*0|\(?0\)?|\{\s*\})?\s*$")


def _judged(syms, s) -> bool:
    """The kinds a reviewer calls dead: constants documenting a specification (object-like macros),
    layouts (padding, bitfields, unions, __packed) and alternative definitions are not judged."""
    if _NOT_KERNEL.search(s.path) or s.else_branch:
        return False
    if s.kind != ASM_OFFSET and not (s.path.endswith(".c") or "kvm" in s.path):
        return False  # other headers mostly describe the architecture or an ABI (firmware, UAPI)
    if s.kind == MACRO:
        if s.conditional:
            return False
        same = {(x.path, x.head) for x in syms.named(s.name) if x.kind == MACRO}
        return bool(_UPPER.match(s.name) and s.function_like and len(same) == 1
                    and not _EMPTY_BODY.match(s.body))
    if s.kind == MEMBER:
        return not (_PADDING.match(s.name) or s.bitfield or s.in_union or s.packed) and syms.container_used(s)
    return s.kind == ASM_OFFSET


class UnusedDefinition(Rule):
    meta = RuleMeta(
        id="series/unused-definition",
        title="Definition added with no user",
        severity=Severity.WARNING,
        confidence=Confidence.MEDIUM,
        scope=Scope.SERIES,
        needs_base=True,
        uses_tree=True,
        docs=RuleDocs(
            what="Flags a struct member, an upper-case function-like macro or an asm-offsets "
                 "DEFINE()/OFFSET() constant that the series adds and that nothing in the series "
                 "references (C or assembly), nor, with a base tree, any file of the tree. Functions "
                 "and lower-case macros are series/helper-without-user's business.",
            why="A member nobody reads or writes still costs space in every object and misleads the "
                "next reader into looking for its user; a macro or asm-offsets constant nothing uses "
                "is dead code, usually a leftover of an earlier version of the series.",
            example="struct foo_range {\n\tu32\tid;\n\tu32\tshift;\n\tu8\tcheck_flags;  /* never used */\n};",
            use_instead="Drop the definition, or add it in the patch that first uses it.",
            known_problems="Object-like macros are not judged (they mostly document a specification: "
                           "register fields, SMCCC/PSCI codes), nor macros and members of headers other than KVM's "
                           "(architecture and firmware layouts), "
                           "macros under #if/#ifdef, UAPI and tools/ files, padding-like "
                           "members, bitfields, union members, __packed layouts, members of a struct "
                           "the series never refers to by tag, macros with several or #else "
                           "definitions and empty stub bodies. A `##` (or assembler `\\arg`) paste that "
                           "could build the name counts as a use. In hunk-only mode a name the hunks "
                           "show before the series is taken as existing; a series with missing patches "
                           "is not judged.",
            references=("DOMAIN-PACK2.md rule 28 (a definition without a user cannot be reviewed)",),
        ),
    )

    def check(self, ctx: SeriesContext) -> Iterator[Finding]:  # type: ignore[override]
        syms = symbols(ctx)
        if ctx.files_mode or not syms.complete():
            return
        for s in syms.unreferenced():
            if not _judged(syms, s):
                continue
            what = {MEMBER: f"member {s.container}.{s.name}", MACRO: f"macro {s.name}()",
                    ASM_OFFSET: f"asm-offsets constant {s.name}"}[s.kind]
            where = "assembly or C" if s.kind == ASM_OFFSET else "the series"
            yield self.at_line(s.view, s.line, f"{what} is added but never used in {where}",
                               confidence=Confidence.HIGH if ctx.full else Confidence.MEDIUM,
                               note="Nothing in the series refers to it. Please drop it, or add it "
                                    "together with its first user.")
