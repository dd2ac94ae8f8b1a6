"""style/license-boilerplate-not-spdx: a new file without an SPDX line, or with GPL boilerplate."""

from __future__ import annotations

from collections.abc import Iterator

from pmureview.lazyre import lazy_re
from pmureview.rule.base import Rule
from pmureview.rule.model import Confidence, Finding, RuleDocs, RuleMeta, Scope, Severity
from pmureview.series.model import ChangeKind
from pmureview.views.context import FileContext

_SPDX = lazy_re(r"SPDX-License-Identifier:")
# the paragraphs of the GPL notice that SPDX replaced (Documentation/process/license-rules.rst)
_BOILERPLATE = lazy_re(r"(?:you can redistribute it and/or modify|You should have received a copy of the GNU"
                       r"|WITHOUT ANY WARRANTY; without even the implied warranty)", 0)
_GENERATED = lazy_re(r"(?:^|/)(?:generated|gen)/|_shipped$")


class LicenseBoilerplateNotSpdx(Rule):
    meta = RuleMeta(
        id="style/license-boilerplate-not-spdx",
        title="New file without an SPDX identifier (or with GPL boilerplate)",
        severity=Severity.CHECK,
        confidence=Confidence.HIGH,
        scope=Scope.FILE,
        files=("*.c", "*.h", "*.S", "*.s", "*.rs", "*.dts", "*.dtsi", "*.sh", "*.py", "*.pl"),
        docs=RuleDocs(
            what="Flags a file the patch creates whose first line (second after a `#!` line) has no "
                 "`SPDX-License-Identifier:`, and GPL licence paragraphs (\"This program is free "
                 "software...\", \"You should have received a copy...\") in a new file.",
            why="Documentation/process/license-rules.rst: every source file starts with an SPDX "
                "identifier, and the licence text it stands for is not repeated in the file. "
                "Reviewers ask for the boilerplate to be replaced by the one-line tag.",
            example="/*\n * Copyright (C) 2016 - Example Corp\n *\n * This program is free software; you "
                    "can redistribute it and/or modify\n * it under the terms of the GNU General Public "
                    "License version 2 ...\n */",
            use_instead="// SPDX-License-Identifier: GPL-2.0-only\n/*\n * Copyright (C) 2016 - Example Corp\n */",
            known_problems="Only new files of source kinds (C, assembly, Rust, device tree, scripts) are "
                           "checked; renames are not new files, nor is a file the same patch "
                           "deletes elsewhere (a move shown as delete and add); generated or `_shipped` files are "
                           "skipped. checkpatch.pl reports the missing tag too (SPDX_LICENSE_TAG), not "
                           "the boilerplate.",
            references=("Documentation/process/license-rules.rst", "scripts/checkpatch.pl: SPDX_LICENSE_TAG"),
        ),
    )

    def check(self, ctx: FileContext) -> Iterator[Finding]:  # type: ignore[override]
        view = ctx.view
        if view.change.kind != ChangeKind.ADDED or _GENERATED.search(view.path) or 1 not in view.added:
            return
        first = 2 if view.line_text(1).startswith("#!") else 1
        lines = [n for n in sorted(view.added) if view.line_text(n).strip()]
        if not lines or _moved(ctx, [view.line_text(n) for n in lines]):
            return
        boiler = next((n for n in lines[:60] if _BOILERPLATE.search(view.line_text(n))), None)
        if boiler is not None:
            yield self.at_line(view, boiler, "GPL licence boilerplate in a new file: use an "
                               "SPDX-License-Identifier line instead",
                               note="The SPDX tag on the first line replaces the licence paragraphs "
                                    "(Documentation/process/license-rules.rst).")
        elif not _SPDX.search(view.line_text(first)):
            yield self.at_line(view, first, "new file without an SPDX-License-Identifier line",
                               note="Every new source file starts with its SPDX licence tag on the "
                                    "first line (second after #!); checkpatch: SPDX_LICENSE_TAG.")


def _moved(ctx: FileContext, lines: list[str]) -> bool:
    """Most of the new file's lines are removed from a file the same patch deletes: a move."""
    gone = {" ".join(t.split()) for f in ctx.patch.files if f.kind == ChangeKind.DELETED for t in f.removed_text}
    return bool(gone) and sum(" ".join(t.split()) in gone for t in lines) * 2 >= len(lines)
