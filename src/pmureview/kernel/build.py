"""`pmureview kb build`: derive the bundled knowledge snapshot from a kernel tree.

The tree may be a git checkout or a plain folder with the kernel's layout. Only derived facts are
written (registers, fields, bits, RES0, encodings, polarity, guards), never kernel text. Each fact
kind records its provenance; facts curated by hand from DOMAIN*.md say so in their "source".
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import re
import subprocess
from pathlib import Path
from typing import Any

from pmureview.lazyre import lazy_re

from .fgt import FGT_SPECS
from .knowledge import (
    CONFIG_PATH,
    EMULATE_NESTED_PATH,
    GUARD_PATHS,
    PREDICATE_PATHS,
    SNAPSHOT_PATH,
    SYSREG_PATH,
    build_from_reader,
)

# Registers DOMAIN.md / DOMAIN-PACK2.md name (besides the FGT registers and the PMU ones below).
DOMAIN_REGISTERS = (
    "MDCR_EL2", "MDSCR_EL1", "HCR_EL2", "HCRX_EL2", "SCTLR_EL1", "SCTLR2_EL1", "SCTLR2_EL2",
    "TCR2_EL1", "TCR2_EL2", "CTR_EL0", "ID_AA64DFR0_EL1", "ID_AA64DFR1_EL1", "ID_AA64MMFR0_EL1",
    "ID_AA64PFR0_EL1", "ID_AA64PFR1_EL1", "ID_AA64MMFR3_EL1", "ID_AA64ISAR2_EL1",
)
# PMU registers: PMUv3 (PM*), SPE (PMS*/PMB*) and the system PMU (SPM*).
PMU_REGISTER = lazy_re(r"^S?PM")


def snapshot_registers(names: list[str]) -> list[str]:
    """The subset of a tree's registers kept in the bundled snapshot (keeps it small and fast)."""
    keep = set(FGT_SPECS) | set(DOMAIN_REGISTERS)
    return [n for n in names if n in keep or PMU_REGISTER.match(n)]


def _git(tree: Path, *args: str) -> str | None:
    try:
        out = subprocess.run(["git", "-C", str(tree), *args], capture_output=True, text=True,
                             timeout=30, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def kernel_version(tree: Path) -> str | None:
    """VERSION.PATCHLEVEL.SUBLEVEL[EXTRAVERSION] from the top Makefile, if there is one."""
    try:
        head = (tree / "Makefile").read_text(encoding="utf-8", errors="replace")[:2000]
    except OSError:
        return None
    vals = dict(re.findall(r"^(VERSION|PATCHLEVEL|SUBLEVEL|EXTRAVERSION)\s*=\s*(\S*)", head, re.M))
    if "VERSION" not in vals:
        return None
    return f"{vals['VERSION']}.{vals.get('PATCHLEVEL', '0')}.{vals.get('SUBLEVEL', '0')}" + vals.get(
        "EXTRAVERSION", "")


def release_of(tree: Path, version: str | None = None, release_date: str | None = None
               ) -> tuple[str | None, str | None]:
    """(kernel_version "vX.Y", release_date "YYYY-MM-DD") the facts of `tree` are dated with.

    The version is given, else VERSION.PATCHLEVEL of the top Makefile (an -rc tree is dated with
    the release it leads to). The date is given, else the date of the git tag vX.Y when the tree has
    it, else the date of the tree's last commit (a lower bound), else unknown: an undated file never
    supports a warning on its own (kernel/dating.py)."""
    if version is None:
        full = kernel_version(tree)
        if full:
            version = "v" + ".".join(full.split("-")[0].split(".")[:2])
    if version and not version.startswith("v"):
        version = "v" + version
    if release_date is None and version and _git(tree, "rev-parse", "--is-inside-work-tree") == "true":
        release_date = _git(tree, "log", "-1", "--format=%cs", f"{version}^{{commit}}", "--") or _git(
            tree, "log", "-1", "--format=%cs")
    return version, release_date


def stamp(data: dict[str, Any], version: str | None, release_date: str | None) -> dict[str, Any]:
    """`data` with top-level kernel_version/release_date (right after "format"), when both are known."""
    if not (version and release_date):
        return data
    out: dict[str, Any] = {}
    if "format" in data:
        out["format"] = data["format"]
    out["kernel_version"], out["release_date"] = version, release_date
    out.update((k, v) for k, v in data.items() if k not in out)
    return out


def stamp_file(path: Path, version: str, release_date: str) -> None:
    """Date an existing bundled JSON file (pack2-gating.json, pack2-wiring.json after their
    generators ran) in place: top-level kernel_version/release_date, the rest untouched."""
    text = Path(path).read_text("utf-8")
    data = json.loads(text)
    data.pop("kernel_version", None)
    data.pop("release_date", None)
    head = f' "kernel_version": {json.dumps(version)},\n "release_date": {json.dumps(release_date)},\n'
    body = json.dumps(data, indent=1, ensure_ascii=False)
    Path(path).write_text("{\n" + head + body[2:] + "\n", encoding="utf-8")


def build_snapshot(tree: Path, ref: str | None = None, version: str | None = None,
                   release_date: str | None = None) -> dict[str, Any]:
    """The snapshot dict for the kernel tree at `tree` (`ref`: a kernel ref to record by hand;
    `version`/`release_date`: the kernel release the facts are dated with, see release_of())."""
    tree = Path(tree)

    def reader(path: str) -> str | None:
        try:
            return (tree / path).read_text(encoding="utf-8", errors="surrogateescape")
        except OSError:
            return None

    kb = build_from_reader(reader, fallback=None)
    is_git = _git(tree, "rev-parse", "--is-inside-work-tree") == "true"
    full_version = kernel_version(tree)
    date = _dt.date.today().isoformat()
    for kind, entry in kb.provenance.items():
        files = entry.get("files") if isinstance(entry, dict) else None
        if not files:
            continue
        entry["source"] = f"generated by pmureview kb build from {', '.join(files)}"
        entry["date"] = date
        if full_version:
            entry["kernel"] = full_version
        if ref:
            entry["ref"] = ref
        if is_git:
            entry["commits"] = {f: _git(tree, "log", "-1", "--format=%H", "--", f) for f in files}
        if kind == "polarity" and EMULATE_NESTED_PATH not in files:
            entry["note"] = ("no SR_FGT table in the tree: polarity by the n-prefix rule "
                             "(ICH_HFG*TR_EL2 all negative), DOMAIN.md §1.2")
    searched = [SYSREG_PATH, EMULATE_NESTED_PATH, CONFIG_PATH, *GUARD_PATHS[1:], *PREDICATE_PATHS]
    kb.provenance["build"] = {"tool": "pmureview kb build", "date": date, "tree_files_searched": searched,
                              "tree_files_found": [p for p in searched if (tree / p).is_file()]}
    kept = snapshot_registers(kb.register_names())
    kb.provenance["build"]["registers_kept"] = (
        "FGT registers, PMU registers (S?PM*), registers DOMAIN*.md names")
    return stamp(kb.to_snapshot(kept), *release_of(tree, version, release_date))


def dumps(data: dict[str, Any]) -> str:
    """JSON with one line per register / FGT / guard entry: readable diffs, fast loads."""
    parts = []
    for key, value in data.items():
        if isinstance(value, dict) and key in ("registers", "fgt", "guards", "cap_predicates"):
            inner = ",\n".join(f"  {json.dumps(k)}: {json.dumps(v, ensure_ascii=False)}"
                               for k, v in value.items())
            parts.append(f" {json.dumps(key)}: {{\n{inner}\n }}" if value else f" {json.dumps(key)}: {{}}")
        else:
            parts.append(f" {json.dumps(key)}: {json.dumps(value, indent=2, ensure_ascii=False)}")
    return "{\n" + ",\n".join(parts) + "\n}\n"


def write_snapshot(tree: Path, out: Path, ref: str | None = None, version: str | None = None,
                   release_date: str | None = None) -> None:
    """Build the snapshot of `tree` and write it to `out` as JSON."""
    Path(out).write_text(dumps(build_snapshot(tree, ref, version, release_date)), encoding="utf-8")


def main(argv: list[str]) -> int:
    """`pmureview kb build --tree PATH [--out FILE] [--ref TEXT]`; argv excludes `kb build`."""
    ap = argparse.ArgumentParser(prog="pmureview kb build",
                                 description="Derive the kernel knowledge snapshot from a kernel tree.")
    ap.add_argument("--tree", required=True, type=Path, help="kernel tree (git checkout or plain folder)")
    ap.add_argument("--out", type=Path, default=SNAPSHOT_PATH, help="output JSON (default: bundled)")
    ap.add_argument("--ref", help="kernel version or commit to record when the tree cannot tell")
    ap.add_argument("--kernel-version", help="the release the facts are dated with (vX.Y; default: "
                    "the tree's Makefile)")
    ap.add_argument("--release-date", help="that release's date, YYYY-MM-DD (default: the git tag's "
                    "date, else the tree's last commit)")
    ap.add_argument("--stamp", type=Path, action="append", default=[],
                    help="only date this existing bundled JSON file with the tree's release (repeatable)")
    args = ap.parse_args(argv)
    if args.stamp:
        version, date = release_of(args.tree, args.kernel_version, args.release_date)
        if not (version and date):
            print("pmureview kb build: no kernel version or release date (give --kernel-version/--release-date)")
            return 2
        for f in args.stamp:
            stamp_file(f, version, date)
            print(f"pmureview kb build: dated {f} {version} ({date})")
        return 0
    if not (args.tree / SYSREG_PATH).is_file():
        print(f"pmureview kb build: {args.tree / SYSREG_PATH}: not found")
        return 2
    write_snapshot(args.tree, args.out, args.ref, args.kernel_version, args.release_date)
    print(f"pmureview kb build: wrote {args.out}")
    return 0
