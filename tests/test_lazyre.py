"""lazyre.compile: a pattern read back from the per-build cache is the pattern re.compile builds."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

PROBE = r'''
import re, sys
from pmureview import lazyre
PATTERNS = [(r"(?P<a>x+)\s*(y|z)?", re.I), (r"\b(foo|bar)\d+", 0), (rb"^From \S+ (?P<d>\w{3})", re.M),
            (r"[^\W\d]+", 0), (r"(?s)a.*?b|\Bc", 0), (r"(?x) a [ ]+ b  # comment", 0), (r"é+|\u00e9", re.I)]
SAMPLES = ["xX  z", "foo12 bar3", "naïve é É", "a\nxb c", "a   b", "From abc Mon"]
for pattern, flags in PATTERNS:
    mine, theirs = lazyre.compile(pattern, flags), re.compile(pattern, flags)
    assert (mine.pattern, mine.flags, mine.groups, dict(mine.groupindex)) == \
           (theirs.pattern, theirs.flags, theirs.groups, dict(theirs.groupindex)), pattern
    for s in SAMPLES:
        s = s.encode() if isinstance(pattern, bytes) else s
        assert [m.span() for m in mine.finditer(s)] == [m.span() for m in theirs.finditer(s)], (pattern, s)
print("CACHED", len(lazyre._parts.load() if lazyre._parts else {}), lazyre._sre_compile is not False)
'''


def _run(cache: Path) -> str:
    env = {**os.environ, "XDG_CACHE_HOME": str(cache)}
    r = subprocess.run([sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    return r.stdout


def test_patterns_from_the_cache_behave_as_re_compile(tmp_path: Path) -> None:
    first = _run(tmp_path)  # compiles, writes the cache at exit
    assert any(p.name.startswith("regex-cli-") for p in (tmp_path / "pmureview").iterdir())
    second = _run(tmp_path)  # reads every pattern back
    assert first.split()[-1] == "True" and second == first


def test_a_broken_cache_file_is_a_miss(tmp_path: Path) -> None:
    _run(tmp_path)
    for p in (tmp_path / "pmureview").iterdir():
        if p.name.startswith("regex-"):
            p.write_bytes(b"\x00garbage")
    assert _run(tmp_path).split()[-1] == "True"
