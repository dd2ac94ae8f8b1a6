"""series/subject-prefix: a KVM/arm64 patch whose subject spells 'KVM: arm64:' another way."""

from __future__ import annotations

from collections.abc import Iterator

from pmureview.analyses import commitmsg as cmsg
from pmureview.rule.base import Rule
from pmureview.rule.model import Finding, RuleDocs, RuleMeta, Scope, Severity
from pmureview.views.context import PatchContext


class SubjectPrefix(Rule):
    meta = RuleMeta(
        id="series/subject-prefix",
        title="Subject prefix of a KVM/arm64 patch is not 'KVM: arm64:'",
        severity=Severity.WARNING,
        scope=Scope.PATCH,
        files=("*",),  # the commit message, whatever the patch touches
        docs=RuleDocs(
            what="Reports a KVM/arm64 patch whose subject prefix is 'KVM: arm64:' spelt another way: "
                 "'kvm: arm64:' or 'KVM/arm64:' on a patch touching arch/arm64/kvm/, the kvm_* arm64 "
                 "headers or include/kvm/arm_*; 'arm64: kvm:' or 'arm64/kvm:' only when every file is "
                 "such KVM/arm64 code (generic KVM headers, documentation and selftests allowed). It "
                 "names the patches of the series that use the right prefix. checkpatch.pl does not "
                 "look at subject prefixes.",
            why="Maintainers and tools (b4, patchwork filters, `git log --grep`) find KVM/arm64 work by "
                "its prefix; the maintainer asks for it to be fixed before applying.",
            example="[PATCH 4/8] arm64: kvm: Add the VM feature",
            use_instead="[PATCH 4/8] KVM: arm64: Add the VM feature",
            known_problems="'arm64: kvm:' on a patch that also touches arm64 core code ('arm64: ...' is "
                           "right there) is left alone, as is any prefix that is not a spelling of KVM "
                           "plus arm64 ('KVM: selftests:', 'KVM: arm64: nv:', 'KVM: arm/arm64:').",
            references=("git log --oneline arch/arm64/kvm (the prefix in use)",),
        ),
    )

    def check(self, ctx: PatchContext) -> Iterator[Finding]:  # type: ignore[override]
        cm = cmsg.of(ctx)
        used = cmsg.wrong_kvm_arm64_prefix(cm.prefixes, [f.path for f in ctx.patch.files]) if cm else 0
        if cm is None or not used:
            return
        right = [p.number for p in ctx.series.patches
                 if p.number != ctx.patch.number and cmsg.for_patch(ctx.series, p).prefixes[:2] == ("KVM", "arm64")]
        nums = " and ".join(", ".join(map(str, right)).rsplit(", ", 1))
        also = (f"; patch{'es' if len(right) > 1 else ''} {nums} of this series use{'s' if len(right) == 1 else ''} it"
                if right else "")
        fixed = "KVM: arm64: " + "".join(f"{p}: " for p in cm.prefixes[used:]) + cm.summary
        yield self.at_section(
            ctx.patch.number, *cm.subject.at,
            f"subject prefix '{cmsg.prefix_text(cm.prefixes, used)}': KVM/arm64 patches use 'KVM: arm64:'{also}",
            note="This patch changes KVM/arm64 code, whose commits are prefixed 'KVM: arm64:'.",
            suggestion=fixed, snippet=cm.title)
