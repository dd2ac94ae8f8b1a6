"""Loading rules: the shipped packs, --rules-dir folders and `pmureview.rules` entry points.

Each source is loaded alone: a broken file or plugin becomes a LoadProblem and the others still run.
Duplicate ids are rejected (the first one loaded wins and the second is a problem).
"""

from __future__ import annotations

import importlib.util
import marshal
import os
import sys
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from ..cachefile import code_stamp, crc, per_build_file, read_marshal, read_marshal_dict, write_marshal
from ..record import dataclass, field
from ..rule.base import Rule

if TYPE_CHECKING:
    from pathlib import Path

    from .prefilter import Prefilter

# Paths are str here (os.path): the hook path does not import pathlib (~4 ms with the urllib it pulls in).


def _log():
    import logging  # only when something failed to load

    return logging.getLogger("pmureview")
ENTRY_POINT_GROUP = "pmureview.rules"


@dataclass(frozen=True, slots=True)
class LoadProblem:
    origin: str
    message: str


@dataclass
class Registry:
    rules: dict[str, Rule] = field(default_factory=dict)
    problems: list[LoadProblem] = field(default_factory=list)

    def add(self, rule: Rule, origin: str) -> None:
        rid = rule.meta.id
        if rid in self.rules:
            self.problems.append(LoadProblem(origin, f"duplicate rule id {rid} (already from "
                                                     f"{self.rules[rid].meta.origin})"))
            return
        self.rules[rid] = rule

    def sorted(self) -> list[Rule]:
        return [self.rules[k] for k in sorted(self.rules)]


def shipped_rules_dir() -> str:
    """rules/ packaged into the wheel as pmureview/_rules, or the source checkout's top-level rules/."""
    here = os.path.dirname(os.path.dirname(os.path.realpath(__file__)))
    packaged = os.path.join(here, "_rules")
    return packaged if os.path.isdir(packaged) else os.path.join(os.path.dirname(os.path.dirname(here)), "rules")


def _rule_files(root: str) -> Iterable[tuple[str, str]]:
    """(expected id, file) for rules/<pack>/<name>.py|.yml|.yaml."""
    if not os.path.isdir(root):
        return
    packs = sorted(e.name for e in os.scandir(root) if e.is_dir() and not e.name.startswith(("_", ".")))
    for pack in packs:
        folder = os.path.join(root, pack)
        for name in sorted(os.listdir(folder)):
            stem, suffix = os.path.splitext(name)
            if suffix in (".py", ".yml", ".yaml") and not name.startswith("_"):
                yield f"{pack}/{stem}", os.path.join(folder, name)


def _python_rules(path: str, expected: str | None) -> list[Rule]:
    stem = os.path.splitext(os.path.basename(path))[0]
    name = "pmureview_rules." + (expected or stem).replace("/", ".").replace("-", "_")
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot import {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return _rules_in(vars(module).values(), module.__name__)


def _rules_in(objects: Iterable[object], module: str | None = None) -> list[Rule]:
    out: list[Rule] = []
    for obj in objects:
        if isinstance(obj, type) and issubclass(obj, Rule) and obj is not Rule and hasattr(obj, "meta"):
            if module is None or obj.__module__ == module:
                out.append(obj())
        elif isinstance(obj, Rule) and module is None:
            out.append(obj)
    return out


class StampedCache:
    """A file of per-path values, each valid while its file keeps its mtime and size (so it is never
    stale: a changed file misses and is recomputed). One per kind of derived data. Marshal, not JSON:
    read on every hook run, and marshal reads it 3-4x faster (one file per Python build)."""

    def __init__(self, name: str) -> None:
        self.file = per_build_file(name)
        self.data: dict[str, Any] = read_marshal_dict(self.file)
        self.dirty = False

    @staticmethod
    def _key(path: str) -> tuple[str, list[int]]:
        st = os.stat(path)
        # abspath, not resolve(): no lstat per folder level, and the stamp keeps a hit honest anyway
        return os.path.abspath(path), [st.st_mtime_ns, st.st_size]

    def get(self, path: str) -> Any:
        key, stamp = self._key(path)
        hit = self.data.get(key)
        if not (isinstance(hit, dict) and hit.get("stamp") == stamp):
            return None
        try:  # each value is marshalled on its own: a run decodes only the files it asks for
            return marshal.loads(hit["value"])
        except Exception:  # a damaged entry: a miss
            return None

    def put(self, path: str, value: Any) -> None:
        key, stamp = self._key(path)
        entry = {"stamp": stamp, "value": marshal.dumps(value)}
        if self.data.get(key) != entry:
            self.data[key] = entry
            self.dirty = True

    def save(self) -> None:
        if self.dirty:
            # entries of deleted files (a removed rules folder, a temporary one) would only grow it
            self.data = {k: v for k, v in self.data.items() if k.startswith("__") or os.path.exists(k)}
            write_marshal(self.file, self.data)


class YamlCache(StampedCache):
    """Parsed YAML rule files of one rules folder: no YAML parse per run. One file per folder, so a
    run reads only its folders' entries (not those of every folder ever reviewed with)."""

    def __init__(self, root: str | Path) -> None:
        super().__init__(f"yaml-rules-{crc(os.path.abspath(root))}")

    def get(self, path: str) -> Any:
        from ..rule.yamlrule import read_yaml

        data = super().get(path)
        if data is None:
            data = read_yaml(path)
            self.put(path, data)
        return data


def _engine_stamp() -> str:
    """The modules that derive a rule's summary (pattern tokens, YAML schema): an index written by
    other code is dropped whole, so it is never stale after an upgrade."""
    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    return code_stamp(os.path.join(here, rel) for rel in (
        "engine/registry.py", "rule/base.py", "rule/patternrule.py", "rule/yamlrule.py", "lang/pattern.py"))


class RuleIndex(StampedCache):
    """What the prefilter needs of each rule file (scope, files, evidence in each mode): a Python rule
    that cannot fire is not even imported, a YAML or pattern rule not even built."""

    def __init__(self, root: str | Path) -> None:
        # one file per installed copy of the engine (two virtualenvs, or a checkout and an install,
        # would otherwise drop each other's whole index on every run) and per rules folder
        here = os.path.dirname(os.path.abspath(__file__))
        super().__init__(f"rule-index-{crc(here)}-{crc(os.path.abspath(root))}")
        stamp = _engine_stamp()
        if self.data.get("__engine__") != stamp:
            self.data = {"__engine__": stamp}
            self.dirty = True

    def put(self, path: str, rules: list[Rule]) -> None:  # type: ignore[override]
        super().put(path, [_summary(r) for r in rules])

    @staticmethod
    def wanted(prefilter: Prefilter, known: list[dict]) -> set[str]:
        """The ids of the file's rules that can fire (empty: the file is not even loaded)."""
        key = "evidence_full" if prefilter.full else "evidence"
        return {k["id"] for k in known if prefilter.wants(k["scope"], k["files"], k.get(key, ()), k["id"])}


def _summary(rule: Rule) -> dict:
    m = rule.meta
    return {"id": m.id, "scope": m.scope.value, "files": list(m.files),
            "evidence": list(rule.evidence(full=False)), "evidence_full": list(rule.evidence(full=True))}


def _wanted(prefilter: Prefilter, rule: Rule) -> bool:
    m = rule.meta
    return prefilter.wants(m.scope.value, m.files, rule.evidence(full=prefilter.full), m.id)


def load_dir(reg: Registry, root: str | Path, *, eager: bool = True, cache: YamlCache | None = None,
             prefilter: Prefilter | None = None, index: RuleIndex | None = None) -> None:
    from ..rule.yamlrule import load_yaml_rule

    for expected, path in _rule_files(os.fspath(root)):
        try:
            known = index.get(path) if index is not None and prefilter is not None else None
            ids = RuleIndex.wanted(prefilter, known) if known is not None else None  # type: ignore[arg-type]
            if ids is not None and not ids:
                continue  # cannot fire on this series: not imported (Python) or built (YAML)
            if path.endswith((".yml", ".yaml")):
                data = cache.get(path) if cache is not None else None
                rules = [load_yaml_rule(path, data, eager=eager)]
            else:
                rules = _python_rules(path, expected)
            if not rules:
                raise ValueError("defines no rule")
            for rule in rules:
                if rule.meta.id != expected:
                    raise ValueError(f"id {rule.meta.id!r} must equal its place {expected!r}")
            if index is not None and known is None:
                index.put(path, rules)  # only a file that loads cleanly is indexed (a broken one is re-read)
            for rule in rules:
                # the index's summary is this very file's (stamped): its answer stands for each rule
                if prefilter is not None and not (rule.meta.id in ids if ids is not None else _wanted(prefilter, rule)):
                    continue
                _set_origin(rule, str(path))
                reg.add(rule, str(path))
        except Exception as exc:  # one broken rule file must not stop the others
            _log().warning("rule %s not loaded: %s", path, exc)
            reg.problems.append(LoadProblem(str(path), f"{type(exc).__name__}: {exc}"))


def _set_origin(rule: Rule, origin: str) -> None:
    if not rule.meta.origin:
        from ..record import replace

        rule.meta = replace(rule.meta, origin=origin)  # type: ignore[misc]


def _site_fingerprint() -> list[list]:
    """The mtimes of the import path's folders: installing or removing a package changes one.

    The first entry is the current folder (`python -m`, the hook: the kernel tree) or the script's:
    files come and go there all day (`git format-patch` writes into it), so it counts by the
    distribution metadata it holds, which is what the scan reads of it."""
    out: list[list] = []
    for i, entry in enumerate(sys.path):
        try:
            if i == 0:
                names = sorted(n for n in os.listdir(entry or ".") if n.endswith((".dist-info", ".egg-info")))
                out.append([entry, names])
            else:
                out.append([entry, os.stat(entry or ".").st_mtime_ns])
        except OSError:
            continue
    return out


def _plugin_specs(cached: bool) -> list[tuple[str, str]]:
    """(name, "module:attr") of the `pmureview.rules` entry points.

    Scanning every installed distribution costs ~30 ms (importlib.metadata and its imports) on each
    run; a review reuses the last scan while no folder of the import path has changed. One file per
    import path: `python -m pmureview` (the hook: the kernel tree first) and the `pmureview` script (its
    own folder first), or two virtualenvs, would otherwise evict each other's scan on every run.
    """
    cache = per_build_file(f"plugins-{crc(chr(0).join(sys.path))}")
    key = _site_fingerprint()
    if cached:
        data = read_marshal(cache)
        if isinstance(data, dict) and data.get("key") == key and isinstance(data.get("plugins"), list):
            return [tuple(x) for x in data["plugins"]]
    from importlib.metadata import entry_points

    specs = [(ep.name, ep.value) for ep in entry_points(group=ENTRY_POINT_GROUP)]
    if cached:
        write_marshal(cache, {"key": key, "plugins": specs})
    return specs


def _load_spec(value: str) -> Any:
    import importlib

    module, _, attr = value.partition(":")
    obj: Any = importlib.import_module(module.strip())
    for part in attr.strip().split(".") if attr.strip() else ():
        obj = getattr(obj, part)
    return obj


def load_entry_points(reg: Registry, *, cached: bool = False) -> None:
    specs = _plugin_specs(cached)
    if specs:
        from pathlib import Path
    for name, value in specs:
        try:
            provided = _load_spec(value)
            items = provided() if callable(provided) and not isinstance(provided, type) else provided
            if isinstance(items, (Rule, type, Path)):
                items = [items]
            for item in items:
                if isinstance(item, Path):
                    load_dir(reg, item)
                    continue
                for rule in _rules_in([item]):
                    _set_origin(rule, f"plugin:{name}")
                    reg.add(rule, f"plugin:{name}")
        except Exception as exc:
            _log().warning("plugin %s not loaded: %s", name, exc)
            reg.problems.append(LoadProblem(f"plugin:{name}", f"{type(exc).__name__}: {exc}"))


def load_registry(rules_dirs: Iterable[Path] = (), *, shipped: bool = True, plugins: bool = True,
                  eager: bool = True, prefilter: Prefilter | None = None) -> Registry:
    """eager: compile every query now (rules list, tests). A review passes False: YAML comes from the
    JSON cache and each query compiles when a file its globs match is first checked."""
    reg = Registry()
    for d in [shipped_rules_dir()] * shipped + [os.fspath(d) for d in rules_dirs]:
        cache = None if eager else YamlCache(d)
        index = RuleIndex(d) if prefilter is not None else None
        load_dir(reg, d, eager=eager, cache=cache, prefilter=prefilter, index=index)
        for c in (cache, index):
            if c is not None:
                c.save()
    if plugins:
        load_entry_points(reg, cached=not eager)
    return reg
