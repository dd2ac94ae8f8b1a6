"""The layers of docs/design.md: a module imports only its own layer or lower ones.

Every import counts, lazy ones inside functions and those under TYPE_CHECKING included: a lazy
upward import is still a dependency, it only moves the cost.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SRC = ROOT / "src" / "pmureview"

# Lowest first. Utilities have no pmureview imports of their own and may be used from anywhere.
LAYERS = ["util", "series", "lang", "kernel", "views", "analyses", "rule", "engine", "report", "app"]
UTIL = {"errors", "cachefile", "clock", "lazyre", "record", "__init__"}
APP = {"api", "checkcmd", "cli", "config", "entry", "testing", "__main__", "hooks"}


def layer_of(module: str) -> str:
    """The layer of a dotted module name under pmureview (`pmureview.views.context` -> views)."""
    parts = module.split(".")
    if parts[0] == "pmureview_rules":  # a shipped rule file, loaded under this prefix
        return "rule"
    head = parts[1] if len(parts) > 1 else "__init__"
    if not (SRC / head).is_dir() and not (SRC / f"{head}.py").exists():
        head = "__init__"  # a name imported from the package itself (`from . import __version__`)
    if head in UTIL:
        return "util"
    if head in APP:
        return "app"
    assert head in LAYERS, f"{module}: no layer for pmureview.{head}; add it to docs/design.md and LAYERS"
    return head


def _module_name(path: Path) -> str:
    if path.is_relative_to(SRC):
        rel = path.relative_to(SRC.parent).with_suffix("")
        parts = list(rel.parts)
        if parts[-1] == "__init__":
            parts.pop()
        return ".".join(parts)
    return "pmureview_rules." + ".".join(path.relative_to(ROOT / "rules").with_suffix("").parts)


def _imports(path: Path, module: str) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text("utf-8"), str(path))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    out: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                name = ".".join(base + ([node.module] if node.module else []))
                out += [(node.lineno, f"{name}.{a.name}") if not node.module else (node.lineno, name)
                        for a in node.names]
            elif node.module:
                out.append((node.lineno, node.module))
    return [(line, name) for line, name in out if name.split(".")[0] == "pmureview"]


def _files() -> list[Path]:
    return sorted(SRC.rglob("*.py")) + sorted((ROOT / "rules").rglob("*.py"))


def test_no_module_imports_a_layer_above_its_own():
    bad = []
    for path in _files():
        module = _module_name(path)
        mine = LAYERS.index(layer_of(module))
        for line, target in _imports(path, module):
            theirs = LAYERS.index(layer_of(target))
            if theirs > mine:
                bad.append(f"{path.relative_to(ROOT)}:{line}: {layer_of(module)} imports {target} "
                           f"({layer_of(target)})")
    assert not bad, "upward imports:\n" + "\n".join(bad)


def test_every_package_has_a_layer():
    for child in SRC.iterdir():
        if child.is_dir() and (child / "__init__.py").exists():
            assert layer_of(f"pmureview.{child.name}") in LAYERS


def test_the_checker_sees_an_upward_import(tmp_path):
    """The test itself works: a views module importing the engine is caught."""
    f = tmp_path / "x.py"
    f.write_text("from ..engine.runner import run_rules\n")
    assert _imports(f, "pmureview.views.x") == [(1, "pmureview.engine.runner")]
    assert LAYERS.index(layer_of("pmureview.engine.runner")) > LAYERS.index(layer_of("pmureview.views.x"))
