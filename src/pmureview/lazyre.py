"""Regexes compiled on first use, and compiled once per Python build.

The rule packs hold ~300 module-level patterns; compiling them all at import was a third of the
time to load the rules, paid on every hook run even for patterns a patch never reaches.

Even the patterns a run reaches cost: sre's parser and code generator are pure Python (0.1-0.6 ms a
pattern, ~18 ms of a one-patch hook run). `compile()` keeps what that compiler produced for each
(pattern, flags) in a marshal file per Python build and hands it back to `_sre.compile`, which is
exactly the last step of `re.compile`; a self-test at first use (and any error) falls back to
`re.compile`. Only static patterns come here (module constants, declared evidence): a pattern built
from a series' text would only grow the file. `cache_module_patterns()` serves the module-level
patterns of other packages (the standard library's, unidiff's) the same way in a process of our own.
"""

from __future__ import annotations

import re
from typing import Any

_METHODS = ("search", "match", "fullmatch", "finditer", "findall", "sub", "subn", "split")
_MAX_ENTRIES = 2000  # past this, only the last run's patterns are kept
KIND = "cli"  # entry.py sets "hook": a hook run loads only the patterns hook runs compiled

# (pattern, flags) -> the arguments of _sre.compile after the pattern (a cachefile.BuildCache)
_parts: Any = None
_sre_compile: Any = None  # None: not set up yet; False: unusable here, plain re.compile


def compile(pattern: str | bytes, flags: int = 0) -> re.Pattern:
    """re.compile, from the per-build cache when this pattern was compiled before."""
    flags = int(flags)
    if _sre_compile is None:
        _setup()
    if _sre_compile is False or flags & re.DEBUG or _parts is None:
        return re.compile(pattern, flags)
    try:
        return _cached(pattern, flags)
    except re.error:
        raise
    except Exception:  # an sre internal we do not know: behave as re
        return re.compile(pattern, flags)


def _cached(pattern: str | bytes, flags: int) -> re.Pattern:
    key = (pattern, flags)
    parts = _parts.get(key)
    if parts is None:
        parts = _compile_parts(pattern, flags)
        _parts.put(key, parts)
    flags_, code, groups, groupindex, indexgroup = parts
    return _sre_compile(pattern, flags_, _words(code), groups, groupindex, indexgroup)


def cache_module_patterns() -> None:
    """From now on, static patterns compiled through `re` come from the per-build cache too: those of
    module-level code (the standard library's json, unidiff's diff grammar: ~25 per hook run, ~4 ms)
    and the literals functions pass to `re.search(r"...", s)` and friends (~15 per hook run, ~3 ms:
    re's own cache lives only as long as the process).

    `re.compile` ends in `re._compiler.compile(pattern, flags)`, looked up at each call: that is
    wrapped. A pattern is static when the calling code is a module's top level, or when it is one of
    the calling function's own constants (a literal in its code); a pattern built at run time (a name
    escaped into it) is neither, so the file cannot grow with what series contain. Any other call,
    and any error, goes to the compiler as before. Off where the self-test failed."""
    if _sre_compile is None:
        _setup()
    from re import _compiler

    original = _compiler.compile
    if _sre_compile is False or _parts is None or getattr(original, "_pmureview", False):
        return

    def compile_(pattern: Any, flags: int = 0) -> Any:
        if isinstance(pattern, (str, bytes)) and type(flags) is int and not flags & re.DEBUG \
                and _static_caller(pattern):
            try:
                return _cached(pattern, flags)
            except Exception:  # whatever it is, the compiler reports it as it always does
                pass
        return original(pattern, flags)

    compile_._pmureview = True  # type: ignore[attr-defined]
    _compiler.compile = compile_


def _static_caller(pattern: str | bytes) -> bool:
    import sys

    f = sys._getframe(2)  # compile_ <- re._compile <- re.compile/match/... <- the caller
    while f is not None and (f.f_globals.get("__name__") == "re" or f.f_globals.get("__name__", "").startswith("re.")):
        f = f.f_back  # type: ignore[assignment]
    if f is None:
        return False
    code = f.f_code
    # `is`: the very object of a literal (an equal string built at run time is not served)
    return code.co_name == "<module>" or any(c is pattern for c in code.co_consts)


def _words(code: bytes | list[int]) -> list[int]:
    """The sre code list of its stored form: 32-bit words in bytes, because marshal reads a list of
    ints one object at a time (a few hundred patterns' lists took 30-50 ms to load)."""
    if isinstance(code, list):
        return code
    from array import array

    return array("I", code).tolist()


def _compile_parts(pattern: str | bytes, flags: int) -> tuple:
    """re._compiler.compile() up to its last call (Python 3.11-3.13)."""
    from re import _compiler, _parser

    p = _parser.parse(pattern, flags)
    code = _compiler._code(p, flags)
    indexgroup: list[str | None] = [None] * p.state.groups
    for name, i in p.state.groupdict.items():
        indexgroup[i] = name
    from array import array

    words = array("I", code)  # sre code words are 32-bit (SRE_CODE); opcodes are int subclasses
    return (int(flags | p.state.flags), words.tobytes(), int(p.state.groups - 1),
            {str(k): int(v) for k, v in p.state.groupdict.items()}, tuple(indexgroup))


def _setup() -> None:
    global _sre_compile, _parts
    _sre_compile = False
    try:
        import _sre
        from array import array

        if array("I").itemsize != _sre.CODESIZE:
            return
        probe = r"(?P<a>x+)\s*(y|z)?"
        f, code, groups, groupindex, indexgroup = _compile_parts(probe, re.I)
        mine = _sre.compile(probe, f, _words(code), groups, groupindex, indexgroup)
        theirs = re.compile(probe, re.I)
        if (mine.pattern, mine.flags, mine.groups, dict(mine.groupindex)) != \
                (theirs.pattern, theirs.flags, theirs.groups, dict(theirs.groupindex)) or \
                mine.match("XX z").groups() != theirs.match("XX z").groups():
            return
    except Exception:
        return
    _sre_compile = _sre.compile
    from .cachefile import BuildCache

    _parts = BuildCache(f"regex-{KIND}", _MAX_ENTRIES)


class LazyPattern:
    """Behaves as the compiled `re.Pattern` (attribute access compiles it once)."""

    def __init__(self, pattern: str | bytes, flags: int = 0) -> None:
        self._args = (pattern, flags)

    def _compiled(self) -> re.Pattern:
        compiled = compile(*self._args)
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
