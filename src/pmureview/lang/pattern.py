"""ast-grep patterns over C: a thin wrapper over ast-grep-py that returns plain data.

Nothing above lang/ sees ast-grep's objects: `parse` returns an opaque root (cached by the caller),
`Compiled.run` returns `PatternMatch` records (1-based lines, 1-based character columns, metavariable
texts, the rendered fix). ast_grep_py is imported only inside the functions that parse or validate, so
loading a rule (and a review whose files no pattern rule touches) never pays for the native module.
"""

from __future__ import annotations

import re
from bisect import bisect_left
from collections.abc import Iterable
from functools import cached_property
from typing import Any

from ..lazyre import lazy_re

LANGUAGE = "c"
CONFIG_KEYS = ("rule", "constraints", "utils", "transform")
# ast-grep-py 0.51 replaces `$` by this character before parsing a C pattern (`$` is no identifier char)
_EXPANDO = "\U00010000"
_METAVAR = re.compile(r"\$(\$\$)?([A-Z_][A-Z0-9_]*)")
_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_STRICT_TEXT = {None, "smart", "cst", "ast", "relaxed"}  # strictness levels that still compare identifiers
# the smallest enclosing "line" for `added: statement`
_STATEMENT_KINDS = {"declaration", "field_declaration", "function_definition", "enumerator",
                    "type_definition", "linkage_specification"}
# children of a statement that are bodies, not its head (excluded from the statement's own lines)
_BODY_KINDS = {"compound_statement", "else_clause", "field_declaration_list", "enumerator_list",
               "declaration_list", "preproc_else", "preproc_elif", "preproc_elifdef"}


_PREPROC_KINDS = {"preproc_if", "preproc_ifdef", "preproc_elif", "preproc_elifdef", "preproc_else",
                  "preproc_def", "preproc_function_def", "preproc_include", "preproc_call"}


def _is_statement(kind: str) -> bool:
    return kind in _STATEMENT_KINDS or kind in _PREPROC_KINDS or kind.endswith("_statement")


def _is_body(kind: str) -> bool:
    return kind in _BODY_KINDS or _is_statement(kind)


class PatternMatch:
    """One match as plain data (a plain slotted class: a dataclass costs milliseconds at import, and
    this module is imported on every run that loads a pattern rule)."""

    __slots__ = (
        "end_column",
        "end_line",
        "fix",
        "kind",
        "lists",
        "start_column",
        "start_line",
        "statement_lines",
        "text",
        "vars",
    )

    def __init__(self, *, start_line: int, start_column: int, end_line: int, end_column: int, text: str,
                 kind: str, vars: dict[str, str], lists: dict[str, tuple[str, ...]],
                 statement_lines: frozenset[int], fix: str | None) -> None:
        self.start_line = start_line  # 1-based
        self.start_column = start_column  # 1-based, in characters
        self.end_line = end_line  # last line holding text of the match (a node ending at column 0 ends before)
        self.end_column = end_column
        self.text = text
        self.kind = kind
        self.vars = vars  # metavariable -> text ($$$X: the source text it spans; transforms included)
        self.lists = lists  # $$$X -> the texts of its named nodes
        self.statement_lines = statement_lines  # lines of the enclosing statement's head (statement=True)
        self.fix = fix  # the fix template rendered with the metavariables

    @property
    def lines(self) -> range:
        return range(self.start_line, self.end_line + 1)

    def __repr__(self) -> str:
        return f"PatternMatch({self.start_line}:{self.start_column} {self.text!r})"


# -- pure Python: no ast-grep needed -----------------------------------------------------------------

def _patterns(rule: Any, utils: dict[str, Any] | None = None, seen: set[str] | None = None) -> Iterable[str]:
    """Every pattern string of a rule object (context strings included), following `matches:`."""
    if not isinstance(rule, dict):
        return
    seen = set() if seen is None else seen
    for key, value in rule.items():
        if key == "pattern":
            if isinstance(value, str):
                yield value
            elif isinstance(value, dict) and isinstance(value.get("context"), str):
                yield value["context"]
        elif key in ("inside", "has", "follows", "precedes", "not") or key == "stopBy":
            yield from _patterns(value, utils, seen)
        elif key in ("all", "any") and isinstance(value, list):
            for sub in value:
                yield from _patterns(sub, utils, seen)
        elif key == "matches" and isinstance(value, str) and utils and value not in seen:
            seen.add(value)
            yield from _patterns(utils.get(value), utils, seen)


def metavariables(config: dict[str, Any]) -> tuple[set[str], set[str]]:
    """(names, multi): the capturing metavariables of a config's patterns and transforms; `multi` are
    the `$$$X` ones. Names starting with `_` do not capture (ast-grep's convention)."""
    names: set[str] = set()
    multi: set[str] = set()
    utils = config.get("utils") or {}
    texts = list(_patterns(config.get("rule"), utils))
    for util in utils.values():
        texts += _patterns(util, utils)
    for text in texts:
        for m in _METAVAR.finditer(text):
            if not m.group(2).startswith("_"):
                names.add(m.group(2))
                if m.group(1):
                    multi.add(m.group(2))
    for name in config.get("transform") or {}:
        names.add(str(name))
    return names, multi


_RULE_KEYS = {"pattern", "kind", "regex", "nthChild", "range", "inside", "has", "precedes", "follows", "all",
              "any", "not", "matches"}
_RELATION_KEYS = _RULE_KEYS | {"stopBy", "field"}


def check_keys(rule: Any, where: str = "rule") -> None:
    """Unknown keys in an ast-grep rule object, found without ast-grep (so a lazy load reports them)."""
    if not isinstance(rule, dict):
        raise ValueError(f"{where}: an ast-grep rule must be a mapping")
    allowed = _RELATION_KEYS if where.rsplit(".", 1)[-1] in ("inside", "has", "precedes", "follows") else _RULE_KEYS
    unknown = set(rule) - allowed
    if unknown:
        raise ValueError(f"{where}: unknown ast-grep rule key(s) {', '.join(sorted(map(str, unknown)))} "
                         f"(known: {', '.join(sorted(allowed))})")
    for key in ("inside", "has", "precedes", "follows", "not"):
        if key in rule:
            check_keys(rule[key], f"{where}.{key}")
    if isinstance(rule.get("stopBy"), dict):
        check_keys(rule["stopBy"], f"{where}.stopBy")
    for key in ("all", "any"):
        if key in rule:
            if not isinstance(rule[key], list):
                raise ValueError(f"{where}.{key}: must be a list of rules")
            for i, sub in enumerate(rule[key]):
                check_keys(sub, f"{where}.{key}[{i}]")


# Operators a match's text must show when its pattern has them (smart strictness matches the pattern's
# unnamed tokens too): `?`, `<<`, `~` make may_match() skip most files for the word-less patterns.
_OPERATOR = re.compile(r"<<=|>>=|->|&&|\|\||<<|>>|<=|>=|==|!=|[&|^%]=|[?~%^|&<>!]")
_LITERAL = re.compile(r'"(?:\\.|[^"\\])*"|\'(?:\\.|[^\'\\])*\'|/\*.*?\*/|//[^\n]*', re.S)
# node kinds whose text always holds this token (keywords and the conditional operator)
_KIND_TOKEN = {"conditional_expression": "?", "if_statement": "if", "return_statement": "return",
               "sizeof_expression": "sizeof", "preproc_def": "define", "preproc_function_def": "define",
               "switch_statement": "switch", "goto_statement": "goto"}


def _pattern_tokens(value: Any) -> set[str]:
    if isinstance(value, str):
        code = _METAVAR.sub(" ", value)
        return set(_WORD.findall(code)) | set(_OPERATOR.findall(_LITERAL.sub(" ", code)))
    if isinstance(value, dict) and value.get("selector") == "call_expression":
        # {context: 'x = foo($A);', selector: call_expression}: the context's words need not be in the
        # match, but with a single `(` in the context the selected call can only be `foo(...)`
        text = _METAVAR.sub(" ", str(value.get("context", "")))
        calls = re.findall(r"([A-Za-z_][A-Za-z0-9_]*)\s*\(", text)
        if text.count("(") == 1 and len(calls) == 1:
            return {calls[0]}
    return set()


_PLAIN_REGEX = re.compile(r"\^?(?:\\b)?(\w{2,})(?:\\b)?\$?")
# `^read_sysreg(_s|_el[012])?$`: a literal word, then a group or the end (no top-level `|` anywhere)
_PREFIX_REGEX = re.compile(r"\^(\w{3,})(?=\(|\$?$)")


def _regex_literals(regex: str) -> set[str]:
    """The word a `regex:` such as `\\bGFP_KERNEL\\b`, `^MASK$`, `MASK` or `^name(_a|_b)?$` needs in
    the node's text (only those plain shapes: reading regex syntax costs more per run than it saves)."""
    m = _PLAIN_REGEX.fullmatch(regex)
    if m:
        return {m.group(1)}
    m = _PREFIX_REGEX.match(regex)
    if m and not _top_level_bar(regex):
        return {m.group(1)}
    return set()


def _top_level_bar(regex: str) -> bool:
    """True when `regex` has a `|` outside parentheses (or anything that makes that unsure)."""
    depth, escaped, in_class = 0, False, False
    for ch in regex:
        if escaped:
            escaped = False
        elif ch == "\\":
            escaped = True
        elif in_class:
            in_class = ch != "]"  # `[]` / `[^]` shapes and nested classes never occur in our rules
            if ch == "[":
                return True  # a nested class (Rust syntax): unsure
        elif ch == "[":
            in_class = True
        elif ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        elif ch == "|" and depth <= 0:
            return True
    return False


def _required(rule: Any, utils: dict[str, Any], depth: int, inner: bool = False) -> set[str]:
    """Words every file holding a match of `rule` contains (inner: that the matched text itself
    contains, so not those of `inside`/`follows`/`precedes`, which name nodes around it)."""
    if not isinstance(rule, dict) or depth > 20:
        return set()
    out: set[str] = set()
    for key, value in rule.items():
        if key == "pattern":
            if isinstance(value, dict) and value.get("strictness") not in _STRICT_TEXT:
                continue
            out |= _pattern_tokens(value)
        elif key == "has" or (key in ("inside", "follows", "precedes") and not inner):
            out |= _required(value, utils, depth + 1, inner)  # the related node is in the same file
        elif key == "all" and isinstance(value, list):
            for sub in value:
                out |= _required(sub, utils, depth + 1, inner)
        elif key == "any" and isinstance(value, list) and value:
            sets = [_required(sub, utils, depth + 1, inner) for sub in value]
            out |= set.intersection(*sets)
        elif key == "matches" and isinstance(value, str):
            out |= _required(utils.get(value), utils, depth + 1, inner)
        elif key == "kind" and value in _KIND_TOKEN:
            out.add(_KIND_TOKEN[value])
        elif key == "regex" and isinstance(value, str):
            out |= _regex_literals(value)
        # not/regex/nthChild/range and other kinds: nothing certain
    return out


def required_tokens(config: dict[str, Any]) -> frozenset[str]:
    """Identifiers (and keywords) a file must contain to hold a match: a prefilter on the raw text.
    Union over the conditions of one node (top level, `all`, relations), intersection over `any`;
    anything unsure contributes nothing (empty set = no prefilter)."""
    return frozenset(_required(config.get("rule"), config.get("utils") or {}, 0))


def constraint_tokens(config: dict[str, Any]) -> frozenset[str]:
    """Words a file must contain for a match to pass `constraints:`. ast-grep checks a constraint only
    on a metavariable the match bound, so only metavariables every match of the rule binds count."""
    constraints = config.get("constraints")
    if not isinstance(constraints, dict):
        return frozenset()
    utils = config.get("utils") or {}
    out: set[str] = set()
    for name, sub in constraints.items():
        if isinstance(name, str) and _binds(config.get("rule"), name, utils, 0):
            out |= _required(sub, utils, 0)
    return frozenset(out)


def _binds(rule: Any, name: str, utils: dict[str, Any], depth: int) -> bool:
    """True when every match of `rule` binds the single metavariable `$name` (unsure: False)."""
    if not isinstance(rule, dict) or depth > 20:
        return False
    for key, value in rule.items():
        if key == "pattern" and _pattern_binds(value, name):
            return True
        if key == "all" and isinstance(value, list) and any(_binds(v, name, utils, depth + 1) for v in value):
            return True
        if key == "any" and isinstance(value, list) and value and all(
                _binds(v, name, utils, depth + 1) for v in value):
            return True
        if key == "matches" and isinstance(value, str) and _binds(utils.get(value), name, utils, depth + 1):
            return True
    return False


def _single(text: str, name: str) -> bool:
    return any(m.group(2) == name and not m.group(1) and (m.start() == 0 or text[m.start() - 1] != "$")
               for m in _METAVAR.finditer(text))


def _pattern_binds(value: Any, name: str) -> bool:
    if isinstance(value, str):
        return _single(value, name)
    if not isinstance(value, dict) or not isinstance(value.get("context"), str):
        return False
    context, selector = value["context"], value.get("selector")
    if not _single(context, name):
        return False
    if selector is None:
        return True
    if not isinstance(selector, str):
        return False
    from ast_grep_py import SgRoot

    # ast-grep matches with the first node of the selector's kind in the parsed context: the
    # metavariable is bound only when it lies inside that node
    node = SgRoot(context.replace("$", _EXPANDO), LANGUAGE).root().find(kind=selector)
    return node is not None and _single(node.text().replace(_EXPANDO, "$"), name)


def render(template: str, vars: dict[str, str]) -> str:
    """A fix template with `$X` / `$$$X` replaced by their texts (unknown ones are kept)."""
    return _METAVAR.sub(lambda m: vars.get(m.group(2), m.group(0)), template)


# -- ast-grep ------------------------------------------------------------------------------------------

_SURROGATE = lazy_re("[\ud800-\udfff]")


def parse(text: str) -> Any:
    """The ast-grep root of C source `text` (opaque to callers; pass it back to `Compiled.run`)."""
    from ast_grep_py import SgRoot

    # undecodable bytes arrive as lone surrogates (surrogateescape), which cannot cross into Rust;
    # one '?' per surrogate keeps every line and column where it was
    return SgRoot(_SURROGATE.sub("?", text), LANGUAGE)


def _clean_error(exc: Exception) -> str:
    """ast-grep's error chain on one line, without the Rust backtrace and with `$` restored."""
    text = str(exc).split("Stack backtrace")[0].replace(_EXPANDO, "$")
    parts = [re.sub(r"^\d+: ", "", ln.strip()) for ln in text.split("\n")]
    parts = [p for p in parts if p and p not in ("Caused by:", "cannot get matcher")]
    return ": ".join(parts) or type(exc).__name__


def _nonempty_children(node: Any) -> list[Any]:
    return [c for c in node.children() if c.range().start.index != c.range().end.index]


def _check_pattern(text: str) -> None:
    """Reject patterns that ast-grep accepts but that can never match what their author meant."""
    from ast_grep_py import SgRoot

    node = SgRoot(text.replace("$", _EXPANDO), LANGUAGE).root()
    while len(kids := _nonempty_children(node)) == 1:  # ast-grep matches the single node the pattern is
        node = kids[0]
    if node.kind() == "macro_type_specifier":
        call = text.strip()
        raise ValueError(f"pattern {call!r} parses as a type (macro_type_specifier), not a call: write the "
                         f"statement {call + ';'!r}, or pattern: {{context: {call + ';'!r}, selector: "
                         f"call_expression}} to match the call inside any expression")
    if node.kind() == "ERROR":
        raise ValueError(f"pattern {text!r} does not parse as C")


def validate(config: dict[str, Any]) -> None:
    """Raise ValueError naming the problem when ast-grep rejects `config` (or a pattern cannot match)."""
    from ast_grep_py import SgRoot

    utils = config.get("utils") or {}
    for text in set(_patterns(config.get("rule"), utils)) | {
            t for u in utils.values() for t in _patterns(u, utils)}:
        _check_pattern(text)
    probe = SgRoot("int f(int a)\n{\n\treturn a;\n}\n", LANGUAGE).root()
    try:
        probe.find_all(_sg_config(config))
    except Exception as exc:  # ast-grep-py raises plain Exception/RuntimeError/TypeError on bad configs
        raise ValueError(f"ast-grep: {_clean_error(exc)}") from None


def _sg_config(config: dict[str, Any]) -> dict[str, Any]:
    return {k: config[k] for k in CONFIG_KEYS if config.get(k) is not None}


def _end(rng: Any) -> tuple[int, int]:
    line, col = rng.end.line + 1, rng.end.column + 1
    if rng.end.column == 0 and rng.end.line > rng.start.line:  # a node that ends with its newline
        line, col = line - 1, 0
    return line, col


def _lines_of(node: Any) -> set[int]:
    rng = node.range()
    return set(range(rng.start.line + 1, _end(rng)[0] + 1))


def _statement_lines(node: Any) -> frozenset[int]:
    """The lines of the smallest statement/declaration/preprocessor node holding `node`: its head only
    (an `if`'s condition, a function's signature, an `#if`'s condition), never the bodies that do not
    contain the match."""
    chain = [node, *node.ancestors()]  # the node, then its parent, ... up to the root
    stmt = None
    for i, n in enumerate(chain):
        if _is_statement(n.kind()):
            stmt = n
            break
        if i + 1 < len(chain) and chain[i + 1].kind() == "initializer_list":
            # an element of a table: its own line(s), not the whole declaration
            return frozenset(_lines_of(n) | _lines_of(node))
    if stmt is None or stmt is node:
        return frozenset(_lines_of(node))
    ms, me = node.range().start.index, node.range().end.index
    lines = _lines_of(node)
    for child in stmt.children():
        cr = child.range()
        holds_match = cr.start.index <= ms and me <= cr.end.index
        if holds_match or (not _is_body(child.kind()) and child.kind() != "#endif"):
            lines |= _lines_of(child)
    return frozenset(lines)


# Nodes that only hold top-level code: the file, #if/#ifdef arms, extern "C" blocks (and ERROR, which
# may swallow a whole stretch of a file). Every other node lies inside one "unit" under them.
_CONTAINERS = frozenset({"translation_unit", "preproc_if", "preproc_ifdef", "preproc_else", "preproc_elif",
                         "preproc_elifdef", "linkage_specification", "declaration_list", "ERROR"})


def _never_container(rule: Any, utils: dict[str, Any], depth: int) -> bool:
    """Is every node the rule matches certainly not a container (its kind pinned by `kind`, a selector or
    a plain code pattern)? Relations (`inside`, `follows`, ...) still see the whole tree."""
    if not isinstance(rule, dict) or depth > 20:
        return False
    kind, pat = rule.get("kind"), rule.get("pattern")
    if isinstance(kind, str) and kind not in _CONTAINERS:
        return True
    if isinstance(pat, str) and (t := pat.strip()) and "#" not in t and "extern" not in t \
            and not _METAVAR.fullmatch(t):
        return True
    if isinstance(pat, dict) and isinstance(pat.get("selector"), str) and pat["selector"] not in _CONTAINERS:
        return True
    if isinstance(rule.get("all"), list) and any(_never_container(r, utils, depth + 1) for r in rule["all"]):
        return True
    if isinstance(rule.get("any"), list) and rule["any"] and all(
            _never_container(r, utils, depth + 1) for r in rule["any"]):
        return True
    name = rule.get("matches")
    return isinstance(name, str) and _never_container(utils.get(name), utils, depth + 1)


def units(root: Any, lines: Iterable[int]) -> list[Any]:
    """The non-container nodes (in document order) whose lines hold one of `lines` (1-based): with a
    whole kernel file as the view (full mode), the few functions and declarations a patch touches."""
    wanted = sorted(lines)
    out: list[Any] = []

    def visit(node: Any) -> None:
        for child in node.children():
            rng = child.range()
            i = bisect_left(wanted, rng.start.line + 1)
            if i == len(wanted) or wanted[i] > rng.end.line + 1:
                continue
            if child.kind() in _CONTAINERS:
                visit(child)
            else:
                out.append(child)

    visit(root.root())
    return out


class Compiled:
    """One ast-grep rule config (rule/constraints/utils/transform) plus its fix template."""

    def __init__(self, config: dict[str, Any], fix: str | None = None) -> None:
        self.config = config
        self.fix = fix
        self.names, self.multi = metavariables(self.config)
        self._valid = False
        self._constraint_tokens: Iterable[str] | None = None

    # computed on first use: a review builds every case of a selected rule, most never run
    @cached_property
    def tokens(self) -> frozenset[str]:
        return required_tokens(self.config)

    @cached_property
    def inner(self) -> frozenset[str]:
        """Words the matched text itself holds: a match that must lie on added lines needs them there."""
        return frozenset(_required(self.config.get("rule"), self.config.get("utils") or {}, 0, True))

    @cached_property
    def sg(self) -> dict[str, Any]:
        return _sg_config(self.config)

    @cached_property
    def local(self) -> bool:
        return _never_container(self.config.get("rule"), self.config.get("utils") or {}, 0)

    def may_match(self, text: str) -> bool:
        """False when the text lacks a word every match contains (no parse needed)."""
        if not all(t in text for t in self.tokens):
            return False
        if self._constraint_tokens is None:  # lazily: it may parse a pattern's context
            self._constraint_tokens = constraint_tokens(self.config) if self.config.get("constraints") else ()
        return all(t in text for t in self._constraint_tokens)

    def validate(self) -> None:
        if not self._valid:
            validate(self.config)
            self._valid = True

    def run(self, root: Any, *, statement: bool = False, within: list[Any] | None = None) -> list[PatternMatch]:
        """The matches in document order (`root` from `parse`). statement: also compute each match's
        enclosing statement lines. within: `units(root, lines)`; when no match can be a container node
        only those units are searched, which finds every match that touches one of the lines."""
        out = []
        found = root.root().find_all(self.sg) if within is None or not self.local else [
            node for unit in within for node in unit.find_all(self.sg)]
        for node in found:
            rng = node.range()
            vars: dict[str, str] = {}
            lists: dict[str, tuple[str, ...]] = {}
            for name in sorted(self.names):
                single = node.get_match(name)
                if single is not None:
                    vars[name] = single.text()
                    continue
                many = node.get_multiple_matches(name)
                if many:
                    first, last = many[0].range(), many[-1].range()
                    vars[name] = _span(node, first.start.index, last.end.index, many)
                    lists[name] = tuple(m.text() for m in many if m.is_named())
                elif name in self.multi:
                    vars[name], lists[name] = "", ()
                else:
                    t = node.get_transformed(name)
                    if t is not None:
                        vars[name] = t
            end_line, end_col = _end(rng)
            out.append(PatternMatch(
                start_line=rng.start.line + 1, start_column=rng.start.column + 1, end_line=end_line,
                end_column=end_col, text=node.text(), kind=node.kind(), vars=vars, lists=lists,
                statement_lines=_statement_lines(node) if statement else frozenset(),
                fix=render(self.fix, vars) if self.fix is not None else None))
        return out


def _span(node: Any, start: int, end: int, items: list[Any]) -> str:
    """The source text from `start` to `end` (character offsets), cut out of the matched node's text."""
    base = node.range().start.index
    text = node.text()
    if base <= start <= end <= base + len(text):
        return text[start - base:end - base]
    return " ".join(m.text() for m in items)
