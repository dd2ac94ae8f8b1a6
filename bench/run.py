#!/usr/bin/env python3
"""Speed of pmureview against the interpreter's own start-up (issue 3, "Speed").

From one run, prints the wall time (median of alternating runs) of:
  - `pmureview check series.mbox --format json` on the 24-patch series (hunk-only),
  - `python -c pass`, and the ratio of the two;
  - the hook path on one patch (the patch of median size): `pmureview b4-check < patch`, and
    `pmureview check one.patch --format json`, each against `python -c pass`.
Targets: 24 patches < 1 s wall; one patch within 10x `python -c pass`.

usage: python bench/run.py [--runs N] [--work DIR]
  (the series is built into the bench cache by build_series.py when --work is not given)
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (
    add_pyc_flag,
    alternate,
    apply_pyc_flag,
    ensure_series,
    fmt_s,
    machine,
    med,
    median_patch,
    pmureview_cmd,
    pyc_state,
    run_once_cpu,
    table,
)


def b4_check_supported(pmr: list[str], patch: Path) -> bool:
    with open(patch, "rb") as f:
        r = subprocess.run([*pmr, "b4-check"], stdin=f, capture_output=True, text=True)
    return r.returncode in (0, 1) and "USAGE" not in r.stdout and "No such command" not in r.stderr


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description="pmureview wall time vs `python -c pass`")
    ap.add_argument("--runs", type=int, default=11, help="timed rounds (default 11, after 1 warm-up)")
    ap.add_argument("--work", type=Path, help="a build_series.py output folder")
    add_pyc_flag(ap)
    a = ap.parse_args(argv)
    apply_pyc_flag(a)

    work = a.work or ensure_series(24)
    mbox = work / "series" / "series.mbox"
    one = median_patch(work)
    pmr = pmureview_cmd()
    py = [sys.executable, "-c", "pass"]
    hook = [*pmr, "b4-check"] if b4_check_supported(pmr, one) else None

    cpu: dict[str, list[float]] = {}

    def timed(key, argv, stdin=None):
        def fn():
            wall, _rc, _rss, c = run_once_cpu(argv, stdin)
            cpu.setdefault(key, []).append(c)
            return wall

        return fn

    variants = {
        "series": timed("series", [*pmr, "check", str(mbox), "--format", "json"]),
        "python -c pass": timed("python -c pass", py),
        "one patch (check)": timed("one patch (check)", [*pmr, "check", str(one), "--format", "json"]),
    }
    if hook:
        variants["one patch (b4-check)"] = timed("one patch (b4-check)", hook, one)
    times = alternate(variants, a.runs)
    m = {k: med(v) for k, v in times.items()}
    mc = {k: med(v[1:]) for k, v in cpu.items()}  # v[0] is the warm-up
    base = m["python -c pass"]

    print(f"machine: {machine()}")
    print(f"byte-code cache: {pyc_state()}")
    print(f"series: {mbox} ({len(list((work / 'series').glob('*.patch')))} patches); one patch: {one.name}")
    print(f"runs: {a.runs} alternating rounds after 1 warm-up; medians\n")
    rows = [
        [
            "`pmureview check series.mbox --format json` (24 patches, hunk-only)",
            fmt_s(m["series"]),
            f"{m['series'] / base:.1f}x",
            "< 1 s: " + ("PASS" if m["series"] < 1.0 else "FAIL"),
        ],
        ["`python -c pass`", fmt_s(base), "1.0x", ""],
    ]
    if hook:
        r = m["one patch (b4-check)"] / base
        rows.append(
            [
                "`pmureview b4-check < one.patch` (hook path)",
                fmt_s(m["one patch (b4-check)"]),
                f"{r:.1f}x",
                "<= 10x: " + ("PASS" if r <= 10 else "FAIL"),
            ]
        )
    r = m["one patch (check)"] / base
    rows.append(
        [
            "`pmureview check one.patch --format json`",
            fmt_s(m["one patch (check)"]),
            f"{r:.1f}x",
            "" if hook else "<= 10x: " + ("PASS" if r <= 10 else "FAIL"),
        ]
    )
    for row, key in zip(
        rows,
        [k for k in ("series", "python -c pass", "one patch (b4-check)", "one patch (check)") if k in mc],
        strict=True,
    ):
        row.insert(2, f"{fmt_s(mc[key])} ({mc[key] / mc['python -c pass']:.1f}x)")
    print(
        table(
            rows, ["what", "wall (median)", "CPU user+sys (median, ratio)", "wall vs python -c pass", "target (wall)"]
        )
    )
    print("\n(CPU time is the figure to trust on a shared machine: wall time grows with the load, CPU time much less.)")
    if not hook:
        print("\n(b4-check is not available: the one-patch target is judged on `check one.patch`)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
