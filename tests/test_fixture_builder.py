"""Fixtures are written as files and built with real git; their post-images are derived data."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from pmureview.testing import build_series, unpack_series

ROOT = Path(__file__).resolve().parent.parent / "fixtures"


@pytest.mark.parametrize("case", [
    ROOT / "demo",
    ROOT / "series" / "seed-v5-10-24" / "bad-v5-10-24",
    # its last hunk ends on a context line holding one space, which an rstrip() once dropped
    ROOT / "series" / "kvmarm" / "fgt-config-outside-config-c" / "bad-helper-in-earlier-patch",
], ids=lambda p: p.name)
def test_unpack_then_build_reproduces_the_committed_series(case, tmp_path):
    """unpack recreates src/<n>/ from the base + series.mbox; building from them gives the same bytes."""
    copy = tmp_path / case.name
    shutil.copytree(case, copy, ignore=shutil.ignore_patterns("[0-9]*"))
    expected = yaml_tree(case)
    if expected is not None:  # a shared tree is named relative to the case: keep it reachable
        (copy / "expected.yml").write_text((case / "expected.yml").read_text().replace(
            expected, str((case / expected).resolve())))
    written = unpack_series(copy)
    assert written and all(p.is_file() for p in written)
    before = (copy / "series.mbox").read_bytes()
    build_series(copy)
    assert (copy / "series.mbox").read_bytes() == before


def yaml_tree(case: Path) -> str | None:
    exp = case / "expected.yml"
    if not exp.is_file():
        return None
    for line in exp.read_text().splitlines():
        if line.startswith("tree:"):
            return line.split(":", 1)[1].split("#", 1)[0].strip()
    return None
