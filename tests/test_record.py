"""pmureview.record behaves as dataclasses on every shape pmureview uses (it replaces it on the hook
path): the same class built by both is compared call by call."""

from __future__ import annotations

import copy
import dataclasses
import pickle
from typing import Any, ClassVar

import pytest

from pmureview import record

OPTIONS = [
    {},
    {"eq": False},
    {"frozen": True},
    {"frozen": True, "eq": False},
    {"frozen": True, "slots": True},
    {"frozen": True, "slots": True, "kw_only": True},
    {"slots": True},
    {"kw_only": True},
]


def _make(deco: Any, fld: Any, options: dict) -> type:
    @deco(**options)
    class Shape:
        kind: ClassVar[str] = "shape"
        name: str
        size: int = 3
        tags: list = fld(default_factory=list)
        note: str = fld(default="", repr=False)
        derived: int = fld(init=False, repr=False, default=0)

    return Shape


def _pair(options: dict) -> tuple[type, type]:
    return _make(dataclasses.dataclass, dataclasses.field, options), _make(record.dataclass, record.field, options)


def _outcome(fn: Any) -> Any:
    try:
        return ("ok", fn())
    except Exception as exc:  # the error's kind is part of the behaviour
        return ("raises", isinstance(exc, AttributeError), isinstance(exc, TypeError), isinstance(exc, ValueError))


@pytest.mark.parametrize("options", OPTIONS, ids=lambda o: ",".join(o) or "plain")
def test_same_behaviour_as_dataclasses(options: dict) -> None:
    theirs, mine = _pair(options)
    for cls in (theirs, mine):
        cls.__qualname__ = "Shape"
    args, kwargs = ((), {"name": "a", "size": 5}) if options.get("kw_only") else (("a", 5), {})

    def both(fn: Any) -> tuple[Any, Any]:
        return _outcome(lambda: fn(theirs)), _outcome(lambda: fn(mine))

    a, b = theirs(*args, **kwargs), mine(*args, **kwargs)
    assert repr(a) == repr(b)
    assert (a.name, a.size, a.tags, a.note, a.derived) == (b.name, b.size, b.tags, b.note, b.derived)
    assert a.tags is not theirs(*args, **kwargs).tags and b.tags is not mine(*args, **kwargs).tags
    assert both(lambda c: c(*args, **kwargs) == c(*args, **kwargs)) is not None
    assert (a == theirs(*args, **kwargs)) == (b == mine(*args, **kwargs))
    assert (a == "other") == (b == "other")
    assert _outcome(lambda: hash(a) == hash(theirs(*args, **kwargs)))[0] == \
        _outcome(lambda: hash(b) == hash(mine(*args, **kwargs)))[0]
    assert _outcome(lambda: setattr(a, "size", 9)) == _outcome(lambda: setattr(b, "size", 9))
    # a non-field on a frozen slotted class: dataclasses 3.11 raises TypeError from its super() call
    # (the closure holds the class before slots), a record an AttributeError; both refuse
    assert _outcome(lambda: setattr(a, "other", 1))[0] == _outcome(lambda: setattr(b, "other", 1))[0]
    assert _outcome(lambda: delattr(a, "name")) == _outcome(lambda: delattr(b, "name"))
    assert hasattr(a, "__dict__") == hasattr(b, "__dict__")
    assert theirs.kind == mine.kind == "shape"
    assert both(lambda c: c.size) == both(lambda c: c.size)
    assert type(theirs.size) is type(mine.size) and (theirs.size == 3) == (mine.size == 3)
    assert _outcome(lambda: theirs.tags)[0] == _outcome(lambda: mine.tags)[0]
    assert _outcome(lambda: theirs()) == _outcome(lambda: mine())
    assert _outcome(lambda: theirs("a", 1, [], "", 2)) == _outcome(lambda: mine("a", 1, [], "", 2))
    assert theirs.__match_args__ == mine.__match_args__


@pytest.mark.parametrize("options", OPTIONS, ids=lambda o: ",".join(o) or "plain")
def test_replace_copy_and_pickle(options: dict) -> None:
    theirs, mine = _pair(options)
    globals()["ShapeT"], globals()["ShapeM"] = theirs, mine  # picklable by name
    theirs.__qualname__, mine.__qualname__ = "ShapeT", "ShapeM"
    kwargs = {"name": "a", "size": 5}
    a, b = theirs(**kwargs), mine(**kwargs)
    ra, rb = dataclasses.replace(a, size=7), record.replace(b, size=7)
    assert (ra.name, ra.size, ra.derived) == (rb.name, rb.size, rb.derived)
    assert _outcome(lambda: dataclasses.replace(a, derived=1)) == _outcome(lambda: record.replace(b, derived=1))
    for x, y in ((a, b), (copy.copy(a), copy.copy(b)), (copy.deepcopy(a), copy.deepcopy(b)),
                 (pickle.loads(pickle.dumps(a)), pickle.loads(pickle.dumps(b)))):
        assert (x.name, x.size, x.tags, x.note) == (y.name, y.size, y.tags, y.note)
        assert repr(x).replace("ShapeT", "S") == repr(y).replace("ShapeM", "S")


def test_post_init_explicit_methods_and_errors() -> None:
    seen = []

    @record.dataclass(eq=False)
    class View:
        path: str
        is_c: bool = record.field(init=False, repr=False)

        def __post_init__(self) -> None:
            self.is_c = self.path.endswith(".c")
            seen.append(self.path)

        def __repr__(self) -> str:
            return "mine"

    v = View("a.c")
    assert v.is_c and seen == ["a.c"] and repr(v) == "mine"
    assert v != View("a.c") and hash(v) != hash(View("a.c"))  # identity, as eq=False

    @record.dataclass(frozen=True)
    class Keyed:
        a: int

        def __hash__(self) -> int:
            return 7

    assert hash(Keyed(1)) == 7
    with pytest.raises(TypeError):
        @record.dataclass
        class Bad:
            a: int = 1
            b: str
    with pytest.raises(ValueError):
        @record.dataclass
        class Mutable:
            a: list = []  # noqa: RUF012
    with pytest.raises(record.FrozenInstanceError):
        Keyed(1).a = 2  # type: ignore[misc]


def test_a_record_extends_a_record() -> None:
    @record.dataclass(frozen=True)
    class Base:
        a: int

    @record.dataclass(frozen=True)
    class Child(Base):
        b: int = 2

    c = Child(1)
    assert (c.a, c.b) == (1, 2) and repr(c).endswith("Child(a=1, b=2)") and c == Child(1, 2)
    assert [f.name for f in record.fields(c)] == ["a", "b"]
