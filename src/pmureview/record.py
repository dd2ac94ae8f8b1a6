"""Record classes: the part of `dataclasses` pmureview uses, built at a fraction of its cost.

A one-patch hook run builds ~80 record classes (findings, locations, views, facts). `@dataclass`
took ~28 ms of its ~110 ms review, and importing `dataclasses` pulls in inspect, ast, dis and
tokenize (~9 ms): per class it makes Field objects, matches every string annotation against
ClassVar/InitVar, computes an inspect.signature for the docstring and compiles each method from its
own source text. Here a class costs one dict lookup and one exec: all its methods come from one
source text, which depends only on the field names and the options, and whose code object is kept
per Python build (cachefile.BuildCache), so a process compiles nothing it compiled before.

The subset, with the semantics of `dataclasses` (a test compares the two shape by shape):
`dataclass(frozen=, eq=, slots=, kw_only=, repr=, init=)`; `field(default=, default_factory=,
init=, repr=)`; `replace()`; `__post_init__`; ClassVar annotations are not fields; a record may
extend a record. Not here: order=, unsafe_hash=, InitVar, per-field kw_only/compare/hash,
`dataclasses.fields()`/`asdict()` (plugins that want those keep using `dataclasses`).
"""

from __future__ import annotations

import os
from typing import Any

__all__ = ["FrozenInstanceError", "dataclass", "field", "fields", "replace"]


class _Missing:
    __slots__ = ()

    def __repr__(self) -> str:
        return "MISSING"


MISSING: Any = _Missing()
_FACTORY: Any = type("_HasFactory", (), {"__slots__": (), "__repr__": lambda self: "<factory>"})()


class FrozenInstanceError(AttributeError):
    """Assigning to a field of a frozen record."""


class Field:
    __slots__ = ("default", "default_factory", "init", "name", "repr")

    def __init__(self, default: Any = MISSING, default_factory: Any = MISSING, init: bool = True,
                 repr: bool = True) -> None:
        if default is not MISSING and default_factory is not MISSING:
            raise ValueError("cannot specify both default and default_factory")
        self.name = ""
        self.default, self.default_factory, self.init, self.repr = default, default_factory, init, repr

    def __repr__(self) -> str:
        return f"Field(name={self.name!r}, default={self.default!r}, default_factory={self.default_factory!r})"


def field(*, default: Any = MISSING, default_factory: Any = MISSING, init: bool = True,
          repr: bool = True) -> Any:
    """A field with options, as dataclasses.field (default, default_factory, init, repr)."""
    return Field(default, default_factory, init, repr)


def fields(obj: Any) -> tuple[Field, ...]:
    """The fields of a record class or instance, in definition order."""
    try:
        return obj.__record_fields__
    except AttributeError:
        raise TypeError("must be called with a record class or instance") from None


def replace(obj: Any, /, **changes: Any) -> Any:
    """A new record like `obj` with `changes`; fields with init=False are computed anew, as
    dataclasses.replace does."""
    for f in fields(obj):
        if not f.init:
            if f.name in changes:
                raise ValueError(f"field {f.name} is declared with init=False, it cannot be specified with replace()")
        elif f.name not in changes:
            changes[f.name] = getattr(obj, f.name)
    return obj.__class__(**changes)


def dataclass(cls: type | None = None, /, *, init: bool = True, repr: bool = True,
              eq: bool = True, frozen: bool = False, slots: bool = False, kw_only: bool = False) -> Any:
    """Turn a class into a record, as @dataclass with the same options would."""

    def wrap(c: type) -> type:
        return _build(c, init, repr, eq, frozen, slots, kw_only)

    return wrap if cls is None else wrap(cls)


def _is_classvar(annotation: Any) -> bool:
    text = annotation if isinstance(annotation, str) else repr(annotation)
    return text.startswith(("ClassVar", "typing.ClassVar", "t.ClassVar"))


def _collect(cls: type) -> list[Field]:
    own = cls.__dict__.get("__annotations__", {})  # noqa: RUF063 - inspect is what this module avoids
    found: dict[str, Field] = {}
    for base in reversed(cls.__mro__[1:]):
        for f in base.__dict__.get("__record_fields__", ()):
            found[f.name] = f
    for name, annotation in own.items():
        if _is_classvar(annotation):
            continue
        value = cls.__dict__.get(name, MISSING)
        f = value if isinstance(value, Field) else Field(default=value)
        f.name = name
        if type(f.default) in (list, dict, set):
            raise ValueError(f"mutable default {type(f.default)} for field {name} is not allowed: use default_factory")
        found[name] = f
        if f.default is not MISSING:
            setattr(cls, name, f.default)  # as dataclasses: the class attribute is the default
        elif isinstance(value, Field):
            delattr(cls, name)
    return list(found.values())


def _build(cls: type, init: bool, repr_: bool, eq: bool, frozen: bool, slots: bool, kw_only: bool) -> type:
    flds = _collect(cls)
    own = cls.__dict__
    class_hash = own.get("__hash__", MISSING)
    explicit_hash = not (class_hash is MISSING or (class_hash is None and "__eq__" in own))
    if frozen and ("__setattr__" in own or "__delattr__" in own):
        raise TypeError(f"Cannot overwrite attribute __setattr__ or __delattr__ in class {cls.__name__}")
    if slots:
        cls = _slotted(cls, flds)
        own = cls.__dict__
    wanted = []
    if init and "__init__" not in own:
        wanted.append("__init__")
    if repr_ and "__repr__" not in own:
        wanted.append("__repr__")
    if eq and "__eq__" not in own:
        wanted.append("__eq__")
    add_hash = eq and frozen and not explicit_hash
    if add_hash:
        wanted.append("__hash__")
    if frozen:
        wanted += ["__setattr__", "__delattr__"]
        if slots:
            wanted += [n for n in ("__getstate__", "__setstate__") if n not in own]
    post_init = hasattr(cls, "__post_init__")
    # what the source text depends on, as a key: the text is only built when the code is not cached
    shape = ";".join(f"{f.name},{f.default is not MISSING:d}{f.default_factory is not MISSING:d}{f.init:d}{f.repr:d}"
                     for f in flds)
    key = f"{shape}|{','.join(wanted)}|{frozen:d}{kw_only:d}{post_init:d}"
    args = [cls, FrozenInstanceError, _FACTORY]
    for f in flds:
        args.append(f.default_factory if f.default_factory is not MISSING else f.default)
    ns: dict[str, Any] = {}
    exec(_code(key, lambda: _source(flds, wanted, frozen, kw_only, post_init)), {"__builtins__": __builtins__}, ns)
    for name, fn in zip(wanted, ns["__create__"](*args), strict=True):
        fn.__qualname__ = f"{cls.__qualname__}.{name}"
        setattr(cls, name, fn)
    if eq and not frozen and not explicit_hash:
        cls.__hash__ = None  # type: ignore[assignment]  # mutable and compared by value: unhashable
    cls.__record_fields__ = tuple(flds)  # type: ignore[attr-defined]
    if "__match_args__" not in own:
        cls.__match_args__ = () if kw_only else tuple(f.name for f in flds if f.init)  # type: ignore[attr-defined]
    return cls


def _slotted(cls: type, flds: list[Field]) -> type:
    """The class again, with __slots__ for its fields (a class statement cannot add them later)."""
    names = tuple(f.name for f in flds)
    inherited = {s for base in cls.__mro__[1:-1] for s in base.__dict__.get("__slots__", ())}
    body = dict(cls.__dict__)
    body["__slots__"] = tuple(n for n in names if n not in inherited)
    for name in (*names, "__dict__", "__weakref__"):
        body.pop(name, None)
    qualname = cls.__qualname__
    new = type(cls)(cls.__name__, cls.__bases__, body)
    new.__qualname__ = qualname
    return new


def _source(flds: list[Field], wanted: list[str], frozen: bool, kw_only: bool, post_init: bool) -> str:
    """One function returning the class's methods; it depends only on names and options (cacheable)."""
    values = [f"_v{i}" for i in range(len(flds))]
    lines = [f"def __create__(_cls, _Frozen, _FACTORY, {''.join(v + ', ' for v in values)}):"]
    names = [f.name for f in flds]
    for method in wanted:
        lines += [f"    {line}" for line in _METHODS[method](flds, values, names, frozen, kw_only, post_init)]
    lines.append(f"    return ({''.join(m + ', ' for m in wanted)})")
    return "\n".join(lines) + "\n"


def _init(flds: list[Field], values: list[str], names: list[str], frozen: bool, kw_only: bool,
          post_init: bool) -> list[str]:
    params, body, seen_default = [], [], False
    for f, v in zip(flds, values, strict=True):
        if f.init:
            if f.default is not MISSING:
                params.append(f"{f.name}={v}")
                seen_default = True
            elif f.default_factory is not MISSING:
                params.append(f"{f.name}=_FACTORY")
                seen_default = True
            elif seen_default and not kw_only:
                raise TypeError(f"non-default argument {f.name!r} follows default argument")
            else:
                params.append(f.name)
        if f.default_factory is not MISSING:
            value = f"{v}() if {f.name} is _FACTORY else {f.name}" if f.init else f"{v}()"
        elif f.init:
            value = f.name
        elif f.default is not MISSING:
            value = v
        else:
            continue
        body.append(f"_osa(self, {f.name!r}, {value})" if frozen else f"self.{f.name} = {value}")
    if post_init:
        body.append("self.__post_init__()")
    head = ", ".join(["self", *(["*"] if kw_only and params else []), *params])
    return [f"def __init__({head}):", *(["    _osa = object.__setattr__"] if frozen and body else []),
            *(f"    {b}" for b in body or ["pass"])]


def _repr(flds: list[Field], *_: Any) -> list[str]:
    parts = ", ".join(f"{f.name}={{self.{f.name}!r}}" for f in flds if f.repr)
    return ["def __repr__(self):", f"    return self.__class__.__qualname__ + f'({parts})'"]


def _tuple(prefix: str, names: list[str]) -> str:
    return "(" + "".join(f"{prefix}.{n}," for n in names) + ")"


def _eq(flds: list[Field], values: list[str], names: list[str], *_: Any) -> list[str]:
    return ["def __eq__(self, other):", "    if other.__class__ is self.__class__:",
            f"        return {_tuple('self', names)} == {_tuple('other', names)}", "    return NotImplemented"]


def _hash(flds: list[Field], values: list[str], names: list[str], *_: Any) -> list[str]:
    return ["def __hash__(self):", f"    return hash({_tuple('self', names)})"]


def _setattr(flds: list[Field], values: list[str], names: list[str], *_: Any) -> list[str]:
    return ["def __setattr__(self, name, value):", f"    if type(self) is _cls or name in {tuple(names)!r}:",
            "        raise _Frozen(f'cannot assign to field {name!r}')",
            "    super(_cls, self).__setattr__(name, value)"]


def _delattr(flds: list[Field], values: list[str], names: list[str], *_: Any) -> list[str]:
    return ["def __delattr__(self, name):", f"    if type(self) is _cls or name in {tuple(names)!r}:",
            "        raise _Frozen(f'cannot delete field {name!r}')", "    super(_cls, self).__delattr__(name)"]


def _getstate(flds: list[Field], values: list[str], names: list[str], *_: Any) -> list[str]:
    # frozen and slotted: pickle's default state restore would go through the raising __setattr__
    return ["def __getstate__(self):", f"    return [{''.join(f'self.{n}, ' for n in names)}]"]


def _setstate(flds: list[Field], values: list[str], names: list[str], *_: Any) -> list[str]:
    return ["def __setstate__(self, state):", f"    for name, value in zip({tuple(names)!r}, state):",
            "        object.__setattr__(self, name, value)"]


_METHODS = {"__init__": _init, "__repr__": _repr, "__eq__": _eq, "__hash__": _hash, "__setattr__": _setattr,
            "__delattr__": _delattr, "__getstate__": _getstate, "__setstate__": _setstate}

# class shape -> marshalled code object (a cachefile.BuildCache once set up; False: caching is off)
_codes: Any = None
_CACHE_CAP = 600  # classes; past this only the last run's are kept


def _code(key: str, source: Any) -> Any:
    """The code object of `source()` (a text that depends only on `key`)."""
    global _codes
    if _codes is None:
        if "PMUREVIEW_NO_CODE_CACHE" in os.environ:
            _codes = False
        else:
            from . import lazyre
            from .cachefile import BuildCache

            _codes = BuildCache(f"record-code-{lazyre.KIND}", _CACHE_CAP)
    import marshal

    raw = _codes.get(key) if _codes else None
    if raw is not None:
        try:
            return marshal.loads(raw)
        except Exception:  # a damaged entry: compile again
            pass
    code = compile(source(), "<record>", "exec", dont_inherit=True)
    if _codes:
        _codes.put(key, marshal.dumps(code))
    return code
