"""kvmarm/raw-esr-to-userspace: the raw ESR_EL2 stored into a kvm_run exit or copied to the VMM."""

from __future__ import annotations

import re
from collections.abc import Iterator

from pmureview.lang.c import call_name, functions, text, walk
from pmureview.lazyre import lazy_re
from pmureview.rule.base import Rule
from pmureview.rule.model import Confidence, Finding, RuleDocs, RuleMeta, Scope, Severity
from pmureview.views.context import FileContext

_RAW_CALLS = {"kvm_vcpu_get_esr"}
_READ_SYSREG = {"read_sysreg", "read_sysreg_s", "read_sysreg_el2", "read_sysreg_el1"}
_ESR_REG = lazy_re(r"^\s*(?:SYS_)?ESR(?:_EL2)?\s*$|^\s*esr_el2\s*$", re.I)
_SINKS = {"put_user": 0, "__put_user": 0, "copy_to_user": 1, "__copy_to_user": 1}


def _strip(node):
    """Through parentheses and casts to the value itself."""
    while node is not None and node.type in ("parenthesized_expression", "cast_expression"):
        node = node.child_by_field_name("value") if node.type == "cast_expression" else (
            node.named_children[0] if node.named_children else None)
    return node


def _raw_source(node) -> bool:
    node = _strip(node)
    if node is None:
        return False
    if node.type == "call_expression":
        name = call_name(node)
        if name in _RAW_CALLS:
            return True
        if name in _READ_SYSREG:
            al = node.child_by_field_name("arguments")
            args = al.named_children if al else []
            return len(args) == 1 and bool(_ESR_REG.match(text(args[0])))
        return False
    return node.type == "field_expression" and re.sub(r"\s+", "", text(node)).endswith("fault.esr_el2")


class RawEsrToUserspace(Rule):
    meta = RuleMeta(
        evidence=(r"(?#hunk-only)[Ee][Ss][Rr]",),  # prefilter
        id="kvmarm/raw-esr-to-userspace",
        title="Raw ESR_EL2 handed to userspace",
        severity=Severity.WARNING,
        confidence=Confidence.HIGH,
        scope=Scope.FILE,
        files=("*.c", "*.h"),
        docs=RuleDocs(
            what="Flags an added store of the raw syndrome (kvm_vcpu_get_esr(), "
                 "vcpu->arch.fault.esr_el2, a read of ESR_EL2, or a local holding one of them unmasked) "
                 "into a kvm_run exit structure (vcpu->run->..., or a local `run` taken from vcpu->run), "
                 "or as the value of put_user()/copy_to_user().",
            why="ESR_EL2 describes the exception as EL2 sees it, including stage-2 and EL2-only "
                "information (S1PTW, VNCR, ISS2, ...) that userspace cannot interpret, and whatever is "
                "exported in kvm_run becomes ABI. KVM's precedent, the NISV exit, exports only "
                "sanitised ISS bits (kvm_vcpu_dabt_iss_nisv_sanitized()).",
            example="run->arm_foo.esr = kvm_vcpu_get_esr(vcpu);",
            use_instead="run->arm_foo.esr = kvm_vcpu_get_esr(vcpu) & (ESR_ELx_EC_MASK | ESR_ELx_IL |\n"
                        "\t\t\t\t\t\t  ESR_ELx_FSC);",
            known_problems="Only direct stores are followed (and locals assigned from the raw value with "
                           "no masking); a value that travels through a structure later copied to user "
                           "is not seen. Values that are guest-visible by definition (a syndrome the VMM "
                           "injected itself) would be reported: please say so in a comment and suppress.",
            references=("DOMAIN-PACK2.md rule 25 and §1.6; arch/arm64/kvm/mmio.c NISV exit "
                        "(kvm_vcpu_dabt_iss_nisv_sanitized()) as the model",),
        ),
    )

    def check(self, ctx: FileContext) -> Iterator[Finding]:  # type: ignore[override]
        view = ctx.view
        if not view.added or not re.search(r"esr", view.text, re.I):
            return
        scopes = [fn for _name, fn in functions(view.root) if view.touches_added(fn)]
        if view.mode != "full":
            # hunk-only: a function whose header lies outside the hunk parses as loose statements
            scopes.append(view.root)
        seen: set[int] = set()
        for fn in scopes:
            run_locals = _run_locals(fn)
            raw_locals = _raw_locals(fn)
            for a in walk(fn, {"assignment_expression"}):
                line = view.node_line(a)
                if line not in view.added or line in seen or text(a.child_by_field_name("operator")) != "=":
                    continue
                left = text(a.child_by_field_name("left"))
                if not _is_run(left, run_locals):
                    continue
                value = a.child_by_field_name("right")
                if self._raw(value, raw_locals):
                    seen.add(line)
                    yield self._finding(view, line, f"`{left.strip()}`", text(value))
            for c in walk(fn, {"call_expression"}):
                name = call_name(c)
                if name not in _SINKS or view.node_line(c) not in view.added or view.node_line(c) in seen:
                    continue
                al = c.child_by_field_name("arguments")
                args = al.named_children if al else []
                idx = _SINKS[name]
                if idx >= len(args):
                    continue
                arg = args[idx]
                if arg.type == "pointer_expression" and text(arg).startswith("&"):
                    arg = arg.child_by_field_name("argument")
                if arg is not None and self._raw(arg, raw_locals):
                    seen.add(view.node_line(c))
                    yield self._finding(view, view.node_line(c), f"{name}()", text(arg))

    @staticmethod
    def _raw(value, raw_locals: set[str]) -> bool:
        v = _strip(value)
        if v is None:
            return False
        if v.type == "identifier":
            return text(v) in raw_locals
        return _raw_source(v)

    def _finding(self, view, line: int, sink: str, value: str) -> Finding:
        return self.at_line(
            view, line, f"{sink} receives the raw ESR_EL2 ({value.strip()}) unmasked",
            note="This hands the raw ESR_EL2 to the VMM, including stage-2 and EL2-only information "
                 "userspace cannot interpret (S1PTW, VNCR, ISS2 ...), and it becomes ABI once "
                 "exported. Which bits does userspace actually need? Please mask the syndrome to "
                 "those and document them, as the NISV exit does.")


def _run_locals(fn) -> set[str]:
    """Locals holding vcpu->run (`struct kvm_run *run = vcpu->run;` or a later assignment)."""
    out: set[str] = set()
    for d in walk(fn, {"init_declarator"}):
        v = d.child_by_field_name("value")
        if v is not None and re.search(r"->\s*run\s*$", text(v)):
            ids = [text(i) for i in walk(d.child_by_field_name("declarator"), {"identifier"})]
            if ids:
                out.add(ids[-1])
    for a in walk(fn, {"assignment_expression"}):
        r, left = a.child_by_field_name("right"), a.child_by_field_name("left")
        if r is not None and left is not None and left.type == "identifier" and re.search(r"->\s*run\s*$", text(r)):
            out.add(text(left))
    return out


def _is_run(left: str, run_locals: set[str]) -> bool:
    left = re.sub(r"\s+", "", left)
    if re.match(r"^\w+->run->\w", left):  # vcpu->run->exit.field
        return True
    head = re.match(r"^(\w+)->", left)
    return bool(head and head.group(1) in run_locals)


def _raw_locals(fn) -> set[str]:
    """Locals whose every assignment is a raw syndrome and that are never masked in place."""
    assigned: dict[str, list[bool]] = {}
    for d in walk(fn, {"init_declarator"}):
        ids = [text(i) for i in walk(d.child_by_field_name("declarator"), {"identifier"})]
        if ids:
            assigned.setdefault(ids[-1], []).append(_raw_source(d.child_by_field_name("value")))
    for a in walk(fn, {"assignment_expression"}):
        left = a.child_by_field_name("left")
        if left is None or left.type != "identifier":
            continue
        op = text(a.child_by_field_name("operator"))
        raw = op == "=" and _raw_source(a.child_by_field_name("right"))
        assigned.setdefault(text(left), []).append(raw)
    return {n for n, flags in assigned.items() if flags and all(flags)}
