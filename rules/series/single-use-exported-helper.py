"""series/single-use-exported-helper: a new global helper, declared in a header, for one call site.

Callers are counted over the whole series (and, in full mode, the base tree). For a function the
series itself introduces the count is exact without a tree: base code cannot call a symbol that did
not exist. Helpers that already existed (made non-static, moved) are only judged in full mode.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator

from pmureview.analyses.required_shape import definition_shape, required_elsewhere
from pmureview.lang.c import declarator_name, enclosing_function, function_name, text, walk
from pmureview.lazyre import lazy_re
from pmureview.record import dataclass, field
from pmureview.rule.base import Rule
from pmureview.rule.model import Confidence, Finding, RuleDocs, RuleMeta, Scope, Severity
from pmureview.views.context import FileView, SeriesContext

_MACRO = lazy_re(r"^[A-Z_][A-Z0-9_]*$")
_UPPERISH = lazy_re(r"^[A-Z_][A-Za-z0-9_]*$")  # register-field macros: HDFGRTR2_EL2_nPMICNTR_EL0
_CONST_CALLS = {"BIT", "BIT_ULL", "GENMASK", "GENMASK_ULL", "UL", "ULL", "_BITUL", "_BITULL"}
_CONST_NODES = {"number_literal", "parenthesized_expression", "binary_expression", "unary_expression",
                "argument_list", "call_expression", "cast_expression", "type_descriptor",
                "primitive_type", "sized_type_specifier", "type_identifier", "identifier", "true", "false",
                "char_literal", "comment"}
_TRIVIAL = {"0", "1", "true", "false"}  # constant predicates: series/debug-scaffolding's business
_STATIC = lazy_re(r"\bstatic\b")
_SECTION_FN = lazy_re(r"(\w+)\s*\(")


@dataclass
class _Helper:
    name: str
    header: FileView  # the view that declares it
    decl_line: int
    definition: tuple[FileView, object] | None = None  # (view, function_definition node)
    stubs: int = 0


@dataclass
class _Uses:
    sites: Counter = field(default_factory=Counter)  # (path, function or "") -> count
    unknown: bool = False  # uses outside what we can see (conservative: not single-use)

    @property
    def total(self) -> int:
        return sum(self.sites.values())


class SingleUseExportedHelper(Rule):
    meta = RuleMeta(
        id="series/single-use-exported-helper",
        title="New global helper declared in a header for a single caller, or returning a constant",
        severity=Severity.CHECK,
        confidence=Confidence.HIGH,
        scope=Scope.SERIES,
        # prefilter: needs an added prototype in a header: a .h path ends a diff line
        evidence=(r"(?m)\.h$",),
        uses_tree=True,
        docs=RuleDocs(
            what="Flags a function the series adds to a header as a non-static prototype (with its "
                 "definition in a .c file of the series) that has exactly one user in the base tree "
                 "plus the series, or whose body only returns a constant expression (a mask built "
                 "from register-field macros). Helpers with no user at all are left to "
                 "series/helper-without-user.",
            why="A global symbol, its prototype and the stubs for every configuration are API that "
                "has to be kept in sync, for a single call site. KVM/arm64 maintainers ask for such "
                "code to live next to its only user (static, or open-coded), and for a constant mask "
                "to be written where it is applied, so that the value is visible where the register "
                "is configured.",
            example="/* kvm_pmu.h */\nu64 kvm_pmu_fgt_bits(void);\n/* pmu-direct.c */\n"
                    "u64 kvm_pmu_fgt_bits(void)\n{\n\treturn HDFGRTR_EL2_PMOVS | HDFGRTR_EL2_PMMIR_EL1;\n}\n"
                    "/* config.c, the only caller */\n*vcpu_fgt(vcpu, HDFGRTR_EL2) |= kvm_pmu_fgt_bits();",
            use_instead="/* config.c */\nif (kvm_vcpu_pmu_is_partitioned(vcpu))\n"
                        "\t*vcpu_fgt(vcpu, HDFGRTR_EL2) |= HDFGRTR_EL2_PMOVS | HDFGRTR_EL2_PMMIR_EL1;",
            known_problems="An API meant for users in a later series looks single-use here; say so in "
                           "the cover letter. Without a tree only helpers the series introduces are "
                           "judged (a function made non-static or moved may have callers the hunks do "
                           "not show). Uses from assembly or macros count as uses; a caller outside the "
                           "tree's C, header and assembly files is not seen. `static inline` helpers "
                           "defined in headers are not flagged. A function another file needs exactly "
                           "as it is is not flagged either: an ops-table entry or callback in another "
                           "file (`.member = fn`, a positional entry, its address passed on), a "
                           "`__weak` default or the override of one, a BPF program; an ops table in "
                           "the definition's own file is no reason for a header prototype.",
            references=("<aTiPvS49uMOJEBrf@kernel.org> (Oliver Upton: keep the trap configuration in "
                        "config.c rather than a helper in another file)",
                        "<20251209205121.1871534-11-coltonlewis@google.com> (kvm_pmu_fgt_bits(), "
                        "kvm_pmu_fgt2_bits())"),
        ),
    )

    def check(self, ctx: SeriesContext) -> Iterator[Finding]:  # type: ignore[override]
        if ctx.files_mode:
            return  # existing files: nothing is new, and callers outside the given files are unseen
        finals = ctx.final_views()
        helpers = self._helpers(ctx, finals)
        if not helpers:
            return
        series_added = _series_added_text(ctx)
        grep = _TreeGrep.for_context(ctx) if ctx.full else None
        for h in helpers.values():
            if h.definition is None:
                continue  # defined outside the series (or by a macro): cannot judge body or novelty
            # only functions the series introduces: base code cannot call them, so the series'
            # own views hold every caller (an older function made global has callers we may not see)
            if not _novel(ctx, h.name, series_added):
                continue
            if grep is not None and grep.files_using(h.name, set(finals)) != []:
                continue  # named in base files the series leaves alone (or grep failed)
            if definition_shape(*h.definition) is not None or required_elsewhere(ctx, h.name, h.definition[0].path):
                continue  # another file's ops table or callback, a weak default/override: needs the symbol
            uses = _count_uses(ctx, finals, h.name)
            if uses.unknown or uses.total == 0:
                continue  # zero users: series/helper-without-user
            # a patch of the series that is not here (a slice of a longer posting) may add callers
            partial = any(n > h.definition[0].patch.number for n in ctx.series.missing)
            f = self._finding(h, uses, partial)
            if f is not None:
                yield f

    # -- candidates ------------------------------------------------------------------------------

    def _helpers(self, ctx: SeriesContext, finals: dict[str, FileView]) -> dict[str, _Helper]:
        out: dict[str, _Helper] = {}
        for path in finals:
            if not path.endswith(".h"):
                continue
            for hview, name, line in _added_prototypes(ctx, path):
                if name not in out and not _MACRO.match(name):
                    out[name] = _Helper(name, hview, line)
        for view in ctx.all_views():
            if view.path.endswith(".h"):
                for name in _static_inline_defs(view):
                    if name in out:
                        out[name].stubs += 1
        if not out:
            return out
        # the definition as added by its patch (in hunk-only mode the last view may not show it)
        for view in ctx.all_views():
            if not view.path.endswith(".c") or not view.added:
                continue
            for fn in walk(view.root, {"function_definition"}):
                h = out.get(function_name(fn) or "")
                if h is None or h.definition is not None:
                    continue
                if _STATIC.search(text(fn).split("{", 1)[0]) or _name_line(view, fn) not in view.added:
                    continue
                h.definition = (view, fn)
        return out

    # -- the finding -----------------------------------------------------------------------------

    def _finding(self, h: _Helper, uses: _Uses, partial: bool) -> Finding | None:
        dview, fn = h.definition  # type: ignore[misc]
        const = _constant_body(fn)
        single = uses.total == 1 and not partial
        if not single and const is None:
            return None
        def_file = dview.path.rsplit("/", 1)[-1]
        hdr = h.header.path.rsplit("/", 1)[-1]
        (cpath, cfn), _n = uses.sites.most_common(1)[0]
        caller_file = cpath.rsplit("/", 1)[-1]
        caller = f"{cfn}() in {caller_file}" if cfn else caller_file
        stubs = " and its stubs" if h.stubs else ""
        line = _name_line(dview, fn)
        if single and const is not None:
            msg = (f"{h.name}() only returns a constant and is exported from {def_file} for a single "
                   f"caller, {caller}; open-code the value there")
            note = (f"{h.name}() returns a fixed value and has one user. Writing the value where it is "
                    f"applied ({caller}) keeps it visible where it takes effect, and drops a global "
                    f"symbol, its prototype in {hdr}{stubs}.")
        elif single:
            if cpath == dview.path:
                msg = (f"{h.name}() is declared in {hdr} but only called from {def_file} itself; "
                       f"make it static")
                note = (f"Its only user, {caller}, is in the same file, so the prototype in {hdr}{stubs} "
                        f"only adds a global symbol. Make it static and drop it from the header; if a "
                        f"later series needs it elsewhere, it can be exported then.")
            else:
                msg = (f"{h.name}() is exported from {def_file} and declared in {hdr} for a single caller, "
                       f"{caller}; make it static where it is used, or open-code it")
                note = (f"A global symbol with a prototype in {hdr}{stubs} for one call site is API that "
                        f"has to be kept in sync for nothing. Keep the code next to its only user; if a "
                        f"later series needs it elsewhere, it can be exported then.")
        else:
            files = ", ".join(sorted({p.rsplit("/", 1)[-1] for p, _ in uses.sites}))
            msg = (f"{h.name}() only returns a constant; why not write the value where it is applied "
                   f"({files}) instead of exporting a function from {def_file}?")
            note = (f"The body is a constant expression ({const}). Written where the register value is "
                    f"built, it is visible to whoever reads that code, and there is no global symbol, "
                    f"prototype in {hdr}{stubs} to keep in sync.")
            return self.at_line(dview, line, msg, note=note, confidence=Confidence.MEDIUM)
        return self.at_line(dview, line, msg, note=note)


# -- declarations and definitions ------------------------------------------------------------------

def _prototypes(view: FileView) -> Iterator[tuple[str, int]]:
    """(name, line of the name) for every non-static function prototype in a header view."""
    for decl in walk(view.root, {"declaration"}):
        if any(c.type == "storage_class_specifier" and text(c) == "static" for c in decl.children):
            continue
        for d in decl.children_by_field_name("declarator"):
            name = declarator_name(d)
            if name:
                ident = next((i for i in walk(d, {"identifier"}) if text(i) == name), d)
                yield name, view.node_line(ident)


def _added_prototypes(ctx: SeriesContext, path: str) -> Iterator[tuple[FileView, str, int]]:
    """Prototypes added to `path` by some patch of the series and still there at the end."""
    final = ctx.final_views()[path]
    present = {n for n, _ in _prototypes(final)} if final.mode == "full" else None
    for view in ctx.all_views():
        if view.path != path:
            continue
        for name, line in _prototypes(view):
            if line in view.added and (present is None or name in present):
                if ctx.full:
                    base = ctx.base_text(path) or ""
                    if re.search(rf"\b{re.escape(name)}\s*\(", base) and _declared_in(base, name):
                        continue  # already declared in the base header: not new API
                yield view, name, line


def _declared_in(text_: str, name: str) -> bool:
    from pmureview.lang.c import parse

    root = parse(text_.encode("utf-8", "surrogateescape")).root_node
    for decl in walk(root, {"declaration"}):
        if any(declarator_name(d) == name for d in decl.children_by_field_name("declarator")):
            return True
    return False


def _static_inline_defs(view: FileView) -> Iterator[str]:
    for fn in walk(view.root, {"function_definition"}):
        name = function_name(fn)
        if name and _STATIC.search(text(fn).split("{", 1)[0]):
            yield name


def _name_line(view: FileView, fn) -> int:
    decl = fn.child_by_field_name("declarator")
    name = function_name(fn)
    ident = next((i for i in walk(decl, {"identifier"}) if text(i) == name), None) if decl else None
    return view.node_line(ident if ident is not None else fn)


def _constant_body(fn) -> str | None:
    """The returned expression when the body is `return <constant expression>;`, else None."""
    body = fn.child_by_field_name("body")
    stmts = [c for c in (body.named_children if body else []) if c.type != "comment"]
    if len(stmts) != 1 or stmts[0].type != "return_statement" or not stmts[0].named_children:
        return None
    expr = stmts[0].named_children[0]
    value = " ".join(text(expr).split())
    if value in _TRIVIAL:
        return None
    macros = 0
    for n in walk(expr):
        if n.type not in _CONST_NODES and n.is_named:
            return None
        if n.type == "identifier":
            if not _macro_like(text(n)):
                return None
            macros += 1
        if n.type == "call_expression":
            f = n.child_by_field_name("function")
            if f is None or f.type != "identifier" or not (text(f) in _CONST_CALLS or _macro_like(text(f))):
                return None
    return value if macros else None


def _macro_like(name: str) -> bool:
    """An all-caps macro name; sysreg field names may carry one lower-case letter per word."""
    return bool(_UPPERISH.match(name)) and all(sum(c.islower() for c in w) <= 1 for w in name.split("_"))


# -- uses --------------------------------------------------------------------------------------------

def _uses_in(view: FileView, name: str, lines: set[int] | None = None) -> Iterator[tuple[int, str]]:
    """(line, enclosing function or '') of every use of `name` that is not its own declaration."""
    word = lazy_re(rf"\b{re.escape(name)}\b")
    for node in walk(view.root, {"identifier", "preproc_arg", "ERROR"}):
        line = view.node_line(node)
        if lines is not None and line not in lines:
            continue
        if node.type in ("preproc_arg", "ERROR"):
            if node.type == "ERROR":
                continue
            for _ in word.finditer(text(node)):
                yield line, ""
            continue
        if text(node) != name or (node.parent is not None and node.parent.type == "function_declarator"):
            continue
        fn = enclosing_function(node)
        fname = function_name(fn) if fn is not None else None
        if fname == name:
            continue  # recursion or a stub's own body
        yield line, fname or _section_function(view, line)


def _section_function(view: FileView, line: int) -> str:
    """Hunk-only: the function named in the @@ header of the hunk holding `line`."""
    for h in view.change.hunks:
        if h.new_start <= line < h.new_start + h.new_len:
            m = _SECTION_FN.search(h.section or "")
            return m.group(1) if m else ""
    return ""


def _count_uses(ctx: SeriesContext, finals: dict[str, FileView], name: str) -> _Uses:
    uses = _Uses()
    word = lazy_re(rf"\b{re.escape(name)}\b")
    if ctx.full:
        for path, view in finals.items():
            if view.mode != "full":
                uses.unknown = True  # a file that fell back to its hunks
            if view.is_c:
                for _line, fname in _uses_in(view, name):
                    uses.sites[(path, fname)] += 1
            elif path.endswith(".S"):
                uses.sites[(path, "")] += len(word.findall(view.text))
        return uses
    # hunk-only: a file's last view shows only its last patch's hunks, so merge every patch's view;
    # a use keeps its identity (path, function, line text) across views, counted at its maximum
    best: Counter = Counter()
    removed: Counter = Counter()
    for view in ctx.all_views():
        here: Counter = Counter()
        if view.is_c:
            for line, fname in _uses_in(view, name, set(view.known)):
                here[(view.path, fname, " ".join(view.line_text(line).split()))] += 1
        elif view.path.endswith(".S"):
            for line in view.known:
                for _ in word.finditer(view.line_text(line)):
                    here[(view.path, "", " ".join(view.line_text(line).split()))] += 1
        for key, n in here.items():
            best[key] = max(best[key], n)
        for t in view.change.removed_text:
            if word.search(t):
                removed[(view.path, " ".join(t.split()))] += 1
    for (path, fname, line_text), n in best.items():
        gone = min(n, removed[(path, line_text)])
        if n - gone > 0:
            uses.sites[(path, fname)] += n - gone
    return uses


def _series_added_text(ctx: SeriesContext) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for p in ctx.patches:
        for f in p.files:
            out.setdefault(f.path, set()).update(" ".join(ln.text.split()) for ln in f.added_lines())
    return out


def _novel(ctx: SeriesContext, name: str, series_added: dict[str, set[str]]) -> bool:
    """Nothing that predates the series mentions `name` (as far as this mode can see)."""
    word = lazy_re(rf"\b{re.escape(name)}\b")
    if ctx.full:
        for p in ctx.patches:
            for f in p.files:
                base = ctx.base_text(f.old_path or f.path)
                if base and word.search(base):
                    return False
        return True
    for view in ctx.all_views():
        added_here = series_added.get(view.path, set())
        for line in view.known - view.added:
            t = view.line_text(line)
            if word.search(t) and " ".join(t.split()) not in added_here:
                return False  # context line from the base
        for t in view.change.removed_text:
            if word.search(t) and " ".join(t.split()) not in added_here:
                return False  # the series removes a base line naming it (moved, made non-static)
    return True


class _TreeGrep:
    """Uses in base files the series does not touch (the engine's one `git grep` per name)."""

    def __init__(self, ctx: SeriesContext) -> None:
        self.ctx = ctx

    @classmethod
    def for_context(cls, ctx: SeriesContext) -> _TreeGrep | None:
        return cls(ctx) if ctx.base_reader is not None else None

    def files_using(self, name: str, touched: set[str]) -> list[str] | None:
        paths = self.ctx.base_files_using(name)
        return None if paths is None else [p for p in paths if p not in touched]
