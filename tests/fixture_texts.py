"""C texts for the speed tests' equivalence checks: the fixtures' C (the tracked trees' files and
every series' hunk-only post-image views: a clean clone has no unpacked post-image folders, so those
are read from the series themselves), a small sample, the reference tree walk, and a shipped rule
file loaded as a module of its own (its private helpers are what the speed tests compare)."""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from types import ModuleType

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"


@cache
def fixture_c_texts() -> list[tuple[str, str]]:
    """(name, text) pairs, in a stable order."""
    texts = [(str(f), f.read_text(errors="surrogateescape")) for f in sorted(FIXTURES.rglob("*.[ch]"))]
    texts += [(f"{path}:{v.patch.number}:{v.path}", v.text) for path, v in fixture_c_views()]
    assert len(texts) > 400
    return texts


def fixture_c_views() -> Iterator:
    """(series path, hunk-only view) for every C view of every fixture series, in a stable order."""
    from pmureview.api import Options, load_series
    from pmureview.views.image import build_views

    for path in sorted(FIXTURES.rglob("series.mbox")):
        try:
            series, _ = load_series([str(path)], Options())
        except Exception:  # a fixture of bad input
            continue
        views, _ = build_views(series, None)
        yield from ((path, v) for vs in views.values() for v in vs if v.is_c)


# A small C text with the shapes the walks and queries must agree on: macros, nested structs,
# calls in calls, a conditional, preprocessor branches and broken code (ERROR and MISSING nodes).
SAMPLE_C = b"""
#define FOO(x) ((x) + 1)
struct s { int a; struct { int b; } in; };
static int f(int a, int b)
{
	int x = FOO(a), y;
	if (a && g(b)) { return h(a, (b)); }
	x = y = z(1)(2);
	/* comment */ return x ? f(a, b) : sizeof(int);
}
#ifdef CONFIG_X
int k(void) { return j( ; }
#else
int k(void) { return 0; }
#endif
void broken( { if (x { y(); }
int m = n(o(p(q)));
"""


def python_walk(node, types) -> Iterator:
    """The reference for lang.c's walks: a plain pre-order walk of the tree in Python."""
    stack = [node]
    while stack:
        n = stack.pop()
        if types is None or n.type in types:
            yield n
        stack.extend(reversed(n.children))


def rule_module(rel: str, prefix: str) -> ModuleType:
    """The rule file `rel` (from the project top, e.g. rules/kvmarm/x.py) as a fresh module named
    `prefix` + its path (each test file its own prefix: no two share a module)."""
    root = FIXTURES.parent
    spec = importlib.util.spec_from_file_location(prefix + rel.replace("/", "_").replace("-", "_"), root / rel)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod
