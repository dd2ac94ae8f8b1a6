"""kvmarm/no-conditional-compilation: ifdeffery KVM/arm64 avoids on purpose."""

from __future__ import annotations

import re
from collections.abc import Iterator

from pmureview.kernel.header_stubs import FuncDecl, declarations, macro_functions, scan
from pmureview.lang.c import call_name, text, walk
from pmureview.lazyre import lazy_re
from pmureview.rule.base import Rule
from pmureview.rule.model import Confidence, Finding, RuleDocs, RuleMeta, Scope, Severity
from pmureview.views.context import FileContext, FileView

# The per-object macros the hyp build defines; testing them splits one definition into two.
_HYP_MACRO = lazy_re(r"\b__KVM_(?:NVHE|VHE)_HYPERVISOR__\b")
_CONFIG = lazy_re(r"^\s*IS_ENABLED\s*\(\s*(CONFIG_\w+)\s*\)\s*$")
# Host-wide capability tests that are already constant-folded through alternatives/static keys.
_CAP_TESTS = {"cpus_have_final_cap", "cpus_have_cap", "cpus_have_const_cap",
              "alternative_has_cap_likely", "alternative_has_cap_unlikely"}

# Address-space helpers: the same object reached from the kernel and from the hyp object. Two
# definitions that differ only in these compute the same thing (the kernel's own vcpu_has_sve()
# idiom: `kvm_has_sve(kern_hyp_va((vcpu)->kvm))` for nVHE, `kvm_has_sve((vcpu)->kvm)` elsewhere).
_SAME_POINTER = frozenset({"kern_hyp_va", "kvm_ksym_ref", "kvm_ksym_ref_nvhe", "kvm_nvhe_sym",
                           "CHOOSE_NVHE_SYM", "CHOOSE_HYP_SYM", "CHOOSE_VHE_SYM", "lm_alias"})
_ADDRESS_OF = frozenset({"hyp_symbol_addr"})  # hyp_symbol_addr(sym) is &sym seen from the hyp object
_PERCPU_SYM = {"this_cpu_ptr_hyp_sym": "this_cpu_ptr", "this_cpu_ptr_nvhe_sym": "this_cpu_ptr",
               "per_cpu_ptr_hyp_sym": "per_cpu_ptr", "per_cpu_ptr_nvhe_sym": "per_cpu_ptr"}  # f(sym,..) = g(&sym,..)
# one spelling per translation: the hyp object's own helpers and the kernel's do the same job
_SAME_JOB = {"__hyp_pa": "__pa", "hyp_virt_to_phys": "__pa", "virt_to_phys": "__pa", "__pa_symbol": "__pa",
             "__hyp_va": "__va", "hyp_phys_to_virt": "__va", "phys_to_virt": "__va",
             "hyp_virt_to_page": "virt_to_page", "hyp_virt_to_pfn": "virt_to_pfn",
             # the kernel declaring the hyp object's per-CPU variable: the same variable
             "DECLARE_KVM_NVHE_PER_CPU": "DECLARE_PER_CPU", "DECLARE_KVM_HYP_PER_CPU": "DECLARE_PER_CPU"}
# `DECLARE_KVM_NVHE_SYM(x)` declares, from the kernel, the hyp object's copy of `x`: the same
# object an `extern T x;` declares inside the hyp object
_DECLARE_SYM = frozenset({"DECLARE_KVM_NVHE_SYM", "DECLARE_KVM_HYP_SYM", "DECLARE_KVM_VHE_SYM"})
_TOKEN = lazy_re(r"""/\*.*?\*/|//[^\n]*|\\\n|"(?:\\.|[^"\\])*"|'(?:\\.|[^'\\])*'|[A-Za-z_]\w*|\d[\w.]*"""
                 r"|->|\+\+|--|<<=|>>=|<<|>>|<=|>=|==|!=|&&|\|\||[-+*/%&|^]=|\#\#|\S", re.S)
_WORD = lazy_re(r"^[A-Za-z_0-9]")


def _in_scope(path: str) -> bool:
    return path.startswith("arch/arm64/kvm/") or bool(
        re.match(r"arch/arm64/include/asm/kvm_[\w-]+\.h$", path))


class NoConditionalCompilation(Rule):
    meta = RuleMeta(
        id="kvmarm/no-conditional-compilation",
        title="Conditional compilation where KVM/arm64 uses runtime checks",
        severity=Severity.WARNING,
        confidence=Confidence.HIGH,
        scope=Scope.FILE,
        # prefilter: check() reports nothing unless an added line holds one of these
        evidence=(r"HYPERVISOR__|IS_ENABLED",),
        needs_base=True,  # it judges *new* ifdeffery: established splits (kvm_hyp.h, kvm_asm.h) stay
        docs=RuleDocs(
            what="In arch/arm64/kvm/ and arch/arm64/include/asm/kvm_*.h, flags an added "
                 "`#if !defined(__KVM_NVHE_HYPERVISOR__)` / `#ifdef __KVM_NVHE_HYPERVISOR__` (or the VHE "
                 "twin) whose branches give a predicate or value accessor (a bool function, "
                 "vcpu_has_*(), kvm_has_*(), *_supported(), system_supports_*(), a getter) two "
                 "definitions that answer differently; other functions or macros defined twice are "
                 "a `check`. Also flags an `IS_ENABLED(CONFIG_…) &&` placed in front of a "
                 "`cpus_have_final_cap()` test.",
            why="KVM/arm64 deliberately avoids conditional compilation so that every configuration "
                "keeps compiling the same code and nothing bitrots behind an #ifdef. A predicate with "
                "one definition for the kernel and another for the nVHE object behaves differently "
                "depending on which object calls it; the capability check already folds to a constant "
                "through alternatives, so the IS_ENABLED() adds nothing but a build-time fork.",
            example="#if !defined(__KVM_NVHE_HYPERVISOR__)\n"
                    "bool kvm_vcpu_pmu_is_partitioned(struct kvm_vcpu *vcpu);\n"
                    "#else\nstatic inline bool kvm_vcpu_pmu_is_partitioned(struct kvm_vcpu *vcpu) "
                    "{ return false; }\n#endif\n\n"
                    "if (IS_ENABLED(CONFIG_ARM64_SME) && cpus_have_final_cap(ARM64_SME))",
            use_instead="bool kvm_vcpu_pmu_is_partitioned(struct kvm_vcpu *vcpu);\n\n"
                        "if (cpus_have_final_cap(ARM64_SME))",
            known_problems="Only conditionals added by the patch are reported, and only when their "
                           "branches define the same name: established uses such as the kvm_hyp.h "
                           "accessors, and generic CONFIG_KVM stubs needed to link, are left alone. "
                           "Branches that compute the same thing and differ only in how they reach "
                           "the object (kern_hyp_va(), kvm_ksym_ref(), this_cpu_ptr_hyp_sym() against "
                           "this_cpu_ptr(&sym), hyp_virt_to_phys() against __pa(), DECLARE_KVM_NVHE_SYM(x) "
                           "against `extern T x`, a local holding the translated pointer) are the "
                           "kernel's own accessor idiom (compare vcpu_has_sve()) and stay silent. So do "
                           "branches where one stands in for what the hypervisor object does not have: "
                           "the other branch only adds RCU, preemption, locking, tracing or printing "
                           "calls (or returns rcu_read_lock_held() where the stub returns a constant), "
                           "reaches through an HVC (kvm_call_hyp*(), arm_smccc_1_1_hvc()) the function "
                           "the hypervisor calls directly, or is BUILD_BUG(). The comparison is on "
                           "tokens, so an equivalent body written differently in other ways is still "
                           "reported.",
            references=("<87y2346on8.wl-maz@kernel.org> (Marc Zyngier: 'We purposely avoid conditional "
                        "compilation in KVM in order to avoid bitrot')",
                        "<20251209205121.1871534-11-coltonlewis@google.com> (v5 10/24: the "
                        "__KVM_NVHE_HYPERVISOR__ split in kvm_pmu.h)"),
        ),
    )

    def check(self, ctx: FileContext) -> Iterator[Finding]:  # type: ignore[override]
        view = ctx.view
        if not view.added or not _in_scope(view.path):
            return
        # Cheap pre-checks over the added lines (the reported #if line, and the IS_ENABLED() operand's
        # first line, are added lines that contain these words), so the whole-file scans below only
        # run when they can report something.
        added = [view.line_text(n) for n in view.added]
        if any("HYPERVISOR__" in t for t in added):
            yield from self._hyp_splits(view)
        if view.is_c and any("IS_ENABLED" in t for t in added):
            yield from self._is_enabled_caps(view)

    def _hyp_splits(self, view: FileView) -> Iterator[Finding]:
        struct = scan(view.lines)
        names: dict[int, str] = {}
        decls: dict[int, FuncDecl] = {}
        for d in [*declarations(view.root), *macro_functions(view.lines)]:
            names[d.line], decls[d.line] = d.name, d

        def form(line: int) -> tuple[str, ...]:
            """The definition on `line` as canonical tokens."""
            d = decls[line]
            return canonical(tokens(text(d.node) if d.node is not None else _macro_text(view.lines, line)))
        for if_line, cond in sorted(struct.conditionals.items()):
            first = cond.arms[0]
            if if_line not in view.added or not _HYP_MACRO.search(first.cond) or len(cond.arms) < 2:
                continue
            per_arm: list[dict[str, set[tuple[str, ...]]]] = []
            cut: list[set[str]] = []  # per arm, the names whose definition is partly unknown
            for a in cond.arms:
                defs: dict[str, set[tuple[str, ...]]] = {}
                part: set[str] = set()
                for n in struct.arm_range(a):
                    if n in names:
                        defs.setdefault(names[n], set()).add(form(n))
                        if not _known(view, n, decls[n]):
                            part.add(names[n])
                per_arm.append(defs)
                cut.append(part)
            shared = set.intersection(*(set(d) for d in per_arm))
            # the same definition up to the address-space helpers is the accessor idiom, not a fork
            both = sorted(n for n in shared if any(d[n] != per_arm[0][n] for d in per_arm[1:]))
            verdicts = {n: divergence(n, [sorted(d[n]) for d in per_arm], [n in c for c in cut]) for n in both}
            answers = [n for n in both if verdicts[n] == ANSWER]
            others = [n for n in both if verdicts[n] == OTHER]
            if not answers and not others:
                continue
            macro = _HYP_MACRO.search(first.cond).group(0)
            obj = f"{'nVHE' if 'NVHE' in macro else 'VHE'} hypervisor object"
            listed = ", ".join(f"{n}()" for n in answers or others)
            if answers:
                yield self.at_line(
                    view, if_line,
                    f"'#{first.kind} {first.cond}' gives {listed} a second definition that answers "
                    f"differently in the {obj}",
                    note=f"Please avoid ifdeffery here: keep a single definition of {listed} and let a "
                         f"runtime check (has_vhe(), is_protected_kvm_enabled() or the capability's static "
                         f"key) do the work. KVM avoids conditional compilation on purpose, so that all "
                         f"configurations build the same code and nothing bitrots behind an #ifdef.")
            else:
                yield self.at_line(
                    view, if_line,
                    f"'#{first.kind} {first.cond}' gives {listed} a second definition for the {obj}",
                    severity=Severity.CHECK, confidence=Confidence.MEDIUM,
                    note=f"Check that the {obj} needs its own {listed}: KVM avoids conditional "
                         f"compilation where one definition with a runtime check would do. A stub for "
                         f"a facility the hypervisor does not have (RCU, tracing, an HVC) is fine.")

    def _is_enabled_caps(self, view: FileView) -> Iterator[Finding]:
        seen: set[int] = set()
        for node in walk(view.root, {"binary_expression"}):
            if text(node.child_by_field_name("operator")) != "&&":
                continue
            if node.parent is not None and node.parent.type == "binary_expression" and \
                    text(node.parent.child_by_field_name("operator")) == "&&":
                continue  # handle each && chain once, from its top
            operands = _chain(node)
            configs = [o for o in operands if _CONFIG.match(text(o))]
            caps = [c for o in operands for c in walk(o, {"call_expression"}) if call_name(c) in _CAP_TESTS]
            if not configs or not caps:
                continue
            cfg = configs[0]
            if cfg.start_byte > caps[0].start_byte:
                continue  # only the IS_ENABLED() guard in front of the capability test
            line = view.node_line(cfg)
            if line not in view.added or line in seen:
                continue
            seen.add(line)
            option = _CONFIG.match(text(cfg)).group(1)
            cap = " ".join(text(caps[0]).split())
            yield self.at_node(
                view, cfg,
                f"drop IS_ENABLED({option}) in front of {cap}",
                note=f"Please drop the IS_ENABLED(). {cap} is already patched to a constant "
                     f"once capabilities are finalised, so the {option} test only forks the build; "
                     f"KVM purposely avoids conditional compilation in order to avoid bitrot. If "
                     f"the capability implies another one you also test, simplify that too.")


def _macro_text(lines: list[str], line: int) -> str:
    """A `#define` with its backslash-continued lines."""
    out = []
    for raw in lines[line - 1:]:
        out.append(raw)
        if not raw.rstrip().endswith("\\"):
            break
    return "\n".join(out)


def _known(view: FileView, line: int, decl: FuncDecl) -> bool:
    """The whole definition is visible (hunk-only views have unknown lines)."""
    if len(view.known) >= len(view.lines):
        return True
    if decl.node is not None:
        return not decl.node.has_error and all(n in view.known for n in view.node_lines(decl.node)
                                               if n <= len(view.lines))
    n = line
    while n <= len(view.lines):
        if n not in view.known:
            return False
        if not view.line_text(n).rstrip().endswith("\\"):
            return True
        n += 1
    return True


# How two definitions of one name under a hypervisor #ifdef diverge.
SILENT = "silent"  # one branch stands in for a facility the hypervisor object does not have
ANSWER = "answer"  # a predicate or value accessor that answers differently in the hypervisor object
OTHER = "other"  # anything else: worth a look, not a verdict

# Kernel facilities the EL2 object has no copy of (no RCU, no scheduler, no printk, no tracepoints,
# its own locks) and the host's ways of reaching EL2: a hyp branch leaving these out, or calling
# directly what the host reaches through an HVC, computes the same thing.
_FACILITY = lazy_re(
    r"^(?:s?rcu_\w+|synchronize_rcu\w*|call_rcu|kfree_rcu|preempt_\w+|preemptible|might_sleep\w*|"
    r"might_resched|might_fault|cond_resched\w*|in_task|in_interrupt|irqs_disabled|lockdep_\w+|"
    r"might_lock\w*|(?:raw_)?spin_(?:un)?lock\w*|(?:raw_)?spin_is_locked|mutex_\w+|"
    r"(?:read|write)_(?:un)?lock\w*|(?:down|up)_(?:read|write)\w*|local_irq_\w+|local_bh_\w+|"
    r"trace_\w+|pr_\w+|printk\w*|kvm_(?:err|info|debug|pr_unimpl)|WARN\w*|dump_stack|"
    r"kvm_call_hyp\w*|__kvm_call_hyp\w*|arm_smccc_\w+)$")
_CALL_WRAPPER = frozenset({"kvm_call_hyp", "kvm_call_hyp_ret", "kvm_call_hyp_nvhe", "kvm_call_hyp_nvhe_ret",
                           "__kvm_call_hyp"})  # f(args) reached through an HVC from the host
_HVC_WORD = lazy_re(r"smccc|hvc|kvm_call_hyp", re.I)
# What a maintainer reads as "asks a question" or "reads a value": one object must not get
# another answer than the other.
_PREDICATE = lazy_re(r"^(?:vcpu|kvm)_has_|_supported$|^system_supports_|(?:^|_)(?:is|has|can|should|"
                     r"needs?|uses?|want)_|_(?:enabled|allowed|present|trapped|active|pending|valid)$")
_GETTER = lazy_re(r"(?:^|_)(?:get|read)(?:_|$)|_(?:val|value|mask|bits|limit|max|min|level|nr|count)$")


def _split(toks: tuple[str, ...]) -> tuple[str, list[str], list[str], list[str] | None]:
    """(kind, parameter names of a macro, head, body) of one canonical definition; a prototype's
    body is None (the definition is elsewhere)."""
    t = list(toks)
    if t[:2] == ["#", "define"]:
        if t[3:4] == ["("]:
            j = _matching(t, 3)
            return "macro", [x for x in t[4:j] if _WORD.match(x) or x == "..."], t[:j + 1], t[j + 1:]
        return "macro", [], t[:3], t[3:]
    if "{" in t:
        k = t.index("{")
        return "function", [], t[:k], t[k:]
    return "prototype", [], t, None


def _strip(body: list[str]) -> list[str]:
    """The body without the facility calls: a statement that only calls one is dropped, a call
    wrapper becomes the direct call, rcu_dereference*(p, ..) becomes p, another facility call in
    an expression becomes the wildcard `<F>` (`return rcu_read_lock_held();` against `return true;`)."""
    out: list[str] = []
    i = 0
    while i < len(body):
        t = body[i]
        if body[i + 1:i + 2] == ["("] and _FACILITY.match(t):
            j = _matching(body, i + 1)
            args = body[i + 2:j]
            statement = not out or out[-1] in ("{", ";", "}")
            if t in _CALL_WRAPPER and args and _WORD.match(args[0]):
                rest = args[2:] if args[1:2] == [","] else []
                out += [args[0], "(", *_strip(rest), ")"]
            elif t.startswith("rcu_dereference"):
                first = args[:args.index(",")] if "," in args else args
                out += _group(_strip(first))
            elif statement and body[j + 1:j + 2] in ([";"], []):
                j += 1  # the statement and its `;`
            else:
                out.append("<F>")
            i = j + 1
            continue
        if _SYM_PREFIX.match(t) and body[i + 1:i + 2] == ["##"]:
            i += 2  # the same symbol, named from the other image
            continue
        out.append(t)
        i += 1
    return _drop_groups(out)


def _same_but_facilities(a: list[str], b: list[str]) -> bool:
    """Equal up to `<F>` against a single name or literal, and up to a register's exception-level
    suffix (`SCTLR_EL12` from VHE for what nVHE reads as `SCTLR_EL1`: one register, two encodings)."""
    if len(a) != len(b):
        return False
    for x, y in zip(a, b, strict=True):
        if x == y or (x == "<F>" and _WORD.match(y)) or (y == "<F>" and _WORD.match(x)):
            continue
        mx, my = _EL_SUFFIX.match(x), _EL_SUFFIX.match(y)
        if not (mx and my and mx.group(1) == my.group(1)):
            return False
    return True


_EL_SUFFIX = lazy_re(r"^(\w*?)EL[0-3]{1,2}$")
_SYM_PREFIX = lazy_re(r"^__kvm_\w*_$")  # `__kvm_nvhe_##sym`: the kernel's name for the hyp object's sym


def _unbuildable(body: list[str] | None) -> bool:
    """`BUILD_BUG()`: this object must never use the name at all."""
    if not body:
        return False
    for i, t in enumerate(body):
        if t == "BUILD_BUG" and body[i + 1:i + 3] == ["(", ")"]:
            return True
        if t == "BUILD_BUG_ON" and body[i + 1:i + 4] in (["(", "1", ")"], ["(", "true", ")"]):
            return True
    return False


def _empty(body: list[str] | None) -> bool:
    """An empty macro, `{}`, or `do { } while (0)`."""
    return body is not None and body in ([], ["{", "}"], ["do", "{", "}", "while", "(", "0", ")"])


def _direct_call(params: list[str], body: list[str] | None) -> bool:
    """A macro body that only calls the function it is given: `f(__VA_ARGS__)`."""
    while body and body[0] == "(" and _matching(body, 0) == len(body) - 1:
        body = body[1:-1]
    return bool(body) and bool(params) and body[0] in params and body[1:2] == ["("] and \
        _matching(body, 1) == len(body) - 1


def divergence(name: str, forms: list[list[tuple[str, ...]]], partial: list[bool]) -> str:
    """SILENT, ANSWER or OTHER for the definitions of `name` in each branch (`partial`: a branch's
    definition is not fully visible)."""
    split = [[_split(f) for f in arm] for arm in forms]
    if any(_unbuildable(body) for arm in split for _, _, _, body in arm):
        return SILENT
    for k, arm in enumerate(split):
        if any(kind == "macro" and (_direct_call(params, body) or _empty(body)) for kind, params, _, body in arm):
            others = [i for i in range(len(split)) if i != k]
            if all(partial[i] or any(_HVC_WORD.search(t) for f in forms[i] for t in f) for i in others):
                # the hypervisor calls directly what the host reaches through an HVC, or needs
                # nothing where the host builds its HVC stubs
                return SILENT
    stripped = [[(kind, head, _strip(body) if body is not None else None) for kind, _, head, body in arm]
                for arm in split]
    first = stripped[0]
    if all(any(a[0] == b[0] and a[1] == b[1] and a[2] is not None and b[2] is not None
               and _same_but_facilities(a[2], b[2]) for a in first for b in arm) for arm in stripped[1:]):
        return SILENT
    if any(partial):
        return OTHER  # a definition cut by the hunk's edge: what it answers is not visible
    if _PREDICATE.search(name) or _GETTER.search(name):
        return ANSWER
    for arm in split:
        for kind, _, head, _ in arm:
            if kind != "macro" and name in head and "bool" in head[:head.index(name)]:
                return ANSWER
    return OTHER


def tokens(src: str) -> list[str]:
    """C tokens of `src`, comments and line continuations dropped."""
    return [t for t in _TOKEN.findall(src) if not t.startswith(("/*", "//", "\\"))]


def _matching(toks: list[str], i: int) -> int:
    """The index of the `)` closing the `(` at `i` (len(toks) when unbalanced)."""
    depth = 0
    for j in range(i, len(toks)):
        depth += toks[j] in "([{" and len(toks[j]) == 1
        depth -= toks[j] in ")]}" and len(toks[j]) == 1
        if depth == 0:
            return j
    return len(toks)


def _postfix(toks: list[str]) -> bool:
    """A name, member access, call or subscript: parentheses around it change nothing."""
    if not toks or not (_WORD.match(toks[0]) or toks[0] == "("):
        return False
    depth = 0
    for t in toks:
        if t in ("(", "["):
            depth += 1
        elif t in (")", "]"):
            depth -= 1
        elif depth == 0 and not (_WORD.match(t) or t in ("->", ".")):
            return False
    return depth == 0


def _group(toks: list[str]) -> list[str]:
    return toks if _postfix(toks) else ["(", *toks, ")"]


def canonical(toks: list[str]) -> tuple[str, ...]:
    """Tokens with the address-space helpers unwrapped and redundant grouping parentheses dropped, so
    that two definitions differing only in how they reach the same object compare equal."""
    out: list[str] = []
    i = 0
    while i < len(toks):
        t = toks[i]
        if i + 1 < len(toks) and toks[i + 1] == "(" and (t in _SAME_POINTER or t in _ADDRESS_OF or t in _PERCPU_SYM):
            j = _matching(toks, i + 1)
            inner = list(canonical(toks[i + 2:j]))
            if t in _SAME_POINTER:
                out += _group(inner)
            elif t in _ADDRESS_OF:
                addr = ["&", *_group(inner)]
                out += ["(", *addr, ")"] if toks[j + 1:j + 2] in (["->"], ["."], ["["]) else addr
            else:  # this_cpu_ptr_hyp_sym(sym) is this_cpu_ptr(&sym)
                out += [_PERCPU_SYM[t], "(", "&", *inner, ")"]
            i = j + 1
            continue
        if t in _DECLARE_SYM and toks[i + 1:i + 2] == ["("]:
            j = _matching(toks, i + 1)
            out += ["extern", *toks[i + 2:j]] if j - i == 3 else toks[i:j + 1]
            i = j + 1
            continue
        out.append(_SAME_JOB.get(t, t))
        i += 1
    return tuple(_inline_locals(_drop_groups(_extern_names(out))))


def _extern_names(toks: list[str]) -> list[str]:
    """`extern struct foo name` -> `extern name`: the object, whatever the spelling. Run after the
    helpers are unwrapped, so `extern T kvm_nvhe_sym(name)` and `extern T name` meet."""
    out: list[str] = []
    i = 0
    while i < len(toks):
        if toks[i] == "extern":
            j = i + 1
            while j < len(toks) and (_WORD.match(toks[j]) or toks[j] == "*"):
                j += 1
            if j - i >= 3 and toks[j:j + 1] in ([";"], []) and _WORD.match(toks[j - 1]):
                out += ["extern", toks[j - 1]]
                i = j
                continue
        out.append(toks[i])
        i += 1
    return out


def _inline_locals(toks: list[str]) -> list[str]:
    """`struct kvm *kvm = vcpu->kvm; ... kvm->arch` reads as `vcpu->kvm->arch`: a local that only names
    a pointer (set once, never assigned or addressed) is replaced by what it names, so a hyp branch
    that first translates the pointer into a local compares equal to one that uses it inline."""
    i = 0
    while i < len(toks):
        if toks[i] != "=" or i < 2 or not _WORD.match(toks[i - 1]):
            i += 1
            continue
        start = i - 1
        while start > 0 and (_WORD.match(toks[start - 1]) or toks[start - 1] == "*"):
            start -= 1
        end = next((k for k in range(i + 1, len(toks)) if toks[k] in (";", ",", "{", "}")), len(toks))
        name, init = toks[i - 1], toks[i + 1:end]
        decl = toks[start:i - 1]
        rest = toks[end + 1:]
        uses = [k for k, t in enumerate(rest) if t == name and (not k or rest[k - 1] not in (".", "->"))]
        if not any(_WORD.match(t) for t in decl) or _STATEMENT_WORDS.intersection(decl) or \
                (start and toks[start - 1] not in ("{", ";", "}")) or toks[end:end + 1] != [";"] or \
                not _postfix(init) or not all(_only_read(rest, k) for k in uses):
            i += 1
            continue
        for k in reversed(uses):
            rest[k:k + 1] = init
        toks = toks[:start] + rest
        i = start
    return toks


_STATEMENT_WORDS = frozenset({"return", "else", "case", "goto", "do", "if", "while", "for", "switch"})


def _only_read(toks: list[str], k: int) -> bool:
    """The name at `k` is read: not assigned, incremented, called or addressed itself."""
    after = toks[k + 1] if k + 1 < len(toks) else ""
    before = toks[k - 1] if k else ""
    if after in ("++", "--", "(") or (after.endswith("=") and after not in ("==", "!=", "<=", ">=")):
        return False
    return before not in ("&", "++", "--") or after in ("->", ".", "[")


def _drop_groups(toks: list[str]) -> list[str]:
    """Drop `( x )` around a postfix expression where the parentheses are not a call's or a
    declaration's (the token before them is not a name, `)` or `]`)."""
    drop: set[int] = set()
    stack: list[int] = []
    for j, t in enumerate(toks):
        if t == "(":
            stack.append(j)
        elif t == ")" and stack:
            i = stack.pop()
            before = toks[i - 1] if i else ""
            after = toks[j + 1] if j + 1 < len(toks) else ""
            inner = [x for k, x in enumerate(toks[i + 1:j], i + 1) if k not in drop]
            grouping = before == "return" or not (_WORD.match(before) or before in (")", "]"))
            # a whole argument, initialiser or return value: `f((&x))` is `f(&x)`, but not `f((a, b))`
            whole = before in ("(", ",", "=", "return") and after in (")", ",", ";") and "," not in inner
            if grouping and (whole or _postfix(inner)):
                drop.update((i, j))
    return [t for k, t in enumerate(toks) if k not in drop]


def _chain(node) -> list:
    """The operands of a `a && b && c` chain (parentheses unwrapped)."""
    out = []
    stack = [node]
    while stack:
        n = stack.pop()
        while n.type == "parenthesized_expression" and n.named_child_count == 1:
            n = n.named_children[0]
        if n.type == "binary_expression" and text(n.child_by_field_name("operator")) == "&&":
            stack.append(n.child_by_field_name("right"))
            stack.append(n.child_by_field_name("left"))
        else:
            out.append(n)
    return out
