"""series/helper-without-user: a function the series adds that nothing uses (yet).

A helper is a function definition (static, static inline in a header, or global) or a lower-case
function-like macro added by patch k. Uses are identifiers anywhere in the series' post-images other
than its own definitions and prototypes (calls, address taken, callback fields, macro arguments),
plus token-pasted uses (`handle_##x` with `x` written elsewhere); assembly counts by word. Only
helpers the series introduces are judged (base code cannot use a name that did not exist), and a
non-static function only when the series adds its prototype (otherwise a base header may declare
it, with callers in generic code that hunk-only mode or a partial tree cannot show). In hunk-only
mode a helper in a file the series does not create is judged only when a later patch of the series
brings its first user, and not the very next patch (a preparatory patch right before its user is the
usual split): the unseen rest of the file could hold a caller (a real base cannot, but series
rebuilt from partial trees do), so having no user at all proves nothing there.
"""

from __future__ import annotations

import bisect
import functools
import itertools
import re
import weakref
from collections.abc import Iterator

from pmureview.lang.c import (
    declarator_name,
    enclosing_function,
    function_name,
    has_ancestor,
    in_preproc_else,
    text,
    walk,
)
from pmureview.lazyre import lazy_re
from pmureview.record import dataclass, field
from pmureview.rule.base import Rule
from pmureview.rule.model import Confidence, Finding, RuleDocs, RuleMeta, Scope, Severity
from pmureview.series.model import ChangeKind
from pmureview.views.context import FileView, SeriesContext

_EXEMPT_NAME = lazy_re(r"^(?:kvm_arch_|__kvm_arch_|arch_|__arch_|__se_sys|__do_sys|init_module$|"
                          r"cleanup_module$|main$)")
_EXEMPT_PATH = lazy_re(r"^(?:include/uapi/|arch/\w+/include/uapi/|tools/|scripts/|samples/|"
                          r"Documentation/)")
_EXPORT = lazy_re(r"\bEXPORT_(?:SYMBOL|TRACEPOINT_SYMBOL|PER_CPU_SYMBOL)\w*\s*\(\s*(\w+)\s*\)")
# a match of _EXPORT / _INIT needs one of these words: skip the regex on texts without any
_EXPORT_NEEDLES = ("EXPORT_",)
_INIT_NEEDLES = ("module_init", "module_exit", "initcall", "__setup", "early_param", "core_param")
_INIT = lazy_re(r"\b(?:module_init|module_exit|\w*initcall\w*|__setup|early_param|core_param|"
                   r"late_initcall\w*)\s*\(\s*(\w+)")
_ANNOUNCE = lazy_re(
    r"\b(?:in preparation|prepar(?:e|es|ing|atory)|(?:later|next|subsequent|following|upcoming|"
    r"follow-?up)\s+(?:patch|patches|commit|change)|will be used|to be used|future)\b", re.I)
# Added lines that are neither code nor logic: what a "helpers only" patch may also hold.
_TRIVIAL_LINE = lazy_re(r"^\s*(?:$|/\*|\*|//|#\s*(?:define\s+[A-Z_][A-Z0-9_]*(?:\s|$)|if|ifdef|ifndef|"
                           r"else|elif|endif|include)\b|[{}];?\s*$)")
_MACRO_LOGIC = lazy_re(r"[?|&!<>=+\-*/]|\w\s*\(")  # a macro body with an operator or a call
# `\bNAME(args)`: the word boundary is checked after the first letter (a negative look-behind) so
# that the search only stops at upper-case letters (a pattern starting with \b tries every position)
_MACRO_CALL = lazy_re(r"[A-Z](?<!\w[A-Z])[A-Z0-9_]*\s*\(([^()]*)\)")
_ARG_WORD = lazy_re(r"\b[A-Za-z_]\w*\b")
_WEAK = lazy_re(r"\b__weak\b|__attribute__\s*\(\(\s*weak")
_STATIC = lazy_re(r"\bstatic\b")
_LOWER_NAME = lazy_re(r"^[a-z_][a-z0-9_]*$")
_WORD = lazy_re(r"\w+")
_DIRECT_LOOKUPS = 16  # _holding() searches the texts for this many names, then indexes their words
_DIRECT_ARG_LOOKUPS = 24  # _arg_patches() searches the texts for up to this many words, else lists every call
_ARG_NAME = lazy_re(r"[A-Za-z_]\w*")  # what a word of _ARG_WORD can be
_UPPER_RUN = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_")  # [A-Z0-9_]: a _MACRO_CALL name
_FUNCTION = "function_definition"
_FEW_NODES = 64  # _touching() asks each of this many nodes for an added line
_MACRO = frozenset({"preproc_function_def"})
_DECLARATION = frozenset({"declaration"})
_PASTE = lazy_re(r"(\w*)\s*##\s*\w+\s*(?:##\s*(\w+))?")


@dataclass
class _Helper:
    name: str
    view: FileView  # where patch k adds it
    line: int  # the name's line
    kind: str  # function | macro
    static: bool
    lines: set[int] = field(default_factory=set)  # the definition's post-image lines
    whole_file: bool = True  # the series shows all of its file (full mode, or a file it creates)


class HelperWithoutUser(Rule):
    meta = RuleMeta(
        id="series/helper-without-user",
        title="New helper with no user in its patch (or in the whole series)",
        severity=Severity.WARNING,
        confidence=Confidence.HIGH,
        scope=Scope.SERIES,
        needs_base=True,
        uses_tree=True,
        docs=RuleDocs(
            what="Flags a function (static, static inline in a header, or global) or a lower-case "
                 "function-like macro that a patch adds without using it: no call, no address "
                 "taken, no callback assignment, no appearance in another macro's arguments. With no "
                 "use anywhere in the series or the base it is dead code (warning). When the first "
                 "user arrives in a later patch and the patch holds nothing but such helpers and "
                 "constants, it asks to squash the two patches (warning); otherwise, e.g. when the "
                 "commit message announces the later user, it is a check. Exactly one caller is "
                 "series/single-use-exported-helper's business.",
            why="A helper without a user cannot be reviewed: whether its interface, locking and "
                "error handling are right depends on how it is called. Dead code also fails the "
                "build with -Werror=unused-function for static helpers, and leftovers from earlier "
                "versions of a series tend to survive into the tree.",
            example="/* patch 3/8 */\nstatic inline bool kvm_vcpu_foo_pending(struct kvm_vcpu *vcpu)\n{\n"
                    "\treturn __vcpu_sys_reg(vcpu, FOO_EL1) & FOO_EL1_PENDING;\n}\n"
                    "/* first caller in patch 7/8 */",
            use_instead="Add the helper in the patch that first calls it (7/8 here), or drop it if "
                        "nothing needs it.",
            known_problems="API for a follow-up series looks unused here (say so in the cover letter; "
                           "an announced later user makes it a check). Only helpers the series "
                           "introduces are judged, and a non-static function only when the series "
                           "also adds its prototype (otherwise a base header may declare it for "
                           "generic callers a partial tree does not show). In hunk-only mode a helper "
                           "in a file the series does not create is only reported, as a check naming "
                           "the patch, when its first user comes two or more patches later. "
                           "kvm_arch_*()/arch_*() hooks, "
                           "EXPORT_SYMBOL*()ed and __weak functions, #else stubs, functions moved by "
                           "the same patch, upper-case macros and files under include/uapi/ and "
                           "tools/ are skipped. Uses through token pasting are recognised when the "
                           "pasting macro is in the series or a file it touches. Skipped by "
                           "`check --files`.",
            references=("DOMAIN-PACK2.md rule 28 (\"a helper without a user is hard to review\")",),
        ),
    )

    def check(self, ctx: SeriesContext) -> Iterator[Finding]:  # type: ignore[override]
        if ctx.files_mode:
            return
        helpers = self._helpers(ctx)
        if not helpers:
            return
        idx = _UseIndex(ctx)
        total = ctx.series.total
        unused: list[tuple[_Helper, list[int]]] = []
        # novel() is the cheaper test; the names left are the ones uses() will be asked about
        asked = [h for h in helpers if idx.novel(h.name) and not idx.exported(h.name)]
        idx.will_ask([h.name for h in asked])
        for h in asked:
            k = h.view.patch.number
            uses = idx.uses(h.name)
            if uses is None:
                continue  # cannot tell (a file fell back to its hunks in full mode)
            if any(n <= k for n in uses):
                continue
            if ctx.full and idx.base_uses(h.name):
                continue
            unused.append((h, sorted(n for n in uses if n > k)))
        for h, later in unused:
            k = h.view.patch.number
            what = f"{h.name}()" if h.kind == "function" else f"the macro {h.name}()"
            if not h.whole_file and (not later or later[0] <= k + 1):
                # hunk-only, in a file the series does not create: no user seen is no proof, and a
                # preparatory patch right before its user is the usual split; a user many patches
                # later is the point
                continue
            if not later:
                partial = any(n > k for n in ctx.series.missing)
                if partial:
                    yield self.at_line(
                        h.view, h.line,
                        f"{what} has no user in the patches at hand; is it used by a patch that is not "
                        f"here?",
                        note="Nothing in this posting calls it. If its user is in one of the missing "
                             "patches, fine; otherwise it is dead code.",
                        severity=Severity.CHECK, confidence=Confidence.LOW)
                    continue
                yield self.at_line(
                    h.view, h.line,
                    f"{what} is not used anywhere in the series; leftover from an earlier version?",
                    note=f"Nothing in the series or the tree calls {what}, takes its address or passes "
                         f"it on, so it is dead code that nobody can review against a caller. Please "
                         f"drop it, or add it together with its first user.")
                continue
            j = later[0]
            announced = bool(_ANNOUNCE.search(h.view.patch.message))
            if h.whole_file and not announced and self._only_helpers(ctx, k, [u for u, _ in unused]):
                yield self.at_line(
                    h.view, h.line,
                    f"{what} has no user in this patch; its first caller is in {j}/{total}, please "
                    f"squash it into that patch",
                    note=f"This patch only adds {what} (and what it needs), and nothing uses it until "
                         f"patch {j}/{total}. A helper without a user is hard to review: whether it "
                         f"is right depends on how it is called. Please add it in the patch that "
                         f"uses it.")
                continue
            yield self.at_line(
                h.view, h.line,
                f"{what} is not used until patch {j}/{total}; could it be added there?",
                note=f"A helper is easiest to review next to its caller. If it is split out on "
                     f"purpose (shared preparation for several patches), fine; otherwise please "
                     f"move it to patch {j}/{total}.",
                severity=Severity.CHECK, confidence=Confidence.MEDIUM)

    # -- candidates --------------------------------------------------------------------------------

    def _helpers(self, ctx: SeriesContext) -> list[_Helper]:
        out: dict[str, _Helper] = {}
        per_path: dict[str, dict[str, int]] = {}  # path -> name -> definitions (max over views)
        prototypes: set[str] = set()
        views: list[FileView] = []
        for view in ctx.all_views():
            if not view.is_c or _EXEMPT_PATH.match(view.path):
                continue
            try:
                found = list(_definitions(view))
                protos = {n for n, line in _prototypes(view) if line in view.added}
            except Exception:
                continue
            views.append(view)
            prototypes |= protos
            for h in found:
                if h.line not in view.added or h.name in out or _EXEMPT_NAME.match(h.name):
                    continue
                if _removed_by(view.patch, h.name):
                    continue  # moved (or re-implemented) by the same patch
                out[h.name] = h
        # how many definitions each candidate has: only their names are counted (full mode: most
        # functions of a kernel file are none of them)
        for view in views:
            try:
                found = list(_definitions(view, frozenset(out)))
            except Exception:
                continue
            counts: dict[str, int] = {}
            for h in found:
                counts[h.name] = counts.get(h.name, 0) + 1
            seen = per_path.setdefault(view.path, {})
            for name, n in counts.items():
                seen[name] = max(seen.get(name, 0), n)
        defined: dict[str, int] = {}
        for names in per_path.values():
            for name, n in names.items():
                defined[name] = defined.get(name, 0) + n
        keep: list[_Helper] = []
        for h in out.values():
            if defined.get(h.name, 0) > 1:
                continue  # several definitions: stubs / config alternatives
            if not ctx.full and not _created(ctx, h.view.path, h.view.patch.number):
                # hunk-only: the rest of the file (and the files including it) is unseen; only a file
                # the series creates shows everything that could use the helper. A name new to the
                # series has no user there, though: a later patch that adds one is still worth a check
                h.whole_file = False
            if h.kind == "function" and not h.static and h.name not in prototypes:
                # its prototype may be in a base header (an interface generic code calls), with
                # callers a partial tree or hunk-only mode cannot show
                continue
            keep.append(h)
        return keep

    def _only_helpers(self, ctx: SeriesContext, k: int, helpers: list[_Helper]) -> bool:
        """Patch k adds nothing but helpers unused in it, their prototypes and constants."""
        mine = [h for h in helpers if h.view.patch.number == k]
        for view in ctx.patch_views(k):
            covered: set[int] = set()
            for h in mine:
                if h.view is view:
                    covered |= h.lines
            protos = {line for name, line in _prototypes(view) if name in {h.name for h in mine}} \
                if view.is_c else set()
            for line in view.added:
                if line in covered or line in protos or _TRIVIAL_LINE.match(view.line_text(line)):
                    continue
                return False
        return True


# -- definitions and prototypes -----------------------------------------------------------------------

def _definitions(view: FileView, names: frozenset[str] | None = None) -> Iterator[_Helper]:
    """Without names: the definitions that can be candidates (a function with an added line, a macro
    starting on one; others' lines are never read). With names: every definition of those names."""
    fns = view.functions()  # shared per view with other rules (same pre-order walk)
    if names is None:  # a function without an added line is never a candidate (its name line is not added)
        pairs = [fns[i] for i in _touching(view, [fn for _, fn in fns], _FUNCTION)]
    else:
        pairs = [(name, fn) for name, fn in fns if name in names]
    for name, fn in pairs:
        touched = names is None or view.first_added_line(fn) is not None
        raw = fn.text or b""
        brace = raw.find(b"{")  # the head alone is decoded ("{" never ends a UTF-8 sequence)
        head = (raw[:brace] if brace >= 0 else raw).decode("utf-8", "replace")
        if _WEAK.search(head) or in_preproc_else(fn):
            continue
        static = bool(_STATIC.search(head))
        if not touched:
            # no added line in it (most functions of a full view): counted by name only, never a
            # candidate (its name line is not added) and never read for its lines
            yield _Helper(name, view, 0, "function", static)
            continue
        yield _Helper(name, view, _name_line(view, fn), "function", static, set(view.node_lines(fn)))
    for d in _nodes(view)[0]:
        if names is None and view.node_line(d) not in view.added:
            continue  # not a candidate
        name = text(d.child_by_field_name("name"))
        if names is not None and name not in names:
            continue
        value = d.child_by_field_name("value")
        if not name or not _LOWER_NAME.match(name) or not name.strip("_"):
            continue  # upper-case macros: constants and table builders
        if value is None or not _MACRO_LOGIC.search(text(value)) or in_preproc_else(d):
            continue
        yield _Helper(name, view, view.node_line(d), "macro", True, set(view.node_lines(d)))


# view -> (preproc_function_defs, declarations): _prototypes() runs again in _only_helpers(); weak
# keys so views of finished runs go away
_NODES: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _nodes(view: FileView) -> tuple[list, list]:
    got = _NODES.get(view)
    if got is None:
        if view.mode == "full":
            # each type's list from the whole-tree query other rules ran (its declarations: the
            # analysis of symbols' too), not a Python pass over the thousands of a kernel file
            got = (list(walk(view.root, _MACRO)), list(walk(view.root, _DECLARATION)))
        else:  # a few nodes: one walk for both
            got = ([], [])
            for n in walk(view.root, _MACRO | _DECLARATION):
                got[n.type == "declaration"].append(n)
        _NODES[view] = got
    return got


def _touching(view: FileView, nodes: list, node_type: str) -> list[int]:
    """The indexes of `nodes` (nodes of `node_type`, in pre-order) with an added line among their
    lines (view.first_added_line()), found from each run of added lines rather than by asking every
    node: of the nodes starting by the run's last line, read back from the last one until one ends
    before the run and has no ancestor of the type (every node before it in pre-order is then one
    of its ancestors or ends no later than it starts: none can reach the run)."""
    if len(nodes) <= _FEW_NODES:  # a hunk-only view's: asking each is cheaper
        return [i for i, n in enumerate(nodes) if view.first_added_line(n) is not None]
    added = sorted(view.added)
    if not added:
        return []
    runs: list[list[int]] = []
    for n in added:
        if runs and n == runs[-1][1] + 1:
            runs[-1][1] = n
        else:
            runs.append([n, n])
    types = frozenset((node_type,))
    hit: set[int] = set()
    for first, last in runs:
        j = bisect.bisect_right(nodes, last - 1, key=lambda n: n.start_point[0]) - 1
        while j >= 0:
            node = nodes[j]
            if node.end_point[0] >= first - 1:
                hit.add(j)
            elif not has_ancestor(node, types):
                break
            j -= 1
    return sorted(hit)


def _name_line(view: FileView, fn) -> int:
    decl = fn.child_by_field_name("declarator")
    name = function_name(fn)
    ident = next((i for i in walk(decl, {"identifier"}) if text(i) == name), None) if decl else None
    return view.node_line(ident if ident is not None else fn)


def _prototypes(view: FileView) -> Iterator[tuple[str, int]]:
    """(name, line) of the prototypes in declarations with an added line (the callers want the
    prototypes on added lines; a declarator's line is one of its declaration's)."""
    decls = _nodes(view)[1]
    for i in _touching(view, decls, "declaration"):
        decl = decls[i]
        for d in decl.children_by_field_name("declarator"):
            name = declarator_name(d)
            if name:
                yield name, view.node_line(d)


def _created(ctx: SeriesContext, path: str, number: int) -> bool:
    """`path` is a file some patch up to `number` creates: all of its text comes from the series."""
    first = ctx.memo("helper-without-user-created", lambda: _first_creations(ctx))
    return path in first and first[path] <= number


def _first_creations(ctx: SeriesContext) -> dict[str, int]:
    """path -> the lowest number of a patch creating it (asked per helper: one pass per run)."""
    out: dict[str, int] = {}
    for p in ctx.patches:
        for f in p.files:
            if f.kind == ChangeKind.ADDED and (f.path not in out or p.number < out[f.path]):
                out[f.path] = p.number
    return out


@functools.lru_cache(maxsize=1024)
def _affixes(name: str) -> frozenset[str]:
    """Every `a` (other than name) such that name starts with `a_` or ends with `_a`."""
    cut = [i for i, c in enumerate(name) if c == "_"]
    return frozenset({name[:i] for i in cut} | {name[i + 1:] for i in cut}) - {name}


def _removed_by(patch, name: str) -> bool:
    word = lazy_re(rf"\b{re.escape(name)}\b")
    return any(word.search(t) for f in patch.files for t in f.removed_text)


# -- uses ------------------------------------------------------------------------------------------------

def _has_word(text_: str, name: str) -> bool:
    """`name` (a \\w+ word) is one of the maximal \\w+ runs of `text_` (_WORD.findall() holds it); str.find
    and a look at both neighbours (a regex starting with \\b scans every position)."""
    at = text_.find(name)
    while at >= 0:
        end = at + len(name)
        if (not at or not _is_word(text_[at - 1])) and (end == len(text_) or not _is_word(text_[end])):
            return True
        at = text_.find(name, at + 1)
    return False


def _is_word(ch: str) -> bool:
    return ch.isalnum() or ch == "_"  # what \\w matches in a str pattern


def _lines_with(text_: str, needle: str) -> Iterator[str]:
    """The lines of `text_` holding `needle`, each once, in order (found from the needle, not by
    splitting a whole kernel file)."""
    at = text_.find(needle)
    while at >= 0:
        start = text_.rfind("\n", 0, at) + 1
        end = text_.find("\n", at)
        if end < 0:
            end = len(text_)
        yield text_[start:end]
        at = text_.find(needle, end)


def _in_macro_args(text_: str, word: re.Pattern) -> bool:
    """A match of `word` (an ASCII word, whole: a maximal \\w run) is a word _ARG_WORD finds in the
    arguments _MACRO_CALL finds in `text_`: one between the `(` and `)` of an upper-case macro call
    with no parenthesis between them. Each such call is fixed by its `(`, the nearest parenthesis
    before the word, and by the name right before it (its blanks, then its run of [A-Z0-9_]): the
    regex is asked there, not at every upper-case letter of the text."""
    for m in word.finditer(text_):
        at = m.start()
        q = max(text_.rfind("(", 0, at), text_.rfind(")", 0, at))
        if q < 0 or text_[q] != "(":
            continue
        close, opening = text_.find(")", at), text_.find("(", at)
        if close < 0 or 0 <= opening < close:
            continue
        b = q
        while b and text_[b - 1].isspace():  # \\s in a str pattern
            b -= 1
        while b and text_[b - 1] in _UPPER_RUN:
            b -= 1
        if _MACRO_CALL.match(text_, b):
            return True
    return False


class _UseIndex:
    """Where each name is used, per patch (the views of patch n show the file as patch n leaves it)."""

    def __init__(self, ctx: SeriesContext) -> None:
        self.ctx = ctx
        self._tokens: dict[int, dict[str, int]] = {}  # id(view) -> name -> uses (not definitions)
        self._pastes: set[tuple[str, str]] | None = None
        self._exports: dict[int, set[str]] = {}
        self._args: dict[int, set[str]] = {}
        self._added: dict[str, set[str]] | None = None
        self._old_words: set[str] | None = None
        self._cores: dict[str, list[str]] = {}
        self._arg_index: dict[str, set[int]] | None = None
        self._arg_words: dict[str, set[int]] = {}  # word -> _arg_patches(word)
        self._arg_direct = False  # _arg_patches() looks words up in the texts (will_ask())
        # every view, the distinct \w+ words of all their texts joined by newlines, where each word
        # starts in that blob, and which views hold it
        self._words: tuple[list[FileView], str, list[int], list[list[int]]] | None = None
        self._direct = 0  # names _holding() looked up in the texts, before building _words
        self._base_lookups = 0  # names novel() looked up in the base texts, before listing their words
        self._unknown = ctx.full and any(v.mode != "full" for v in ctx.all_views())

    def _scan(self, view: FileView) -> dict[str, int]:
        got = self._tokens.get(id(view))
        if got is not None:
            return got
        got = {}
        try:
            if view.is_c:
                # only an identifier naming some function here can be a recursive call: skip the
                # parent walk of enclosing_function() for every other identifier
                fnames = {n for n, _ in view.functions()}
                for node in walk(view.root, {"identifier", "preproc_arg", "ERROR"}):
                    if node.type == "identifier":
                        p = node.parent
                        if p is not None and p.type == "function_declarator":
                            continue  # a definition's or prototype's own name
                        if p is not None and p.type == "preproc_function_def" and node == p.child_by_field_name(
                                "name"):
                            continue
                        t = text(node)
                        if t in fnames:
                            fn = enclosing_function(node)
                            if fn is not None and function_name(fn) == t:
                                continue  # recursion
                        got[t] = got.get(t, 0) + 1
                    else:
                        for w in re.findall(r"\b[A-Za-z_]\w*\b", text(node)):
                            got[w] = got.get(w, 0) + 1
            elif view.path.endswith((".S", ".lds", ".rs")):
                for w in re.findall(r"\b[A-Za-z_]\w*\b", view.text):
                    got[w] = got.get(w, 0) + 1
        except Exception:
            pass
        self._tokens[id(view)] = got
        return got

    def _count(self, view: FileView, name: str) -> int:
        # an ASCII name that is not even a substring of the text cannot be one of its tokens: most
        # views never need the identifier walk of _scan()
        if name.isascii() and name not in view.text:
            return 0
        return self._scan(view).get(name, 0)

    def uses(self, name: str) -> list[int] | None:
        """Patch numbers whose views use `name` (directly, token-pasted or as a macro argument); a
        view of patch n shows its file as patch n leaves it, so the first number is the first use."""
        if self._unknown:
            return None
        # the union of the three tests, each answered from an index built once per run rather than
        # by asking every view for every helper (quadratic in the series' length)
        out = self._counted(name)
        cores = self._cores.get(name)
        if cores is None:
            cores = self._cores[name] = self._paste_cores(name)
        for core in cores:
            out |= self._counted(core)
        for a in _affixes(name):
            out |= self._arg_patches(a)
        return sorted(out)

    def will_ask(self, names: list[str]) -> None:
        """uses() will be asked about these names: full mode, with few affixes to look up in all,
        each is searched in the texts rather than every upper-case call of every text listed."""
        self._arg_direct = self.ctx.full and len({a for n in names for a in _affixes(n)}) <= _DIRECT_ARG_LOOKUPS

    def _arg_patches(self, word: str) -> set[int]:
        """Patch numbers whose views have `word` among their macro arguments (_view_args)."""
        got = self._arg_words.get(word)
        if got is not None:
            return got
        if not _ARG_NAME.fullmatch(word):
            got = set()  # not a word _ARG_WORD finds
        elif self._arg_direct and word.isascii():
            # full mode, a few words: looked up around their occurrences in the texts (whole kernel
            # files, whose every upper-case call costs more to list)
            rx = re.compile(rf"{re.escape(word)}(?<!\w{re.escape(word)})(?!\w)")  # the word, whole
            got = {v.patch.number for v in self.ctx.all_views() if _in_macro_args(v.text, rx)}
        else:
            if self._arg_index is None:
                self._arg_index = {}
                for v in self.ctx.all_views():
                    for a in self._view_args(v):
                        self._arg_index.setdefault(a, set()).add(v.patch.number)
            got = self._arg_index.get(word, set())
        self._arg_words[word] = got
        return got

    def _counted(self, name: str) -> set[int]:
        """Patch numbers with a view where _count(view, name) > 0."""
        if not (name.isascii() and _WORD.fullmatch(name)):
            return {v.patch.number for v in self.ctx.all_views() if self._count(v, name)}
        views = self._holding(name)
        return {v.patch.number for v in views if self._count(v, name)}

    def _holding(self, name: str) -> list[FileView]:
        """The views whose text contains the ASCII \\w+ `name`, in all_views() order."""
        # a \w+ name inside a text lies inside one of its maximal \w+ runs: the views holding a
        # word that contains it are exactly those whose text contains it. A few names are looked
        # up in the texts themselves (full mode: whole kernel files, whose words cost more to list)
        if self._words is None and self._direct < _DIRECT_LOOKUPS:
            self._direct += 1
            return [v for v in self.ctx.all_views() if name in v.text]
        if self._words is None:
            views = list(self.ctx.all_views())
            where: dict[str, list[int]] = {}
            for i, v in enumerate(views):
                for w in set(_WORD.findall(v.text)):
                    where.setdefault(w, []).append(i)
            words = list(where)
            self._words = (views, "\n".join(words), [0, *itertools.accumulate(len(w) + 1 for w in words)],
                           [where[w] for w in words])
        views, blob, starts, holders = self._words
        hit: set[int] = set()
        at = blob.find(name)
        while at >= 0:
            k = bisect.bisect_right(starts, at) - 1
            hit.update(holders[k])
            at = blob.find(name, starts[k + 1]) if k + 1 < len(starts) else -1
        return [views[i] for i in sorted(hit)]

    def _paste_cores(self, name: str) -> list[str]:
        """The `core` of every `pre ## core ## suf` of the series that can build `name`."""
        if self._pastes is None:
            self._pastes = set()
            for v in self.ctx.all_views():
                if v.is_c:
                    for ln in _lines_with(v.text, "##"):
                        for m in _PASTE.finditer(ln):
                            self._pastes.add((m.group(1) or "", m.group(2) or ""))
        cores = []
        for pre, suf in self._pastes:
            if (pre or suf) and name.startswith(pre) and name.endswith(suf) and len(name) > len(pre) + len(suf):
                cores.append(name[len(pre): len(name) - len(suf) if suf else None])
        return cores

    def _view_args(self, view: FileView) -> set[str]:
        """`DEVICE_ATTR_RO(foo)` for foo_show(), `HANDLE_FUNC(x)` for handle_x(): the pasting macro
        may be defined in a base header we do not read, so a name built from an upper-case macro's
        argument counts as used (uses(): name starts with `a_` or ends with `_a`, `a` an argument)."""
        args = self._args.get(id(view))
        if args is None:
            # the arguments joined by newlines: a word never spans two of them
            args = self._args[id(view)] = set(_ARG_WORD.findall(
                "\n".join([m.group(1) for m in _MACRO_CALL.finditer(view.text)])))
        return args

    def exported(self, name: str) -> bool:
        # only views whose text holds an ASCII name can export it: run the regexes on those alone,
        # once per view
        check_all = not name.isascii()
        for v in self._holding(name) if name.isascii() and _WORD.fullmatch(name) else self.ctx.all_views():
            if not check_all and name not in v.text:
                continue
            got = self._exports.get(id(v))
            if got is None:
                t = v.text
                got = self._exports[id(v)] = {
                    m.group(1) for rx, needles in ((_EXPORT, _EXPORT_NEEDLES), (_INIT, _INIT_NEEDLES))
                    if any(w in t for w in needles) for m in rx.finditer(t)}
            if name in got:
                return True
        return False

    def novel(self, name: str) -> bool:
        """Nothing that predates the series mentions `name`."""
        if self.ctx.full and _WORD.fullmatch(name):
            # `\bname\b` matches a text iff name is one of its maximal \w+ runs: one word set of the
            # touched base files per run instead of a regex over every base file per helper
            if self._base_lookups < _DIRECT_LOOKUPS:
                # a few helpers: find the word in the base texts rather than list every word of
                # every touched base file
                self._base_lookups += 1
                return not any(_has_word(t, name) for t in self._base_texts())
            return name not in self.ctx.memo(("helper-without-user", "base-words"), self._base_words)
        word = lazy_re(rf"\b{re.escape(name)}\b")
        if self.ctx.full:
            for p in self.ctx.patches:
                for f in p.files:
                    base = self.ctx.base_text(f.old_path or f.path)
                    if base and word.search(base):
                        return False
            return True
        if _WORD.fullmatch(name):
            # as above: one word set of the old lines of every view per run, not a regex over
            # every view per helper (quadratic in the series' length)
            if self._old_words is None:
                self._old_words = set()
                for t in self._old_lines():
                    self._old_words.update(_WORD.findall(t))
            return name not in self._old_words
        return not any(word.search(t) for t in self._old_lines())

    def _old_lines(self) -> Iterator[str]:
        """Hunk-only: the context and removed lines of every view that no patch of the series adds
        to that file (text that predates the series)."""
        if self._added is None:  # same for every helper: build once
            self._added = {}
            for p in self.ctx.patches:
                for f in p.files:
                    self._added.setdefault(f.path, set()).update(
                        " ".join(ln.text.split()) for ln in f.added_lines())
        added = self._added
        for view in self.ctx.all_views():
            here = added.get(view.path, set())
            for line in view.known - view.added:
                t = view.line_text(line)
                if " ".join(t.split()) not in here:
                    yield t
            for t in view.change.removed_text:
                if " ".join(t.split()) not in here:
                    yield t

    def _base_words(self) -> set[str]:
        words: set[str] = set()
        for base in self._base_texts():
            words.update(_WORD.findall(base))
        return words

    def _base_texts(self) -> Iterator[str]:
        """The base text of every file the series touches (once each)."""
        seen: set[str] = set()
        for p in self.ctx.patches:
            for f in p.files:
                path = f.old_path or f.path
                if path in seen:
                    continue
                seen.add(path)
                base = self.ctx.base_text(path)
                if base:
                    yield base

    def base_uses(self, name: str) -> bool:
        """Full mode: a base file the series does not touch names it (one git grep per helper)."""
        paths = self.ctx.base_files_using(name)
        if paths is None:
            return self.ctx.base_reader is not None  # full mode but the grep failed: assume used
        touched = {f.path for p in self.ctx.patches for f in p.files}
        return any(p not in touched for p in paths)
