#!/usr/bin/env python3
"""Precision on real code (issue 4): the rule packs over accepted upstream KVM/arm64 code.

Runs `pmureview check --files ... --format json` over every .c/.h under arch/arm64/kvm and every
arch/arm64/include/asm/kvm_*.h of the newest Debian `linux-source-N` (6.12 at the time of
writing; installed and extracted into the bench cache when missing), in batches, twice: without a
tree, and with `--tree` pointing at the extracted kernel (full mode). Prints, per mode, the
findings per rule and severity (only rules that ran), every `error` finding with its location and
message for human review, engine findings (`pmureview/internal-error` = a rule crashed), the
noisiest rules with examples, and the wall time.

usage: python bench/precision.py [--src DIR] [--version N] [--batch 200] [--json OUT]
                                 [--examples 3] [--mode plain|tree|both]
"""

from __future__ import annotations

import argparse
import collections
import json
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import child_env, ensure_linux, fmt_s, log, machine, newest_linux_source, pmureview_cmd, table

SEVERITIES = ("error", "warning", "check")


def kvm_files(src: Path) -> list[Path]:
    files = sorted(p for p in (src / "arch/arm64/kvm").rglob("*") if p.suffix in (".c", ".h") and p.is_file())
    files += sorted((src / "arch/arm64/include/asm").glob("kvm_*.h"))
    return files


def run_batches(pmr, files, src, tree: bool, batch: int):
    """All findings, the union of rules that ran, modes seen, failures, and the wall time."""
    findings, rules, modes, failures = [], set(), set(), []
    t0 = time.perf_counter()
    for i in range(0, len(files), batch):
        chunk = files[i : i + batch]
        # paths relative to the tree root (the cwd), so that rule globs such as arch/arm64/kvm/** match
        rels = [str(p.relative_to(src)) for p in chunk]
        argv = [*pmr, "check", "--files", *rels, "--format", "json", "--fail-on", "error"]
        if tree:
            argv += ["--tree", str(src)]
        r = subprocess.run(argv, capture_output=True, text=True, cwd=src, env=child_env())
        try:
            doc = json.loads(r.stdout)
        except json.JSONDecodeError:
            failures.append(
                (
                    f"batch {i // batch} ({chunk[0].name}..{chunk[-1].name})",
                    r.returncode,
                    (r.stderr or r.stdout).strip()[-800:],
                )
            )
            continue
        if r.returncode == 2:
            failures.append((f"batch {i // batch}", 2, r.stderr.strip()[-400:]))
        rules.update(doc.get("rules", []))
        modes.add(doc.get("series", {}).get("mode"))
        findings += doc.get("findings", [])
    return findings, rules, modes, failures, time.perf_counter() - t0


def loc(f) -> str:
    if f.get("path"):
        return f"{f['path']}:{f.get('line')}"
    return f"({f.get('section')}):{f.get('line')}"


def report(title, files, findings, rules, modes, failures, wall, examples):
    print(f"\n## {title}\n")
    print(f"{len(files)} files, modes seen: {sorted(m for m in modes if m)}, wall {fmt_s(wall)}")
    counts = collections.Counter((f["rule"], f["severity"]) for f in findings)
    rows = []
    for rule in sorted(rules | {r for r, _ in counts}):
        row = [counts.get((rule, s), 0) for s in SEVERITIES]
        rows.append([f"`{rule}`", *map(str, row), str(sum(row))])
    tot = [sum(counts.get((r, s), 0) for r in rules | {r for r, _ in counts}) for s in SEVERITIES]
    rows.append(["**total**", *map(str, tot), str(sum(tot))])
    print()
    print(table(rows, ["rule (ran)", "error", "warning", "check", "total"]))
    if failures:
        print("\n### Batches that produced no JSON / exit 2\n")
        for what, rc, msg in failures:
            print(f"- {what}: exit {rc}: {msg}")
    engine = [f for f in findings if f["rule"].startswith("pmureview/")]
    if engine:
        print("\n### Engine findings (pmureview/*)\n")
        for f in engine:
            print(f"- {f['rule']} {loc(f)}: {f['message']}")
    errors = [f for f in findings if f["severity"] == "error" and not f["rule"].startswith("pmureview/")]
    print(f"\n### Every error finding ({len(errors)})\n")
    for f in sorted(errors, key=lambda f: (f["rule"], f.get("path") or "", f.get("line") or 0)):
        print(f"- `{f['rule']}` {loc(f)}: {f['message']}")
    if not errors:
        print("(none)")
    noisy = collections.Counter(f["rule"] for f in findings if f["severity"] != "error")
    if noisy:
        print(f"\n### Examples per rule (warnings/checks, up to {examples} each)\n")
        for rule, n in noisy.most_common():
            print(f"- `{rule}` ({n}):")
            for f in [f for f in findings if f["rule"] == rule and f["severity"] != "error"][:examples]:
                print(f"  - {loc(f)}: [{f['severity']}] {f['message']}")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description="the rule packs over real KVM/arm64 code")
    ap.add_argument("--src", type=Path, help="an unpacked kernel tree (default: newest Debian linux-source)")
    ap.add_argument("--version", help="linux-source-VERSION (default: the newest apt offers)")
    ap.add_argument(
        "--batch",
        type=int,
        default=200,
        help="files per pmureview process (default 200: the KVM set in one process, so that "
        "cross-file rules see every file)",
    )
    ap.add_argument("--mode", choices=("plain", "tree", "both"), default="both")
    ap.add_argument("--examples", type=int, default=3)
    ap.add_argument("--json", type=Path, help="write every finding of every mode to this file")
    a = ap.parse_args(argv)

    if a.src:
        src = a.src.resolve()
    else:
        version = a.version or newest_linux_source()
        src = ensure_linux(version)
    files = kvm_files(src)
    pmr = pmureview_cmd()
    print(f"# pmureview precision on {src.name}\n")
    print(f"machine: {machine()}")
    print(
        f"files: {len(files)} (arch/arm64/kvm/**/*.[ch], arch/arm64/include/asm/kvm_*.h), "
        f"batches of {a.batch}: `pmureview check --files F... --format json [--tree {src}]`"
    )
    dump = {}
    for mode in ("plain", "tree") if a.mode == "both" else (a.mode,):
        log(f"running {mode} ...")
        res = run_batches(pmr, files, src, mode == "tree", a.batch)
        title = "hunk-only (`--files`, no tree)" if mode == "plain" else f"full mode (`--files --tree {src}`)"
        report(title, files, *res, a.examples)
        dump[mode] = {"rules": sorted(res[1]), "findings": res[0], "wall": res[4]}
    if a.json:
        a.json.write_text(json.dumps(dump, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
