"""kvmarm/uaccess-direction-mismatch: a getter that copies from userspace, or a setter that copies to it."""

from __future__ import annotations

from collections.abc import Iterator

from pmureview.lang.c import call_name, functions, text, walk
from pmureview.lazyre import lazy_re
from pmureview.rule.base import Rule
from pmureview.rule.model import Confidence, Finding, RuleDocs, RuleMeta, Scope, Severity
from pmureview.views.context import FileContext

# primitive -> (index of the user pointer, index of the kernel side); dst comes first in all of them
_FROM_USER = {"copy_from_user": (1, 0), "__copy_from_user": (1, 0), "get_user": (1, 0),
              "__get_user": (1, 0), "copy_struct_from_user": (2, 0)}
_TO_USER = {"copy_to_user": (0, 1), "__copy_to_user": (0, 1), "put_user": (1, 0),
            "__put_user": (1, 0), "clear_user": (0, None)}
_USERISH = lazy_re(r"->\s*addr\b|\bu64_to_user_ptr\b|__user\b")


def _tokens(name: str) -> set[str]:
    return set(name.lower().split("_"))


class UaccessDirectionMismatch(Rule):
    meta = RuleMeta(
        evidence=(r"_user\b",),  # cannot fire without it (prefilter)
        id="kvmarm/uaccess-direction-mismatch",
        title="ONE_REG/attribute getter copies from userspace (or setter copies to it)",
        severity=Severity.ERROR,
        confidence=Confidence.HIGH,
        scope=Scope.FILE,
        files=("*.c", "*.h"),
        docs=RuleDocs(
            what="Flags a getter (a function whose name has a `get` token and no `set` token: get_*, "
                 "*_get_reg, *_get_attr) that calls copy_from_user()/get_user() with the user address "
                 "as source and never copies towards userspace, and the mirror case: a setter that "
                 "calls copy_to_user()/put_user()/clear_user() on the user address and never reads "
                 "from it. When both directions occur, only a wrong-way copy into or out of vCPU state "
                 "is reported, as a question.",
            why="KVM_GET_ONE_REG and KVM_GET_DEVICE_ATTR must copy kernel state *to* the VMM's buffer. "
                "A getter that copies from it overwrites the guest's register with whatever the VMM "
                "passed and returns nothing, which breaks save/restore silently; a setter that writes "
                "to the buffer never changes the register.",
            example="static int get_foo_reg(struct kvm_vcpu *vcpu, const struct kvm_one_reg *reg)\n{\n"
                    "\tvoid __user *uptr = (void __user *)(long)reg->addr;\n\n"
                    "\tif (copy_from_user(vcpu->arch.foo_state, uptr, sizeof(u64)))\n"
                    "\t\treturn -EFAULT;\n\treturn 0;\n}",
            use_instead="\tif (copy_to_user(uptr, vcpu->arch.foo_state, sizeof(u64)))\n\t\treturn -EFAULT;",
            known_problems="Functions whose names say neither get nor set are skipped. Getters that first "
                           "read a request descriptor from user memory and then answer (both directions) "
                           "are reported only when the wrong-way copy touches vCPU state, as a question.",
            references=("DOMAIN-PACK2.md rule 24 and §1.6; arch/arm64/kvm/guest.c get_sve_reg() "
                        "(copy_to_user() plus clear_user() for the padding) as the model",),
        ),
    )

    def check(self, ctx: FileContext) -> Iterator[Finding]:  # type: ignore[override]
        view = ctx.view
        if not view.added or "_user" not in view.text:
            return
        for name, fn in functions(view.root):
            if not view.touches_added(fn):
                continue
            toks = _tokens(name)
            getter, setter = "get" in toks and "set" not in toks, "set" in toks and "get" not in toks
            if not (getter or setter):
                continue
            userish = _user_names(fn)
            calls = [c for c in walk(fn, {"call_expression"}) if call_name(c) in _FROM_USER or call_name(c) in _TO_USER]
            if not calls:
                continue
            wrong_tab, right_tab = (_FROM_USER, _TO_USER) if getter else (_TO_USER, _FROM_USER)
            right = any(call_name(c) in right_tab for c in calls)
            for c in calls:
                prim = call_name(c)
                if prim not in wrong_tab:
                    continue
                line = view.node_line(c)
                if line not in view.added:
                    continue
                args = _args(c)
                uidx, kidx = wrong_tab[prim]
                if uidx >= len(args) or not _is_user(args[uidx], userish):
                    continue
                kernel = text(args[kidx]) if kidx is not None and kidx < len(args) else ""
                if right:
                    if "vcpu" not in kernel:
                        continue
                    yield self.at_line(
                        view, line, f"{name}() {'reads from' if getter else 'writes to'} userspace "
                                    f"with {prim}() into vCPU state: is the direction intended?",
                        severity=Severity.CHECK, confidence=Confidence.LOW,
                        note=f"{name}() is a {'getter' if getter else 'setter'}, and it also copies the "
                             f"other way, so this may be a request header; but {prim}() here moves "
                             f"data {'into' if getter else 'out of'} `{kernel}`. Is that the intent?")
                    continue
                if getter:
                    msg = f"{name}() copies *from* userspace with {prim}(): a getter must copy to it"
                    note = (f"{name}() never copies towards userspace, so KVM_GET_ONE_REG (or the "
                            f"attribute read) overwrites `{kernel or 'the kernel copy'}` with the VMM's "
                            f"buffer and returns nothing. This wants copy_to_user()/put_user() (plus "
                            f"clear_user() for any padding), as in the SVE getter.")
                else:
                    msg = f"{name}() copies *to* userspace with {prim}(): a setter must read from it"
                    note = (f"{name}() never reads the VMM's buffer, so the SET ioctl writes "
                            f"{'`' + kernel + '` ' if kernel else ''}back to userspace and the "
                            f"register never changes. This wants copy_from_user()/get_user().")
                yield self.at_line(view, line, msg, note=note)


def _args(call) -> list:
    al = call.child_by_field_name("arguments")
    return [a for a in (al.named_children if al else []) if a.type != "comment"]


def _user_names(fn) -> set[str]:
    """Parameters and locals that hold a user address (declared __user, or derived from reg->addr)."""
    out: set[str] = set()
    decls = list(walk(fn, {"parameter_declaration", "declaration"}))
    for _ in range(2):  # one level of derivation: `p = base + off` where base is user
        for d in decls:
            t = text(d)
            ids = [text(i) for i in walk(d, {"identifier"})]
            if not ids:
                continue
            if d.type == "parameter_declaration":
                if "__user" in t:
                    out.add(ids[-1])
                continue
            for init in walk(d, {"init_declarator"}):
                decl = init.child_by_field_name("declarator")
                value = init.child_by_field_name("value")
                names = [text(i) for i in walk(decl, {"identifier"})] if decl else []
                if not names:
                    continue
                vt = text(value)
                if "__user" in text(d).split("=")[0] or _USERISH.search(vt) or \
                        any(text(i) in out for i in walk(value, {"identifier"})) if value else False:
                    out.add(names[-1])
            if "__user" in t and "=" not in t:
                out.add(ids[-1])
    for a in walk(fn, {"assignment_expression"}):
        left, right = a.child_by_field_name("left"), a.child_by_field_name("right")
        if left is not None and left.type == "identifier" and right is not None and _USERISH.search(text(right)):
            out.add(text(left))
    return out


def _is_user(arg, userish: set[str]) -> bool:
    if _USERISH.search(text(arg)):
        return True
    return any(text(i) in userish for i in walk(arg, {"identifier"}))
