"""series/debug-scaffolding: code or commit text that is there only while the series is being debugged."""

from __future__ import annotations

import re
from collections.abc import Iterator

from pmureview.analyses.required_shape import definition_shape, program_name, required_shape
from pmureview.analyses.symbols import DECLARATIONS, ORDINARY, symbols
from pmureview.lang.c import enclosing_function, function_name, text
from pmureview.lazyre import lazy_re
from pmureview.rule.base import Rule
from pmureview.rule.model import Confidence, Finding, RuleDocs, RuleMeta, Scope, Severity
from pmureview.views.context import FileView, PatchContext, SeriesContext

_FALSE = {"false", "0"}
_TRUE = {"true", "1"}
# commit-message cues, judged per sentence: a strong cue is enough; "temporarily" / "for now" only
# count with a sign that the patch itself is the temporary thing ("temporarily disable preemption",
# "a temporary variable" describe the code, not the patch)
_STRONG = lazy_re(r"\b(?:for (?:easier |better )?debug(?:ging)?|(?-i:HACK)\b|DO NOT MERGE|DONOTMERGE|"
                     r"XXX: remove|temporary (?:hack|workaround|scaffolding|debug\w*))", re.I)
_WEAK = lazy_re(r"\b(?:temporar(?:il)?y|for now|until a later patch|will be removed)\b", re.I)
_WEAK_WITH = lazy_re(r"\b(?:this (?:patch|commit|change)|force[sd]?|hard-?(?:wire|code)[sd]?|"
                        r"(?:to be|as|always|returns?) (?:false|true|off|on)|debug\w*|later (?:patch|commit))\b",
                        re.I)
_IF0 = lazy_re(r"^\s*#\s*if\s+0\s*(?:/[*/].*)?$")
# hunk fragments can parse into ERROR nodes; the line itself still says it
_IF_CONST = lazy_re(r"^\s*(?:}\s*else\s+)?if\s*\(\s*(0|false)\s*\)")


_NODES = frozenset({"binary_expression", "if_statement", "function_definition"})


class DebugScaffolding(Rule):
    meta = RuleMeta(
        id="series/debug-scaffolding",
        title="Debug scaffolding left in a patch (&& false, if (0), #if 0, 'temporarily')",
        severity=Severity.WARNING,
        confidence=Confidence.HIGH,
        scope=Scope.PATCH,
        docs=RuleDocs(
            what="Flags added `&& false`, `|| true`, `if (0)`, `#if 0`, an exported predicate whose body "
                 "is a constant, and a commit message that says the patch is temporary or forces "
                 "something off for debugging. It says which later patch of the series, if any, "
                 "removes the scaffolding again.",
            why="A hard-wired predicate turns everything the patch adds into dead code until a later "
                "patch, so the patch cannot be tested or bisected on its own, and the series does not "
                "show how the feature is meant to be switched on. Maintainers ask for the real "
                "predicate first, or for the callers to be wired in the patch that enables the feature.",
            example="bool kvm_vcpu_pmu_is_partitioned(struct kvm_vcpu *vcpu)\n{\n"
                    "\treturn kvm_pmu_is_partitioned(vcpu->kvm) && false;\n}",
            use_instead="bool kvm_vcpu_pmu_is_partitioned(struct kvm_vcpu *vcpu)\n{\n"
                        "\treturn kvm_pmu_is_partitioned(vcpu->kvm);\n}",
            known_problems="`static inline` stubs returning a constant in `#else` branches are the normal "
                           "way to compile a feature out and are not flagged. A non-static `bool` "
                           "function in a .c file that only returns true or false is reported with low "
                           "confidence, as a question (`__weak` defaults, `int` success hooks and "
                           "`kvm_arch_*()` hooks are skipped). In the commit message, \"temporarily\" "
                           "or \"for now\" only count in a sentence that also says the patch forces, "
                           "hard-wires or debugs something (\"temporarily disable preemption\" and \"a "
                           "temporary variable\" describe the code, not the patch); one finding per "
                           "sentence. A constant body that is the function's job is not asked about: an "
                           "ops-table entry or callback (`.member = fn`, a positional table entry, "
                           "`ops->member = fn`, its address passed on), a `__weak` default or the "
                           "override of one (in the series, or in the base tree in full mode), a BPF "
                           "program (`SEC(\"...\")`, `BPF_PROG()`), or a function the series neither "
                           "declares nor calls (it implements an interface for callers outside the "
                           "series, e.g. a stub for a separately linked image).",
            references=("<20251209205121.1871534-11-coltonlewis@google.com> (v5 10/24: the NOTE and "
                        "'&& false' in kvm_vcpu_pmu_is_partitioned())",),
        ),
    )

    def check(self, ctx: PatchContext) -> Iterator[Finding]:  # type: ignore[override]
        series = ctx.series
        later = [p for p in series.patches if p.number > ctx.patch.number]
        for view in ctx.views:
            if not view.added:
                continue
            for line, message, note_head, confidence in self._code(view, series):
                where = _removed_where(view.line_text(line), later, series.series.total)
                yield self.at_line(view, line, message, confidence=confidence, note=f"{note_head} {where}")
        lines = ctx.patch.message.split("\n")
        for i, cue in _message_cues(lines):
            yield self.at_section(
                ctx.patch.number, "message", i,
                f"the commit message says the patch is scaffolding (\"{cue}\")",
                note="A patch that is only correct temporarily cannot be bisected or tested on "
                     "its own. Reorder the series so each patch stands by itself, and keep "
                     "debugging aids out of what is posted.",
                snippet=lines[i - 1], mail_line=ctx.patch.message_start + i - 1)

    def _code(self, view: FileView, series: SeriesContext) -> Iterator[tuple[int, str, str, Confidence]]:
        seen: set[int] = set()
        if view.is_c:
            # every hit lies on an added line: only nodes holding one are looked at, not the whole file
            for node in view.added_nodes(_NODES, touching=True):
                hit = self._node(view, node, series)
                if hit and hit[0] not in seen:
                    seen.add(hit[0])
                    yield hit
        for line in sorted(view.added):
            if line in seen:
                continue
            if _IF0.match(view.line_text(line)):
                yield (line, "'#if 0' disables the code below it",
                       "Code that is compiled out is not reviewed or built; drop it or post it when it "
                       "is used.", Confidence.HIGH)
            elif view.is_c and (m := _IF_CONST.match(view.line_text(line))):
                yield (line, f"'if ({m.group(1)})' never runs the code it guards",
                       "Dead code is not reviewed meaningfully; drop it or add it when it is used.",
                       Confidence.HIGH)

    def _node(self, view: FileView, node, series: SeriesContext) -> tuple[int, str, str, Confidence] | None:
        if node.type == "binary_expression":
            op = text(node.child_by_field_name("operator"))
            right = text(node.child_by_field_name("right")).strip()
            if (op == "&&" and right in _FALSE) or (op == "||" and right in _TRUE):
                op_node = node.child_by_field_name("operator")
                line = view.node_line(op_node) if op_node else view.node_line(node)
                if line not in view.added:
                    return None
                const = "false" if op == "&&" else "true"
                fn = enclosing_function(node)
                name = function_name(fn) if fn is not None else None
                in_return = _inside(node, "return_statement")
                what = (f"'{op} {right}' hard-wires {name}() to {const}" if name and in_return
                        else f"'{op} {right}' makes this condition always {const}")
                return (line, what,
                        "Everything gated on it is dead code until a later patch, and this patch "
                        "cannot be tested or bisected on its own.", Confidence.HIGH)
        if node.type == "if_statement":
            cond = node.child_by_field_name("condition")
            inner = text(cond).strip("() \t")
            line = view.node_line(node)
            if inner in ("0", "false") and line in view.added:
                return (line, f"'if ({inner})' never runs the code it guards",
                        "Dead code is not reviewed meaningfully; drop it or add it when it is used.",
                        Confidence.HIGH)
        if node.type == "function_definition" and view.path.endswith(".c"):
            return self._constant_predicate(view, node, series)
        return None

    def _constant_predicate(self, view: FileView, fn,
                            series: SeriesContext) -> tuple[int, str, str, Confidence] | None:
        head = text(fn)[: text(fn).find("{")] if "{" in text(fn) else ""
        # bool only: `int f(void) { return 0; }` is the usual "success" hook, not a predicate;
        # kvm_arch_*() are generic KVM hooks an architecture may implement as a constant
        if re.search(r"\b(static|__weak)\b", head) or not re.match(r"^\s*bool\b", head):
            return None
        if (function_name(fn) or "").startswith("kvm_arch_"):
            return None
        body = fn.child_by_field_name("body")
        stmts = [c for c in (body.named_children if body else []) if c.type != "comment"]
        if len(stmts) != 1 or stmts[0].type != "return_statement":
            return None
        value = text(stmts[0]).removeprefix("return").strip(" ;")
        line = view.node_line(fn)
        if value not in ("false", "true") or line not in view.added:
            return None
        name = program_name(fn)
        if not name or _required(view, fn, name, series):
            return None
        return (view.node_line(stmts[0]) if view.node_line(stmts[0]) in view.added else line,
                f"{name}() always returns {value}: is this a placeholder for the real predicate?",
                "A new exported predicate with a constant body makes its callers dead code; if it "
                "is scaffolding, introduce the real condition first.", Confidence.LOW)


def _required(view: FileView, fn, name: str, series: SeriesContext) -> bool:
    """The constant is the function's job, not a placeholder: something needs it in exactly this
    shape (an ops-table entry, a callback, a __weak default or its override, a BPF program), or its
    callers are all outside the series (it implements an interface the series neither declares nor
    calls, e.g. a stub for a separately linked image)."""
    if definition_shape(view, fn) is not None or required_shape(series, name):
        return True
    syms = symbols(series)
    declared = any(s.kind in DECLARATIONS and s.added for s in syms.named(name))
    used = any(u.namespace == ORDINARY for u in syms.uses(name))
    return not declared and not used


def _message_cues(lines: list[str]) -> Iterator[tuple[int, str]]:
    """(1-based line, cue) once per sentence that says the patch is scaffolding."""
    text_, starts = "", []
    for ln in lines:
        starts.append(len(text_))
        text_ += ln + "\n"
    for sent in re.finditer(r"[^.!?]+(?:[.!?]+|$)", text_.replace("\n\n", ".\n")):
        body = sent.group(0)
        strong, weak = _STRONG.search(body), _WEAK.search(body)
        if weak is not None and strong is None and not _WEAK_WITH.search(body):
            weak = None
        hits = [x for x in (strong, weak) if x is not None]
        if not hits:
            continue
        m = min(hits, key=lambda x: x.start())  # anchor on the sentence's first cue
        pos = sent.start() + m.start()
        line = max(i for i, st in enumerate(starts, 1) if st <= pos)
        yield line, " ".join(m.group(0).split())


def _inside(node, kind: str) -> bool:
    n = node.parent
    while n is not None:
        if n.type == kind:
            return True
        if n.type == "function_definition":
            return False
        n = n.parent
    return False


def _removed_where(line_text: str, later, total: int) -> str:
    key = " ".join(line_text.split())
    for p in later:
        for f in p.files:
            if any(" ".join(t.split()) == key for t in f.removed_text):
                return f"Patch {p.number}/{total} removes it again."
    return "No later patch in this series removes it."
