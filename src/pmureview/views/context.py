"""What a rule sees: the series, per-patch and per-file views, and the kernel knowledge.

A FileView is one touched file as patch N leaves it. In full mode its text is the real post-image
(the base blob with patches 1..N applied); in hunk-only mode it is rebuilt from the hunks with every
line at its real post-image number and unknown lines left empty, so node rows map to real lines.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from functools import cache
from typing import TYPE_CHECKING, Any

from ..record import dataclass, field
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
    _sorted_added: tuple[frozenset[int], list[int], Callable[..., int]] | None = field(default=None, repr=False)
    # plain attributes, not properties: 500 patches ask path ~300,000 times, is_c ~80,000
    path: str = field(init=False, repr=False)  # change.path
    is_c: bool = field(init=False, repr=False)  # a C source or header

    def __post_init__(self) -> None:
        self.path = self.change.path
        self.is_c = self.path.endswith((".c", ".h"))

    # full mode: the previous patch's view of this file and the line blocks this patch replaced in it
    # (first old line, old count, first new line, new count; 0-based): comments are lexed again only
    # where the patch changed them
    _prev: tuple[FileView, list[tuple[int, int, int, int]]] | None = field(default=None, repr=False)
    _comment_scan: tuple[list[bool], list[bool]] | None = field(default=None, repr=False)

    def follows(self, prev: FileView, blocks: list[tuple[int, int, int, int]]) -> None:
        """This view is `prev`'s text with `blocks` replaced (full mode, the next patch of the file)."""
        self._prev = (prev, blocks)

    @property
    def lines(self) -> list[str]:
        if self._lines is None:
            self._lines = self.text.split("\n")
        return self._lines

    def line_text(self, line: int) -> str:
        """The text of 1-based post-image line `line` ('' when unknown)."""
        lines = self._lines if self._lines is not None else self.lines  # rules ask this ~40,000 times
        return lines[line - 1] if 0 < line <= len(lines) else ""

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
            if not self.is_c:
                self._comment_lines = frozenset()
            elif self.mode != FULL:
                from ..lang.c import comment_only_lines

                self._comment_lines = comment_only_lines(self.parse_text.split("\n"))
            else:
                flags = self._full_comment_scan()[0]
                self._comment_lines = frozenset(i for i, f in enumerate(flags, 1) if f)
        return self._comment_lines

    def _full_comment_scan(self) -> tuple[list[bool], list[bool]]:
        """comment_scan() of a full view: from the previous patch's view of the file when that one was
        scanned (only the lines this patch changed, and what their comments reach, are lexed)."""
        if self._comment_scan is None:
            from ..lang.c import comment_scan

            old, same = None, []
            if self._prev is not None and self._prev[0]._comment_scan is not None:
                prev, blocks = self._prev
                old = prev._comment_scan
                here = there = 0
                for a, olen, b, nlen in blocks:
                    same.append((here, there, b - here))
                    here, there = b + nlen, a + olen
                same.append((here, there, len(self.lines) - here))
                if len(prev.lines) - there != len(self.lines) - here or any(c < 0 for _, _, c in same):
                    old, same = None, []  # not this view's history after all: lex it all
            self._comment_scan = comment_scan(self.lines, old, same)
        return self._comment_scan

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

    def added_may_be_in_define(self) -> bool:
        """Can an added line lie in a #define: is one a `#` line, or the line after a `\\`
        continuation? (A macro's first line starts with `#`; each later one follows a line ending in
        a backslash.) Rules scanning a whole file for macros skip the scan without one."""
        lines = self.lines
        for n in self.added:
            if 0 < n <= len(lines) and (lines[n - 1].lstrip().startswith("#") or
                                        (n > 1 and lines[n - 2].endswith("\\"))):
                return True
        return False

    def touches_added(self, node: Node) -> bool:
        return self.first_added_line(node) is not None

    def first_added_line(self, node: Node) -> int | None:
        """The first added line among the node's lines (a bisection: a function spans many lines)."""
        got = self._sorted_added
        if got is None or got[0] is not self.added:
            from bisect import bisect_left  # here, not at import: the hook path counts milliseconds

            got = self._sorted_added = (self.added, sorted(self.added), bisect_left)
        _, added, bisect_left = got
        i = bisect_left(added, node.start_point[0] + 1)
        return added[i] if i < len(added) and added[i] <= node.end_point[0] + 1 else None

    def added_nodes(self, types: frozenset[str], touching: bool = False) -> list[Node]:
        """The nodes of `types` starting on an added line (touching: with an added line anywhere in
        their lines), in pre-order (as `walk` gives them): each run of added lines is searched on its
        own, not the whole file (full mode: a kernel file)."""
        from ..lang.c import range_nodes, walk

        runs: list[list[int]] = []
        for n in sorted(self.added):
            if runs and n == runs[-1][1] + 1:
                runs[-1][1] = n
            else:
                runs.append([n, n])
        got: dict[tuple[int, int, int], Node] = {}
        for first, last in runs:
            # each run of added lines is asked once per type set: a short run is captured once for
            # every set (lang.c), a long one queried per set
            found = range_nodes(self.root, types, (first, last))
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


@cache
def _bisect() -> tuple[Callable[..., int], Callable[..., int]]:
    """bisect_left, bisect_right, imported on first use (not on the hook path's import)."""
    from bisect import bisect_left, bisect_right

    return bisect_left, bisect_right


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
    _numbers: dict[str, list[int]] = field(default_factory=dict, repr=False)  # path -> its patch numbers

    def __post_init__(self) -> None:
        from ..lang.c import new_run

        new_run()  # the tree caches of lang.c hold nodes (so trees) of the previous run

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
            self._by_path, self._numbers = {}, {}
            for n in sorted(self.views):
                for v in self.views[n]:
                    self._by_path.setdefault(v.path, []).append((n, v))
        return self._by_path

    def _at(self, path: str) -> tuple[list[tuple[int, FileView]], list[int]]:
        pairs = self._index().get(path, [])
        numbers = self._numbers.get(path)
        if numbers is None:
            numbers = self._numbers[path] = [n for n, _ in pairs]
        return pairs, numbers

    def view(self, number: int, path: str) -> FileView | None:
        pairs, numbers = self._at(path)  # bisection: 500 patches ask ~60,000 times
        i = _bisect()[0](numbers, number)
        return pairs[i][1] if i < len(numbers) and numbers[i] == number else None

    def view_at(self, path: str, number: int) -> FileView | None:
        """The file as the series left it after patch `number` (the latest view at or before it)."""
        pairs, numbers = self._at(path)
        i = _bisect()[1](numbers, number)
        return pairs[i - 1][1] if i else None

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
