"""Config files: --config FILE > .pmureview.toml at the work-tree top > [tool.pmureview] in pyproject.toml.

Keys are the long option names (select, ignore, fail-on, strict, midmask, rules-dir, baseline, preview, cocci,
tree) plus tables `severity` (rule id -> level) and `per-path-ignores` (glob -> [rule ids]).
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from .errors import UsageError
from .series.kerneltree import worktree_top

if TYPE_CHECKING:  # the hook path works with str paths (pathlib is ~4 ms); a found config is a Path
    from pathlib import Path

KEYS = {"select", "ignore", "fail-on", "strict", "midmask", "rules-dir", "baseline", "preview",
        "severity", "per-path-ignores", "fetch-timeout", "cocci", "tree"}


def find_config(cwd: Path | None = None) -> Path | None:
    top = worktree_top(cwd)
    if top is None:
        return None
    for name in (".pmureview.toml", "pyproject.toml"):
        p = os.path.join(top, name)
        if os.path.isfile(p) and (name != "pyproject.toml" or "[tool.pmureview" in _read(p)):
            from pathlib import Path

            return Path(p)
    return None


def _read(path: str) -> str:
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return f.read()
    except OSError:
        return ""


def load_config(explicit: Path | None = None, cwd: Path | None = None) -> dict[str, Any]:
    path = explicit or find_config(cwd)
    if path is None:
        return {}
    import tomllib  # most runs have no config file
    from pathlib import Path

    path = Path(path)

    try:
        data = tomllib.loads(path.read_text("utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise UsageError(f"{path}: cannot read config: {exc}") from None
    if path.name == "pyproject.toml":
        data = data.get("tool", {}).get("pmureview", {})
    elif "tool" in data and "pmureview" in data["tool"]:
        data = data["tool"]["pmureview"]
    unknown = set(data) - KEYS
    if unknown:
        raise UsageError(f"{path}: unknown config keys: {', '.join(sorted(unknown))}")
    base = path.parent
    if "rules-dir" in data:
        dirs = data["rules-dir"] if isinstance(data["rules-dir"], list) else [data["rules-dir"]]
        data["rules-dir"] = [str((base / d).resolve()) for d in dirs]
    if "baseline" in data:
        data["baseline"] = str((base / data["baseline"]).resolve())
    if "tree" in data:
        data["tree"] = str((base / Path(str(data["tree"])).expanduser()).resolve())
    return data


def _split(values) -> tuple[str, ...]:
    items = [values] if isinstance(values, str) else list(values or ())
    return tuple(v.strip() for item in items for v in str(item).split(",") if v.strip())


def make_options(*, config: Path | None = None, tree: str | Path | None = None, base: str | None = None,
                 revision: int | None = None, rev_range: str | None = None, files: bool = False,
                 midmask: str | None = None, fetch_timeout: float | None = None,
                 select: list[str] | None = None, ignore: list[str] | None = None,
                 fail_on: str | None = None, strict: bool | None = None, preview: bool | None = None,
                 rules_dir: list[Path] | None = None, baseline: Path | None = None,
                 cocci: bool | None = False, no_tree: bool = False, find_tree: bool = False):  # -> api.Options
    """Options from the command line (None = not given) over the config file over the defaults.

    `cocci` defaults to False, not None: only the CLI passes None (flag not given, so the config's
    `cocci` applies); the hook paths leave it False, so a config file cannot start spatch there.
    `find_tree` (the CLI's `check` only): without --tree, the config's `tree`, else the kernel tree
    holding the current folder, like checkpatch.pl; `no_tree` (--no-tree) turns every tree off.
    """
    from .api import Options
    from .rule.model import Severity

    cfg = load_config(config)
    tree_found = None
    if no_tree:
        tree = None
    elif tree is None and find_tree:
        if cfg.get("tree"):
            from pathlib import Path

            tree, tree_found = Path(cfg["tree"]), "the config"
        else:
            from .series.kerneltree import find_kernel_tree

            if (top := find_kernel_tree()) is not None:
                tree, tree_found = top, "the current folder"

    def pick(cli, key, default):
        return cli if cli not in (None, [], ()) else cfg.get(key, default)

    try:
        fail = Severity(pick(fail_on, "fail-on", "warning"))
    except ValueError as exc:
        raise UsageError(f"fail-on: {exc}") from None
    bl = pick(baseline, "baseline", None)
    dirs = _split(pick(rules_dir, "rules-dir", []))
    if dirs or bl:
        from pathlib import Path
    return Options(
        tree=tree, tree_found=tree_found, base=base, revision=revision, range=rev_range, files=files,
        midmask=midmask, config_midmask=cfg.get("midmask"),
        fetch_timeout=float(pick(fetch_timeout, "fetch-timeout", 60.0)),
        select=_split(pick(select, "select", [])),
        ignore=_split(pick(ignore, "ignore", [])),
        severity={str(k): str(v) for k, v in cfg.get("severity", {}).items()},
        per_path_ignores={str(k): _split(v) for k, v in cfg.get("per-path-ignores", {}).items()},
        fail_on=fail, strict=bool(pick(strict, "strict", False)), preview=bool(pick(preview, "preview", False)),
        rules_dirs=tuple(Path(p) for p in dirs),
        baseline=Path(bl) if bl else None,
        cocci=bool(pick(cocci, "cocci", False)),
    )
