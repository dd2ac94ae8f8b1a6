"""C pattern rules: ast-grep rule objects (pattern/kind/has/inside/...) with a message per case.

Schema (docs/pattern-rules.md; unknown keys are an error): the YAML rule metadata, `added:` (cover |
statement | overlap), and either the single-case form (`rule`, `constraints`, `utils`, `transform`,
`fix`, `message`, `note` at the top level) or `cases:` (a list of those, each with an optional `added`;
`message`, `note`, `added` and `utils` given at the top level are shared). The ast-grep keys are passed
to ast-grep-py verbatim; they are validated by ast-grep when the rule compiles (at load for `rules
list` and tests, on first use in a review).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from ..lang.pattern import Compiled, PatternMatch, check_keys
from ..views.context import FileContext, FileView
from .base import Rule
from .model import Finding, RuleMeta
from .yamlrule import YamlRuleError

META_KEYS = {"id", "title", "severity", "confidence", "scope", "files", "status", "docs", "needs_base"}
CASE_KEYS = {"rule", "constraints", "utils", "transform", "fix", "message", "note", "added"}
TOP_KEYS = META_KEYS | CASE_KEYS | {"cases"}
ADDED_MODES = ("cover", "statement", "overlap")
_FIELD = re.compile(r"\{(\w+)\}")


class PatternCase:
    """One shape of a rule: its compiled ast-grep config, message, note and `added:` mode."""

    __slots__ = ("added", "compiled", "message", "note")

    def __init__(self, compiled: Compiled, message: str, note: str | None, added: str) -> None:
        self.compiled, self.message, self.note, self.added = compiled, message, note, added

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


def _case(raw: Any, where: str, defaults: dict[str, Any]) -> PatternCase:
    if not isinstance(raw, dict):
        raise YamlRuleError(f"{where}: not a mapping")
    unknown = set(raw) - CASE_KEYS
    if unknown:
        raise YamlRuleError(f"{where}: unknown keys: {', '.join(sorted(unknown))}")
    if not isinstance(raw.get("rule"), dict) or not raw["rule"]:
        raise YamlRuleError(f"{where}: `rule:` must be an ast-grep rule object (e.g. {{pattern: ...}})")
    utils = {**(defaults.get("utils") or {}), **(raw.get("utils") or {})}
    try:
        check_keys(raw["rule"], f"{where}.rule" if where != "rule" else "rule")
        for name, util in utils.items():
            check_keys(util, f"utils.{name}")
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
    compiled = Compiled(config, fix)
    for text in (message, note or ""):
        missing = set(_FIELD.findall(str(text))) - compiled.names
        if missing:
            raise YamlRuleError(f"{where}: message names metavariables no pattern has: "
                                f"{', '.join('$' + n for n in sorted(missing))}")
    return PatternCase(compiled, str(message), str(note) if note is not None else None, added)


class PatternRule(Rule):
    """Reports each ast-grep match that `added:` counts as new, on its first added line."""

    def __init__(self, meta: RuleMeta, data: dict[str, Any], *, eager: bool = True) -> None:
        self.meta = meta  # type: ignore[misc]
        unknown = set(data) - TOP_KEYS
        if unknown:
            raise YamlRuleError(f"unknown keys: {', '.join(sorted(unknown))}")
        if data.get("scope", "file") != "file":
            raise YamlRuleError("a pattern rule has scope: file")
        if ("rule" in data) == ("cases" in data):
            raise YamlRuleError("needs exactly one of rule: or cases:")
        if "cases" in data:
            stray = {"rule", "constraints", "transform", "fix"} & set(data)
            if stray:
                raise YamlRuleError(f"with cases:, {', '.join(sorted(stray))} belong inside a case")
            if not isinstance(data["cases"], list) or not data["cases"]:
                raise YamlRuleError("cases: must be a non-empty list")
            self.cases = [_case(c, f"cases[{i}]", data) for i, c in enumerate(data["cases"])]
        else:
            self.cases = [_case({k: v for k, v in data.items() if k in CASE_KEYS}, "rule", {})]
        self._compiled = False
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

    def check(self, ctx: FileContext) -> Iterable[Finding]:  # type: ignore[override]
        view = ctx.view
        if not view.is_c or not view.added:
            return
        live = [c for c in self.cases if c.compiled.may_match(view.text)]
        if not live:  # no parse, no ast-grep import
            return
        self.compile()
        root = view.sg_root()
        seen: set[int] = set()
        for case in live:
            for m in case.compiled.run(root, statement=case.added == "statement"):
                line = case.anchor(view, m)
                if line is None or line in seen:
                    continue
                seen.add(line)
                note = fill(case.note, m.vars) if case.note else None
                yield self.at_line(view, line, fill(case.message, m.vars), note=note, suggestion=m.fix,
                                   column=m.start_column if line == m.start_line else None)
