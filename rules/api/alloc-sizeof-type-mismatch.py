"""api/alloc-sizeof-type-mismatch: an allocation sized by sizeof(T) stored in a pointer to another type."""

from __future__ import annotations

from collections.abc import Iterator

from pmureview.lang.c import call_name, enclosing_function, text, walk
from pmureview.rule.base import Rule
from pmureview.rule.model import Confidence, Finding, RuleDocs, RuleMeta, Scope, Severity
from pmureview.views.context import SeriesContext

_ALLOC = frozenset(f"{p}{n}" for p in ("", "devm_") for n in (
    "kmalloc", "kzalloc", "kcalloc", "kmalloc_array", "krealloc", "krealloc_array", "kvmalloc",
    "kvzalloc", "kvcalloc", "kvmalloc_array", "vmalloc", "vzalloc", "vcalloc", "vmalloc_array"))
# arm64 (LP64) types that are the same type under another name; char and typedefs beyond these are
# unknown (u8 buffers stored in char * and the like are not worth a word)
_CLASSES = {name: cls for cls, names in {
    "u8": ("u8", "__u8", "uint8_t", "unsigned char"), "s8": ("s8", "__s8", "int8_t", "signed char"),
    "u16": ("u16", "__u16", "uint16_t", "unsigned short", "unsigned short int"),
    "s16": ("s16", "__s16", "int16_t", "short", "short int", "signed short"),
    "u32": ("u32", "__u32", "uint32_t", "unsigned int", "unsigned"),
    "s32": ("s32", "__s32", "int32_t", "int", "signed int", "signed"),
    "u64": ("u64", "__u64", "uint64_t", "unsigned long long", "unsigned long", "unsigned long int"),
    "s64": ("s64", "__s64", "int64_t", "long long", "long", "long int", "signed long"),
    "bool": ("bool", "_Bool")}.items() for name in names}
_QUALIFIERS = {"const", "volatile", "__rcu", "__iomem", "__user", "__percpu"}


def _norm(t: str) -> str | None:
    """A comparable name for a type text: an alias class, `struct tag`, or None when unknown."""
    words = [w for w in t.replace("*", " * ").split() if w not in _QUALIFIERS]
    if "*" in words:
        return None
    s = " ".join(words)
    if s in _CLASSES:
        return _CLASSES[s]
    return s if len(words) == 2 and words[0] in ("struct", "union") else None


def _pointee(decl) -> tuple[str, str] | None:
    """(name, pointee type) of `T *name` (one pointer level), for a field or a variable declarator."""
    d = decl.child_by_field_name("declarator")
    if d is not None and d.type == "init_declarator":
        d = d.child_by_field_name("declarator")
    if d is None or d.type != "pointer_declarator":
        return None
    inner = d.child_by_field_name("declarator")
    if inner is None or inner.type not in ("identifier", "field_identifier"):
        return None
    quals = " ".join(text(c) for c in decl.children if c.type == "type_qualifier")
    return text(inner), f"{quals} {text(decl.child_by_field_name('type'))}"


def _sizeof_type(call) -> tuple[object, str] | None:
    """The one sizeof(T) sizing this call, as a pure element size (n * sizeof(T)), and T's text."""
    found = [s for s in walk(call, {"sizeof_expression"})]
    if len(found) != 1:
        return None
    s = found[0]
    n = s.parent
    while n is not None and n.type in ("binary_expression", "parenthesized_expression"):
        if n.type == "binary_expression" and text(n.child_by_field_name("operator")) != "*":
            return None
        n = n.parent
    if n is None or n.type != "argument_list" or n.parent is None:
        return None
    if not (n.parent == call or (n.parent.type == "call_expression" and call_name(n.parent) == "array_size")):
        return None
    ty = s.child_by_field_name("type")
    if ty is not None:
        return s, text(ty)
    val = s.child_by_field_name("value")
    if val is not None and val.type == "parenthesized_expression" and val.named_child_count == 1 \
            and val.named_children[0].type == "identifier":
        return s, text(val.named_children[0])  # sizeof(u32): a typedef parses as an identifier
    return None


def _local_types(node, name: str) -> set[str | None]:
    """The pointee types `name` is declared with in the function around `node` (parameters included)."""
    fn = enclosing_function(node)
    if fn is None:
        return set()
    return {_norm(got[1]) for d in walk(fn, {"declaration", "parameter_declaration"})
            if (got := _pointee(d)) and got[0] == name}


def _member_types(ctx: SeriesContext, name: str, cache: dict[str, set[str | None]]) -> set[str | None]:
    """The pointee types of every pointer field/variable `name` the series' post-images declare.
    Only files whose text holds the name are walked (once per name): walking every post-image of a
    long series for the one or two names asked was most of this rule's time."""
    got = cache.get(name)
    if got is None:
        got = cache[name] = set()
        for view in ctx.all_views():
            if not name or not view.is_c or name not in view.text:
                continue
            for d in walk(view.root, {"field_declaration", "declaration"}):
                found = _pointee(d)
                if found and found[0] == name:
                    got.add(_norm(found[1]))
    return got


_CALL = frozenset({"call_expression"})


class AllocSizeofTypeMismatch(Rule):
    meta = RuleMeta(
        evidence=(r"alloc",),  # cannot fire without it (prefilter)
        id="api/alloc-sizeof-type-mismatch",
        title="Allocation element size of another type than the pointer",
        severity=Severity.WARNING,
        confidence=Confidence.MEDIUM,
        scope=Scope.SERIES,
        docs=RuleDocs(
            what="Flags an added kmalloc()/kcalloc()/krealloc()/kvmalloc_array()/devm_*() family call "
                 "sized by `sizeof(T)` (or `n * sizeof(T)`) whose result is stored in a pointer the "
                 "series declares as pointing to another type (`int *` sized with `sizeof(u32)`).",
            why="The element size and the element type disagree: at best the array has the wrong "
                "signedness, at worst it is too small. `sizeof(*p)` cannot get out of step with the "
                "declaration; reviewers ask for it whenever the two differ.",
            example="int *indices;\t/* in the struct */\nr->indices = kcalloc(count, sizeof(u32), GFP_KERNEL);",
            use_instead="u32 *indices;\nr->indices = kcalloc(count, sizeof(*r->indices), GFP_KERNEL);",
            known_problems="Types are compared by name: fixed-width integer aliases (u32 = unsigned int = "
                           "uint32_t, u64 = unsigned long ...) and struct/union tags are known, other "
                           "typedefs and char are not judged. A local pointer's declaration must be visible in "
                           "its function, a struct member's in the series' post-images (a field declared "
                           "only in an untouched header is not seen); a member name declared with two "
                           "different types is skipped. A result kept in a void * temporary first "
                           "(krealloc() then assign) is not followed. void * buffers, "
                           "struct_size() and sizes with an added header (`sizeof(T) + n`) are silent.",
            references=("Documentation/process/coding-style.rst §14 (sizeof(*p))",),
        ),
    )

    def check(self, ctx: SeriesContext) -> Iterator[Finding]:  # type: ignore[override]
        decls: dict[str, set[str | None]] = {}  # member name -> its pointee types, asked per name
        for view in ctx.all_views():
            if not view.is_c or not view.added:
                continue
            for call in view.added_nodes(_CALL):
                if call_name(call) not in _ALLOC:
                    continue
                parent = call.parent
                if parent is not None and parent.type == "cast_expression":
                    parent = parent.parent
                if parent is None:
                    continue
                if parent.type == "assignment_expression" and text(parent.child_by_field_name("operator")) == "=":
                    lhs = shown = parent.child_by_field_name("left")
                    if lhs is not None and lhs.type == "field_expression":
                        lhs = lhs.child_by_field_name("field")
                    target = text(lhs) if lhs is not None and lhs.type in ("identifier", "field_identifier") else None
                    if lhs is not None and lhs.type == "identifier":
                        types = _local_types(call, target or "")  # a local: its own function's declaration
                    else:
                        types = _member_types(ctx, target or "", decls)
                elif parent.type == "init_declarator" and parent.parent is not None:
                    got = _pointee(parent.parent)
                    target, types = (got[0], {_norm(got[1])}) if got else (None, set())
                    shown = None
                else:
                    continue
                size = _sizeof_type(call)
                if not target or len(types) != 1 or size is None:
                    continue
                pointee, elem = next(iter(types)), _norm(size[1])
                if pointee is None or elem is None or pointee == elem:
                    continue
                yield self.at_node(
                    view, size[0], f"{call_name(call)}() sized with sizeof({size[1]}) but stored in "
                                   f"{text(shown) if shown is not None else target}, which points to another type: "
                                   f"use sizeof(*{text(shown) if shown is not None else target})",
                    note="The element size and the pointer's type disagree (signedness or size); "
                         "sizeof(*ptr) follows the declaration, or fix the declaration.")
