#!/usr/bin/env python3
"""pmureview side by side with checkpatch.pl, and scale to 100/200/500 patches (issue 6).

Same 24-patch series (bench/build_series.py), alternating A B A B, medians and the
pmureview/checkpatch ratio for:
  1. the whole series in one process: `pmureview check series.mbox --format json` vs
     `checkpatch.pl --no-tree --terse --no-summary 0001.patch ... 0024.patch`;
  2. the per-patch hook paths, 24 processes each, from a folder that is not a kernel tree
     (hunk-only): `pmureview b4-check < NNNN.patch` and `pmureview hook sendemail-validate
     NNNN.patch` vs `checkpatch.pl --no-tree --terse --no-summary NNNN.patch`;
  3. `pmureview hook sendemail-validate NNNN.patch` run in kvm-repo (a kernel git tree: full mode)
     vs checkpatch run in that tree (with --no-tree too: kvm-repo is not a whole kernel tree, which
     checkpatch insists on otherwise);
  4. full mode: `pmureview check series.mbox --tree kvm-repo --format json` (the builder's git
     tree, warm index cache) vs checkpatch over the series in one process.
Targets (issue 15): 1 <= 0.25x, 2 <= 0.5x, 3 <= 1.0x, 4 <= 0.5x checkpatch.
Scale: synthetic 100/200/500-patch series (same method); wall time, CPU, peak RSS (wait4 rusage of
the child) and the marginal time per patch between sizes. Targets: 500 patches < 5 s and < 200 MB;
the marginal ms per patch from 200 to 500 within 20 % of that from 100 to 200.

checkpatch.pl, spelling.txt and const_structs.checkpatch come from Debian's linux-source-6.1
(installed and extracted into the bench cache when missing).

usage: python bench/compare.py [--runs N] [--scale-runs N] [--sizes 100,200,500] [--no-scale]
"""

from __future__ import annotations

import argparse
import itertools
import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (
    TIMED_OUT,
    add_pyc_flag,
    alternate,
    apply_pyc_flag,
    ensure_linux,
    ensure_series,
    fmt_s,
    kernel_shaped,
    log,
    machine,
    med,
    patch_files,
    pmureview_cmd,
    pyc_state,
    run_once,
    run_once_cpu,
    table,
)

CP_OPTS = ["--no-tree", "--terse", "--no-summary"]


def checkpatch_cmd() -> list[str]:
    src = ensure_linux("6.1")
    script = src / "scripts" / "checkpatch.pl"
    for f in ("spelling.txt", "const_structs.checkpatch"):
        if not (src / "scripts" / f).is_file():
            sys.exit(f"missing {src}/scripts/{f}")
    return ["perl", str(script), *CP_OPTS]


def ratio_row(name: str, a: float, b: float, target: float | None, per: int = 1) -> list[str]:
    r = a / b
    verdict = "" if target is None else (f"<= {target}x: " + ("PASS" if r <= target else "FAIL"))
    extra = f" ({fmt_s(a / per)}/patch)" if per > 1 else ""
    extra_b = f" ({fmt_s(b / per)}/patch)" if per > 1 else ""
    return [name, fmt_s(a) + extra, fmt_s(b) + extra_b, f"{r:.2f}x", verdict]


def side_by_side(runs: int) -> None:
    work = ensure_series(24)
    mbox = work / "series" / "series.mbox"
    patches = patch_files(work)
    repo = kernel_shaped(work / "kvm-repo")  # the hook's full mode needs a kernel-shaped top
    pmr = pmureview_cmd()
    cp = checkpatch_cmd()
    n = len(patches)

    series_pm = [*pmr, "check", str(mbox), "--format", "json"]
    series_tree = [*pmr, "check", str(mbox), "--tree", str(repo), "--format", "json"]
    series_cp = [*cp, *map(str, patches)]
    plain = Path(tempfile.mkdtemp(prefix="pmr-bench-"))  # not a kernel tree: the hooks run hunk-only
    hook_pm = [([*pmr, "b4-check"], p, plain) for p in patches]
    hook_se = [([*pmr, "hook", "sendemail-validate", str(p)], None, plain) for p in patches]
    hook_cp = [([*cp, str(p)], None, plain) for p in patches]
    hook_se_tree = [([*pmr, "hook", "sendemail-validate", str(p)], None, repo) for p in patches]
    hook_cp_tree = [([*cp, str(p)], None, repo) for p in patches]

    # one cold full-mode run: an empty index cache
    with tempfile.TemporaryDirectory() as tmp:
        env_saved = os.environ.get("XDG_CACHE_HOME")
        os.environ["XDG_CACHE_HOME"] = tmp
        try:
            cold, rc_cold, _ = run_once(series_tree)
        finally:
            if env_saved is None:
                del os.environ["XDG_CACHE_HOME"]
            else:
                os.environ["XDG_CACHE_HOME"] = env_saved

    rcs: dict[str, set] = {}
    cpu: dict[str, list[float]] = {}

    def timed(key, argv):
        def fn():
            dt, rc, _, c = run_once_cpu(argv)
            rcs.setdefault(key, set()).add(rc)
            cpu.setdefault(key, []).append(c)
            return dt

        return fn

    def timed_many(key, jobs):
        def fn():
            total, c_total = 0.0, 0.0
            for argv, stdin, cwd in jobs:
                dt, rc, _, c = run_once_cpu(argv, stdin, cwd)
                total += dt
                c_total += c
                rcs.setdefault(key, set()).add(rc)
            cpu.setdefault(key, []).append(c_total)
            return total

        return fn

    t = alternate(
        {
            "pm series": timed("pm series", series_pm),
            "cp series": timed("cp series", series_cp),
            "pm tree": timed("pm tree", series_tree),
            "pm hook": timed_many("pm hook", hook_pm),
            "pm sendemail": timed_many("pm sendemail", hook_se),
            "cp hook": timed_many("cp hook", hook_cp),
            "pm sendemail tree": timed_many("pm sendemail tree", hook_se_tree),
            "cp hook tree": timed_many("cp hook tree", hook_cp_tree),
        },
        runs,
    )
    m = {k: med(v) for k, v in t.items()}
    print(f"machine: {machine()}")
    print(f"byte-code cache: {pyc_state()}")
    print(f"series: {work / 'series'} ({n} patches); checkpatch: {cp[1]} {' '.join(CP_OPTS)}")
    print(
        f"runs: {runs} alternating rounds after 1 warm-up; medians; exit codes seen: "
        + ", ".join(f"{k}={sorted(v)}" for k, v in rcs.items())
        + "\n"
    )
    rows = [
        ratio_row("whole series, one process (hunk-only)", m["pm series"], m["cp series"], 0.25, n),
        ratio_row(
            "full mode `--tree kvm-repo` (warm index cache) vs checkpatch series", m["pm tree"], m["cp series"], 0.5, n
        ),
        ratio_row(f"hook path, {n} processes (`b4-check` < patch), hunk-only", m["pm hook"], m["cp hook"], 0.5, n),
        ratio_row(f"hook path, {n} processes (`hook sendemail-validate`), hunk-only", m["pm sendemail"],
                  m["cp hook"], 0.5, n),
        ratio_row(f"hook path, {n} processes (`hook sendemail-validate`) in kvm-repo: full mode",
                  m["pm sendemail tree"], m["cp hook tree"], 1.0, n),
    ]
    mc = {k: med(v[1:]) for k, v in cpu.items()}  # v[0] is the warm-up
    pairs = [("pm series", "cp series"), ("pm tree", "cp series"), ("pm hook", "cp hook"),
             ("pm sendemail", "cp hook"), ("pm sendemail tree", "cp hook tree")]
    for row, (a, b) in zip(rows, pairs, strict=True):
        row.insert(4, f"{fmt_s(mc[a])} / {fmt_s(mc[b])} = {mc[a] / mc[b]:.2f}x")
    print(
        table(
            rows,
            [
                "what",
                "pmureview (wall)",
                "checkpatch.pl (wall)",
                "wall ratio",
                "CPU user+sys pmureview / checkpatch",
                "target (wall ratio; on a shared machine read the CPU ratio)",
            ],
        )
    )
    print(
        f"\nfull mode with an empty index cache (one run): {fmt_s(cold)} "
        f"({cold / m['cp series']:.2f}x checkpatch series), exit {rc_cold}"
    )


def scale(sizes: list[int], runs: int, timeout: float) -> None:
    pmr = pmureview_cmd()
    works = {n: ensure_series(n) for n in sizes}
    results: dict[int, list[tuple[float, int, float]]] = {n: [] for n in sizes}  # (wall, rss, cpu)
    rcs: dict[int, set] = {n: set() for n in sizes}
    dead: set[int] = set()  # sizes that hit the timeout: not run again
    for i in range(runs + 1):
        for n in sizes:
            if n in dead:
                continue
            dt, rc, rss, c = run_once_cpu(
                [*pmr, "check", str(works[n] / "series" / "series.mbox"), "--format", "json"], timeout=timeout
            )
            rcs[n].add(rc)
            if rc == TIMED_OUT:
                dead.add(n)
                results[n] = [(dt, rss, c)]
            elif i or runs == 0:
                results[n].append((dt, rss, c))
    rows = []
    got: dict[int, tuple[int, float, float]] = {}  # size -> (patches, wall, cpu)
    for n in sizes:
        nps = len(list((works[n] / "series").glob("*.patch")))
        rss = max(r for _, r, _ in results[n]) / 1024
        if n in dead:
            rows.append([str(nps), f"> {timeout:.0f} s (killed)", "", "", f">= {rss:.0f} MiB", "timeout",
                         "FAIL" if n >= 500 else ""])
            continue
        wall, cpu = med([d for d, _, _ in results[n]]), med([c for _, _, c in results[n]])
        got[n] = (nps, wall, cpu)
        ok = []
        if n >= 500:
            ok.append("< 5 s: " + ("PASS" if wall < 5 else "FAIL") + f" (CPU {'PASS' if cpu < 5 else 'FAIL'})")
            ok.append("< 200 MB: " + ("PASS" if rss < 200 else "FAIL"))
        rows.append([str(nps), fmt_s(wall), fmt_s(cpu), f"{cpu / nps * 1000:.1f} ms", f"{rss:.0f} MiB",
                     str(sorted(rcs[n])), ", ".join(ok)])
    print(
        f"\nscale: `pmureview check series.mbox --format json`, median of {runs} runs after 1 warm-up "
        f"(a run past {timeout:.0f} s is killed), peak RSS = max ru_maxrss of the child"
    )
    print(table(rows, ["patches", "wall", "CPU", "CPU per patch", "peak RSS", "exit", "target"]))
    done = sorted(got)
    marg = []
    for a, b in itertools.pairwise(done):
        (na, wa, ca), (nb, wb, cb) = got[a], got[b]
        marg.append((a, b, (wb - wa) / (nb - na), (cb - ca) / (nb - na)))
        print(f"marginal per patch {a} -> {b}: {(wb - wa) / (nb - na) * 1000:.1f} ms wall, "
              f"{(cb - ca) / (nb - na) * 1000:.1f} ms CPU")
    if len(marg) >= 2 and not dead:
        (_, _, w1, c1), (_, _, w2, c2) = marg[-2], marg[-1]
        print(f"marginal of the last step within 20 % of the one before: wall {w2 / w1 * 100 - 100:+.0f} % "
              f"({'PASS' if abs(w2 / w1 - 1) <= 0.2 else 'FAIL'}), CPU {c2 / c1 * 100 - 100:+.0f} % "
              f"({'PASS' if abs(c2 / c1 - 1) <= 0.2 else 'FAIL'})")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description="pmureview vs checkpatch.pl, and scale")
    ap.add_argument("--runs", type=int, default=7, help="alternating rounds side by side (default 7)")
    ap.add_argument("--scale-runs", type=int, default=3, help="runs per scale size (default 3)")
    ap.add_argument("--sizes", default="100,200,500", help="scale sizes (default 100,200,500)")
    ap.add_argument("--timeout", type=float, default=120, help="kill a scale run after this (default 120 s)")
    ap.add_argument("--no-scale", action="store_true")
    ap.add_argument("--only-scale", action="store_true")
    add_pyc_flag(ap)
    a = ap.parse_args(argv)
    apply_pyc_flag(a)
    if not a.only_scale:
        side_by_side(a.runs)
    if not a.no_scale:
        log("scale series are built on first use (a minute each)")
        scale([int(x) for x in a.sizes.split(",")], a.scale_runs, a.timeout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
