"""Pre-send hooks: git send-email's sendemail-validate and b4's check commands.

Stdlib-only at import time: these run once per patch before a send, so they must start fast.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from .. import lazyre

# full mode is worth it (and possible) only at the top of a kernel git work tree (checkpatch's test)
from ..series.kerneltree import is_kernel_tree  # noqa: F401 (re-exported for sendemail)
from ..series.rfc822 import header_pairs

if TYPE_CHECKING:
    from pathlib import Path

# `[PATCH v2 0/7]`, `[RFC PATCH 00/12]`: the counter of a cover letter
_COVER_COUNTER = lazyre.compile(r"\[[^\]]*?\b0+/\d+\s*\]")
_DIFF = lazyre.compile(rb"^(diff --git |--- \S|Index: )", re.MULTILINE)


def subject_of(data: bytes) -> str:
    head = data.replace(b"\r\n", b"\n").split(b"\n\n", 1)[0]
    pairs = header_pairs(head)
    if pairs is None:  # not plain ASCII headers: the email package reads them
        from email.parser import BytesHeaderParser
        from email.policy import compat32

        parsed = BytesHeaderParser(policy=compat32).parsebytes(data.split(b"\n\n", 1)[0] + b"\n\n")
        return " ".join(str(parsed.get("Subject", "")).split())
    return " ".join(next((v for k, v in pairs if k.lower() == "subject"), "").split())


def is_cover_or_not_patch(data: bytes) -> bool:
    """A cover letter (counter 0/N) or a mail without a diff: nothing for a per-patch check."""
    if _COVER_COUNTER.search(subject_of(data)):
        return True
    return _DIFF.search(data) is None


def hook_options(*, fail_on: str = "error", strict: bool = False, tree: str | Path | None = None):  # -> Options
    """Options for the hook paths: the project's config file for what to check, not for when to block.

    select/ignore/severity/per-path-ignores/rules-dir/baseline/preview/strict come from
    `.pmureview.toml` (or pyproject) as for `check`; the blocking threshold is the hook's own
    (`--fail-on`, default error), since a config's fail-on is usually tuned for CI.
    """
    from ..config import make_options

    # the hook's own threshold always wins over the config's fail-on
    options = make_options(fail_on=fail_on, strict=strict or None, tree=tree)
    options.per_patch = True  # git send-email and b4 hand us one patch of N at a time
    return options
