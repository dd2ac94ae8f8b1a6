"""The fixtures' C as texts, for checks that run a matcher over "every fixture C file": the tracked
trees' files and every series' hunk-only post-image views (a clean clone has no unpacked post-image
folders, so those are read from the series themselves)."""

from __future__ import annotations

from functools import cache
from pathlib import Path

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"


@cache
def fixture_c_texts() -> list[tuple[str, str]]:
    """(name, text) pairs, in a stable order."""
    from pmureview.api import Options, load_series
    from pmureview.views.image import build_views

    texts = [(str(f), f.read_text(errors="surrogateescape")) for f in sorted(FIXTURES.rglob("*.[ch]"))]
    for path in sorted(FIXTURES.rglob("series.mbox")):
        try:
            series, _ = load_series([str(path)], Options())
        except Exception:  # a fixture of bad input
            continue
        views, _ = build_views(series, None)
        texts += [(f"{path}:{v.patch.number}:{v.path}", v.text) for vs in views.values() for v in vs if v.is_c]
    assert len(texts) > 400
    return texts
