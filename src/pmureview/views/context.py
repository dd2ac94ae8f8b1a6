"""What a rule sees: the series, per-patch and per-file views, and the kernel knowledge.

A FileView is one touched file as patch N leaves it. In full mode its text is the real post-image
(the base blob with patches 1..N applied); in hunk-only mode it is rebuilt from the hunks with every
line at its real post-image number and unknown lines left empty, so node rows map to real lines.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..series.model import FileChange, Patch, Series, path_matches

if TYPE_CHECKING:
    from tree_sitter import Node, Tree

FULL = "full"
HUNK_ONLY = "hunk-only"


@dataclass(eq=False)
class FileView:
    patch: Patch
    change: FileChange
    text: str
    mode: str = HUNK_ONLY
    known: frozenset[int] = frozenset()  # lines whose text is known (every line in full mode)
    pre_text: str | None = None  # the file before this patch (full mode only)
    added: frozenset[int] = frozenset()  # post-image lines this patch adds
    line_map: dict[int, int] | None = None  # post-image line -> the patch's own numbering (full mode)
    _lines: list[str] | None = field(default=None, repr=False)
    _tree: Any = field(default=None, repr=False)
    _parse_text: str | None = field(default=None, repr=False)
    _functions: list | None = field(default=None, repr=False)
    _sg: Any = field(default=None, repr=False)
    _comment_lines: frozenset[int] | None = field(default=None, repr=False)

    @property
    def path(self) -> str:
        return self.change.path

    @property
    def lines(self) -> list[str]:
        if self._lines is None:
            self._lines = self.text.split("\n")
        return self._lines

    def line_text(self, line: int) -> str:
        """The text of 1-based post-image line `line` ('' when unknown)."""
        return self.lines[line - 1] if 0 < line <= len(self.lines) else ""

    @property
    def is_c(self) -> bool:
        return self.path.endswith((".c", ".h"))

    @property
    def parse_text(self) -> str:
        """The text the parsers see: in hunk-only mode a comment left open by one hunk is closed in
        the gap after it (and one a hunk closes is opened before it), so it cannot swallow the
        code of other hunks. Same lines, same numbers; only unknown (empty) lines differ."""
        if self._parse_text is None:
            if self.mode == FULL or len(self.known) >= len(self.lines):
                self._parse_text = self.text
            else:
                from ..lang.c import hunk_parse_lines

                self._parse_text = "\n".join(hunk_parse_lines(self.lines, self.known))
        return self._parse_text

    @property
    def tree(self) -> Tree:
        if self._tree is None:
            from ..lang.c import parse

            self._tree = parse(self.parse_text.encode("utf-8", "surrogateescape"))
        return self._tree

    @property
    def root(self) -> Node:
        return self.tree.root_node

    @property
    def comment_lines(self) -> frozenset[int]:
        """Lines holding only comment text: rules reading raw lines skip these. In hunk-only mode a
        ` * text` line whose `/*` is above the hunk counts (read from parse_text)."""
        if self._comment_lines is None:
            from ..lang.c import comment_only_lines

            self._comment_lines = comment_only_lines(self.parse_text.split("\n")) if self.is_c else frozenset()
        return self._comment_lines

    def sg_root(self) -> Any:
        """The ast-grep parse of this text (pattern rules), built once, on first use."""
        if self._sg is None:
            from ..lang.pattern import parse

            self._sg = parse(self.parse_text)
        return self._sg

    def functions(self) -> list[tuple[str, Node]]:
        """(name, function_definition) of every function in this file, computed once per view."""
        if self._functions is None:
            from ..lang.c import functions

            self._functions = list(functions(self.root)) if self.is_c else []
        return self._functions

    def node_text(self, node: Node) -> str:
        return node.text.decode("utf-8", "replace") if node.text is not None else ""

    @staticmethod
    def node_line(node: Node) -> int:
        return node.start_point[0] + 1

    def node_lines(self, node: Node) -> range:
        return range(node.start_point[0] + 1, node.end_point[0] + 2)

    def touches_added(self, node: Node) -> bool:
        return any(n in self.added for n in self.node_lines(node))

    def first_added_line(self, node: Node) -> int | None:
        return next((n for n in self.node_lines(node) if n in self.added), None)

    def added_nodes(self, types: frozenset[str], touching: bool = False) -> list[Node]:
        """The nodes of `types` starting on an added line (touching: with an added line anywhere in
        their lines), in pre-order (as `walk` gives them): each run of added lines is searched on its
        own, not the whole file (full mode: a kernel file)."""
        from ..lang.c import _captured, _types_query, walk

        runs: list[list[int]] = []
        for n in sorted(self.added):
            if runs and n == runs[-1][1] + 1:
                runs[-1][1] = n
            else:
                runs.append([n, n])
        got: dict[tuple[int, int, int], Node] = {}
        for first, last in runs:
            # uncached: one entry per run would push the whole-file entries other rules share out
            found = _captured.__wrapped__(self.root, types, (first, last)) if _types_query(types) else None
            for node in found if found is not None else walk(self.root, types):
                if node.start_point[0] + 1 in self.added or (touching and self.touches_added(node)):
                    got[(node.start_byte, -node.end_byte, node.kind_id)] = node
        return [got[k] for k in sorted(got)]

    def patch_line(self, line: int) -> int:
        """The line number as the patch itself numbers it (differs when a hunk applied at an offset)."""
        if self.line_map is None:
            return line
        return self.line_map.get(line, line)

    def mail_line(self, line: int) -> int | None:
        hl = self.change.line(self.patch_line(line))
        return hl.mail_line if hl else None

    def column(self, node: Node) -> int:
        """1-based character column of a node (tree-sitter gives byte columns)."""
        row, col = node.start_point
        raw = self.line_text(row + 1).encode("utf-8", "surrogateescape")[:col]
        return len(raw.decode("utf-8", "replace")) + 1

    def matches_glob(self, globs: tuple[str, ...]) -> bool:
        return path_matches(self.path, globs)


def _parse(text: str) -> Tree:
    from ..lang.c import parse

    return parse(text.encode("utf-8", "surrogateescape"))


@dataclass(eq=False)
class SeriesContext:
    series: Series
    mode: str = HUNK_ONLY
    views: dict[int, list[FileView]] = field(default_factory=dict)  # patch number -> views
    base_reader: Callable[[str], str | None] | None = None  # reads a file at the base (full mode)
    base: str | None = None  # the base commit actually used
    files_mode: bool = False  # `check --files`: every line is new, nothing to compare with
    _kb: Any = field(default=None, repr=False)
    _kb_loader: Callable[[], Any] | None = field(default=None, repr=False)
    _memo: dict = field(default_factory=dict, repr=False)
    _by_path: dict[str, list[tuple[int, FileView]]] | None = field(default=None, repr=False)

    def memo(self, key: Any, factory: Callable[[], Any]) -> Any:
        """A value computed once per run and shared by every rule (e.g. the series' functions)."""
        if key not in self._memo:
            self._memo[key] = factory()
        return self._memo[key]

    @property
    def kb(self) -> Any:
        """The kernel knowledge (pmureview.kernel.knowledge.Knowledge), built once, lazily."""
        if self._kb is None:
            if self._kb_loader is not None:
                self._kb = self._kb_loader()
            else:
                from ..kernel.knowledge import load_knowledge

                self._kb = load_knowledge(self.base_reader)
        return self._kb

    @property
    def patches(self) -> tuple[Patch, ...]:
        return self.series.patches

    def patch_views(self, number: int) -> list[FileView]:
        return self.views.get(number, [])

    def all_views(self) -> Iterator[FileView]:
        for number in sorted(self.views):
            yield from self.views[number]

    def _index(self) -> dict[str, list[tuple[int, FileView]]]:
        if self._by_path is None:
            self._by_path = {}
            for n in sorted(self.views):
                for v in self.views[n]:
                    self._by_path.setdefault(v.path, []).append((n, v))
        return self._by_path

    def view(self, number: int, path: str) -> FileView | None:
        return next((v for n, v in self._index().get(path, ()) if n == number), None)

    def view_at(self, path: str, number: int) -> FileView | None:
        """The file as the series left it after patch `number` (the latest view at or before it)."""
        best = None
        for n, v in self._index().get(path, ()):
            if n > number:
                break
            best = v
        return best

    def final_views(self) -> dict[str, FileView]:
        """Each touched path as the whole series leaves it."""
        out: dict[str, FileView] = {}
        for v in self.all_views():
            out[v.path] = v
        return out

    def parsed(self, text: str) -> Tree:
        """The tree-sitter parse of a text that is not a view (a base file), once per run for every
        analysis and rule that reads it."""
        return self.memo(("views.parsed", text), lambda: _parse(text))

    def base_text(self, path: str) -> str | None:
        """A file at the base commit (None in hunk-only mode or when the base lacks it)."""
        return self.base_reader(path) if self.base_reader else None

    def base_files_using(self, word: str, globs: tuple[str, ...] = ("*.c", "*.h", "*.S")) -> list[str] | None:
        """Files at the base that use `word` as a whole word; None in hunk-only mode or on failure."""
        grep = getattr(self.base_reader, "grep_files", None)
        return grep(word, globs) if grep else None

    def base_files(self, prefix: str) -> list[str]:
        """Paths at the base under `prefix` (a folder or a file); [] in hunk-only mode."""
        lister = getattr(self.base_reader, "list_files", None)
        return lister(prefix) if lister else []

    @property
    def full(self) -> bool:
        return self.mode == FULL


@dataclass(eq=False)
class PatchContext:
    series: SeriesContext
    patch: Patch

    @property
    def views(self) -> list[FileView]:
        return self.series.patch_views(self.patch.number)

    @property
    def kb(self) -> Any:
        return self.series.kb


@dataclass(eq=False)
class FileContext:
    series: SeriesContext
    patch: Patch
    view: FileView

    @property
    def kb(self) -> Any:
        return self.series.kb

    @property
    def path(self) -> str:
        return self.view.path
