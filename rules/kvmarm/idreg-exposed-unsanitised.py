"""kvmarm/idreg-exposed-unsanitised: an ID register exposed, or made writable, without KVM limiting it."""

from __future__ import annotations

import re
from collections.abc import Iterator

from pmureview.analyses.series_facts import FIELD, SANITISE, as_of_suffix, bundled_worth, touched
from pmureview.kernel.dating import GATING, Trust
from pmureview.kernel.idregs import EXPOSED_FORMS, Limits, exposed, facts, is_id_register, writable
from pmureview.kernel.sysregtable import Entry, pre_entries, view_entries
from pmureview.rule.base import Rule
from pmureview.rule.model import Confidence, Finding, RuleDocs, RuleMeta, Scope, Severity
from pmureview.views.context import FileContext


class IdregExposedUnsanitised(Rule):
    meta = RuleMeta(
        id="kvmarm/idreg-exposed-unsanitised",
        title="ID register exposed to guests without a KVM sanitisation case",
        severity=Severity.WARNING,
        confidence=Confidence.MEDIUM,
        scope=Scope.FILE,
        # prefilter: the entry names an ID_*_EL1 / MVFRn_EL1 register; full mode: base lines
        evidence=(r"(?#hunk-only)ID_|MVFR",),
        files=("sys_regs.c",),
        needs_base=True,
        uses_tree=True,
        docs=RuleDocs(
            what="For each ID register R whose sys_reg_descs[] entry the series changes: (a) R goes "
                 "from ID_UNALLOCATED/ID_HIDDEN (or absent) to an exposed form (ID_SANITISED, "
                 "ID_WRITABLE, ID_FILTERED, or a custom entry reset by kvm_read_sanitised_id_reg) "
                 "while neither base nor series limits R in the sanitisation path (no `case SYS_R:` "
                 "in __kvm_read_sanitised_id_reg(), no R-specific sanitise or reset helper) — a "
                 "warning when the writable mask is 0 or an allow-list, a check (question) when it "
                 "is a complement; (b) R's writable mask, as the series changes it, covers a field "
                 "the sanitisation path clears unconditionally for R.",
            why="Without a case KVM gives the guest whatever the host's cpufeature table "
                "advertises for R, including fields added there later that KVM knows nothing "
                "about; with a 0 or allow-list mask the VMM cannot even hide them. Conversely, a "
                "field KVM always hides must not be advertised as writable through "
                "KVM_ARM_GET_REG_WRITABLE_MASKS.",
            example="-\tID_UNALLOCATED(6,7),\n+\tID_WRITABLE(ID_AA64FOO0_EL1, ID_AA64FOO0_EL1_FOO),",
            use_instead="\tcase SYS_ID_AA64FOO0_EL1:\n\t\tval &= ID_AA64FOO0_EL1_FOO;\n\t\tbreak;\n"
                        "(in __kvm_read_sanitised_id_reg(), together with the entry)",
            known_problems="Registers whose fields are all plain instruction features are fine with "
                           "a complement mask and no case (hence only a question there). Conditional "
                           "clears (`if (!vcpu_has_x(vcpu)) val &= ...`) are not unconditional and "
                           "do not count for (b); NV-only limits are ignored. In hunk-only mode the "
                           "sanitisation cases come from the bundled facts plus the cases the series "
                           "adds; those facts are dated (docs/knowledge.md): silent when the series "
                           "changes the register's sanitisation (or, for (b), defines the field), a "
                           "check saying 'as of vX.Y' when the series is not newer than the facts. "
                           "Needs a base: skipped by `check --files`.",
            references=("DOMAIN-PACK2.md §2 rule 19 and §1.3 (sanitised limit and writable mask)",),
        ),
    )

    def check(self, ctx: FileContext) -> Iterator[Finding]:  # type: ignore[override]
        view = ctx.view
        if not view.added or not view.text.strip():
            return
        post = [e for e in view_entries(view) if is_id_register(e.name)
                and any(n in view.added for n in range(e.start, e.end + 1))]
        if not post:
            return
        before = pre_entries(view) or []
        pre = {e.name: e for e in before if e.name}
        removed = "\n".join(view.change.removed_text)
        for e in post:
            name = e.name or ""
            line = next(n for n in range(e.start, e.end + 1) if n in view.added)
            old = pre.get(name)
            was_exposed = (old is not None and exposed(old)) or _removed_exposed(removed, name)
            f = facts(ctx.series, name, ctx.patch.number)
            lim = f.limits if f.limits is not None else Limits()
            # the limits come from the bundled file (or are unknown) without a tree: weigh them
            worth: Trust | None = None
            if not ctx.series.full and f.limits_source != "tree":
                worth = bundled_worth(ctx.series, GATING, name, None, ctx.patch.number, (SANITISE,))
                if worth is None:
                    continue  # the series changes R's sanitisation: the bundled limits are stale
            if (exposed(e) and not was_exposed and e.start in view.added
                    and not lim.limited and _resets_generic(e)):
                yield self._unsanitised(view, line, e, worth)
                continue
            yield from self._hidden_writable(ctx, view, line, e, old, lim, worth)

    def _unsanitised(self, view, line: int, e: Entry, worth: Trust | None) -> Finding:
        mask = writable(e)
        name = e.name
        as_of = as_of_suffix(worth)
        if mask.kind in ("none", "allow"):
            return self.at_line(
                view, line,
                f"{name} becomes visible but __kvm_read_sanitised_id_reg() has no case for it{as_of}",
                severity=Severity.CHECK if as_of else None,
                confidence=Confidence.LOW if as_of else None,
                note=f"{name} becomes visible, but the sanitisation path has no case for it: the "
                     "guest gets whatever the host's cpufeature table advertises, so the next field "
                     "added there is silently given to guests, and with this writable mask the VMM "
                     "cannot hide it either. Please add a case keeping only what KVM handles.",
            )
        return self.at_line(
            view, line,
            f"{name} becomes visible with no sanitisation case{as_of}: is every host field safe to give "
            "guests?",
            severity=Severity.CHECK,
            confidence=Confidence.LOW,
            note=f"{name} becomes visible without a case in __kvm_read_sanitised_id_reg(), so guests "
                 "get every field the host's cpufeature table exposes, now and in the future. The "
                 "mask lets the VMM lower them, which is fine if all of them are plain instruction "
                 "features KVM needs nothing for. Is that the case here?",
        )

    def _hidden_writable(self, ctx: FileContext, view, line: int, e: Entry, old: Entry | None,
                         lim: Limits, worth: Trust | None) -> Iterator[Finding]:
        mask = writable(e)
        # "all" (AA32_ID_WRITABLE's GENMASK(31, 0)) is a deliberate blanket, not a field list
        if mask.kind in ("none", "unknown", "all") or (old is not None and old.get("val") == e.get("val")
                                                and old.macro == e.macro):
            return
        old_mask = writable(old) if old is not None else None
        named = set(lim.cleared)
        if lim.allow is not None and mask.kind == "allow":
            named |= mask.fields - lim.allow
        bad = sorted(f for f in named if mask.writable(f) and not (old_mask and old_mask.writable(f)))
        if worth is not None:  # a bundled "always hidden" is stale for a field the series defines
            bad = [f for f in bad if touched(ctx.series, e.name or "", f, ctx.patch.number, (FIELD,)) is None]
        if not bad:
            return
        fields = ", ".join(f"{e.name}.{f}" for f in bad)
        as_of = as_of_suffix(worth)
        yield self.at_line(
            view, line,
            f"writable mask of {e.name} now covers {fields}, which KVM always hides{as_of}",
            severity=Severity.CHECK if as_of else None,
            confidence=Confidence.LOW if as_of else None,
            note=f"This mask makes {fields} writable, but the sanitisation path clears "
                 f"{'it' if len(bad) == 1 else 'them'} for every VM: KVM_ARM_GET_REG_WRITABLE_MASKS "
                 "then advertises a field the guest can never have. Please list the supported "
                 "fields, or exclude the hidden ones from the mask.",
        )


def _removed_exposed(removed: str, name: str) -> bool:
    forms = "|".join(EXPOSED_FORMS)
    return bool(re.search(rf"\b(?:{forms})\(\s*{re.escape(name)}\b|SYS_DESC\(\s*SYS_{re.escape(name)}\s*\)", removed))


def _resets_generic(e: Entry) -> bool:
    """Reset through the generic sanitised read (an R-specific reset helper is a limit)."""
    reset = e.get("reset")
    return reset in ("", "kvm_read_sanitised_id_reg")
