"""C pattern rules: ast-grep rule objects (pattern/kind/has/inside/...) with a message per case.

Schema (docs/pattern-rules.md; unknown keys are an error): the YAML rule metadata, `added:` (cover |
statement | overlap), and either the single-case form (`rule`, `constraints`, `utils`, `transform`,
`fix`, `message`, `note` at the top level) or `cases:` (a list of those, each with an optional `added`;
`message`, `note`, `added` and `utils` given at the top level are shared). The ast-grep keys are passed
to ast-grep-py verbatim; they are validated by ast-grep when the rule compiles (at load for `rules
list` and tests, on first use in a review).

Engine filters, top level or per case (a case's value wins; `exclude-files` adds up): `severity`,
`files`, `exclude-files`, `function` / `not-function` (a regex on the enclosing function's name; an
unknown name fails both), `new-only` (a match whose every added line the patch also removes is moved code),
`api` (the kernel API the message recommends, a key of kernel/api_since.py: the finding is dropped when a
base tree lacks it, and is a check saying "(X exists since vX.Y)" when the series may predate it).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import lru_cache
from typing import Any
from weakref import WeakKeyDictionary

from .. import lazyre
from ..lang.pattern import LEAF_ITEMS, Compiled, PatternMatch, check_keys, parse_units, unit_text, units
from ..record import replace
from ..series.model import path_matches
from ..views.context import FULL, FileContext, FileView
from .base import Rule
from .model import Finding, RuleMeta, Severity
from .yamlrule import YamlRuleError

META_KEYS = {"id", "title", "severity", "confidence", "scope", "files", "status", "docs", "needs_base"}
CASE_KEYS = {"rule", "constraints", "utils", "transform", "fix", "message", "note", "added", "severity", "files",
             "exclude-files", "function", "not-function", "new-only", "api"}
TOP_KEYS = META_KEYS | CASE_KEYS | {"cases"}
ADDED_MODES = ("cover", "statement", "overlap")
DEFAULT_FILES = ("*.c", "*.h")
_FIELD = lazyre.lazy_re(r"\{(\w+)\}")
_WORDY = lazyre.lazy_re(r"\w")
# spellings rule authors tried first -> the key the schema has
_SPELLINGS = {"exclude_files": "exclude-files", "not_function": "not-function", "new_only": "new-only",
              "exclude": "exclude-files", "functions": "function"}


def unknown_keys(unknown: set[Any]) -> str:
    """`unknown keys: a, b` with the schema's spelling for near-misses (`exclude_files`)."""
    names = [f"{k} (did you mean {_SPELLINGS[k]}?)" if k in _SPELLINGS else str(k) for k in sorted(map(str, unknown))]
    return f"unknown keys: {', '.join(names)}"



def collapse(text: str) -> str:
    """A line's text with whitespace runs collapsed to one space and the ends stripped."""
    return " ".join(text.split())


class PatternCase:
    """One shape of a rule: its compiled ast-grep config, message, note, `added:` mode and filters."""

    __slots__ = ("added", "api", "compiled", "exclude", "files", "function", "message", "new_only",
                 "not_function", "note", "severity")

    def __init__(self, compiled: Compiled, message: str, note: str | None, added: str, *,
                 severity: Severity | None = None, files: tuple[str, ...] = DEFAULT_FILES,
                 exclude: tuple[str, ...] = (), function: re.Pattern[str] | None = None,
                 not_function: re.Pattern[str] | None = None, new_only: bool = False,
                 api: str | None = None) -> None:
        self.compiled, self.message, self.note, self.added = compiled, message, note, added
        self.severity = severity  # None: the rule's own
        self.files, self.exclude = files, exclude
        self.function, self.not_function = function, not_function
        self.new_only = new_only
        self.api = api  # the API the message recommends (kernel/api_since.py), weighed per series

    def runs_on(self, path: str) -> bool:
        return _matches(path, self.files) and not (self.exclude and _matches(path, self.exclude))

    def function_ok(self, view: FileView, line: int) -> bool:
        """`function:` / `not-function:` against the function enclosing `line`; an unknown function
        (None: not in one, or the hunk does not tell) fails both, so a constrained case stays silent."""
        if self.function is None and self.not_function is None:
            return True
        from ..analyses.enclosing import enclosing_function_name  # lazy: only cases that ask pay for it

        name = enclosing_function_name(view, line)
        if name is None:
            return False
        if self.function is not None and not self.function.search(name):
            return False
        return self.not_function is None or not self.not_function.search(name)

    def new_lines(self, view: FileView, m: PatternMatch) -> list[int]:
        """The added lines that make the match count as new (the statement's, for `statement` when the
        match itself has none)."""
        touched = [n for n in m.lines if n in view.added]
        if touched or self.added != "statement":
            return touched
        return sorted(n for n in m.statement_lines if n in view.added)

    def anchor(self, view: FileView, m: PatternMatch) -> int | None:
        """The post-image line a match is reported on, or None when `added:` says it is not new."""
        touched = [n for n in m.lines if n in view.added]
        if self.added == "cover":
            return touched[0] if len(touched) == len(m.lines) else None
        if self.added == "overlap":
            return touched[0] if touched else None
        stmt = sorted(n for n in m.statement_lines if n in view.added)
        if not stmt:
            return None
        return touched[0] if touched else stmt[0]


def fill(template: str, values: dict[str, str]) -> str:
    """`{NAME}` -> the text of metavariable $NAME; other braces are left as written."""
    return _FIELD.sub(lambda m: values.get(m.group(1), m.group(0)), template)


def _globs(value: Any, where: str, key: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(g, str) and g for g in value):
        raise YamlRuleError(f"{where}: `{key}:` must be a list of globs")
    return tuple(value)


def _regex(value: Any, where: str, key: str) -> re.Pattern[str] | None:
    if value is None:
        return None
    if not isinstance(value, str) or not value:
        raise YamlRuleError(f"{where}: `{key}:` must be a regex string")
    try:
        return lazyre.compile(value)  # a rule file's own text: its sre code is kept per build
    except re.error as exc:
        raise YamlRuleError(f"{where}: `{key}:` bad regex {value!r}: {exc}") from None


def _filters(raw: dict[str, Any], where: str, defaults: dict[str, Any]) -> dict[str, Any]:
    """The engine filters of a case: its own value, else the top level's (`exclude-files` adds up)."""
    def pick(key: str) -> Any:
        return raw[key] if key in raw else defaults.get(key)

    severity = pick("severity")
    try:
        sev = Severity(severity) if severity is not None else None
    except ValueError:
        raise YamlRuleError(f"{where}: severity: must be one of error, warning, check") from None
    files = pick("files")
    exclude = _globs(defaults["exclude-files"], "exclude-files", "exclude-files") \
        if defaults.get("exclude-files") is not None else ()
    if raw is not defaults and "exclude-files" in raw:
        exclude += _globs(raw["exclude-files"], where, "exclude-files")
    new_only = pick("new-only")
    if new_only is not None and not isinstance(new_only, bool):
        raise YamlRuleError(f"{where}: new-only: must be true or false")
    api = pick("api")
    if api is not None and (not isinstance(api, str) or not api):
        raise YamlRuleError(f"{where}: api: must be an API name (a key of kernel/api_since.py)")
    return {"severity": sev, "files": _globs(files, where, "files") if files is not None else DEFAULT_FILES,
            "api": api,
            "exclude": exclude, "function": _regex(pick("function"), where, "function"),
            "not_function": _regex(pick("not-function"), where, "not-function"), "new_only": bool(new_only)}


def _case(raw: Any, where: str, defaults: dict[str, Any], memo: dict[Any, Any] | None = None,
          known: Any = None) -> PatternCase:
    """One case. memo: what the cases of one rule share (its top-level utils are the same objects in
    each: checked and read for metavariables once, not once per case). known: (names, multi) of this
    case when the same rule text was built before (see _Shapes): its ast-grep keys were checked then."""
    memo = {} if memo is None else memo
    if not isinstance(raw, dict):
        raise YamlRuleError(f"{where}: not a mapping")
    unknown = set(raw) - CASE_KEYS
    if unknown:
        raise YamlRuleError(f"{where}: {unknown_keys(unknown)}")
    filters = _filters(raw, where, defaults)
    if not isinstance(raw.get("rule"), dict) or not raw["rule"]:
        raise YamlRuleError(f"{where}: `rule:` must be an ast-grep rule object (e.g. {{pattern: ...}})")
    utils = {**(defaults.get("utils") or {}), **(raw.get("utils") or {})}
    try:
        if known is None:
            check_keys(raw["rule"], f"{where}.rule" if where != "rule" else "rule")
            for name, util in utils.items():
                if memo.get(("checked", name)) is not util:
                    check_keys(util, f"utils.{name}")
                    memo[("checked", name)] = util
    except ValueError as exc:
        raise YamlRuleError(str(exc)) from None
    config = {"rule": raw["rule"], "constraints": raw.get("constraints"), "utils": utils or None,
              "transform": raw.get("transform")}
    for key in ("constraints", "utils", "transform"):
        if config[key] is not None and not isinstance(config[key], dict):
            raise YamlRuleError(f"{where}: `{key}:` must be a mapping")
    fix = raw.get("fix")
    if isinstance(fix, dict):  # ast-grep's long form {template, expandStart, expandEnd}: the template only
        fix = fix.get("template")
    if fix is not None and not isinstance(fix, str):
        raise YamlRuleError(f"{where}: `fix:` must be a string")
    message = raw.get("message", defaults.get("message"))
    if not message:
        raise YamlRuleError(f"{where}: missing key: message")
    note = raw.get("note", defaults.get("note"))
    added = str(raw.get("added", defaults.get("added", "cover")))
    if added not in ADDED_MODES:
        raise YamlRuleError(f"{where}: added: must be one of {', '.join(ADDED_MODES)}")
    compiled = Compiled(config, fix, memo=memo, known=known)
    for text in (message, note or ""):
        missing = set(_FIELD.findall(str(text))) - compiled.names
        if missing:
            raise YamlRuleError(f"{where}: message names metavariables no pattern has: "
                                f"{', '.join('$' + n for n in sorted(missing))}")
    return PatternCase(compiled, str(message), str(note) if note is not None else None, added, **filters)


class PatternRule(Rule):
    """Reports each ast-grep match that `added:` counts as new, on its first added line."""

    def __init__(self, meta: RuleMeta, data: dict[str, Any], *, eager: bool = True) -> None:
        self.meta = meta  # type: ignore[misc]
        unknown = set(data) - TOP_KEYS
        if unknown:
            raise YamlRuleError(unknown_keys(unknown))
        if data.get("scope", "file") != "file":
            raise YamlRuleError("a pattern rule has scope: file")
        if ("rule" in data) == ("cases" in data):
            raise YamlRuleError("needs exactly one of rule: or cases:")
        key, known = _SHAPES.get(data)
        if "cases" in data:
            stray = {"rule", "constraints", "transform", "fix"} & set(data)
            if stray:
                raise YamlRuleError(f"with cases:, {', '.join(sorted(stray))} belong inside a case")
            if not isinstance(data["cases"], list) or not data["cases"]:
                raise YamlRuleError("cases: must be a non-empty list")
            if known is not None and len(known) != len(data["cases"]):
                known = None
            memo: dict[Any, Any] = {}
            self.cases = [_case(c, f"cases[{i}]", data, memo, known[i] if known else None)
                          for i, c in enumerate(data["cases"])]
        else:
            top = {k: v for k, v in data.items() if k in CASE_KEYS}
            self.cases = [_case(top, "rule", top, None, known[0] if known and len(known) == 1 else None)]
        if key is not None and known is None:  # every case built: the text's shape is valid
            _SHAPES.put(key, [(sorted(c.compiled.names), sorted(c.compiled.multi)) for c in self.cases])
        # the runner hands over files matching meta.files: a case's own `files:` may widen them
        files = tuple(dict.fromkeys(g for c in self.cases for g in c.files))
        if files != meta.files:
            self.meta = replace(meta, files=files)  # type: ignore[misc]
        self._compiled = False
        self._on: dict[str, tuple[PatternCase, ...]] = {}  # path -> the cases that run on it
        if eager:  # `rules list` and tests compile everything; a review compiles on first use
            self.compile()

    def compile(self) -> None:
        if self._compiled:
            return
        for i, case in enumerate(self.cases):
            try:
                case.compiled.validate()
            except ValueError as exc:
                where = f"cases[{i}]: " if len(self.cases) > 1 else ""
                raise YamlRuleError(f"{where}{exc}") from None
        self._compiled = True

    def evidence(self, *, full: bool) -> tuple[str, ...]:
        """The declared evidence, else (hunk-only: in full mode a match may use words of the whole file
        the hunks do not show) a word each case's matches certainly contain; () when some case has none."""
        if self.meta.evidence or full:
            return self.meta.evidence
        # a word says more about a series than an operator does (`?`, `<<` are everywhere)
        words = [max(sorted(c.compiled.tokens), key=lambda t: (t[0].isalnum() or t[0] == "_", len(t)))
                 if c.compiled.tokens else "" for c in self.cases]
        return () if not all(words) else tuple(dict.fromkeys(re.escape(w) for w in words))

    def _run(self, case: PatternCase, root: Any, within: list[Any] | None = None) -> list[PatternMatch]:
        try:
            return case.compiled.run(root, statement=case.added == "statement", within=within)
        except Exception:
            self.compile()  # raises YamlRuleError naming the problem when the rule itself is malformed
            raise

    def check(self, ctx: FileContext) -> Iterable[Finding]:  # type: ignore[override]
        view = ctx.view
        if not view.is_c or not view.added:
            return
        on = self._on.get(view.path)
        if on is None:  # the cases whose files: take this path, once per path
            on = self._on[view.path] = tuple(c for c in self.cases if c.runs_on(view.path))
        text = view.text
        added: str | None = None  # the added lines' text, joined only when a `cover` case asks
        live = []
        for c in on:
            if not c.compiled.may_match(text):
                continue
            if c.added == "cover":
                if added is None:
                    added = _added_text(view)
                if not c.compiled.may_match_inner(added):
                    continue
            live.append(c)
        if not live:  # no parse, no ast-grep import
            return
        # No validation probe here: `rules list` and the tests validate every shipped rule, and a
        # review pays only for the matching (a broken third-party rule fails below, named).
        full = view.mode == FULL
        whole: Any = None  # the whole file's parse, only when a case needs it
        within: list[Any] | None = None
        seen: set[int] = set()
        removed: frozenset[str] | None = None
        for case in live:
            part = _unit_root(view, case) if full and case.compiled.confined else None
            if part is not None:  # the items the added lines lie in, parsed alone: same matches there
                if not case.compiled.may_match(_PARTS[view][2]):
                    continue  # a match there has its words in those items' text: not in the file's
                found = self._run(case, part)
            else:
                if whole is None:
                    whole = view.sg_root()
                    within = _units(view, whole) if full else None  # a whole file: search what changed
                found = self._run(case, whole, within)
            for m in found:
                line = case.anchor(view, m)
                if line is None or line in seen or not case.function_ok(view, line):
                    continue
                if case.new_only:
                    if removed is None:
                        removed = removed_lines(view)
                    if _all_moved(case.new_lines(view, m), view, removed):
                        continue  # moved, not new
                message, severity = fill(case.message, m.vars), case.severity
                if case.api:  # advice naming an API the series' base may not have (docs/knowledge.md)
                    from ..kernel.api_since import api_worth

                    worth = api_worth(ctx, case.api)
                    if not worth.give:
                        continue
                    if worth.suffix:
                        message, severity = message + worth.suffix, Severity.CHECK
                seen.add(line)
                note = fill(case.note, m.vars) if case.note else None
                yield self.at_line(view, line, message, note=note, suggestion=m.fix,
                                   severity=severity,
                                   column=m.start_column if line == m.start_line else None)


class _Shapes:
    """Rule text (marshalled) -> each case's (names, multi), kept per build for the next processes:
    a text that built once has valid ast-grep keys, so a hook run does not walk every rule object again
    (a few ms for the pattern rules a patch wakes). Its stamp covers the code that checks and reads them."""

    def __init__(self) -> None:
        self.cache: Any = None

    def _load(self) -> Any:
        if self.cache is None:
            from ..cachefile import BuildCache, code_stamp
            from ..lang import pattern

            stamp = code_stamp([__file__, pattern.__file__])
            self.cache = BuildCache(f"pattern-shapes-{lazyre.KIND}", 500, stamp=stamp)
        return self.cache

    def get(self, data: dict[str, Any]) -> tuple[bytes | None, list | None]:
        import marshal

        try:
            key = marshal.dumps(data, 2)  # version 2: no back-references, the same bytes every run
        except ValueError:  # not plain data (a YAML date read without the JSON cache): no cache
            return None, None
        return key, self._load().get(key)

    def put(self, key: bytes, value: list) -> None:
        self._load().put(key, value)


_SHAPES = _Shapes()
_UNITS: WeakKeyDictionary[FileView, list[Any]] = WeakKeyDictionary()
_matches = lru_cache(maxsize=8192)(path_matches)  # every case of every rule asks for every file
_ADDED: WeakKeyDictionary[FileView, str] = WeakKeyDictionary()


def _added_text(view: FileView) -> str:
    """The view's added lines: an `added: cover` match lies on them, so its own words are there."""
    got = _ADDED.get(view)
    if got is None:
        got = _ADDED[view] = "\n".join(view.line_text(n) for n in sorted(view.added))
    return got


_PARTS: WeakKeyDictionary[FileView, tuple[Any, frozenset[str], str]] = WeakKeyDictionary()


def _unit_root(view: FileView, case: PatternCase) -> Any:
    """The ast-grep parse of the items of a full view that its added lines lie in (`unit_text`), or
    None when that cannot stand for the file. `added: statement` looks for a match's statement up
    to its item: every item must be one, or the case's matches none of the others (comments)."""
    got = _PARTS.get(view)
    if got is None:
        made = unit_text(view.root, view.lines, view.added)
        root = parse_units(made[0], made[1]) if made is not None else None
        got = _PARTS[view] = (root, made[2] if made is not None else frozenset(), made[0] if made else "")
    if case.added != "statement" or not got[1]:
        return got[0]
    return got[0] if got[1] <= LEAF_ITEMS and case.compiled.leafless else None


def _units(view: FileView, root: Any) -> list[Any]:
    """The units of the view's file that hold added lines, found once per view for every pattern rule."""
    got = _UNITS.get(view)
    if got is None:
        got = _UNITS[view] = units(root, view.added)
    return got


def removed_lines(view: FileView) -> frozenset[str]:
    """The collapsed text of every line the patch removes, in all its files (code moves between files);
    lines without a word character (`}`, `{`, blank) are left out: they say nothing about moved code."""
    files = view.patch.files or (view.change,)
    out = {collapse(ln.text) for fc in files for h in fc.hunks for ln in h.lines if ln.kind == "-"}
    return frozenset(t for t in out if _WORDY.search(t))


def _all_moved(lines, view: FileView, removed: frozenset[str]) -> bool:
    """Every wordy added line of the match is a line the patch removes: the match moved, it is not new.
    One moved line inside otherwise new code (an old read put into a new branch) keeps the match."""
    texts = [collapse(view.line_text(n)) for n in lines]
    wordy = [t for t in texts if _WORDY.search(t)]
    return bool(wordy) and all(t in removed for t in wordy)
