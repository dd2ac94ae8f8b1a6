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



MODULE_CHECK = (
    "import re, sys\nsys.path.insert(0, sys.argv[1])\nfrom pmureview import lazyre\n"
    "lazyre.cache_module_patterns()\nimport mod_with_patterns as m\n"
    "print(sorted(str(k[0]) for k in (lazyre._parts.load() if lazyre._parts else {})))\n"
    "print([x.span() for x in m.A.finditer('Ab-12 cd-3')], [x.span() for x in m.B.finditer(b'From me\\nFrom you')],"
    " [x.span() for x in m.C.finditer('na\\u00efve 42 xxx')], m.A.groupindex['w'], m.A.flags, m.dynamic().pattern,"
    " m.literal('a lit42eral'))\n"
    "print(sorted(str(k[0]) for k in (lazyre._parts.load() if lazyre._parts else {})))\n")


def test_module_level_patterns_come_from_the_cache_and_match_alike(tmp_path: Path) -> None:
    (tmp_path / "mod_with_patterns.py").write_text(
        "import re\n"
        "A = re.compile(r'(?P<w>\\w+)-(\\d+)', re.I)\n"
        "B = re.compile(rb'^From \\S+', re.M)\n"
        "C = re.compile(r'[^\\W\\d]+|x{2,3}')\n"
        "def dynamic(part='-at-run-time'):\n"
        "    return re.compile('built' + part)\n"
        "def literal(s):\n"
        "    return re.search(r'lit(?P<n>\\d+)eral', s).group('n')\n")
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path / "cache")}

    def run(code: str) -> list[str]:
        r = subprocess.run([sys.executable, "-c", code, str(tmp_path)], env=env, capture_output=True, text=True,
                           timeout=60)
        assert r.returncode == 0, r.stderr
        return r.stdout.splitlines()

    first, second = run(MODULE_CHECK), run(MODULE_CHECK)
    # the second run read the module-level patterns and the function's literal back; the one built
    # in a function at run time never went in
    assert "(?P<w>" in second[0] and "x{2,3}" in second[0] and "From" in second[0], second[0]
    assert "lit(?P<n>" in first[2] and "lit(?P<n>" in second[0], (first[2], second[0])
    assert "built-at-run-time" not in second[2], second[2]
    assert first[1] == second[1]
    plain = run(MODULE_CHECK.replace("lazyre.cache_module_patterns()\n", ""))
    assert plain[1] == second[1]  # the same matches, groups and flags as re's own compiler gives
