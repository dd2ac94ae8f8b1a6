"""Config files: --config FILE > .pmureview.toml at the work-tree top > [tool.pmureview] in pyproject.toml.

Keys are the long option names (select, ignore, fail-on, strict, midmask, rules-dir, baseline, preview)
plus tables `severity` (rule id -> level) and `per-path-ignores` (glob -> [rule ids]).
"""

from __future__ import annotations

import subprocess
import tomllib
from pathlib import Path
from typing import Any

from .errors import UsageError

KEYS = {"select", "ignore", "fail-on", "strict", "midmask", "rules-dir", "baseline", "preview",
        "severity", "per-path-ignores", "fetch-timeout"}


def _worktree_top(cwd: Path) -> Path | None:
    r = subprocess.run(["git", "-C", str(cwd), "rev-parse", "--show-toplevel"], capture_output=True,
                       text=True, stdin=subprocess.DEVNULL, check=False)
    return Path(r.stdout.strip()) if r.returncode == 0 and r.stdout.strip() else None


def find_config(cwd: Path | None = None) -> Path | None:
    top = _worktree_top(cwd or Path.cwd())
    if top is None:
        return None
    for name in (".pmureview.toml", "pyproject.toml"):
        p = top / name
        if p.is_file() and (name != "pyproject.toml" or "[tool.pmureview" in p.read_text("utf-8", "replace")):
            return p
    return None


def load_config(explicit: Path | None = None, cwd: Path | None = None) -> dict[str, Any]:
    path = explicit or find_config(cwd)
    if path is None:
        return {}
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
    return data
