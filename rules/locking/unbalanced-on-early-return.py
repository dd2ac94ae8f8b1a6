"""locking/unbalanced-on-early-return: a return that leaves a lock (or RCU/preemption/IRQ section) held."""

from __future__ import annotations

from collections.abc import Iterator

from pmureview.analyses.pairs import LOCKING, Leak, view_leaks
from pmureview.lang.c import text
from pmureview.rule.base import Rule
from pmureview.rule.model import Confidence, Finding, RuleDocs, RuleMeta, Scope, Severity
from pmureview.views.context import FileContext, FileView


class UnbalancedOnEarlyReturn(Rule):
    meta = RuleMeta(
        evidence=(r"(?#hunk-only)lock|LOCK|begin|down|_disable|get_cpu|local_irq|vcpu_load",),  # prefilter
        id="locking/unbalanced-on-early-return",
        title="Lock or critical section left held by an early return",
        severity=Severity.WARNING,
        confidence=Confidence.MEDIUM,
        scope=Scope.FILE,
        docs=RuleDocs(
            what="Follows each function the patch touches through its branches, loops, gotos and returns, "
                 "and reports an early return (or a goto to the final return) reached while a lock taken in "
                 "the same function is still held: spin/raw/hyp spinlocks, mutexes, rwlocks, rwsems, "
                 "rcu_read_lock()/srcu_read_lock(), preempt_disable(), local_irq_save(), vcpu_load(), and "
                 "any `x_lock()`/`x_unlock()` or `x_begin()`/`x_end()` pair the function uses. It also "
                 "reports a release placed right after an unconditional return, which never runs.",
            why="A return that skips the unlock leaves the lock held forever (the next taker deadlocks) "
                "or leaves preemption/IRQs/RCU disabled; error paths are where this hides, because they "
                "are rarely exercised. Kernel code releases on every path, usually by jumping to a "
                "cleanup label.",
            example="\tmutex_lock(&kvm->lock);\n\tif (kvm_vm_has_ran_once(kvm))\n\t\treturn -EBUSY;\n"
                    "\tkvm->arch.cfg = val;\n\tmutex_unlock(&kvm->lock);\n\treturn 0;",
            use_instead="\tguard(mutex)(&kvm->lock);\n\tif (kvm_vm_has_ran_once(kvm))\n\t\treturn -EBUSY;\n"
                        "\tkvm->arch.cfg = val;\n\treturn 0;",
            known_problems="Only functions whose whole body is visible are followed (in hunk-only mode: "
                           "shown entirely by the hunks). It stays silent when unsure: trylock and "
                           "interruptible results are understood in the usual `if` forms only; a lock passed "
                           "to an unknown function, released under another name, released by a helper "
                           "whose name or body says so, or held at the function's normal exit (handed to "
                           "the caller) is not reported; functions annotated `__acquires`/`__releases`/"
                           "`__must_hold` or named `*_lock`/`*_locked`/`*_begin` are skipped. Conditions "
                           "that correlate two branches are only understood when the test is the same "
                           "expression or a flag set to true/false.",
            references=("<CA+EHjTx65scqNVvHci6fge7C5qQ=fiqqHKGwOvOKySQwsCy8Jg@mail.gmail.com> (-EBUSY "
                        "return left kvm->lock held)",
                        "<Yl4knFR8E8XVbgDj@google.com> (walk end placed after the return)"),
        ),
    )

    def check(self, ctx: FileContext) -> Iterator[Finding]:  # type: ignore[override]
        view = ctx.view
        if not view.added or not view.is_c:
            return
        leaks = [lk for lk in view_leaks(view) if lk.pair.kind in LOCKING]
        dead = {lk.acquire_line for lk in leaks if lk.kind == "unreachable-release"}
        done: set[int] = set()
        for lk in leaks:
            if lk.kind != "unreachable-release" and lk.acquire_line in dead:
                continue  # the same mistake, said once: the release after the return
            line = _anchor(view, lk)
            if line is None or line in done:
                continue
            done.add(line)
            yield self.at_line(view, line, _message(view, lk), note=_note(lk))


def _anchor(view: FileView, lk: Leak) -> int | None:
    for line in (lk.exit_line, lk.acquire_line):
        if line in view.added:
            return line
    return None


def _call(view: FileView, node, line: int) -> str:
    raw = text(node) if node is not None else view.line_text(line).strip().rstrip(";")
    return " ".join(raw.split())


def _message(view: FileView, lk: Leak) -> str:
    acq = _call(view, lk.acquire, lk.acquire_line)
    if lk.kind == "unreachable-release":
        rel = _call(view, lk.exit, lk.exit_line)
        return f"{rel} follows a return and never runs: {acq} (line {lk.acquire_line}) stays held"
    how = "this return" if lk.kind == "early-return" else "this goto skips the release and"
    where = f" {lk.function}()" if lk.function != "?" else ""
    return f"{acq} (line {lk.acquire_line}) is still held when {how} leaves{where}"


def _note(lk: Leak) -> str:
    rel = "/".join(sorted(lk.pair.release)[:2])
    return (f"Every path out of the function must release what it took ({rel}()). Unlock before "
            "returning, jump to the cleanup label that does, or use guard()/scoped_guard() so the "
            "compiler releases it.")
