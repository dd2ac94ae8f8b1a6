"""The symbols a series defines, declares and uses (shared by the linkage and dead-definition rules).

Sites (where a name is defined or declared) come from tree-sitter on each patch's post-image view
plus a few line patterns tree-sitter cannot parse (DEFINE_PER_CPU(), DECLARE_PER_CPU(), asm-offsets
DEFINE()/OFFSET(), EXPORT_SYMBOL*()). Top-level sites must start in column 0: in hunk-only views a
fragment of a function body sits at the top level, and its indented locals are not globals.

Uses are tokens of the post-images (added and context lines of every patch, C and assembly alike)
with comments and string literals blanked, split in three name spaces: ordinary identifiers,
members (after `.` / `->`) and struct/union/enum tags, so `struct foo` does not use a variable
`foo`. A site's own line is not a use of its name. `##` in a macro (and `\\arg` in an assembler
macro) can build names nobody writes out: `pasted()` says which.

What existed before the series: removed lines, context lines and hunk sections not added by an
earlier patch of the series show it (`existed()`); with a base tree (full mode) a `git grep` at the
base answers, and `base_refs()` says how each base file refers to a name. In hunk-only mode a name
the pre-images never show is *unknown* (None), not new: the rules decide what that is worth.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING

from ..lang.c import declarator_name, function_name, has_ancestor, in_preproc_else, lex_line, parse, text, walk
from ..lazyre import lazy_re
from ..record import dataclass, field

if TYPE_CHECKING:
    from tree_sitter import Node

    from ..views.context import FileView, SeriesContext

FUNCTION = "function"
VARIABLE = "variable"
PERCPU = "percpu"  # DEFINE_PER_CPU*()
PROTOTYPE = "prototype"
EXTERN = "extern"  # extern object declaration (an extern prototype is a PROTOTYPE with extern=True)
DECLARE_PERCPU = "declare-percpu"
MACRO = "macro"
MEMBER = "member"
ASM_OFFSET = "asm-offset"  # DEFINE(NAME, ...) / OFFSET(NAME, ...) in asm-offsets.c
EXPORT = "export"  # EXPORT_SYMBOL*(name)

DEFINITIONS = frozenset({FUNCTION, VARIABLE, PERCPU, MACRO, MEMBER, ASM_OFFSET})
DECLARATIONS = frozenset({PROTOTYPE, EXTERN, DECLARE_PERCPU})

CODE_SUFFIXES = (".c", ".h", ".S", ".s", ".lds", ".inc")  # where a token is a use (not Documentation/)

ORDINARY = "ordinary"
MEMBER_NS = "member"
TAG = "tag"

_HEAD_STATIC = lazy_re(r"\bstatic\b")
_HEAD_INLINE = lazy_re(r"\b(?:inline|__inline|__inline__)\b")
_HEAD_ALWAYS = lazy_re(r"\b__always_inline\b")
_HEAD_WEAK = lazy_re(r"\b__weak\b|__attribute__\s*\(\(\s*(?:__)?weak")
_HEAD_EXTERN = lazy_re(r"\bextern\b")
_HEAD_UNUSED = lazy_re(r"\b__maybe_unused\b|__attribute__\s*\(\(\s*(?:__)?unused")
_PERCPU_DEF = lazy_re(r"^(static\s+)?DEFINE_PER_CPU\w*\s*\(\s*([^;]+?)\s*,\s*(\w+)\s*\)")
_PERCPU_DECL = lazy_re(r"^(?:extern\s+)?DECLARE_(?:KVM_(?:NVHE|HYP)_)?PER_CPU\w*\s*\(\s*([^;]+?)\s*,\s*(\w+)\s*\)")
_ASM_OFFSET = lazy_re(r"^\s*(?:DEFINE|OFFSET)\s*\(\s*([A-Z_][A-Z0-9_]*)\s*,")
_EXPORT = lazy_re(r"\bEXPORT_(?:SYMBOL|PER_CPU_SYMBOL|TRACEPOINT_SYMBOL|STATIC_CALL)\w*\s*\(\s*(\w+)\s*\)")
_TOKEN = lazy_re(r"(?:(->|\.)\s*|\b(struct|union|enum)\s+)?\b([A-Za-z_]\w*)")
_COMMENT_CONT = lazy_re(r"^\s*(?:\*(?:\s|/|$)|\*\*)")
_PASTE = lazy_re(r"(\w*)\s*##\s*\w+\s*(?:##\s*(\w+))?")
_ASM_PASTE = lazy_re(r"(\w*)\\\w+(?:\\\(\))?(\w*)")
_INCLUDE_GUARD = lazy_re(r"^#\s*ifndef\s+\w*_H\w*\s*$")
_NVHE_PREFIX = "__kvm_nvhe_"
_ANNOUNCE = lazy_re(r"\b(?:follow-?up|future|later|subsequent|upcoming|next|separate)\s+(?:series|patch\w*|work)"
                    r"|\bwill be used\b", re.I)
_UPPER_CALL = lazy_re(r"^[A-Z][A-Z0-9_]*$")
_WORD = lazy_re(r"\w+")


@dataclass(frozen=True, eq=False)
class Symbol:
    """One site: a definition or declaration of `name` on post-image `line` of `view`."""

    name: str
    kind: str
    view: FileView
    line: int
    added: bool = False  # this patch adds the site (its name line, or a line of its head)
    static: bool = False
    inline: bool = False  # `inline` spelled out (not __always_inline)
    always_inline: bool = False
    weak: bool = False
    extern: bool = False
    maybe_unused: bool = False
    function_like: bool = False  # macros
    body: str = ""  # a macro's body
    container: str | None = None  # members: the struct/union name (None when anonymous)
    bitfield: bool = False
    in_union: bool = False
    packed: bool = False  # members of a __packed struct (a layout)
    conditional: bool = False  # under #if/#ifdef (an include guard does not count)
    else_branch: bool = False  # under #else/#elif
    head: str = ""  # the text up to and including the name (specifiers, type)

    @property
    def path(self) -> str:
        return self.view.path

    @property
    def patch(self) -> int:
        return self.view.patch.number

    @property
    def in_header(self) -> bool:
        return self.path.endswith(".h")


@dataclass(frozen=True)
class Use:
    name: str
    path: str
    patch: int
    line: int
    added: bool
    namespace: str  # ordinary | member | tag ("ordinary" for every token of an assembly file)
    asm: bool = False


@dataclass
class BaseRef:
    """How one file at the base refers to a name (full mode)."""

    uses: int = 0
    declarations: int = 0
    definitions: int = 0
    exported: bool = False


@dataclass
class SeriesSymbols:
    ctx: SeriesContext
    _sites: dict[int, list[Symbol]] = field(default_factory=dict)  # id(view) -> sites
    _code: dict[int, list[str]] = field(default_factory=dict)  # id(view) -> stripped lines
    _code_rows: dict[int, list[tuple[int, str]]] = field(default_factory=dict)  # id(view) -> non-empty ones
    _by_name: dict[str, list[Symbol]] | None = None
    _pre: dict[str, set[str]] | None = None  # name -> paths whose pre-image shows it (ordinary/member)
    _pre_static: dict[str, set[str]] | None = None  # name -> paths where a removed line defines it static
    _pastes: list[tuple[str, str, str]] | None = None  # (prefix, suffix, path)
    _uses: dict[str, list[Use]] = field(default_factory=dict)
    _base: dict[str, dict[str, BaseRef] | None] = field(default_factory=dict)
    # Full mode: a view is a whole kernel file, and the rules ask for the sites the patches add and
    # for a few names. Those are read from the site nodes that can hold them (touching an added line,
    # holding the name), each node's sites built once (the same Symbol objects whoever asks).
    _node_sites: dict[int, dict[Node, list[Symbol]]] = field(default_factory=dict)  # id(view) -> node -> sites
    _line_sites: dict[int, list[Symbol]] = field(default_factory=dict)  # id(view) -> its line sites
    _src: dict[int, bytes] = field(default_factory=dict)  # id(view) -> the bytes its tree was parsed from
    _added_sites: dict[int, list[Symbol]] = field(default_factory=dict)  # id(view) -> its added sites
    _named: dict[str, list[Symbol]] = field(default_factory=dict)  # name -> named(name), full mode
    _named_view: dict[tuple[int, str], list[Symbol]] = field(default_factory=dict)  # (id(view), name) -> sites
    _existed_once: dict[str, bool | None] = field(default_factory=dict)  # name -> existed(name)
    _removed_words: dict[str, int] | None = None  # \w+ word of a removed line -> the first patch removing it

    # -- sites -------------------------------------------------------------------------------------

    def sites(self, view: FileView) -> list[Symbol]:
        got = self._sites.get(id(view))
        if got is None:
            try:
                if view.mode != "full":
                    got = list(_view_sites(view))
                else:  # the nodes some partial read built keep their Symbols
                    got = self._of_nodes(view, walk(view.root, _SITE_NODES)) if view.is_c else []
                    got += self._lines_of(view)
            except Exception:  # a parser surprise on a fragment: no sites rather than no review
                got = []
            self._sites[id(view)] = got
        return got

    def _src_of(self, view: FileView) -> bytes:
        got = self._src.get(id(view))
        if got is None:
            # the bytes the tree was parsed from (hunk-only views close comments left open in the gaps)
            got = self._src[id(view)] = getattr(view, "parse_text", view.text).encode("utf-8", "surrogateescape")
        return got

    def _of_nodes(self, view: FileView, nodes: Iterable[Node]) -> list[Symbol]:
        """The sites of site nodes of `view` (in the order given), each node's built once."""
        src = self._src_of(view)
        known = self._node_sites.setdefault(id(view), {})
        out: list[Symbol] = []
        for node in nodes:
            got = known.get(node)
            if got is None:
                got = known[node] = list(_node_sites(view, node, src))
            out += got
        return out

    def _lines_of(self, view: FileView) -> list[Symbol]:
        got = self._line_sites.get(id(view))
        if got is None:
            got = self._line_sites[id(view)] = list(_line_sites(view))
        return got

    def _partial(self, view: FileView) -> bool:
        """Read only some of `view`'s site nodes: a full view whose sites are not all known yet."""
        return view.mode == "full" and id(view) not in self._sites

    def all_sites(self) -> Iterator[Symbol]:
        for view in self.ctx.all_views():
            yield from self.sites(view)

    def _added_in(self, view: FileView) -> list[Symbol]:
        """The sites of `view` its patch adds: a site is added when a line of its node is."""
        if not self._partial(view):
            return [s for s in self.sites(view) if s.added]
        got = self._added_sites.get(id(view))
        if got is None:
            try:
                nodes = sorted(view.added_nodes(_SITE_NODES, touching=True), key=_preorder) if view.is_c else []
                got = [s for s in self._of_nodes(view, nodes) + self._lines_of(view) if s.added]
            except Exception:
                got = [s for s in self.sites(view) if s.added]
            self._added_sites[id(view)] = got
        return got

    def added(self, kinds: Iterable[str] | None = None) -> Iterator[Symbol]:
        """Sites some patch adds (in series order), optionally of the given kinds."""
        want = frozenset(kinds) if kinds is not None else None
        for view in self.ctx.all_views():
            for s in self._added_in(view):
                if want is None or s.kind in want:
                    yield s

    def named(self, name: str) -> list[Symbol]:
        """Every site of `name` in the series' post-images (added or context)."""
        if self._by_name is None and self.ctx.full:
            got = self._named.get(name)
            if got is None:
                got = self._named[name] = [s for view in self.ctx.all_views() for s in self._named_at(view, name)]
            return got
        if self._by_name is None:
            self._by_name = {}
            for s in self.all_sites():
                self._by_name.setdefault(s.name, []).append(s)
        return self._by_name.get(name, [])

    def _named_at(self, view: FileView, name: str) -> list[Symbol]:
        """_named_in(), once per view and name (full mode: _file_local() reads a path's views first)."""
        key = (id(view), name)
        got = self._named_view.get(key)
        if got is None:
            got = self._named_view[key] = self._named_in(view, name)
        return got

    def _named_in(self, view: FileView, name: str) -> list[Symbol]:
        """The sites of `name` in `view`. A tree site's name is the text of an identifier (or field
        identifier) inside its node: the site nodes read are the ancestors of the identifiers that
        spell `name` exactly."""
        if not self._partial(view) or not name.isascii():
            return [s for s in self.sites(view) if s.name == name]
        if name not in view.text:
            return []
        try:
            nodes: dict[Node, None] = {}
            if view.is_c:
                src, word, names = self._src_of(view), name.encode(), frozenset((name,))
                root, size = view.root, len(word)
                seen: set[Node] = set()  # ancestors already asked (with all of theirs: stop there)
                at = src.find(word)
                while at >= 0:
                    n = root.descendant_for_byte_range(at, at + size)
                    if n is not None and n.type in _NAME_TYPES and n.start_byte == at and n.end_byte == at + size:
                        n = n.parent
                        while n is not None and n not in seen:
                            seen.add(n)
                            if n.type in _SITE_NODES and _may_name(n, names):
                                nodes[n] = None
                            n = n.parent
                    at = src.find(word, at + 1)
            got = self._of_nodes(view, sorted(nodes, key=_preorder)) + self._lines_of(view)
        except Exception:
            return [s for s in self.sites(view) if s.name == name]
        return [s for s in got if s.name == name]

    def exported(self, name: str) -> bool:
        return any(s.kind == EXPORT for s in self.named(name)) or any(
            r.exported for r in (self.base_refs(name) or {}).values())

    # -- uses --------------------------------------------------------------------------------------

    def code_lines(self, view: FileView) -> list[str]:
        """The view's lines with comments and string literals blanked (unknown lines stay empty)."""
        got = self._code.get(id(view))
        if got is None:
            known = None if view.mode == "full" else view.known
            got = strip_comments(view.lines, known)
            self._code[id(view)] = got
        return got

    def _code_rows_of(self, view: FileView) -> list[tuple[int, str]]:
        """(line number, stripped text) of the view's lines with code: a hunk-only view is mostly the
        empty lines of the gaps, and every name asks."""
        got = self._code_rows.get(id(view))
        if got is None:
            got = self._code_rows[id(view)] = [(i, ln) for i, ln in enumerate(self.code_lines(view), 1) if ln]
        return got

    def uses(self, name: str) -> list[Use]:
        """Every token `name` in the series' post-images that is not one of its own sites."""
        got = self._uses.get(name)
        if got is not None:
            return got
        got = []
        for view in self.ctx.all_views():
            if name not in view.text or not view.path.endswith(CODE_SUFFIXES):
                continue
            asm = not view.is_c
            own = {s.line for s in self.named(name) if s.view is view}
            for i, ln in self._code_rows_of(view):
                if name not in ln or i in own:
                    continue
                added = i in view.added
                for ns, tok in tokens(ln):
                    if tok == name or (tok.startswith(_NVHE_PREFIX) and tok[len(_NVHE_PREFIX):] == name):
                        got.append(Use(name, view.path, view.patch.number, i, added,
                                       ORDINARY if asm else ns, asm))
        self._uses[name] = got
        return got

    def pasted(self, name: str) -> list[str]:
        """Paths where a `##` (or assembler `\\arg`) paste could build `name`: the core it pastes onto
        appears there as a token. A use nobody can see; rules treat it as unknown."""
        if self._pastes is None:
            self._pastes = []
            for view in self.ctx.all_views():
                pat = _ASM_PASTE if not view.is_c else _PASTE
                needle = "\\" if not view.is_c else "##"
                if needle not in view.text:
                    continue
                for ln in self.code_lines(view):
                    if needle in ln:
                        for m in pat.finditer(ln):
                            if m.group(1) or m.group(2):
                                self._pastes.append((m.group(1) or "", m.group(2) or "", view.path))
        out: list[str] = []
        for pre, suf, _path in self._pastes:
            if not (name.startswith(pre) and name.endswith(suf) and len(name) > len(pre) + len(suf)):
                continue
            core = name[len(pre):len(name) - len(suf)]
            out += [u.path for u in self.uses(core)] + [s.path for s in self.named(core)]
        return sorted(set(out))

    # -- before the series -------------------------------------------------------------------------

    def _scan_pre_images(self) -> None:
        self._pre, self._pre_static = {}, {}
        added_before: dict[str, set[str]] = {}  # path -> stripped texts some earlier patch added
        for patch in self.ctx.patches:
            now: dict[str, set[str]] = {}
            for change in patch.files:
                earlier = added_before.get(change.old_path or change.path, set())
                for hunk in change.hunks:
                    old = [ln.text for ln in hunk.lines if ln.kind != "+"]
                    kinds = [ln.kind for ln in hunk.lines if ln.kind != "+"]
                    # the old side is one block: a first line inside a comment starts in it
                    stripped = strip_comments(old, frozenset(range(1, len(old) + 1)))
                    sec = hunk.section.strip()
                    if sec and not any(t.startswith(sec) for t in earlier):  # git cuts sections short
                        self._note_pre(lex_line(sec, False)[0], change.old_path or change.path)
                    for raw, code in zip(old, stripped, strict=True):
                        if raw.strip() not in earlier:
                            self._note_pre(code, change.old_path or change.path)
                    for kind, raw, code in zip(kinds, old, stripped, strict=True):
                        if kind == "-" and raw.strip() not in earlier and _HEAD_STATIC.search(code):
                            for name in _static_definitions(code):
                                self._pre_static.setdefault(name, set()).add(change.old_path or change.path)
                    now.setdefault(change.path, set()).update(
                        ln.text.strip() for ln in hunk.lines if ln.kind == "+" and ln.text.strip())
            for path, texts in now.items():
                added_before.setdefault(path, set()).update(texts)

    def _note_pre(self, code: str, path: str) -> None:
        assert self._pre is not None
        for ns, tok in tokens(code):
            if ns != TAG:
                self._pre.setdefault(tok, set()).add(path)

    def pre_image_paths(self, name: str) -> set[str]:
        """Paths whose pre-images (removed/context lines, hunk sections) show `name` as an ordinary
        or member token, leaving out lines an earlier patch of the series added."""
        if self._pre is None:
            self._scan_pre_images()
        assert self._pre is not None
        return self._pre.get(name, set())

    def was_static(self, name: str) -> set[str]:
        """Paths where a removed line defines or declares `name` static (the series changes that)."""
        if self._pre_static is None:
            self._scan_pre_images()
        assert self._pre_static is not None
        return self._pre_static.get(name, set())

    def existed(self, name: str, namespaces: tuple[str, ...] = (ORDINARY,)) -> bool | None:
        """Did `name` exist before the series? True with evidence; in full mode the base answers
        (False); in hunk-only mode without evidence None (unknown)."""
        if self.pre_image_paths(name):
            return True
        if f"{name}\0{','.join(namespaces)}" not in self._base and self._used_at_base(name, namespaces):
            return True  # what base_refs() would show, without parsing a base file
        refs = self.base_refs(name, namespaces)
        if refs is None:
            return None
        if any(r.uses or r.declarations or r.definitions for r in refs.values()):
            return True
        # the files the series touches, as they were at the base
        return any(self._mentions(self.ctx.base_text(p), name, namespaces) for p in self._touched())

    def _used_at_base(self, name: str, namespaces: tuple[str, ...]) -> bool:
        """A base file outside the series shows `name` as base_refs() would count it: a code line
        holding it as a token of `namespaces` counts a use, a declaration or a definition whatever
        site the line holds, unless an EXPORT_*() there names it (the one site kind that counts
        nothing), and only a line with `EXPORT_` can hold that. Reads stripped lines, parses
        nothing; False says only that the full answer is needed."""
        files = self.ctx.base_files_using(name, ("*.c", "*.h", "*.S", "*.lds"))
        if not files:
            return False
        touched = self._touched()
        nvhe = _NVHE_PREFIX + name
        for path in files:
            if path in touched:
                continue
            src = self.ctx.base_text(path)
            if not src or name not in src:
                continue
            asm = not path.endswith((".c", ".h"))
            raw: list[str] | None = None
            for i, ln in enumerate(self._base_code(src), 1):
                if name not in ln or not any(tok in (name, nvhe) and (asm or ns in namespaces)
                                             for ns, tok in tokens(ln)):
                    continue
                if asm:
                    return True
                if raw is None:
                    raw = src.split("\n")
                if "EXPORT_" not in raw[i - 1]:
                    return True
        return False

    def _touched(self) -> set[str]:
        return {v.path for v in self.ctx.all_views()}

    def _base_code(self, src: str) -> list[str]:
        """A base file's lines with comments and literals blanked, once per run (many names ask)."""
        return self.ctx.memo(("analyses.symbols.base_code", src), lambda: strip_comments(src.split("\n"), None))

    def _mentions(self, src: str | None, name: str, namespaces: tuple[str, ...]) -> bool:
        if not src or name not in src:
            return False
        lines = [ln for ln in self._base_code(src) if name in ln]
        return any(tok == name and ns in namespaces for ln in lines for ns, tok in tokens(ln))

    def existed_in(self, name: str, path: str) -> bool:
        """`path` itself mentioned `name` before the series (its pre-images, or the base file)."""
        if path in self.pre_image_paths(name):
            return True
        return self._mentions(self.ctx.base_text(path), name, (ORDINARY, MEMBER_NS))

    def base_refs(self, name: str, namespaces: tuple[str, ...] = (ORDINARY,)) -> dict[str, BaseRef] | None:
        """Full mode: per base file (other than the ones the series touches, which the views show),
        how it refers to `name` in the given name spaces. None in hunk-only mode or when git fails."""
        key = f"{name}\0{','.join(namespaces)}"
        if key in self._base:
            return self._base[key]
        files = self.ctx.base_files_using(name, ("*.c", "*.h", "*.S", "*.lds"))
        if files is None:
            self._base[key] = None
            return None
        touched = self._touched()
        out: dict[str, BaseRef] = {}
        for path in files:
            if path in touched:
                continue
            src = self.ctx.base_text(path)
            if src is None:
                continue
            # each base file is parsed once per run (ctx.parsed), and only the nodes naming `name` are read
            sites = list(_sites_in_text(path, src, name, self.ctx.parsed(src))) \
                if path.endswith((".c", ".h")) and name in src else ()
            out[path] = _base_ref(path, src, name, namespaces, sites, self._base_code(src))
        self._base[key] = out
        return out

    # -- linkage -----------------------------------------------------------------------------------

    def file_local_globals(self) -> list[FileLocalGlobal]:
        """Functions and objects with global linkage (defined in a .c file without `static`) that the
        series adds, makes non-static or declares in a header, and that nothing outside their
        defining file references: no token in another file of the series (nor, in full mode, at the
        base), no `##` paste another file could complete, no EXPORT_SYMBOL*(), no other definition
        elsewhere (an interface: weak default, per-arch or per-object copies), no __weak."""
        return self.ctx.memo(("analyses.symbols.file_local_globals",), self._file_local_globals)

    def _file_local_globals(self) -> list[FileLocalGlobal]:
        out: list[FileLocalGlobal] = []
        seen: set[str] = set()
        for s in self._linkage_candidates():
            if s.name in seen:
                continue
            seen.add(s.name)
            got = self._file_local(s.name, s.path)
            if got is not None:
                out.append(got)
        return out

    def _linkage_candidates(self) -> Iterator[Symbol]:
        yield from self.added(_LINKAGE_KINDS)
        if self.ctx.full:
            # a global the base already had, whose references the series changes (full views hold
            # every site of a touched file)
            removed = {tok for p in self.ctx.patches for f in p.files
                       for t in strip_comments(list(f.removed_text), None) for _ns, tok in tokens(t)}
            for view in self.ctx.all_views():
                for s in self._defining(view, removed):
                    if s.kind in (FUNCTION, VARIABLE, PERCPU) and not s.static and s.name in removed:
                        yield s

    def _defining(self, view: FileView, names: set[str]) -> list[Symbol]:
        """The sites of `view` that can define one of `names` as a function or an object: those of the
        top-level definitions and declarations whose declarators name one (and the line sites)."""
        if not self._partial(view):
            return self.sites(view)
        try:
            nodes: list[Node] = []
            if view.is_c and len(names) <= _FEW_NAMES:
                # a tree site's name is the text of a node: an ASCII name the parsed bytes lack has none
                src = self._src_of(view)
                names = {n for n in names if not n.isascii() or n.encode() in src}
            if view.is_c and names:
                # the functions' names are listed once per view (shared with other rules): only the
                # declarations are read here, then both go back in walk order
                nodes = [fn for fname, fn in view.functions() if fname in names and fn.start_point[1] == 0]
                nodes += [n for n in walk(view.root, _DECLARATION)
                          if n.start_point[1] == 0 and _may_name(n, names, True)]  # locals: indented
                nodes.sort(key=_preorder)
            return self._of_nodes(view, nodes) + self._lines_of(view)
        except Exception:
            return self.sites(view)

    def _ruled_out(self, name: str, path: str) -> bool:
        """Full mode, `path` a file with a site of `name`: _file_local() says None, found without
        reading the other views (whole files to search). Either the last definition in `path` rules
        the name out (outside a .c file, static, __weak, an #else stub), or the name existed and no
        evidence branch can take it: no patch changes its references, adds a header declaration of it
        or removes a static definition of it."""
        d = None  # the last definition in `path`: from its last view back to the first with one
        for view in reversed([v for v in self.ctx.all_views() if v.path == path]):
            d = next((s for s in reversed(self._named_at(view, name)) if s.kind in (FUNCTION, VARIABLE, PERCPU)), None)
            if d is not None:
                break
        if d is not None and (not path.endswith(".c") or d.static or d.weak or d.else_branch):
            return True
        return (not self.was_static(name) and self._reference_changed(name) is None
                and not any(s.kind in DECLARATIONS and s.added for view in self.ctx.all_views()
                            if view.path.endswith(".h") for s in self._named_at(view, name))
                and self._existed(name) is True)

    def _existed(self, name: str) -> bool | None:
        """existed(name), once per name (_ruled_out() and _file_local() both ask)."""
        if name not in self._existed_once:
            self._existed_once[name] = self.existed(name)
        return self._existed_once[name]

    def _file_local(self, name: str, path: str) -> FileLocalGlobal | None:
        """path: a file with a site of `name` (in full mode _ruled_out() answers first)."""
        if self.ctx.full and self._ruled_out(name, path):
            return None
        sites = self.named(name)
        last: dict[str, Symbol] = {}  # path -> its last definition (the state the series leaves)
        for d in sites:
            if d.kind in (FUNCTION, VARIABLE, PERCPU):
                if not d.path.endswith(".c"):
                    return None  # defined in a header (or asm): not this question
                last[d.path] = d
        defs = tuple(last.values())
        if not defs or any(d.static or d.weak or d.else_branch for d in defs):
            return None
        if any(s.kind == EXPORT for s in sites):
            return None
        decls = tuple(s for s in sites if s.kind in DECLARATIONS and s.added and s.in_header)
        paths = frozenset(last)
        new_def = any(d.added for d in defs)
        existed = self._existed(name)
        if new_def and paths & self.was_static(name):
            evidence = "made-non-static"
            # the symbol was static: whatever referred to it before the series is in its unit
            local = paths | {p for p in self.pre_image_paths(name) if p.endswith(".h")}
        elif existed is True and self.ctx.full and (decls or self._reference_changed(name)):
            evidence = "base"
            local = paths
            k = self._reference_changed(name)
            # anchor on the definition as the patch that changed its references shows it
            defs = tuple(next((d for d in sites if d.kind == FUNCTION and d.patch == k and d.path == x.path), x)
                         for x in defs)
        elif existed is not True and decls:
            evidence = "declared"
            local = paths
        elif (existed is not True and new_def and defs[0].kind == FUNCTION
              and not any(s.kind in DECLARATIONS for s in sites) and not self._renamed(defs)):
            evidence = "new"  # no prototype anywhere: -Wmissing-prototypes territory
            local = paths
        else:
            return None
        uses = [u for u in self.uses(name) if u.namespace == ORDINARY]
        if not any(u.path in local for u in uses):
            return None  # no user at all: dead code, another question
        if any(u.path not in local for u in uses) or any(p not in local for p in self.pasted(name)):
            return None
        refs = self.base_refs(name)
        if refs is not None:
            for path, r in refs.items():
                if path not in local and (r.uses or r.definitions or r.exported):
                    return None
        return FileLocalGlobal(name, defs, decls, local, evidence, refs is not None)

    # -- dead definitions ----------------------------------------------------------------------------

    def unreferenced(self, kinds: Iterable[str] = (MEMBER, MACRO, ASM_OFFSET)) -> list[Symbol]:
        """Definitions some patch adds that nothing references: no token of the name anywhere in
        the series' post-images (C or assembly, any name space) other than its own sites, no `##`
        paste that could build it, and no sign that it existed before the series (in full mode: no
        file of the base mentions it). One site per name, the first patch's."""
        out: list[Symbol] = []
        seen: set[str] = set()
        for s in self.added(kinds):
            if s.name in seen:
                continue
            seen.add(s.name)
            if self.uses(s.name) or self.pasted(s.name) or self.existed(s.name, (ORDINARY, MEMBER_NS)):
                continue
            out.append(s)
        return out

    def container_used(self, member: Symbol) -> bool:
        """The struct/union holding `member` is referred to (by tag) somewhere else in the series."""
        if not member.container:
            return False
        own = re.compile(rf"^\s*(?:typedef\s+)?(?:struct|union)\s+{re.escape(member.container)}\s*\{{")
        for u in self.uses(member.container):
            view = self.ctx.view(u.patch, u.path)
            if u.namespace == TAG and view is not None and not own.match(view.line_text(u.line)):
                return True
        return False

    def _renamed(self, defs: tuple[Symbol, ...]) -> bool:
        """The patch adding a definition removes one of the same shape under another name."""
        for d in defs:
            if not d.added:
                continue
            line = d.view.line_text(d.line)
            shape = re.compile(re.escape(line.strip()).replace(re.escape(d.name), r"\w+", 1) + "$")
            if any(shape.match(t.strip()) for t in d.view.change.removed_text):
                return True
        return False

    def _reference_changed(self, name: str) -> int | None:
        """The first patch whose removed lines referred to `name` (its users changed)."""
        if _WORD.fullmatch(name):
            # `\bname\b` matches a text iff name is one of its maximal \w runs: one word index of the
            # removed lines per run, not a regex per name
            if self._removed_words is None:
                self._removed_words = {}
                for p in self.ctx.patches:
                    for f in p.files:
                        for w in _WORD.findall("\n".join(f.removed_text)):
                            self._removed_words.setdefault(w, p.number)
            return self._removed_words.get(name)
        word = re.compile(rf"\b{re.escape(name)}\b")
        return next((p.number for p in self.ctx.patches for f in p.files
                     if any(word.search(t) for t in f.removed_text)), None)

    # -- series shape ------------------------------------------------------------------------------

    def announced(self, name: str) -> bool:
        """A sentence of a commit message or the cover letter names `name` with a user to come
        ("will be used by the follow-up series")."""
        texts = [p.message for p in self.ctx.patches]
        if self.ctx.series.cover:
            texts.append(self.ctx.series.cover.body)
        return any(name in s and _ANNOUNCE.search(s) for s in re.split(r"(?<=[.!?])\s+", "\n".join(texts)))

    def complete(self, after: int = 0) -> bool:
        """No patch after `after` is missing (0: the whole series is here)."""
        return not any(n > after for n in self.ctx.series.missing)


_LINKAGE_KINDS = frozenset({FUNCTION, VARIABLE, PERCPU, PROTOTYPE, EXTERN, DECLARE_PERCPU})


@dataclass(frozen=True)
class FileLocalGlobal:
    """A symbol with global linkage that only its defining file(s) use (see file_local_globals)."""

    name: str
    definitions: tuple[Symbol, ...]  # its non-static definitions, as the series leaves them
    declarations: tuple[Symbol, ...]  # header declarations the series adds (prototype, extern, DECLARE_PER_CPU)
    local: frozenset[str]  # the paths whose references do not count (its file, its unit's headers)
    evidence: str  # new | declared | made-non-static | base (full mode: global before the series)
    exact: bool  # the base tree answered for the rest of the tree


def symbols(ctx: SeriesContext) -> SeriesSymbols:
    """The series' symbols, built once per run and shared by every rule."""
    return ctx.memo(("analyses.symbols",), lambda: SeriesSymbols(ctx))


# -- lexing ---------------------------------------------------------------------------------------------

def strip_comments(lines: list[str], known: frozenset[int] | None) -> list[str]:
    """Lines with comments and string/char literals blanked. `known` (hunk-only views) marks the
    lines that exist: a block of known lines starting inside a comment (` * text`) starts in it."""
    if known is None:
        # every line exists: lex_line()'s lexer over the joined text, in one regex pass (whole
        # kernel files in full mode); a line holding a newline of its own cannot be joined
        out = _BLANKS.sub(_blank, "\n".join(lines)).split("\n")
        if len(out) == len(lines):
            return out
    return _strip_lines(lines, known)


def _strip_lines(lines: list[str], known: frozenset[int] | None) -> list[str]:
    """strip_comments() line by line, through lex_line() (tests compare the two)."""
    out: list[str] = []
    in_c = False
    prev_known = False
    for i, ln in enumerate(lines, 1):
        k = known is None or i in known
        if not k:
            out.append("")
            prev_known = False
            in_c = False
            continue
        if known is not None and not prev_known and _COMMENT_CONT.match(ln):
            in_c = True
        prev_known = True
        code, in_c, _, _ = lex_line(ln, in_c)
        out.append(code)
    return out


# what lex_line() blanks, over a whole text: a block comment up to its first `*/` (group 1 when it
# runs to the end of the text), a `//` comment, a stray `*/`, a string or char literal of one line;
# the same alternatives in the same order at each start. The leading class lets the regex engine skip
# every other character, and the comment and string bodies are unrolled loops (no lazy `.*?`).
_BLANKS = lazy_re(r"""[/*"'](?:(?<=/)(?:\*[^*]*\*+(?:[^/*][^*]*\*+)*/|(\*(?s:.*))|/[^\n]*)|(?<=\*)/"""
                  r"""|(?<=")[^"\\\n]*(?:\\.[^"\\\n]*)*"|(?<=')(?:\\.|[^'\\\n])+')""")


def _blank(m: re.Match) -> str:
    """A _BLANKS match as lex_line() leaves it: a literal is one space, a block comment keeps its
    line breaks and one space after it when it is closed, the rest goes."""
    s = m.group()
    if s[0] in "\"'":
        return " "
    if s.startswith("/*"):
        return "\n" * s.count("\n") + ("" if m.group(1) else " ")
    return ""


def tokens(code: str) -> Iterator[tuple[str, str]]:
    """(namespace, identifier) for every identifier of a stripped line."""
    for m in _TOKEN.finditer(code):
        if m.group(1):
            yield MEMBER_NS, m.group(3)
        elif m.group(2):
            yield TAG, m.group(3)
        else:
            yield ORDINARY, m.group(3)


def _static_definitions(code: str) -> Iterator[str]:
    """Names a (removed) line defines or declares static: `static T name(`, `static T name =|;|[`,
    `static DEFINE_PER_CPU(T, name)`."""
    m = _PERCPU_DEF.match(code.strip())
    if m:
        if m.group(1):
            yield m.group(3)
        return
    m = re.match(r"^\s*static\b[^=;{(]*?\b([A-Za-z_]\w*)\s*(?:\(|=|;|\[)", code)
    if m:
        yield m.group(1)


# -- sites from one view --------------------------------------------------------------------------------

_SITE_NODES = frozenset({"function_definition", "declaration", "preproc_def", "preproc_function_def",
                         "field_declaration"})
_DECLARATION = frozenset({"declaration"})
_FEW_NAMES = 16  # _defining() looks a few names up in a view's text before reading its tree
_MEMBER_HOSTS = frozenset({"translation_unit", "declaration", "type_definition", "field_declaration",
                           "preproc_if", "preproc_ifdef", "preproc_else", "preproc_elif"})
_LOCAL_SCOPES = frozenset({"function_definition", "compound_statement", "field_declaration_list",
                           "parameter_list"})


def _view_sites(view: FileView, only: str | None = None) -> Iterator[Symbol]:
    """only: just the sites that can be named `only` (every other one is skipped before it is built;
    a site's name is text of its node or line)."""
    if view.is_c:
        yield from _tree_sites(view, only)
    yield from _line_sites(view, only)


def _line_sites(view: FileView, only: str | None = None) -> Iterator[Symbol]:
    asm_offsets = view.path.endswith("asm-offsets.c")
    if not asm_offsets and "PER_CPU" not in view.text and "EXPORT_" not in view.text:
        return  # every line site needs one of these on its line (most files: no pass over the lines)
    for i, ln in enumerate(view.lines, 1):
        if not ln or (i not in view.known and view.mode != "full") or (only is not None and only not in ln):
            continue
        added = i in view.added
        if "PER_CPU" in ln:
            m = _PERCPU_DEF.match(ln)
            if m:
                yield Symbol(m.group(3), PERCPU, view, i, added, static=bool(m.group(1)), head=m.group(0))
                continue
            m = _PERCPU_DECL.match(ln)
            if m:
                yield Symbol(m.group(2), DECLARE_PERCPU, view, i, added, head=m.group(0))
                continue
        if asm_offsets and "(" in ln:
            m = _ASM_OFFSET.match(ln)
            if m:
                yield Symbol(m.group(1), ASM_OFFSET, view, i, added, head=m.group(0))
                continue
        if "EXPORT_" in ln:
            for m in _EXPORT.finditer(ln):
                yield Symbol(m.group(1), EXPORT, view, i, added)


def _tree_sites(view: FileView, only: str | None = None) -> Iterator[Symbol]:
    # the bytes the tree was parsed from (hunk-only views close comments left open in the gaps)
    src = getattr(view, "parse_text", view.text).encode("utf-8", "surrogateescape")
    word = only.encode("utf-8", "surrogateescape") if only is not None else None
    for node in walk(view.root, _SITE_NODES):
        if word is not None and src.find(word, node.start_byte, node.end_byte) < 0:
            continue  # a site's name is text inside its node
        yield from _node_sites(view, node, src)


def _node_sites(view: FileView, node: Node, src: bytes) -> Iterator[Symbol]:
    """The sites one site node (a _SITE_NODES type) makes."""
    t = node.type
    if t == "field_declaration":
        yield from _members(view, node)
        return
    if t in ("preproc_def", "preproc_function_def"):
        yield from _macro(view, node)
        return
    if node.start_point[1] != 0 or has_ancestor(node, _LOCAL_SCOPES):
        return  # not at the top level: a local, or a fragment of a function body
    if t == "function_definition":
        sym = _function(view, node, src)
        if sym is not None:
            yield sym
    else:
        yield from _declaration(view, node, src)


def _preorder(node: Node) -> tuple[int, int, int]:
    """The order `walk` gives nodes: by start, the longer first, an ancestor before a same-span child."""
    depth = 0
    p = node.parent
    while p is not None:
        depth += 1
        p = p.parent
    return node.start_byte, -node.end_byte, depth


def _may_name(node: Node, names: set[str] | frozenset[str], objects: bool = False) -> bool:
    """Whether the site node can make a site named in `names` (each name as _node_sites finds it,
    without building anything); objects: only function and object sites (definitions, declarations)."""
    t = node.type
    if t == "function_definition":
        return node.start_point[1] == 0 and function_name(node) in names
    if t == "declaration":
        return node.start_point[1] == 0 and any(
            (declarator_name(d) or _object_name(d)) in names for d in node.children_by_field_name("declarator"))
    if objects:
        return False
    if t == "field_declaration":
        for d in node.children_by_field_name("declarator"):
            ident = d
            while ident is not None and ident.type != "field_identifier":
                ident = ident.child_by_field_name("declarator")
            if ident is not None and text(ident) in names:
                return True
        return False
    return text(node.child_by_field_name("name")) in names  # macros


def _macro(view: FileView, node: Node) -> Iterator[Symbol]:
    name = text(node.child_by_field_name("name"))
    if name:
        line = view.node_line(node)
        yield Symbol(name, MACRO, view, line, line in view.added,
                     function_like=node.type == "preproc_function_def",
                     body=text(node.child_by_field_name("value")), conditional=_conditional(node),
                     else_branch=in_preproc_else(node), head=view.line_text(line))


def _function(view: FileView, fn: Node, src: bytes) -> Symbol | None:
    name = function_name(fn)
    if not name or _UPPER_CALL.match(name):
        return None
    ident = _name_node(fn.child_by_field_name("declarator"), name)
    if ident is None:
        return None
    head = src[fn.start_byte:ident.end_byte].decode("utf-8", "replace")
    line = view.node_line(ident)
    added = any(n in view.added for n in range(view.node_line(fn), line + 1))
    return Symbol(name, FUNCTION, view, line, added, static=bool(_HEAD_STATIC.search(head)),
                  inline=bool(_HEAD_INLINE.search(head)), always_inline=bool(_HEAD_ALWAYS.search(head)),
                  weak=bool(_HEAD_WEAK.search(head)), extern=bool(_HEAD_EXTERN.search(head)),
                  maybe_unused=bool(_HEAD_UNUSED.search(head)), conditional=_conditional(fn),
                  else_branch=in_preproc_else(fn), head=head)


def _declaration(view: FileView, decl: Node, src: bytes) -> Iterator[Symbol]:
    first = text(decl).lstrip()
    if first.startswith(("DEFINE_", "DECLARE_", "EXPORT_")):
        return  # macro invocations (the line patterns read them)
    for d in decl.children_by_field_name("declarator"):
        proto = declarator_name(d)
        name = proto or _object_name(d)
        if not name or _UPPER_CALL.match(name):
            continue
        ident = _name_node(d, name)
        if ident is None:
            continue
        head = src[decl.start_byte:ident.end_byte].decode("utf-8", "replace")
        spec = src[decl.start_byte:d.start_byte].decode("utf-8", "replace")
        line = view.node_line(ident)
        added = any(n in view.added for n in range(view.node_line(decl), line + 1))
        extern = bool(_HEAD_EXTERN.search(spec))
        kind = PROTOTYPE if proto else (EXTERN if extern else VARIABLE)
        yield Symbol(name, kind, view, line, added, static=bool(_HEAD_STATIC.search(spec)),
                     inline=bool(_HEAD_INLINE.search(spec)), always_inline=bool(_HEAD_ALWAYS.search(spec)),
                     weak=bool(_HEAD_WEAK.search(head)), extern=extern,
                     maybe_unused=bool(_HEAD_UNUSED.search(head)), conditional=_conditional(decl),
                     else_branch=in_preproc_else(decl), head=head)


def _members(view: FileView, field_decl: Node) -> Iterator[Symbol]:
    body = field_decl.parent
    spec = body.parent if body is not None else None
    if body is None or body.type != "field_declaration_list" or spec is None:
        return
    # a real member declaration: `type name;` in a struct that is declared, not a fragment of an
    # initializer a hunk shows without its head (`{ &foo, NULL }` reads as a struct body)
    if not text(field_decl).rstrip().endswith(";") or field_decl.has_error:
        return
    if spec.parent is not None and spec.parent.type not in _MEMBER_HOSTS:
        return
    container = text(spec.child_by_field_name("name")) or None
    in_union = False
    n: Node | None = spec
    while n is not None and n.type != "translation_unit":
        if n.type == "union_specifier":
            in_union = True
        n = n.parent
    bitfield = any(c.type == "bitfield_clause" for c in field_decl.children)
    outer = spec.parent if spec.parent is not None and spec.parent.type != "translation_unit" else spec
    packed = "packed" in text(outer)
    for d in field_decl.children_by_field_name("declarator"):
        ident = d
        while ident is not None and ident.type != "field_identifier":
            ident = ident.child_by_field_name("declarator")
        if ident is None:
            continue
        line = view.node_line(ident)
        yield Symbol(text(ident), MEMBER, view, line, line in view.added, container=container,
                     bitfield=bitfield, in_union=in_union, packed=packed, conditional=_conditional(field_decl),
                     else_branch=in_preproc_else(field_decl), head=view.line_text(line))


def _object_name(d: Node) -> str | None:
    n: Node | None = d
    while n is not None and n.type != "identifier":
        if n.type == "parenthesized_declarator":
            n = next((c for c in n.named_children), None)
            continue
        n = n.child_by_field_name("declarator")
    return text(n) or None


def _name_node(d: Node | None, name: str) -> Node | None:
    """The first identifier (or field identifier) `name` under `d` in pre-order: a plain walk that
    stops there (the name comes before the parameters, which a query would capture too)."""
    if d is None:
        return None
    stack = [d]
    while stack:
        n = stack.pop()
        if n.type in _NAME_TYPES and text(n) == name:
            return n
        stack.extend(reversed(n.children))
    return None


_NAME_TYPES = frozenset({"identifier", "field_identifier"})


def _conditional(node: Node) -> bool:
    n = node.parent
    while n is not None:
        if n.type in ("preproc_if", "preproc_ifdef", "preproc_else", "preproc_elif", "preproc_elifdef"):
            first = text(n).split("\n", 1)[0]
            if not _INCLUDE_GUARD.match(first):
                return True
        n = n.parent
    return False


# -- the base (full mode) -------------------------------------------------------------------------------

def _base_ref(path: str, src: str, name: str, namespaces: tuple[str, ...],
              sites: Iterable[tuple[str, int]] | None = None, code: list[str] | None = None) -> BaseRef:
    """sites: the (kind, line) of `name`'s sites in `src` when already known (`_sites_in_text`);
    code: `src`'s lines through strip_comments, when already known."""
    ref = BaseRef()
    if code is None:
        code = strip_comments(src.split("\n"), None)
    site_lines: dict[int, str] = {}
    if path.endswith((".c", ".h")) and name in src:
        for kind, line in sites if sites is not None else _sites_in_text(path, src, name):
            site_lines[line] = kind
    for i, ln in enumerate(code, 1):
        if name not in ln:
            continue
        kind = site_lines.get(i)
        if kind == EXPORT:
            ref.exported = True
            continue
        if kind in DECLARATIONS:
            ref.declarations += 1
            continue
        if kind in DEFINITIONS:
            ref.definitions += 1
            continue
        asm = not path.endswith((".c", ".h"))
        for ns, tok in tokens(ln):
            if (tok == name or tok == _NVHE_PREFIX + name) and (asm or ns in namespaces):
                ref.uses += 1
    return ref


def _sites_in_text(path: str, src: str, name: str, tree=None) -> Iterator[tuple[str, int]]:
    """(kind, line) of the sites of `name` in a base file (not a view; tree: its parse, if known)."""
    if tree is None:
        tree = parse(src.encode("utf-8", "surrogateescape"))
    lines = src.split("\n")
    stub = _TextView(path, src, lines, tree)
    for s in _view_sites(stub, name):  # type: ignore[arg-type]
        if s.name == name:
            yield s.kind, s.line


class _TextView:
    """The few FileView members the site finders read, for a base file that is not a view."""

    mode = "full"
    added: frozenset[int] = frozenset()
    known: frozenset[int] = frozenset()

    def __init__(self, path: str, src: str, lines: list[str], tree) -> None:
        self.path, self.text, self.lines, self.root = path, src, lines, tree.root_node

    @property
    def is_c(self) -> bool:
        return self.path.endswith((".c", ".h"))

    def line_text(self, line: int) -> str:
        return self.lines[line - 1] if 0 < line <= len(self.lines) else ""

    @staticmethod
    def node_line(node: Node) -> int:
        return node.start_point[0] + 1
