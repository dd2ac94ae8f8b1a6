"""Declarative rules: a tree-sitter query, a regex or a C pattern (ast-grep), and a message template.

Schema (unknown keys are an error, so a typo fails at `rules list`):
  id, title, severity, confidence, scope (file), files, status, docs{what,why,example,use_instead,
  known_problems,references}, and exactly one of
  query: <tree-sitter query>   report: <capture>   [exclude: <query with an @exclude capture>]
  regex: <python regex>        target: added-lines | subject | message | trailers
  rule: <ast-grep rule> | cases: [...]   (pattern rules: rule/patternrule.py, docs/pattern-rules.md)
  message: "... {capture} ..."  note: "..."
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from .. import lazyre
from ..views.context import FileContext
from .base import Rule
from .model import Confidence, Finding, RuleDocs, RuleMeta, Scope, Severity

if TYPE_CHECKING:
    from pathlib import Path

_KEYS = {"id", "title", "severity", "confidence", "scope", "files", "status", "docs", "query", "report",
         "exclude", "regex", "target", "message", "note", "needs_base", "where"}
_WHERE_KEYS = {"first-on-line", "not-first-on-line"}
_DOC_KEYS = {"what", "why", "example", "use_instead", "known_problems", "references"}
_TARGETS = {"added-lines", "subject", "message", "trailers"}
_FIELD = lazyre.compile(r"{(\w+)}")


class YamlRuleError(ValueError):
    pass


def meta_from_mapping(data: dict[str, Any], origin: str, *, scope_default: Scope,
                      required: tuple[str, ...] = ("id", "title", "severity", "message")) -> RuleMeta:
    unknown = set(data) - _KEYS
    if unknown:
        raise YamlRuleError(f"unknown keys: {', '.join(sorted(unknown))}")
    docs = data.get("docs") or {}
    if set(docs) - _DOC_KEYS:
        raise YamlRuleError(f"unknown docs keys: {', '.join(sorted(set(docs) - _DOC_KEYS))}")
    for key in required:
        if not data.get(key):
            raise YamlRuleError(f"missing key: {key}")
    try:
        return RuleMeta(
            id=str(data["id"]),
            title=str(data["title"]),
            severity=Severity(data["severity"]),
            confidence=Confidence(data.get("confidence", "high")),
            scope=Scope(data.get("scope", scope_default.value)),
            files=tuple(data.get("files") or ("*.c", "*.h")),
            status=str(data.get("status", "stable")),
            needs_base=bool(data.get("needs_base", False)),
            docs=RuleDocs(
                what=str(docs.get("what", "")).strip(),
                why=str(docs.get("why", "")).strip(),
                example=str(docs.get("example", "")).rstrip(),
                use_instead=str(docs.get("use_instead", "")).rstrip(),
                known_problems=str(docs.get("known_problems", "")).strip(),
                references=tuple(docs.get("references") or ()),
            ),
            origin=origin,
        )
    except ValueError as exc:
        raise YamlRuleError(str(exc)) from None


class QueryRule(Rule):
    """Reports the `report` capture of every match whose node touches an added line."""

    def __init__(self, meta: RuleMeta, data: dict[str, Any], *, eager: bool = True) -> None:
        self.meta = meta  # type: ignore[misc]
        self.data = data
        self.source = str(data["query"])
        self.report = str(data.get("report", "report"))
        self.template = str(data["message"])
        self.note = data.get("note")
        self._compiled = False
        if eager:  # `rules list` and tests compile everything; a review compiles on first use
            self.compile()

    def compile(self) -> None:
        if self._compiled:
            return
        from ..lang.query import compile_query

        data = self.data
        self.query = compile_query(self.source)
        names = set(self.query.capture_name(i) for i in range(self.query.capture_count))
        if self.report not in names:
            raise YamlRuleError(f"report capture @{self.report} is not in the query")
        missing = set(_FIELD.findall(self.template)) - names
        if missing:
            raise YamlRuleError(f"message names captures the query lacks: {', '.join(sorted(missing))}")
        self.exclude = compile_query(str(data["exclude"])) if data.get("exclude") else None
        # constraints a query cannot say, checked after matching (ast-grep's `constraints`)
        self.where = dict(data.get("where") or {})
        if set(self.where) - _WHERE_KEYS:
            raise YamlRuleError(f"unknown where: keys {', '.join(sorted(set(self.where) - _WHERE_KEYS))}")
        for cap in self.where.values():
            if cap not in names:
                raise YamlRuleError(f"where: names @{cap}, which is not in the query")
        self._compiled = True

    def check(self, ctx: FileContext) -> Iterable[Finding]:  # type: ignore[override]
        from ..lang.query import matches

        view = ctx.view
        if not view.is_c or not view.added:
            return
        self.compile()
        excluded: list[tuple[int, int]] = []
        if self.exclude is not None:
            for _, caps in matches(self.exclude, view.root):
                excluded += [(n.start_byte, n.end_byte) for n in caps.get("exclude", [])]
        seen: set[int] = set()
        for _, caps in matches(self.query, view.root):
            nodes = caps.get(self.report)
            if not nodes:
                continue
            node = nodes[0]
            line = view.first_added_line(node)
            if line is None or line in seen:
                continue
            if any(s <= node.start_byte and node.end_byte <= e for s, e in excluded):
                continue
            if not self._where_ok(view, caps):
                continue
            seen.add(line)
            values = {k: view.node_text(v[0]) for k, v in caps.items() if v}
            yield self.at_node(view, node, self.template.format_map(_Missing(values)), note=self.note)


    def _where_ok(self, view, caps) -> bool:
        for key, cap in self.where.items():
            nodes = caps.get(cap)
            if not nodes:
                return False
            row, col = nodes[0].start_point
            first = not view.line_text(row + 1).encode("utf-8", "surrogateescape")[:col].strip()
            if first != (key == "first-on-line"):
                return False
            if first and not continues_code_above(view, row + 1):
                return False
        return True


def continues_code_above(view, line: int) -> bool:
    """Whether the line above `line` is code the parser really joined `line` to: a hunk-only view
    does not know the line above a hunk (the parser glued `line` to unrelated code before the gap),
    and a preprocessor directive above ends no expression (`#ifdef X` then `&arg,` in a call)."""
    known = view.known or range(1, len(view.lines) + 1)
    above = line - 1
    while above > 0 and above in known and not view.line_text(above).strip():
        above -= 1
    return above > 0 and above in known and not view.line_text(above).lstrip().startswith("#")


class RegexRule(Rule):
    """A regex over added lines, the subject, the commit message or the trailers."""

    def __init__(self, meta: RuleMeta, data: dict[str, Any]) -> None:
        self.meta = meta  # type: ignore[misc]
        self.target = str(data.get("target", "added-lines"))
        if self.target not in _TARGETS:
            raise YamlRuleError(f"target must be one of {', '.join(sorted(_TARGETS))}")
        try:
            self.regex = lazyre.compile(str(data["regex"]))  # a rule file's text: sre code kept per build
        except re.error as exc:
            raise YamlRuleError(f"bad regex: {exc}") from None
        self.template = str(data["message"])
        self.note = data.get("note")

    def check(self, ctx: Any) -> Iterable[Finding]:
        if self.target == "added-lines":
            view = ctx.view
            for line in sorted(view.added):
                if m := self.regex.search(view.line_text(line)):
                    yield self.at_line(view, line, self._msg(m), note=self.note, column=m.start() + 1)
            return
        patch = ctx.patch
        if self.target == "subject":
            texts = [patch.mail.title]
        elif self.target == "message":
            texts = patch.message.split("\n")
        else:
            texts = [str(t) for t in patch.trailers]
        for i, text in enumerate(texts, 1):
            if m := self.regex.search(text):
                yield self.at_section(patch.number, self.target if self.target != "message" else "message",
                                      i, self._msg(m), note=self.note, snippet=text)

    def _msg(self, m: re.Match[str]) -> str:
        values = {k: v for k, v in m.groupdict().items() if v is not None}
        values.setdefault("match", m.group(0))
        return self.template.format_map(_Missing(values))


class _Missing(dict):
    def __missing__(self, key: str) -> str:
        return "{" + key + "}"


def read_yaml(path: str | Path) -> Any:
    import yaml

    try:
        with open(path, encoding="utf-8") as f:
            return yaml.safe_load(f.read())
    except (OSError, yaml.YAMLError) as exc:
        raise YamlRuleError(f"cannot read: {exc}") from None


_KINDS = ("query", "regex", "rule", "cases")


def load_yaml_rule(path: str | Path, data: Any = None, *, eager: bool = True) -> Rule:
    if data is None:
        data = read_yaml(path)
    if not isinstance(data, dict):
        raise YamlRuleError("not a mapping")
    kinds = [k for k in _KINDS if k in data]
    if len(kinds) != 1:
        raise YamlRuleError("needs exactly one of query:, regex:, rule: or cases: "
                            f"(found {', '.join(kinds) or 'none'})")
    if kinds[0] in ("rule", "cases"):
        from .patternrule import META_KEYS, TOP_KEYS, PatternRule

        unknown = set(data) - TOP_KEYS
        if unknown:
            raise YamlRuleError(f"unknown keys: {', '.join(sorted(unknown))}")
        meta = meta_from_mapping({k: v for k, v in data.items() if k in META_KEYS}, str(path),
                                 scope_default=Scope.FILE, required=("id", "title", "severity"))
        return PatternRule(meta, data, eager=eager)
    is_text = "regex" in data and data.get("target", "added-lines") != "added-lines"
    meta = meta_from_mapping(data, str(path), scope_default=Scope.PATCH if is_text else Scope.FILE)
    return QueryRule(meta, data, eager=eager) if "query" in data else RegexRule(meta, data)
