#!/usr/bin/env python3
"""A month of list traffic: 100 real-shaped series, one `pmureview check` process per series (issue 15).

What a bot operator wants to know: how many series one core reviews per second, and how much memory
one review needs at most. The series are cut from the 500-patch series `build_series.py` builds
(real arch/arm64 and KVM code, "hide and re-add", 1-3 files and 20-120 added lines per patch), in
the sizes list traffic has (seeded): about half single patches, a quarter 2-3 patches, the rest
4-8 or 9-16 patches with a cover letter. Each series gets its own `[PATCH k/n]` subjects and shallow
threading, so pmureview sees n of n patches. Reviews are hunk-only (run from a folder that is not a
kernel tree), `--format json`, byte-code cached as installed.

Prints series per second (wall and CPU: user+sys of the children), ms per patch, and the peak RSS
of any one child (ru_maxrss from wait4).

usage: python bench/traffic.py [--series 100] [--seed N] [--rounds 1]
"""

from __future__ import annotations

import argparse
import random
import re
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import cache_dir, ensure_series, log, machine, patch_files, pmureview_cmd, pyc_state, run_once_cpu

SEED = 20261204
# (smallest, largest, share): list traffic is mostly single patches and short series
SIZES = [(1, 1, 0.45), (2, 3, 0.25), (4, 8, 0.20), (9, 16, 0.10)]
_SUBJECT = re.compile(r"^Subject: \[PATCH \d+/\d+\]", re.M)
_MSGID = re.compile(r"^Message-Id: <([^>]+)>", re.M | re.I)
_THREAD = re.compile(r"^(?:In-Reply-To|References): .*\n", re.M | re.I)


def sizes(n: int, rng: random.Random) -> list[int]:
    out = []
    for _ in range(n):
        r, acc = rng.random(), 0.0
        for lo, hi, share in SIZES:
            acc += share
            if r < acc:
                out.append(rng.randint(lo, hi))
                break
        else:
            out.append(1)
    return out


def cover(n: int, idx: int, first_subject: str) -> tuple[str, str]:
    """A cover letter in git format-patch's shape; returns (text, Message-Id)."""
    mid = f"traffic-{idx}-0@example.org"
    text = (
        "From 0000000000000000000000000000000000000000 Mon Sep 17 00:00:00 2001\n"
        f"Message-Id: <{mid}>\n"
        "From: Jane Developer <jane.developer@example.org>\n"
        f"Date: Mon, 1 Dec 2025 {idx % 24:02d}:00:00 +0000\n"
        f"Subject: [PATCH 0/{n}] {first_subject}\n"
        "To: kvmarm@lists.linux.dev\n\n"
        f"This series has {n} patches; see the individual commit messages.\n\n"
        "Jane Developer (1):\n  the patches\n\n-- \n2.43.0\n\n"
    )
    return text, mid


def build(nseries: int, seed: int) -> list[tuple[Path, int]]:
    """The traffic series as mbox files in the bench cache (rebuilt when missing): (mbox, patches)."""
    pool = patch_files(ensure_series(500))
    rng = random.Random(seed)
    out_dir = cache_dir() / f"traffic-{nseries}-{seed}"
    out_dir.mkdir(parents=True, exist_ok=True)
    result = []
    at = 0
    for i, n in enumerate(sizes(nseries, rng)):
        mbox = out_dir / f"series-{i:03d}.mbox"
        result.append((mbox, n))
        if mbox.is_file():
            at += n
            continue
        texts = [pool[(at + k) % len(pool)].read_text() for k in range(n)]
        at += n
        parts, head = [], None
        if n > 1:
            subj = re.search(r"^Subject: \[PATCH \d+/\d+\] (.*)$", texts[0], re.M)
            text, head = cover(n, i, subj.group(1) if subj else "updates")
            parts.append(text)
        for k, t in enumerate(texts, 1):
            t = _SUBJECT.sub(f"Subject: [PATCH {k}/{n}]" if n > 1 else "Subject: [PATCH]", t, count=1)
            t = _THREAD.sub("", t)
            if head is not None:
                t = _MSGID.sub(lambda m, h=head: f"{m.group(0)}\nIn-Reply-To: <{h}>\nReferences: <{h}>", t, count=1)
            parts.append(t if t.endswith("\n") else t + "\n")
        mbox.write_text("".join(parts))
    return result


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description="100 real-shaped series, one process each")
    ap.add_argument("--series", type=int, default=100)
    ap.add_argument("--seed", type=int, default=SEED)
    ap.add_argument("--rounds", type=int, default=1, help="review the batch this many times (medians)")
    a = ap.parse_args(argv)
    batch = build(a.series, a.seed)
    npatches = sum(n for _, n in batch)
    pmr = pmureview_cmd()
    walls, cpus, peak, rcs = [], [], 0, set()
    with tempfile.TemporaryDirectory() as tmp:  # not a kernel tree: hunk-only, as a list bot runs
        run_once_cpu([*pmr, "check", str(batch[0][0]), "--format", "json"], cwd=Path(tmp))  # warm-up
        for r in range(a.rounds):
            wall = cpu = 0.0
            for mbox, _n in batch:
                dt, rc, rss, c = run_once_cpu([*pmr, "check", str(mbox), "--format", "json"], cwd=Path(tmp))
                wall += dt
                cpu += c
                peak = max(peak, rss)
                rcs.add(rc)
            walls.append(wall)
            cpus.append(cpu)
            log(f"round {r + 1}: {wall:.1f} s wall, {cpu:.1f} s CPU")
    wall, cpu = statistics.median(walls), statistics.median(cpus)
    print(f"machine: {machine()}")
    print(f"byte-code cache: {pyc_state()}")
    print(f"batch: {len(batch)} series, {npatches} patches (sizes {sorted(n for _, n in batch)[::10]}... "
          f"seed {a.seed}), cut from the 500-patch bench series; exit codes {sorted(rcs)}")
    print(f"one `pmureview check S.mbox --format json` process per series, hunk-only, {a.rounds} round(s), medians\n")
    print("| what | wall | CPU (user+sys of the children) |")
    print("|---|---|---|")
    print(f"| {len(batch)} series | {wall:.1f} s | {cpu:.1f} s |")
    print(f"| series per second | {len(batch) / wall:.2f} | {len(batch) / cpu:.2f} (one core) |")
    print(f"| per series (mean) | {1000 * wall / len(batch):.0f} ms | {1000 * cpu / len(batch):.0f} ms |")
    print(f"| per patch (mean) | {1000 * wall / npatches:.0f} ms | {1000 * cpu / npatches:.0f} ms |")
    print(f"| peak RSS of one child | {peak / 1024:.0f} MiB | |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
