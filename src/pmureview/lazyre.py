"""Regexes compiled on first use.

The rule packs hold ~200 module-level patterns; compiling them all at import was a third of the
time to load the rules, paid on every hook run even for patterns a patch never reaches.
"""

from __future__ import annotations

import re
from typing import Any

_METHODS = ("search", "match", "fullmatch", "finditer", "findall", "sub", "subn", "split")


class LazyPattern:
    """Behaves as the compiled `re.Pattern` (attribute access compiles it once)."""

    def __init__(self, pattern: str | bytes, flags: int = 0) -> None:
        self._args = (pattern, flags)

    def _compiled(self) -> re.Pattern:
        compiled = re.compile(*self._args)
        # bind the methods onto the instance: later calls skip __getattr__ entirely
        for name in _METHODS:
            self.__dict__[name] = getattr(compiled, name)
        self.__dict__["_pattern_obj"] = compiled
        return compiled

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        compiled = self.__dict__.get("_pattern_obj") or self._compiled()
        return getattr(compiled, name)

    def __repr__(self) -> str:
        return f"lazy_re({self._args[0]!r})"


def lazy_re(pattern: str | bytes, flags: int = 0) -> LazyPattern:
    return LazyPattern(pattern, flags)
