"""kvmarm/vncr-offset-collision: two VNCR_<reg> offsets on one VNCR page slot, or an impossible offset."""

from __future__ import annotations

from collections.abc import Iterator

from pmureview.kernel.dating import WIRING, trust
from pmureview.kernel.vncr import VNCR_MAPPING_PATH, VNCR_PAGE_SIZE, parse_vncr
from pmureview.kernel.wiring import load_facts
from pmureview.rule.base import Rule
from pmureview.rule.model import Confidence, Finding, RuleDocs, RuleMeta, Scope, Severity
from pmureview.views.context import FileContext


class VncrOffsetCollision(Rule):
    meta = RuleMeta(
        id="kvmarm/vncr-offset-collision",
        title="VNCR page offset shared by two registers, misaligned, or off the page",
        severity=Severity.ERROR,
        confidence=Confidence.HIGH,
        scope=Scope.FILE,
        # prefilter: the reported `#define VNCR_<reg>` is an added line
        evidence=(r"VNCR_",),
        files=("*/asm/vncr_mapping.h", "vncr_mapping.h"),
        uses_tree=True,
        docs=RuleDocs(
            what="In arch/arm64/include/asm/vncr_mapping.h, flags an added or changed `VNCR_<reg>` "
                 "define whose offset another `VNCR_<reg>` already uses (error), an added offset that "
                 "is not 8-byte aligned or not below 0x1000 (error), and an added offset that differs "
                 "from the one the kernel knowledge records for the same register (warning).",
            why="`enum vcpu_sysreg` turns `VNCR(R)` into `__VNCR_START__ + VNCR_R / 8`, and an NV2 "
                "guest hypervisor reads and writes the register at that offset of its VNCR page. Two "
                "names with one offset therefore index the same storage slot (writing one clobbers "
                "the other), and the guest hypervisor finds one of them at the wrong place. A "
                "misaligned or out-of-page offset cannot be a VNCR location at all.",
            example="#define VNCR_FOO_EL1\t\t0x6A0\n#define VNCR_FOOMAP_EL2\t\t0x6A0",
            use_instead="#define VNCR_FOO_EL1\t\t0x6A0\n#define VNCR_FOOMAP_EL2\t\t0x6A8\t/* as the Arm ARM "
                        "lists it */",
            known_problems="The mismatch warning trusts the knowledge snapshot (or the base tree in full "
                           "mode); a snapshot older than the base may not know a correction made "
                           "upstream. Findings that rest on the bundled table alone are checks saying "
                           "'as of vX.Y' when the series is not newer than it (docs/knowledge.md). "
                           "In hunk-only mode collisions with defines outside the hunks are found "
                           "through the snapshot's table only.",
            references=("DOMAIN-PACK2.md rule 22; arch/arm64/include/asm/kvm_host.h VNCR() and "
                        "__VNCR_START__; Arm ARM D24 'VNCR_EL2 and the VNCR page' offsets",),
        ),
    )

    def check(self, ctx: FileContext) -> Iterator[Finding]:  # type: ignore[override]
        view = ctx.view
        if not view.path.endswith(VNCR_MAPPING_PATH.rsplit("/", 1)[-1]) or not view.added:
            return
        entries = parse_vncr(view.text)
        facts = load_facts(ctx.series.base_reader)
        known = {e.register for e in entries}
        removed = {e.register for e in parse_vncr("\n".join(view.change.removed_text))}
        # the series itself first: a name an earlier patch defined, moved or removed is no longer
        # what the bundled table says (hunk-only views hold only their own patch's hunks)
        earlier: set[str] = set()
        for n in range(1, ctx.patch.number):
            v = ctx.series.view(n, view.path)
            if v is not None:
                earlier |= {e.register for e in parse_vncr("\n".join(v.change.removed_text))}
                earlier |= {e.register for e in parse_vncr(v.text) if e.line in v.added}
        removed |= earlier
        worth = trust(ctx, WIRING)
        as_of = f" ({worth.as_of})" if worth.use and not worth.warn and worth.as_of else ""
        # Who owns each offset: the post-image's own defines, plus (hunk-only) the reference table
        # for names the view cannot show and the series does not remove.
        owners: dict[int, list[tuple[str, int | None]]] = {}
        for e in entries:
            owners.setdefault(e.offset, []).append((e.register, e.line))
        if view.mode != "full":
            for name, off in facts.vncr.items():
                if name not in known and name not in removed:
                    owners.setdefault(off, []).append((name, None))
        for e in entries:
            if e.line not in view.added:
                continue
            name = f"VNCR_{e.register}"
            if e.offset % 8 or e.offset >= VNCR_PAGE_SIZE:
                why = "is not 8-byte aligned" if e.offset % 8 else "is beyond the 4kB VNCR page"
                yield self.at_line(
                    view, e.line, f"{name} offset {e.offset:#x} {why}",
                    note=f"VNCR() divides the offset by 8 to index the register's storage, and the "
                         f"architecture places every VNCR register at an 8-byte aligned offset inside "
                         f"the 4kB page. {e.offset:#x} cannot be {e.register}'s location: which offset "
                         f"does the Arm ARM give it?")
                continue
            others = [(n, ln) for n, ln in owners.get(e.offset, []) if n != e.register]
            if others:
                other, oline = others[0]
                dated = not oline and bool(as_of)  # only the bundled table says so, and it may be newer
                where = (f" (line {view.patch_line(oline)})" if oline else
                         f" (per the knowledge snapshot, {as_of[2:-1]})" if dated else " (per the knowledge snapshot)")
                yield self.at_line(
                    view, e.line, f"{name} reuses offset {e.offset:#x}, which is VNCR_{other}{where}",
                    severity=Severity.CHECK if dated else None, confidence=Confidence.LOW if dated else None,
                    note=f"Both names now index the same storage slot (VNCR() turns the offset into "
                         f"the enum value), so writing one clobbers the other, and a guest hypervisor "
                         f"finds {e.register} at the wrong place in its VNCR page. Which offset does "
                         f"the architecture give {e.register}?")
                continue
            ref = facts.vncr.get(e.register)
            if ref is not None and ref != e.offset and not (view.mode != "full" and e.register in earlier):
                bundled = facts.source != "tree"
                src = "the base tree" if not bundled else "the knowledge snapshot"
                low = bundled and bool(as_of)
                yield self.at_line(
                    view, e.line, f"{name} is {e.offset:#x}, but {src} has {ref:#x}{as_of if low else ''}",
                    severity=Severity.CHECK if low else Severity.WARNING,
                    confidence=Confidence.LOW if low else Confidence.MEDIUM,
                    note=f"The VNCR page layout is fixed by the architecture; {src} places "
                         f"{e.register} at {ref:#x}. If this is a correction, please say so in the "
                         f"commit message (and check the NV2 users of the old offset).")
