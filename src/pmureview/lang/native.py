"""Compiled modules of third-party packages, loaded without their package's __init__.

tree_sitter_c's __init__ imports importlib.resources (with tempfile, shutil, bz2, lzma, random) for
query files pmureview never reads; ast_grep_py's declares TypedDicts for type checkers. Each costs
milliseconds of every hook run. The compiled module alone is what pmureview calls.
"""

from __future__ import annotations

from types import ModuleType


def extension(package: str, module: str) -> ModuleType | None:
    """`package.module` (a compiled extension), imported without running `package/__init__.py`;
    None when it cannot be found that way (the caller then imports the package as usual).

    The module is registered under its full name, so a later `import package` reuses it: a PyO3
    module (ast_grep_py) cannot be initialised twice in one process."""
    import sys

    full = f"{package}.{module}"
    loaded = sys.modules.get(full)
    if loaded is not None or package in sys.modules:
        return loaded
    try:
        import importlib.machinery
        import importlib.util
        import os

        spec = importlib.util.find_spec(package)  # locates the package, does not run it
        folder = (spec.submodule_search_locations or [None])[0] if spec is not None else None
        if not folder:
            return None
        suffixes = tuple(importlib.machinery.EXTENSION_SUFFIXES)
        name = next((n for n in sorted(os.listdir(folder))
                     if n.startswith(module + ".") and n.endswith(suffixes)), None)
        found = importlib.util.spec_from_file_location(full, os.path.join(folder, name)) if name else None
        if found is None or found.loader is None:
            return None
        loaded = importlib.util.module_from_spec(found)
        sys.modules[full] = loaded
        try:
            found.loader.exec_module(loaded)
        except BaseException:
            del sys.modules[full]
            raise
        return loaded
    except Exception:  # any layout we do not know
        return None
