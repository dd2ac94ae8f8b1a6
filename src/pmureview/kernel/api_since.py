"""Since which kernel release an API that a rule's advice names exists (issue 13, class 1, for advice).

"Use X() instead" is wrong advice on a base that has no X(). A rule naming X asks `api_worth(ctx, X)`,
which weighs the sources in the order of docs/knowledge.md:

1. the series itself, up to the patch under review: when its code (an added or a context line of a
   touched file) already names X, the API exists there;
2. the base tree, when there is one: X is looked for in the files that define it, else anywhere at
   the base (`git grep`); found, the advice stands; not found, the advice is wrong and the rule stays
   silent (`give` is False);
3. only then this table: the advice supports a warning when the series is dated after the release
   that first had X (a base older than X is then unlikely); otherwise it is at most a `check` whose
   message ends "(X exists since vX.Y)".

The table: for each API, the release that first shipped it and the commit that added it, from the
kernel's history (torvalds/linux) as recalled by the pmureview authors; the release dates are those of
the vX.Y tags. Entries older than KVM/arm64's own review history (read_sysreg_el1() & co., 2016) are
listed for completeness: no series this tool reads predates them.
"""

from __future__ import annotations

from typing import Any

from .. import clock as _dt
from .. import lazyre
from ..record import dataclass
from .dating import series_date


@dataclass(frozen=True, slots=True)
class Api:
    """One kernel API a rule may recommend."""

    name: str  # how messages name it: "vcpu_get_flag()", "KVM_ARCH_FLAG_*"
    since: str  # the first release that had it: "v5.19"
    released: _dt.date  # that release's date
    pattern: str  # a regex for the API's spelling in C text
    defined_in: tuple[str, ...]  # where the kernel defines it (paths from the tree root)
    grep: str  # a whole word `git grep` finds at a base that has the API
    added_by: str  # the commit that added it (subject), for the record

    @property
    def since_text(self) -> str:
        return f"{self.name} exists since {self.since}"


def _api(name: str, since: str, released: str, pattern: str, defined_in: tuple[str, ...], grep: str,
         added_by: str) -> Api:
    return Api(name, since, _dt.date.fromisoformat(released), pattern, defined_in, grep, added_by)


_KVM_HOST = "arch/arm64/include/asm/kvm_host.h"
_CPUFEATURE = "arch/arm64/include/asm/cpufeature.h"

# key -> Api; keys are what rules pass to api_worth()
API_SINCE: dict[str, Api] = {a.grep: a for a in (
    _api("vcpu_{get,set,clear}_flag()", "v5.19", "2022-07-31", r"\bvcpu_(?:get|set|clear)_flag\b",
         (_KVM_HOST,), "vcpu_set_flag",
         "KVM: arm64: Add helpers to manipulate vcpu flags among a set"),
    _api("KVM_ARCH_FLAG_*", "v5.18", "2022-05-22", r"\bKVM_ARCH_FLAG_\w+",
         (_KVM_HOST,), "KVM_ARCH_FLAG_RETURN_NISV_IO_ABORT_TO_USER",
         "KVM: arm64: Generalise VM features into a set of flags"),
    _api("KVM_ARM64_* vcpu flags", "v4.17", "2018-06-03",
         r"#\s*define\s+KVM_ARM64_\w+\s+\(1|\barch\.flags\s*[|&]=\s*~?\s*\(?KVM_ARM64_",
         (_KVM_HOST,), "KVM_ARM64_FP_ENABLED",
         "KVM: arm64: Optimise FPSIMD handling to reduce guest/host thrashing (vcpu->arch.flags)"),
    _api("cpus_have_final_cap()", "v5.7", "2020-05-31", r"\bcpus_have_final_cap\b",
         (_CPUFEATURE,), "cpus_have_final_cap",
         "arm64: cpufeature: add cpus_have_final_cap()"),
    _api("kvm_mmu_memory_cache_alloc()", "v5.9", "2020-10-11", r"\bkvm_mmu_memory_cache_alloc\b",
         ("include/linux/kvm_host.h", "virt/kvm/kvm_main.c"), "kvm_mmu_memory_cache_alloc",
         "KVM: Move x86's MMU memory cache helpers to common KVM code"),
    _api("cpu_reg()", "v5.11", "2021-02-14", r"\bcpu_reg\b",
         ("arch/arm64/kvm/hyp/include/nvhe/trap_handler.h",), "cpu_reg",
         "KVM: arm64: nVHE: the host context accessors of hyp/include/nvhe/trap_handler.h"),
    _api("vcpu_get_reg()", "v4.4", "2016-01-10", r"\bvcpu_(?:get|set)_reg\b",
         ("arch/arm64/include/asm/kvm_emulate.h",), "vcpu_get_reg",
         "arm64: KVM: Correctly handle zero register during MMIO"),
    _api("read_sysreg_el1()", "v4.6", "2016-05-15", r"\b(?:read|write)_sysreg_el[01]\b",
         ("arch/arm64/include/asm/kvm_hyp.h",), "read_sysreg_el1",
         "arm64: KVM: VHE: Introduce unified system register accessors"),
    _api("read_sanitised_ftr_reg()", "v4.11", "2017-04-30", r"\bread_sanitised_ftr_reg\b",
         (_CPUFEATURE,), "read_sanitised_ftr_reg",
         "arm64: cpufeature: rename read_system_reg() to read_sanitised_ftr_reg()"),
)}


def api(key: str) -> Api | None:
    """The table's entry for `key` (its grep word, e.g. "vcpu_set_flag", "cpu_reg")."""
    return API_SINCE.get(key)


@dataclass(frozen=True, slots=True)
class ApiWorth:
    """What advice naming one API is worth for one series."""

    give: bool  # False: the base tree lacks the API: give no such advice
    warn: bool  # the advice may support a warning (else at most a check)
    api: Api | None
    source: str  # "series" | "tree" | "date" | "unknown"

    @property
    def suffix(self) -> str:
        """' (cpu_reg() exists since v5.11)' for advice that may not support a warning, else ''."""
        return f" ({self.api.since_text})" if self.give and not self.warn and self.api else ""


def _series_ctx(ctx: Any) -> Any:
    sctx = ctx
    while not hasattr(sctx, "full") and hasattr(sctx, "series"):
        sctx = sctx.series
    return sctx


def _in_series(sctx: Any, a: Api, upto: int | None) -> bool:
    """The series' own code (touched files as patch `upto` leaves them) names the API."""
    pat = lazyre.compile(a.pattern)
    views = getattr(sctx, "views", None) or {}
    for n in sorted(views):
        if upto is not None and n > upto:
            break
        for v in views[n]:
            try:
                if pat.search(v.text):
                    return True
            except Exception:  # a view that cannot give its text: no evidence
                continue
    return False


def _at_base(sctx: Any, a: Api) -> bool | None:
    """True/False: the base tree has / lacks the API; None: no tree, or it could not tell."""
    if not getattr(sctx, "full", False):
        return None
    pat = lazyre.compile(a.pattern)
    for path in a.defined_in:
        try:
            body = sctx.base_text(path)
        except Exception:
            body = None
        if body is not None and pat.search(body):
            return True
    try:
        files = sctx.base_files_using(a.grep, ("*.h", "*.c"))
    except Exception:
        files = None
    if files is None:
        return None
    return bool(files)


def api_worth(ctx: Any, key: str, upto: int | None = None) -> ApiWorth:
    """What advice naming API `key` is worth for the series of `ctx` (a Series/Patch/FileContext),
    up to patch `upto` (default: the whole series). An API missing from the table is not weighed."""
    a = api(key)
    if a is None:
        return ApiWorth(True, True, None, "unknown")
    sctx = _series_ctx(ctx)
    if upto is None:
        patch = getattr(ctx, "patch", None)
        upto = getattr(patch, "number", None)
    if _in_series(sctx, a, upto):
        return ApiWorth(True, True, a, "series")
    base = _at_base(sctx, a)
    if base is not None:
        return ApiWorth(base, base, a, "tree")
    when = series_date(getattr(sctx, "series", None))
    return ApiWorth(True, when is not None and when > a.released, a, "date")
