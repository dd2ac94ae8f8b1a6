"""locking/lock-comment-instead-of-assert: "must be called with X held" said in a comment, not asserted."""

from __future__ import annotations

import re
from collections.abc import Iterator

from pmureview.analyses.pairs import parsed_roots, whole
from pmureview.lang.c import call_name, enclosing_function, functions, text, walk
from pmureview.lazyre import lazy_re
from pmureview.rule.base import Rule
from pmureview.rule.model import Confidence, Finding, RuleDocs, RuleMeta, Scope, Severity
from pmureview.views.context import FileContext

# a caller-side requirement (not what the function itself takes), then a lock named in it
_REQUIRES = lazy_re(
    r"\b(?:assumes?|expects?|requires?)\b(?:[^.;:]|\.(?=\S))*?\b(?:held|taken|locked|acquired|hold(?:ing)?)\b"
    r"|\bmust\s+be\s+called\s+(?:with|under|while\s+holding|holding)\b"
    r"|\bcalled\s+with\b(?:[^.;:]|\.(?=\S))*?\b(?:held|taken|locked|acquired)\b"
    r"|\bcaller\b(?:[^.;:]|\.(?=\S))*?\b(?:must|should|is\s+expected\s+to|needs\s+to|has\s+to)\s+(?:hold|take|have\s+taken)\b"
    r"|(?:lock|mutex|sem)\w*\s+(?:must|should|needs\s+to|has\s+to)\s+be\s+(?:held|taken|locked)\b", re.I)
_LOCK = lazy_re(r"(?<![\w>.])(?:[A-Za-z_][\w]*(?:->|\.))*[A-Za-z_]*(?:lock|mutex|sem)\b", re.I)
_NEGATED = lazy_re(r"\b(?:not|never|without)\b|n't\b", re.I)
_ASSERT = lazy_re(r"lockdep_assert|lockdep_is_held|assert_spin_locked|hyp_assert_lock_held|_lock_held\s*\(|"
                  r"__must_hold\s*\(|is_locked\s*\(")
_HYP = ("arch/arm64/kvm/hyp/nvhe/", "arch/arm64/kvm/hyp/include/nvhe/")


class LockCommentInsteadOfAssert(Rule):
    meta = RuleMeta(
        evidence=('(?i)lock|mutex|sem|held|hold|taken|acquired',),  # cannot fire without it (prefilter)
        id="locking/lock-comment-instead-of-assert",
        title="Locking requirement stated in a comment instead of asserted",
        severity=Severity.CHECK,
        confidence=Confidence.MEDIUM,
        scope=Scope.FILE,
        docs=RuleDocs(
            what="Reports an added comment saying that a lock must already be held ('Assumes X taken', "
                 "'expects X to be held', 'must be called with X held', 'the caller must hold X') on or "
                 "inside a function whose body asserts nothing about it: no lockdep_assert_held*() and "
                 "no __must_hold(), neither itself nor in a same-file helper it calls.",
            why="A comment is not checked: lockdep_assert_held() documents the same rule and catches "
                "every caller that breaks it on a debug kernel. Reviewers ask for the assertion.",
            example="/* Assumes kvm->mmu_lock is held */\nstatic bool s2_page_mapped(struct kvm *kvm, "
                    "gpa_t ipa)\n{\n\treturn kvm_pgtable_walk(...);\n}",
            use_instead="static bool s2_page_mapped(struct kvm *kvm, gpa_t ipa)\n{\n"
                        "\tlockdep_assert_held(&kvm->mmu_lock);\n\treturn kvm_pgtable_walk(...);\n}",
            known_problems="Only comments right above a function or inside it, and only functions "
                           "entirely visible, are judged. EL2 code (hyp/nvhe) is skipped: its hyp_spinlock "
                           "has no lockdep. Comments about RCU or about what the function takes itself "
                           "are not requirements and are not reported.",
            references=("<20210727181107.GC19173@willie-the-truck> ('Assumes mmu_lock taken')",
                        "<YhULmh8BraFF5kd/@monolith.localdoman> ('expects kvm->mmu_lock to be held')"),
        ),
    )

    def check(self, ctx: FileContext) -> Iterator[Finding]:  # type: ignore[override]
        view = ctx.view
        if not view.added or not view.is_c or view.path.startswith(_HYP):
            return
        roots = parsed_roots(view)
        bodies: dict[str, str] | None = None  # the file's function texts, once a comment needs them
        for root in roots:
            for comment in walk(root, {"comment"}):
                if view.first_added_line(comment) is None:
                    continue  # the sentence must start on an added line of the comment
                line, lock = _requirement(view, comment)
                fn = _function_for(comment) if lock else None
                if fn is None or not whole(view, fn):
                    continue
                if bodies is None:
                    bodies = {name: text(f) for root_ in roots for name, f in functions(root_)}
                if _asserts(fn, bodies):
                    continue
                yield self.at_line(
                    view, line, f"the comment says {lock} must be held: assert it with lockdep_assert_held()",
                    note=f"Replace the comment with lockdep_assert_held(&{lock.lstrip('&')}) (or the _write/"
                         "_read variant) at the top of the function: lockdep then checks every caller.")


def _requirement(view, comment) -> tuple[int, str | None]:
    """(line, lock) of an added comment sentence stating that a lock must be held; sentences may
    run over several lines of a block comment."""
    first = comment.start_point[0] + 1
    lines = [re.sub(r"^\s*(?:/\*+|\*+(?!/)|//)?", "", t) for t in text(comment).split("\n")]
    starts, joined = [], ""
    for t in lines:
        starts.append(len(joined))
        joined += t.strip() + " "
    for sentence in re.finditer(r"[^.;:]+(?:\.(?=\S)[^.;:]*)*", joined):
        raw = sentence.group(0)
        m = _REQUIRES.search(raw)
        if m is None or _NEGATED.search(raw) or re.search(r"rcu", raw, re.I):
            continue
        line = first + max(i for i, st in enumerate(starts) if st <= sentence.start() + m.start())
        lock = _LOCK.search(raw)
        if lock and line in view.added:
            return line, lock.group(0)
    return 0, None


def _function_for(comment):
    """The function the comment documents (the definition right below it) or sits in."""
    fn = enclosing_function(comment)
    if fn is not None:
        return fn
    nxt = comment.next_named_sibling
    if nxt is not None and nxt.type == "function_definition" and nxt.start_point[0] - comment.end_point[0] <= 1:
        return nxt
    return None


def _asserts(fn, bodies: dict[str, str]) -> bool:
    if _ASSERT.search(text(fn)):
        return True
    return any(_ASSERT.search(bodies.get(call_name(c) or "", "")) for c in walk(fn, {"call_expression"}))
