"""ast-grep patterns over C: a thin wrapper over ast-grep-py that returns plain data.

Nothing above lang/ sees ast-grep's objects: `parse` returns an opaque root (cached by the caller),
`Compiled.run` returns `PatternMatch` records (1-based lines, 1-based character columns, metavariable
texts, the rendered fix). ast_grep_py is imported only inside the functions that parse or validate, so
loading a rule (and a review whose files no pattern rule touches) never pays for the native module.
"""

from __future__ import annotations

import re
from bisect import bisect_left
from collections.abc import Callable, Iterable
from functools import cached_property
from typing import Any

from ..lazyre import lazy_re
from .c import _run_caches as _c_run_caches

LANGUAGE = "c"
CONFIG_KEYS = ("rule", "constraints", "utils", "transform")
# ast-grep-py 0.51 replaces `$` by this character before parsing a C pattern (`$` is no identifier char)
_EXPANDO = "\U00010000"
_METAVAR = lazy_re(r"\$(\$\$)?([A-Z_][A-Z0-9_]*)")
_WORD = lazy_re(r"[A-Za-z_][A-Za-z0-9_]*")
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


def metavariables(config: dict[str, Any], memo: dict[Any, Any] | None = None) -> tuple[set[str], set[str]]:
    """(names, multi): the capturing metavariables of a config's patterns and transforms; `multi` are
    the `$$$X` ones. Names starting with `_` do not capture (ast-grep's convention). Every util counts,
    used or not, so the rule's `matches:` add none. memo: id(rule object) -> (object, names, multi),
    shared by the cases of one rule (they share their top-level utils)."""
    names: set[str] = set()
    multi: set[str] = set()
    utils = config.get("utils") or {}
    for part in (config.get("rule"), *utils.values()):
        got = memo.get(id(part)) if memo is not None else None
        if got is None or got[0] is not part:
            got = (part, *_names_in(part))
            if memo is not None:
                memo[id(part)] = got
        names |= got[1]
        multi |= got[2]
    for name in config.get("transform") or {}:
        names.add(str(name))
    return names, multi


def _names_in(rule: Any) -> tuple[frozenset[str], frozenset[str]]:
    """The metavariables of the patterns written in `rule` itself (not following `matches:`)."""
    names: set[str] = set()
    multi: set[str] = set()
    for text in _patterns(rule):
        for m in _METAVAR.finditer(text):
            if not m.group(2).startswith("_"):
                names.add(m.group(2))
                if m.group(1):
                    multi.add(m.group(2))
    return frozenset(names), frozenset(multi)


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
_OPERATOR = lazy_re(r"<<=|>>=|->|&&|\|\||<<|>>|<=|>=|==|!=|[&|^%]=|[?~%^|&<>!]")
_LITERAL = lazy_re(r'"(?:\\.|[^"\\])*"|\'(?:\\.|[^\'\\])*\'|/\*.*?\*/|//[^\n]*', re.S)
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
        calls = _CALLED.findall(text)
        if text.count("(") == 1 and len(calls) == 1:
            return {calls[0]}
    return set()


_CALLED = lazy_re(r"([A-Za-z_][A-Za-z0-9_]*)\s*\(")
_PLAIN_REGEX = lazy_re(r"\^?(?:\\b)?(\w{2,})(?:\\b)?\$?")
# `^read_sysreg(_s|_el[012])?$`: a literal word, then a group or the end (no top-level `|` anywhere)
_PREFIX_REGEX = lazy_re(r"\^(\w{3,})(?=\(|\$?$)")


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
    SgRoot = sg_root()

    # ast-grep matches with the first node of the selector's kind in the parsed context: the
    # metavariable is bound only when it lies inside that node
    node = SgRoot(context.replace("$", _EXPANDO), LANGUAGE).root().find(kind=selector)
    return node is not None and _single(node.text().replace(_EXPANDO, "$"), name)


# -- any-of prefilter clauses --------------------------------------------------------------------------
# A clause is a set of literal strings at least one of which the text of every match holds: an
# alternation such as `^(read_sysreg(_s)?|__vcpu_sys_reg)$` or an `any:` of patterns naming different
# words. A match's text lies in the parsed file, so a file lacking every word of a clause holds none.

_CLAUSE_MAX = 48  # alternatives kept in one clause (a longer one filters little and costs per file)
_LITERAL_ESCAPES = frozenset("()[]{}.*+?|^$\\/-&~!#%<>=,:;'\"@` ")
_ZERO_WIDTH_ESCAPES = frozenset("bBAz")
_CLASS_ESCAPES = frozenset("sSdDwW")
_CLASS_MAX = 6  # a class of at most this many listed characters is read as alternatives


class _Unsure(Exception):
    """A regex construct the literal reader does not handle: no clause."""


def _class(regex: str, i: int) -> tuple[frozenset[str] | None, int]:
    """(its characters when the class opened at regex[i] == '[' is a short explicit list such as
    `[|&^]`, else None; the index after its `]`)."""
    j = i + 1
    chars: set[str] | None = set()
    if j < len(regex) and regex[j] == "^":
        chars, j = None, j + 1  # negated: any other character
    if j < len(regex) and regex[j] == "]":
        if chars is not None:
            chars.add("]")
        j += 1
    while j < len(regex):
        ch = regex[j]
        if ch == "\\":
            esc = regex[j + 1] if j + 1 < len(regex) else ""
            if chars is not None:
                if esc in _LITERAL_ESCAPES:
                    chars.add(esc)
                else:
                    chars = None  # \s, \d ...: a range of characters
            j += 2
            continue
        if ch == "[":
            raise _Unsure  # nested classes, [[:alpha:]], set operations (Rust syntax)
        if ch == "]":
            small = chars is not None and 0 < len(chars) <= _CLASS_MAX
            return (frozenset(chars) if small else None), j + 1  # type: ignore[arg-type]
        if ch == "-" and chars is not None and j + 1 < len(regex) and regex[j + 1] != "]" and chars:
            chars = None  # a range such as a-z
        elif ch in "&~" and regex.startswith(ch * 2, j):
            raise _Unsure  # && and ~~ are set operations in Rust classes
        elif chars is not None:
            chars.add(ch)
        j += 1
    raise _Unsure


def _quantifier(regex: str, i: int) -> tuple[bool, int]:
    """(optional, index after) for a quantifier at regex[i] (none: (False, i)); `+` and `{1,}` keep
    the atom (not optional) but repeat it."""
    if i >= len(regex) or regex[i] not in "?*+{":
        return False, i
    ch = regex[i]
    if ch == "{":
        end = regex.find("}", i)
        if end < 0:
            raise _Unsure
        low = regex[i + 1:end].split(",")[0].strip()
        if not low.isdigit():
            raise _Unsure
        optional, i = int(low) == 0, end + 1
    else:
        optional, i = ch in "?*", i + 1
    if i < len(regex) and regex[i] == "?":  # lazy
        i += 1
    return optional, i


def _better(a: frozenset[str], b: frozenset[str]) -> frozenset[str]:
    """The more selective of two clauses: longer shortest word, then fewer alternatives."""
    def score(c: frozenset[str]) -> tuple[int, int]:
        return min(map(len, c)), -len(c)
    return a if score(a) >= score(b) else b


def _alternation(regex: str, i: int, depth: int) -> tuple[frozenset[str] | None, frozenset[str] | None, int]:
    """`branch|branch|...` from regex[i] up to an unmatched `)` or the end: (clause, the exact strings
    it matches when every branch is a fixed string or a product of short classes, index after)."""
    clauses: list[frozenset[str] | None] = []
    exacts: list[frozenset[str] | None] = []
    while True:
        clause, exact, i = _sequence(regex, i, depth)
        clauses.append(clause)
        exacts.append(exact)
        if i < len(regex) and regex[i] == "|":
            i += 1
            continue
        break
    exact_all = None if any(e is None for e in exacts) else frozenset().union(*exacts)  # type: ignore[arg-type]
    if exact_all is not None and len(exact_all) > _CLAUSE_MAX:
        exact_all = None
    if any(c is None for c in clauses):
        return None, exact_all, i
    out = frozenset().union(*clauses)  # type: ignore[arg-type]
    return (out if len(out) <= _CLAUSE_MAX else None), exact_all, i


def _sequence(regex: str, i: int, depth: int) -> tuple[frozenset[str] | None, frozenset[str] | None, int]:
    """One branch: (the best clause among its stretches of fixed text and its mandatory groups, the
    exact strings when the whole branch is fixed text, index after). A stretch is a set of strings,
    one of which the text holds: `[|&^]=` gives {|=, &=, ^=}."""
    best: frozenset[str] | None = None
    run: frozenset[str] = frozenset({""})
    whole = True  # no break so far: `run` is every string the branch matches

    def close(strings: frozenset[str]) -> None:
        nonlocal best
        if strings and "" not in strings:
            best = strings if best is None else _better(best, strings)

    def extend(strings: frozenset[str], more: frozenset[str]) -> frozenset[str] | None:
        out = frozenset(a + b for a in strings for b in more)
        return out if len(out) <= _CLAUSE_MAX else None

    while i < len(regex) and regex[i] not in "|)":
        ch = regex[i]
        fixed: frozenset[str] | None = None  # the atom matches exactly one of these
        group: frozenset[str] | None = None  # the atom's text holds one of these
        if ch == "(":
            if depth > 10:
                raise _Unsure
            j = i + 1
            if regex.startswith("?", j):
                if regex.startswith("?:", j):
                    j += 2
                elif regex.startswith("?P<", j) or regex.startswith("?<", j):
                    j = regex.index(">", j) + 1
                else:
                    raise _Unsure  # flags such as (?i): case-insensitive words are not literals
            group, fixed, j = _alternation(regex, j, depth + 1)
            if j >= len(regex) or regex[j] != ")":
                raise _Unsure
            i = j + 1
        elif ch == "[":
            fixed, i = _class(regex, i)
        elif ch == "\\":
            if i + 1 >= len(regex):
                raise _Unsure
            esc = regex[i + 1]
            i += 2
            if esc in _ZERO_WIDTH_ESCAPES:
                continue  # `\bfoo\b`: the word is still contiguous
            if esc in _LITERAL_ESCAPES:
                fixed = frozenset({esc})
            elif esc not in _CLASS_ESCAPES:
                raise _Unsure  # \x41, \p{..}, \n ...: not read
        elif ch in "^$":
            i += 1
            continue  # anchors: zero width
        elif ch in "*+?{":
            raise _Unsure  # a quantifier without an atom
        elif ch == ".":
            i += 1
        else:
            fixed, i = frozenset({ch}), i + 1
        quantified = i < len(regex) and regex[i] in "?*+{"
        optional, i = _quantifier(regex, i)
        if fixed is not None and not quantified:
            longer = extend(run, fixed)
            if longer is not None:
                run = longer
                continue
            close(run)  # too many strings: start again from this atom
            run, whole = fixed, False
            continue
        whole = False
        if fixed is not None and not optional:  # `ab+c`: both `ab` and `bc` are there
            longer = extend(run, fixed)
            close(longer if longer is not None else run)
            run = fixed
            continue
        close(run)  # anything else ends the stretch of fixed text
        run = frozenset({""})
        if group is not None and not optional:
            best = group if best is None else _better(best, group)
    close(run)
    return best, (run if whole else None), i


# more node kinds whose text holds one of these words (keywords: never a metavariable's text)
_KIND_WORDS = {"while_statement": frozenset({"while"}), "for_statement": frozenset({"for"}),
               "else_clause": frozenset({"else"}), "break_statement": frozenset({"break"}),
               "continue_statement": frozenset({"continue"}), "true": frozenset({"true", "TRUE"}),
               "false": frozenset({"false", "FALSE"}), "null": frozenset({"NULL", "nullptr"}),
               "struct_specifier": frozenset({"struct"}), "enum_specifier": frozenset({"enum"}),
               "union_specifier": frozenset({"union"})}
_ARITH = lazy_re(r"[-+*/]")
_NUMBER = lazy_re(r"(?<![A-Za-z0-9_.])[0-9][A-Za-z0-9_]*")


def _pattern_words(value: Any) -> set[str]:
    """`_pattern_tokens` plus what the clauses may also use: arithmetic operators and numbers, and
    the words of a `{context, selector}` pattern's selected node (read from an ast-grep parse)."""
    if isinstance(value, dict):
        if value.get("strictness") not in (None, "smart", "cst"):
            return _pattern_tokens(value)  # `ast`/`relaxed` skip the pattern's operators
        context, selector = value.get("context"), value.get("selector")
        if not isinstance(context, str) or not isinstance(selector, str):
            return set()
        try:
            SgRoot = sg_root()

            node = SgRoot(context.replace("$", _EXPANDO), LANGUAGE).root().find(kind=selector)
        except Exception:  # an unusual selector: no words
            return set()
        if node is None:
            return set()
        value = node.text().replace(_EXPANDO, "$")
    if not isinstance(value, str):
        return set()
    code = _LITERAL.sub(" ", _METAVAR.sub(" ", value))
    return _pattern_tokens(value) | set(_ARITH.findall(code)) | set(_NUMBER.findall(code))


def regex_clause(regex: str) -> frozenset[str] | None:
    """Literal strings one of which every text `regex` matches (searches) holds, or None when unsure:
    `^(read_sysreg(_s)?|__vcpu_sys_reg)$` -> {read_sysreg, __vcpu_sys_reg}."""
    try:
        clause, _, end = _alternation(regex, 0, 0)
    except (_Unsure, ValueError, IndexError):
        return None
    return clause if end == len(regex) else None


def _cnf(rule: Any, utils: dict[str, Any], depth: int, inner: bool = False) -> set[frozenset[str]]:
    """Clauses every file holding a match of `rule` satisfies (inner: the matched text itself); like
    `_required`, with `any:` and regex alternations giving any-of clauses."""
    if not isinstance(rule, dict) or depth > 20:
        return set()
    out: set[frozenset[str]] = set()
    for key, value in rule.items():
        if key == "pattern":
            if isinstance(value, dict) and value.get("strictness") not in _STRICT_TEXT:
                continue
            out |= {frozenset({t}) for t in _pattern_words(value)}
        elif key == "has" or (key in ("inside", "follows", "precedes") and not inner):
            out |= _cnf(value, utils, depth + 1, inner)
        elif key == "all" and isinstance(value, list):
            for sub in value:
                out |= _cnf(sub, utils, depth + 1, inner)
        elif key == "any" and isinstance(value, list) and value:
            branches = [_cnf(sub, utils, depth + 1, inner) for sub in value]
            common = set.intersection(*branches)
            out |= common
            if all(b - common for b in branches):  # a match meets one branch: one of their clauses
                either = frozenset().union(*(_best(b - common) for b in branches))
                if len(either) <= _CLAUSE_MAX:
                    out.add(either)
        elif key == "matches" and isinstance(value, str):
            out |= _cnf(utils.get(value), utils, depth + 1, inner)
        elif key == "kind" and value in _KIND_TOKEN:
            out.add(frozenset({_KIND_TOKEN[value]}))
        elif key == "kind" and value in _KIND_WORDS:
            out.add(_KIND_WORDS[value])
        elif key == "regex" and isinstance(value, str):
            clause = regex_clause(value)
            if clause:
                out.add(clause)
    return out


def _best(clauses: set[frozenset[str]]) -> frozenset[str]:
    best = None
    for c in sorted(clauses, key=sorted):
        best = c if best is None else _better(best, c)
    assert best is not None
    return best


def required_clauses(config: dict[str, Any], inner: bool = False) -> frozenset[frozenset[str]]:
    """The any-of clauses of a config (rule, and the constraints on metavariables every match binds):
    a text lacking every word of one clause holds no match (inner: no match's own text does)."""
    utils = config.get("utils") or {}
    out = _cnf(config.get("rule"), utils, 0, inner)
    constraints = config.get("constraints")
    if isinstance(constraints, dict):
        for name, sub in constraints.items():
            if isinstance(name, str) and _binds(config.get("rule"), name, utils, 0):
                out |= _cnf(sub, utils, 0, inner)
    return frozenset(out)


def render(template: str, vars: dict[str, str]) -> str:
    """A fix template with `$X` / `$$$X` replaced by their texts (unknown ones are kept)."""
    return _METAVAR.sub(lambda m: vars.get(m.group(2), m.group(0)), template)


# -- ast-grep ------------------------------------------------------------------------------------------

_SURROGATE = lazy_re("[\ud800-\udfff]")
_CHAIN_NUMBER = lazy_re(r"^\d+: ")


def sg_root() -> Any:
    """ast_grep_py's SgRoot, from its extension module alone when it can be found (see native)."""
    from .native import extension

    mod = extension("ast_grep_py", "ast_grep_py")
    if mod is None:
        from ast_grep_py import SgRoot

        return SgRoot
    return mod.SgRoot


def parse(text: str) -> Any:
    """The ast-grep root of C source `text` (opaque to callers; pass it back to `Compiled.run`)."""
    SgRoot = sg_root()

    # undecodable bytes arrive as lone surrogates (surrogateescape), which cannot cross into Rust;
    # one '?' per surrogate keeps every line and column where it was
    return SgRoot(text if text.isascii() else _SURROGATE.sub("?", text), LANGUAGE)


def _clean_error(exc: Exception) -> str:
    """ast-grep's error chain on one line, without the Rust backtrace and with `$` restored."""
    text = str(exc).split("Stack backtrace")[0].replace(_EXPANDO, "$")
    parts = [_CHAIN_NUMBER.sub("", ln.strip()) for ln in text.split("\n")]
    parts = [p for p in parts if p and p not in ("Caused by:", "cannot get matcher")]
    return ": ".join(parts) or type(exc).__name__


def _nonempty_children(node: Any) -> list[Any]:
    return [c for c in node.children() if c.range().start.index != c.range().end.index]


def _check_pattern(text: str) -> None:
    """Reject patterns that ast-grep accepts but that can never match what their author meant."""
    SgRoot = sg_root()

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
    SgRoot = sg_root()

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


def _named_utils(value: Any, out: set[str]) -> None:
    """Every `matches:` name anywhere in `value`."""
    if isinstance(value, dict):
        for key, sub in value.items():
            if key == "matches" and isinstance(sub, str):
                out.add(sub)
            else:
                _named_utils(sub, out)
    elif isinstance(value, list):
        for sub in value:
            _named_utils(sub, out)


def _run_config(config: dict[str, Any]) -> dict[str, Any]:
    """The config ast-grep runs: only the utils the rule and its constraints reach. ast-grep compiles
    every util on every call (a case of a rule sharing many utils paid for all of them per file)."""
    out = _sg_config(config)
    utils = out.get("utils")
    if isinstance(utils, dict):
        used: set[str] = set()
        _named_utils([out.get("rule"), out.get("constraints")], used)
        todo = list(used)
        while todo:
            name = todo.pop()
            found: set[str] = set()
            _named_utils(utils.get(name), found)
            todo += found - used
            used |= found
        kept = {k: v for k, v in utils.items() if k in used}
        if kept:
            out["utils"] = kept
        else:
            del out["utils"]
    return _ascii_regexes(out)


def _ascii_regexes(value: Any) -> Any:
    """Every `regex:` with ASCII `\\w \\d \\s \\b` (as Python's re.ASCII): the C a rule reads names things in
    ASCII, and ast-grep builds a rule on every call, where a Unicode class costs 2-4x a plain one."""
    if isinstance(value, dict):
        return {k: ascii_classes(v) if k == "regex" and isinstance(v, str) else _ascii_regexes(v)
                for k, v in value.items()}
    if isinstance(value, list):
        return [_ascii_regexes(v) for v in value]
    return value


_CLASS_BODY = {"w": "0-9A-Za-z_", "d": "0-9", "s": "\\t\\n\\x0B\\x0C\\r "}
_OUTSIDE = {"w": "[0-9A-Za-z_]", "d": "[0-9]", "s": "[\\t\\n\\x0B\\x0C\\r ]", "W": "[^0-9A-Za-z_]",
            "D": "[^0-9]", "S": "[^\\t\\n\\x0B\\x0C\\r ]", "b": "(?-u:\\b)", "B": "(?-u:\\B)"}


def ascii_classes(regex: str) -> str:
    """`regex` with its Perl classes and word boundaries in their ASCII forms (inside a bracket class
    only the positive ones; a negated one there stays as written)."""
    if "\\" not in regex:
        return regex
    out: list[str] = []
    i, n, depth = 0, len(regex), 0  # depth: inside a bracket class (nested sets count)
    while i < n:
        ch = regex[i]
        if ch == "\\" and i + 1 < n:
            nxt = regex[i + 1]
            if depth and nxt in _CLASS_BODY:
                out.append(_CLASS_BODY[nxt])
            elif not depth and nxt in _OUTSIDE:
                out.append(_OUTSIDE[nxt])
            else:
                out.append(regex[i:i + 2])
            i += 2
            continue
        if ch == "[":
            depth += 1
            out.append(ch)
            i += 1
            if i < n and regex[i] == "^":
                out.append("^")
                i += 1
            if i < n and regex[i] == "]":  # a leading ] is a literal
                out.append("]")
                i += 1
            continue
        if ch == "]" and depth:
            depth -= 1
        out.append(ch)
        i += 1
    return "".join(out)


# -- a cheaper necessary condition ---------------------------------------------------------------------
# ast-grep-py builds a rule on every call (no compiled matcher survives a call), and the regexes of a
# rule (utils, constraints) are most of that cost. Nearly every call finds nothing, so each case with
# such parts first asks a relaxed rule: the same shape with regexes, `not`s, constraints and custom
# stopBy relations left out and every metavariable non-capturing. Every node the case matches matches
# the relaxed rule, whatever the metavariables hold, so a file where it finds nothing holds no match.

_RELATIONS = ("has", "inside", "follows", "precedes")


def _anonymous(pattern: str) -> str:
    """`pattern` with anonymous metavariables ($X -> $_, $$$X -> $$$): it matches wherever the pattern
    matches, without the equalities a repeated or already bound name demands (and cases that differ
    only in their names share one relaxed rule)."""
    return _METAVAR.sub(lambda m: "$$$" if m.group(1) else "$_", pattern)


def _relax(rule: Any, utils: dict[str, Any], depth: int) -> dict[str, Any] | None:
    """A metavariable-free rule every node matching `rule` (with any bindings) matches; None for no
    condition at all. Only conditions that hold of the matched node are kept: atoms it must meet,
    relations whose target must exist (their targets relaxed the same way, and left out when they
    relate further: a nested search per node costs more than it filters), every branch of an `any`."""
    if not isinstance(rule, dict) or depth > 20:
        return None
    parts: list[dict[str, Any]] = []
    for key, value in rule.items():
        if key == "pattern":
            if isinstance(value, str):
                parts.append({"pattern": _anonymous(value)})
            elif isinstance(value, dict) and isinstance(value.get("context"), str):
                parts.append({"pattern": {**value, "context": _anonymous(value["context"])}})
        elif key == "kind" and isinstance(value, str):
            parts.append({"kind": value})
        elif key in _RELATIONS and isinstance(value, dict):
            stop = value.get("stopBy")
            if stop is not None and stop not in ("end", "neighbor"):
                continue  # a rule that stops the search: relaxing it could stop it sooner
            inner = _relax({k: v for k, v in value.items() if k not in ("stopBy", "field")}, utils, depth + 1)
            if inner is None or _searches(inner):
                continue  # a search from every node it reaches: costs more than it filters
            parts.append({key: {**inner, **{k: value[k] for k in ("stopBy", "field") if k in value}}})
        elif key == "all" and isinstance(value, list):
            parts += [r for sub in value if (r := _relax(sub, utils, depth + 1)) is not None]
        elif key == "any" and isinstance(value, list) and value:
            branches = [_relax(sub, utils, depth + 1) for sub in value]
            if all(b is not None for b in branches):
                parts.append({"any": branches})
        elif key == "matches" and isinstance(value, str):
            r = _relax(utils.get(value), utils, depth + 1)
            if r is not None:
                parts.append(r)
        # regex, not, nthChild, range: left out (a `not` cannot be relaxed: it would exclude more)
    if not parts:
        return None
    return parts[0] if len(parts) == 1 else {"all": parts}


def _searches(value: Any) -> bool:
    """Does a (relaxed) rule object hold a relation?"""
    if isinstance(value, dict):
        return any(k in _RELATIONS or _searches(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_searches(v) for v in value)
    return False


def _has_regex(value: Any) -> bool:
    if isinstance(value, dict):
        return any(k == "regex" or _has_regex(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_regex(v) for v in value)
    return False


def relaxed(config: dict[str, Any]) -> dict[str, Any] | None:
    """The relaxed config of a run config (`_run_config`), or None when it says nothing or would
    cost about as much as the config itself: without a regex (in the rule, its utils or its
    constraints) ast-grep builds a rule in a few microseconds, and the search is what is left."""
    if not _has_regex([config.get("rule"), config.get("utils"), config.get("constraints")]):
        return None
    rule = _relax(config.get("rule"), config.get("utils") or {}, 0)
    return None if rule is None else {"rule": rule}


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


# -- full views: parse only the top-level items the added lines touch -------------------------------
# A kernel file is thousands of lines and a patch touches a few functions. A text holding only those
# items (every other line blanked, so lines and columns stay where they were) parses to the same item
# subtrees: tree-sitter parses a top-level item from the same state wherever it stands, and
# `unit_text` checks that on the tree-sitter parse of both texts (an item inside an ERROR, or one
# whose subtree differs, and the whole file is parsed). A case finds the same matches there when its
# match lies inside one item and nothing it asks reaches outside it (`confined`).

# the items a touched line may lie in (a touched `#if` line or anything else: the whole file is parsed)
_ITEMS = frozenset({"function_definition", "declaration", "type_definition", "struct_specifier",
                    "union_specifier", "enum_specifier", ";", "comment", "preproc_def",
                    "preproc_function_def", "preproc_include", "preproc_call"})

LEAF_ITEMS = frozenset({"comment", ";"})
_TYPE_ITEMS = frozenset({"struct_specifier", "union_specifier", "enum_specifier"})


def unit_text(ts_root: Any, lines: list[str], touched: Iterable[int]) -> tuple[str, list[tuple], frozenset[str]] | None:
    """(the text with every line outside the items holding `touched` (1-based) blanked, those items as
    (kind, start row, start column, end row, end column) in characters, the kinds of those that are
    no statement: `added: statement` looks for a match's statement up to its item),
    from the tree-sitter tree of `lines`; None when a touched line is not in a whole error-free item
    or an item parses differently alone. The items are what `units` finds in the file's own tree."""
    wanted = sorted(touched)
    items: list[Any] = []

    def visit(node: Any) -> bool:
        after_type = False  # the previous child was a kept struct/union/enum: its `;` goes with it
        for child in node.children:
            (sr, _sc), (er, _ec) = child.start_point, child.end_point
            i = bisect_left(wanted, sr + 1)
            if i == len(wanted) or wanted[i] > er + 1:
                if after_type and child.type == ";":
                    items.append(child)  # `struct x { ... };` alone without it parses otherwise
                after_type = False
                continue
            after_type = child.type in _TYPE_ITEMS
            kind = child.type
            if kind == "ERROR" or (kind not in _CONTAINERS and (kind not in _ITEMS or child.has_error)):
                return False
            if kind in _CONTAINERS:
                if not visit(child):
                    return False
            else:
                items.append(child)
        return True

    if not visit(ts_root) or not items:
        return None
    keep: dict[int, list[tuple[int, int | None]]] = {}
    for item in items:
        (sr, sc), (er, ec) = item.start_point, item.end_point
        for r in range(sr, er + 1):
            keep.setdefault(r, []).append((sc if r == sr else 0, ec if r == er else None))
    out = [""] * len(lines)
    for r, kept in keep.items():
        if r >= len(lines):
            continue
        if kept == [(0, None)]:
            out[r] = lines[r]
        else:  # part of the line (columns are bytes in tree-sitter)
            raw = lines[r].encode("utf-8", "surrogateescape")
            buf = bytearray(b" " * len(raw))
            for c0, c1 in kept:
                c1 = len(raw) if c1 is None else c1
                buf[c0:c1] = raw[c0:c1]
            out[r] = buf.decode("utf-8", "surrogateescape")
    text = "\n".join(out)
    from .c import parse as ts_parse

    alone = ts_parse(text.encode("utf-8", "surrogateescape")).root_node.children
    if len(alone) != len(items):
        return None
    for a, b in zip(items, alone, strict=True):  # same kind, place and subtree (named nodes and fields) alone
        if a.type != b.type or a.start_point != b.start_point or a.end_point != b.end_point \
                or b.has_error or str(a) != str(b):
            return None
    spans = [(a.type, a.start_point[0], _char_col(lines, *a.start_point), a.end_point[0],
              _char_col(lines, *a.end_point)) for a in items]
    return text, spans, frozenset(a.type for a in items if not _is_statement(a.type))


def _char_col(lines: list[str], row: int, col: int) -> int:
    line = lines[row] if row < len(lines) else ""
    return col if line.isascii() else len(line.encode("utf-8", "surrogateescape")[:col].decode(
        "utf-8", "surrogateescape"))


def parse_units(text: str, spans: list[tuple]) -> Any:
    """The ast-grep root of a `unit_text`, or None when its top level is not exactly those items."""
    root = parse(text)
    top = root.root()
    kids = top.children()
    if len(kids) != len(spans):
        return None
    for kid, (kind, sr, sc, er, ec) in zip(kids, spans, strict=True):
        rng = kid.range()
        if kid.kind() != kind or (rng.start.line, rng.start.column, rng.end.line, rng.end.column) != (sr, sc, er, ec):
            return None
    return None if top.find(kind="ERROR") is not None else root


def _confined(rule: Any, utils: dict[str, Any], below: bool, depth: int,
              kinds: frozenset[str] | None = None) -> bool:
    """Does nothing `rule` asks of a node inside a top-level item look outside that item? below: the
    node is certainly inside the item, not the item itself (then its siblings and position are inside
    the item too); so is a node whose kinds (as `rule` and the conditions around it pin them) are
    no item's. `inside` may climb past the item only to nodes its target never matches (containers)."""
    if depth > 20:
        return False
    if isinstance(rule, list):
        return all(_confined(r, utils, below, depth + 1, kinds) for r in rule)
    if not isinstance(rule, dict):
        return True
    here = _kinds(rule, utils, 0)
    if kinds is not None:
        here = kinds if here is None else here & kinds
    below = below or (here is not None and not here & _ITEMS)
    for key, value in rule.items():
        if key in ("follows", "precedes", "nthChild") and not below:
            return False  # the item's own siblings or position
        if key == "inside":
            if not (_never_container(value, utils, 0) and _confined(value, utils, False, depth + 1)):
                return False
        elif key in ("has", "follows", "precedes", "nthChild"):
            if not _confined(value, utils, True, depth + 1):
                return False
        elif key == "stopBy":  # the nodes the relation passes
            if not _confined(value, utils, below, depth + 1):
                return False
        elif key in ("all", "any", "not", "ofRule"):
            if not _confined(value, utils, below, depth + 1, here if key != "ofRule" else None):
                return False
        elif key == "matches" and (
                not isinstance(value, str) or not _confined(utils.get(value), utils, below, depth + 1, here)):
            return False
    return True


def _kinds(rule: Any, utils: dict[str, Any], depth: int) -> frozenset[str] | None:
    """The node kinds a node matching `rule` can have, or None when it does not pin them."""
    if not isinstance(rule, dict) or depth > 20:
        return None
    known: frozenset[str] | None = None

    def meet(more: frozenset[str] | None) -> None:
        nonlocal known
        if more is not None:
            known = more if known is None else known & more

    if isinstance(rule.get("kind"), str):
        meet(frozenset({rule["kind"]}))
    pat = rule.get("pattern")
    if isinstance(pat, str):
        meet(_pattern_kind(pat))
    elif isinstance(pat, dict) and isinstance(pat.get("selector"), str):
        meet(frozenset({pat["selector"]}))
    if isinstance(rule.get("all"), list):
        for sub in rule["all"]:
            meet(_kinds(sub, utils, depth + 1))
    if isinstance(rule.get("any"), list) and rule["any"]:
        branches = [_kinds(sub, utils, depth + 1) for sub in rule["any"]]
        if all(b is not None for b in branches):
            meet(frozenset().union(*branches))  # type: ignore[arg-type]
    if isinstance(rule.get("matches"), str):
        meet(_kinds(utils.get(rule["matches"]), utils, depth + 1))
    return known


def _pattern_kind(text: str) -> frozenset[str] | None:
    """The kind of the node a pattern matches (the single node it parses to), None for a bare
    metavariable (any node) or when unsure."""
    try:
        SgRoot = sg_root()

        node = SgRoot(text.replace("$", _EXPANDO), LANGUAGE).root()
        while len(kids := _nonempty_children(node)) == 1:
            node = kids[0]
    except Exception:
        return None
    if node.kind() in ("translation_unit", "ERROR") or _METAVAR.fullmatch(node.text().replace(_EXPANDO, "$").strip()):
        return None
    return frozenset({node.kind()})


def confined(config: dict[str, Any]) -> bool:
    """Does every match of a run config (`_run_config`) lie inside one top-level item and depend on
    nothing outside it? Then a `unit_text` of the items finds the same matches in them."""
    utils = config.get("utils") or {}
    if not _never_container(config.get("rule"), utils, 0):
        return False
    return _confined(config.get("rule"), utils, False, 0) and all(
        _confined(sub, utils, False, 0) for sub in (config.get("constraints") or {}).values())


_DERIVED: Any = None  # config (marshalled) -> {name: value}, a cachefile.BuildCache once loaded


def _derived(key: bytes | None, name: str, compute: Callable[[], Any]) -> Any:
    """`compute()`, a pure function of the config whose marshal is `key` and of this module, kept in a
    per-build file (None: a config that is not plain data, computed every time)."""
    global _DERIVED
    if key is None:
        return compute()
    if _DERIVED is None:
        _DERIVED = _derived_cache()
    entry = _DERIVED.get(key)
    if entry is None or name not in entry:
        entry = {**(entry or {}), name: compute()}
        _DERIVED.put(key, entry)
    return entry[name]


def _derived_cache() -> Any:
    import importlib.util

    from .. import lazyre
    from ..cachefile import BuildCache, code_stamp

    spec = importlib.util.find_spec("ast_grep_py")  # where it is installed; not imported here
    stamp = code_stamp([__file__, spec.origin if spec is not None else None])
    return BuildCache(f"pattern-derived-{lazyre.KIND}", 3000, stamp=stamp)


class Compiled:
    """One ast-grep rule config (rule/constraints/utils/transform) plus its fix template."""

    def __init__(self, config: dict[str, Any], fix: str | None = None, *,
                 memo: dict[Any, Any] | None = None,
                 known: tuple[Iterable[str], Iterable[str]] | None = None) -> None:
        """memo: shared by the cases of one rule (see metavariables); known: (names, multi) as read
        before from this very config."""
        self.config = config
        self.fix = fix
        if known is not None:
            self.names, self.multi = set(known[0]), set(known[1])
        else:
            self.names, self.multi = metavariables(self.config, memo)
        self._valid = False
        self._constraint_tokens: Iterable[str] | None = None

    @cached_property
    def _key(self) -> bytes | None:
        """The config marshalled (version 2: no back-references, so the same config gives the same
        bytes in every process; 8x cheaper than JSON): the key of its derived facts across processes."""
        import marshal

        try:
            return marshal.dumps(self.config, 2)
        except ValueError:  # not plain data (a YAML date read without the JSON cache)
            return None

    # computed on first use (a review builds every case of a selected rule, most never run), and kept
    # across processes: deriving them (CNF of the rule tree, pattern parses) is ~20 ms of a hook run
    @cached_property
    def tokens(self) -> frozenset[str]:
        return _derived(self._key, "tokens", lambda: required_tokens(self.config))

    @cached_property
    def inner(self) -> frozenset[str]:
        """Words the matched text itself holds: a match that must lie on added lines needs them there."""
        return _derived(self._key, "inner", lambda: frozenset(
            _required(self.config.get("rule"), self.config.get("utils") or {}, 0, True)))

    @cached_property
    def sg(self) -> dict[str, Any]:
        return _run_config(self.config)

    @cached_property
    def pre(self) -> dict[str, Any] | None:
        """The relaxed config asked first (see `relaxed`), or None."""
        return _derived(self._key, "pre", lambda: relaxed(self.sg))

    @cached_property
    def _pre_key(self) -> bytes:
        import marshal

        return marshal.dumps(self.pre, 2)

    @cached_property
    def clauses(self) -> tuple[frozenset[str], ...]:
        """The any-of clauses `tokens` does not already check (constraints' included)."""
        return _derived(self._key, "clauses", lambda: tuple(_extra(required_clauses(self.config), self.tokens)))

    @cached_property
    def inner_clauses(self) -> tuple[frozenset[str], ...]:
        return _derived(self._key, "inner_clauses",
                        lambda: tuple(_extra(required_clauses(self.config, inner=True), self.inner)))

    @cached_property
    def confined(self) -> bool:
        """See `confined`: the case may search a `unit_text` instead of the whole file."""
        return _derived(self._key, "confined", lambda: confined(self.sg))

    @cached_property
    def leafless(self) -> bool:
        """Does the rule pin its matches to kinds other than a comment or a lone `;` (the items that
        are no statement and hold nothing)?"""
        return _derived(self._key, "leafless", lambda: (lambda k: k is not None and not k & LEAF_ITEMS)(
            _kinds(self.sg.get("rule"), self.sg.get("utils") or {}, 0)))

    @cached_property
    def local(self) -> bool:
        return _derived(self._key, "local", lambda: bool(
            _never_container(self.config.get("rule"), self.config.get("utils") or {}, 0)))

    def may_match(self, text: str) -> bool:
        """False when the text lacks a word every match contains (no parse needed). Asked for every
        case of every pattern rule on every file: plain loops, no generators."""
        has = _words_of(text)
        for t in self.tokens:
            if not has[t]:
                return False
        if self._constraint_tokens is None:  # lazily: it may parse a pattern's context
            self._constraint_tokens = _derived(self._key, "constraint_tokens", lambda: tuple(
                constraint_tokens(self.config)) if self.config.get("constraints") else ())
        for t in self._constraint_tokens:
            if not has[t]:
                return False
        return _meets(self.clauses, has)

    def may_match_inner(self, text: str) -> bool:
        """False when `text` cannot hold a whole match (for `added: cover`, the added lines' text)."""
        has = _words_of(text)
        for t in self.inner:
            if not has[t]:
                return False
        return _meets(self.inner_clauses, has)

    def validate(self) -> None:
        if not self._valid:
            validate(self.config)
            self._valid = True

    def run(self, root: Any, *, statement: bool = False, within: list[Any] | None = None) -> list[PatternMatch]:
        """The matches in document order (`root` from `parse`). statement: also compute each match's
        enclosing statement lines. within: `units(root, lines)`; when no match can be a container node
        only those units are searched, which finds every match that touches one of the lines."""
        out: list[PatternMatch] = []
        units = within is not None and self.local  # search only the units (see `local`)
        pre = self.pre
        if pre is not None:
            if _LAST[0] is not root:  # the relaxed rules answered on this root (cases share some)
                _LAST[:] = [root, {}]
            key = (self._pre_key, units)
            found_pre = _LAST[1].get(key)
            if found_pre is None:
                try:
                    found_pre = any(unit.find(pre) is not None for unit in within) if units else \
                        root.root().find(pre) is not None
                except Exception:  # a relaxed rule ast-grep refuses: run the case itself
                    found_pre = True
                _LAST[1][key] = found_pre
            if not found_pre:
                return out  # not even the relaxed rule matches
        found = [node for unit in within for node in unit.find_all(self.sg)] if units else \
            root.root().find_all(self.sg)
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


_LAST: list[Any] = [None, {}]  # [the root last searched, {(relaxed config, in units): found}]


def _meets(clauses: tuple[frozenset[str], ...], has: _Words) -> bool:
    """Every clause has a word in the text."""
    for clause in clauses:
        for word in clause:
            if has[word]:
                break
        else:
            return False
    return True


class _Words(dict):
    """word -> whether the text holds it, each answered once (a missing key searches the text)."""

    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        super().__init__()
        self.text = text

    def __missing__(self, word: str) -> bool:
        got = self[word] = word in self.text
        return got


# text -> its _Words: ~90 pattern cases ask the same file for the same words (2.3 asks per distinct
# word on a full-mode series, each a scan of a kernel file); kept for the run (lang.c's new_run)
_WORDS: dict[str, _Words] = {}
_WORDS_KEPT = 1024  # texts: a caller that never starts a run cannot grow it without bound
_c_run_caches.append(_WORDS)


def _words_of(text: str) -> _Words:
    got = _WORDS.get(text)
    if got is None:
        if len(_WORDS) >= _WORDS_KEPT:
            _WORDS.clear()
        got = _WORDS[text] = _Words(text)
    return got


def _extra(clauses: frozenset[frozenset[str]], words: frozenset[str]) -> tuple[frozenset[str], ...]:
    """The clauses a check of `words` leaves open, most selective first (cheap to reject early)."""
    # a word holding another alternative adds nothing: `BIT` is in every text holding `BIT_ULL`
    minimal = {frozenset(w for w in c if not any(v != w and v in w for v in c)) for c in clauses}
    left = [c for c in minimal if not (len(c) == 1 and next(iter(c)) in words)]
    return tuple(sorted(left, key=lambda c: (-min(map(len, c)), len(c), sorted(c))))


def _span(node: Any, start: int, end: int, items: list[Any]) -> str:
    """The source text from `start` to `end` (character offsets), cut out of the matched node's text."""
    base = node.range().start.index
    text = node.text()
    if base <= start <= end <= base + len(text):
        return text[start - base:end - base]
    return " ".join(m.text() for m in items)
