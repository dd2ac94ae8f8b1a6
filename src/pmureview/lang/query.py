"""Compiled tree-sitter queries: compiled once, predicates allow-listed so a typo fails at load."""

from __future__ import annotations

import re
from functools import cache

from tree_sitter import Node, Query, QueryCursor

from .c import language

# py-tree-sitter evaluates these itself; any other predicate would pass silently, so reject it.
ALLOWED_PREDICATES = {
    "eq", "not-eq", "any-eq", "any-not-eq", "match", "not-match", "any-match", "any-not-match",
    "any-of", "not-any-of", "is", "is-not", "set",
}
_PRED = re.compile(r"\(#([A-Za-z_-]+)[?!]")


class QueryCompileError(ValueError):
    pass


def check_predicates(source: str) -> None:
    for name in _PRED.findall(source):
        if name not in ALLOWED_PREDICATES:
            raise QueryCompileError(f"unknown predicate #{name}? (allowed: {', '.join(sorted(ALLOWED_PREDICATES))})")


@cache
def compile_query(source: str) -> Query:
    check_predicates(source)
    try:
        return Query(language(), source)
    except Exception as exc:  # tree-sitter raises QueryError (a ValueError) with a position
        raise QueryCompileError(str(exc)) from None


def matches(query: Query, node: Node) -> list[tuple[int, dict[str, list[Node]]]]:
    return QueryCursor(query).matches(node)
