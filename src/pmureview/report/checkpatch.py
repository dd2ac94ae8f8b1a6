"""`--format checkpatch`: one `format_line` per visible finding; nothing when clean, no summary."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .lines import format_line

if TYPE_CHECKING:
    from ..engine.review import Review


def render_checkpatch(review: Review, *, stdin: bool = False) -> str:
    """The lines `checkpatch.pl --terse --show-types --no-summary` would print, `check` only with --strict.

    Stdin input always gives `-:N` mail lines (as checkpatch does for `-`), whatever `stdin` says.
    """
    stdin = stdin or review.series.from_stdin
    return "".join(format_line(f, stdin=stdin) + "\n" for f in review.visible())
