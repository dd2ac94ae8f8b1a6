"""The one checkpatch-style line: `{path|-}:{line}: {LEVEL}:{ID}: {message}`.

Stdlib-only at import time: the hook and `b4-check` paths import this before anything heavy.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..rule.model import Finding


def rule_type(rule_id: str) -> str:
    """checkpatch's TYPE word for a rule id: `kvmarm/fgt-trap-polarity` -> `KVMARM_FGT_TRAP_POLARITY`."""
    return rule_id.upper().replace("/", "_").replace("-", "_")


def format_line(f: Finding, *, stdin: bool) -> str:
    """One finding as checkpatch prints it with `--terse --show-types` (no space after `LEVEL:`).

    With stdin input the prefix is `-:N`, N the 1-based line in the mail (what b4 strips and what
    checkpatch prints for `-`). Findings not on a file line (subject, message, trailers, cover) are
    `-:N` in every mode: N is the line within their section unless the mail line is wanted.
    """
    loc = f.location
    if stdin:
        where, line = "-", loc.mail_line or loc.line
    elif loc.path is None:
        where, line = "-", loc.line
    else:
        where, line = loc.path, loc.line
    # one line per finding, whatever a rule put in its message: b4 reads each stdout line as a result
    message = " ".join(f.message.split())
    return f"{where}:{line or 1}: {f.severity.value.upper()}:{rule_type(f.rule)}: {message}"
