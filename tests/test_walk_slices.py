"""lang.c answers a walk of a node inside an already captured tree from the root's captures (the
capture of every named node, or the whole-tree union), sliced by byte range: the answer must be the
node's own query's, node for node and in the same order, on clean and on broken code (ERROR and
MISSING nodes, empty nodes on a node's edges, chains of nodes with one span)."""

from __future__ import annotations

import random
from pathlib import Path

from fixture_texts import SAMPLE_C, python_walk

from pmureview.lang import c

ROOT = Path(__file__).resolve().parent.parent


def _sig(nodes) -> list[tuple]:
    return [(n.kind_id, n.start_byte, n.end_byte, n.is_missing, n.parent.id if n.parent else None) for n in nodes]


def _sources() -> list[bytes]:
    rng = random.Random(15)
    out = [SAMPLE_C, b"int f(void) { return sizeof(int); }\n", b"int x = ;\nvoid g( { h(( }\n"]
    for p in sorted((ROOT / "fixtures").rglob("*.[ch]"))[:40]:
        src = p.read_bytes()
        out.append(src)
        for _ in range(2):  # broken copies: a random span cut out
            a = rng.randrange(len(src) or 1)
            out.append(src[:a] + src[a + rng.randint(1, 40):])
    return out


def _check(root, rng: random.Random, source: str) -> int:
    named = [n for n in python_walk(root, None) if n.type in c._named_types() and n.parent is not None]
    present = sorted({n.type for n in named})
    sets = [frozenset([t]) for t in rng.sample(present, min(6, len(present)))]
    sets += [frozenset(rng.sample(present, min(len(present), k))) for k in (2, 4)]
    checked = 0
    for node in rng.sample(named, min(25, len(named))):
        for types in sets:
            got = c._sliced(node, types)
            if got is None:
                continue
            assert _sig(got) == _sig(c.query_nodes(node, types, None)), (source, node.type, sorted(types))
            checked += 1
    return checked


def test_slices_of_the_capture_of_every_named_node_are_each_nodes_own_query() -> None:
    rng = random.Random(7)
    checked = 0
    for src in _sources():
        c.new_run()
        root = c.parse(src).root_node
        c._from_all(root, frozenset({"identifier"}), None)  # the root's capture of every named node
        checked += _check(root, rng, "all")
    assert checked > 1000


def test_slices_of_the_whole_tree_union_are_each_nodes_own_query() -> None:
    rng = random.Random(8)
    checked = 0
    learnt = set(c._whole_types)  # the process's union: leave it as found
    try:
        for src in _sources():
            c.new_run()
            root = c.parse(src).root_node
            c._whole_tree(root, frozenset({"call_expression", "declaration", "compound_statement", "if_statement"}))
            assert c._run_cache.get(("all", root, None)) is None  # only the union: types outside it are None
            checked += _check(root, rng, "whole")
    finally:
        c._whole_types.clear()
        c._whole_types.update(learnt)
    assert checked > 100


def test_edges_and_one_span_chains() -> None:
    c.new_run()
    src = b"int f(void) { return sizeof(int); }\nint x = ;\nvoid g(void) { h( }\n"
    root = c.parse(src).root_node
    c._from_all(root, frozenset({"identifier"}), None)
    every = [n for n in python_walk(root, None) if n.parent is not None]
    types = frozenset(t for t in c._named_types())
    for node in every:  # every node of the tree, every named type at once
        got = c._sliced(node, types)
        assert got is not None and _sig(got) == _sig(c.query_nodes(node, types, None)), node.type
    assert c._sliced(root.children[0], frozenset({"("})) is None  # an anonymous type: not from captures


def test_slices_of_a_captured_function_are_its_statements_own_queries() -> None:
    rng = random.Random(9)
    checked = 0
    for src in _sources()[:30]:
        c.new_run()
        root = c.parse(src).root_node
        for fn in [n for n in python_walk(root, frozenset({"function_definition"}))][:4]:
            c._from_all(fn, frozenset({"identifier"}), None)  # the function captured whole, not the root
            inner = [n for n in python_walk(fn, None) if n != fn and n.type in c._named_types()]
            for node in rng.sample(inner, min(12, len(inner))):
                types = frozenset(rng.sample(sorted(c._named_types()), 40)) | {node.type}
                got = c._sliced(node, types)
                assert got is not None and _sig(got) == _sig(c.query_nodes(node, types, None)), node.type
                checked += 1
    assert checked > 100
