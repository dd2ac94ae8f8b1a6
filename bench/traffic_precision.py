#!/usr/bin/env python3
"""Precision on list traffic: review every series of an archive the way a bot would, then judge.

A bot on a mailing list sees series no rule was written from, without a kernel tree. This script
reviews every series mbox in a folder (one `pmureview check MBOX --format json` process per series,
run from a scratch folder that is not a kernel tree, so hunk-only), tallies findings per rule and
severity, and helps a human judge the warnings and errors:

    python bench/traffic_precision.py --mbox-dir DIR [--out findings.jsonl]
           [--sample N --seed S] [--distinct] [--verdicts verdicts.tsv]

- `--sample N` prints N warning/error findings chosen at random (fixed seed: the same sample
  again), each with its series, patch, file, line, the added line and the message, for judging.
- `--distinct` counts a point once when several mboxes repeat it (copies or versions of one
  posting: same rule, file, added line and message), for the sample and the verdicts.
- `--verdicts FILE` reads the human's verdicts, one per line: `<fingerprint> <right|wrong|doubtful>
  [free text]` (`#` starts a comment), and prints them per rule: right / wrong / doubtful, and
  the warning/error findings still unjudged. Fingerprints are stable across runs of one build, so a
  verdict file can be kept and re-used after rule changes (findings that changed are "unjudged").

How to get an archive: `b4 mbox -o DIR <msgid>` per series, or `lei q` over a list and one mbox per
thread; docs/precision.md ("Real traffic") gives the full recipe and a sample judged by hand.
"""

from __future__ import annotations

import argparse
import collections
import json
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import child_env, log, pmureview_cmd

LOUD = ("error", "warning")


def review(mboxes: list[Path]) -> list[dict]:
    rows: list[dict] = []
    with tempfile.TemporaryDirectory(prefix="pmr-traffic-") as scratch:
        for mbox in mboxes:
            proc = subprocess.run([*pmureview_cmd(), "check", str(mbox.resolve()), "--format", "json"],
                                  capture_output=True, text=True, cwd=scratch, env=child_env())
            if proc.returncode not in (0, 1):
                log(f"{mbox.name}: exit {proc.returncode}: {proc.stderr.strip()[:200]}")
                continue
            for f in json.loads(proc.stdout).get("findings", []):
                rows.append({"series": mbox.name, **{k: f.get(k) for k in (
                    "rule", "severity", "patch", "path", "line", "snippet", "message", "fingerprint")}})
    return rows


def read_verdicts(path: Path) -> dict[str, str]:
    verdicts: dict[str, str] = {}
    for raw in path.read_text().splitlines():
        line = raw.split("#", 1)[0].split()
        if len(line) >= 2 and line[1] in ("right", "wrong", "doubtful"):
            verdicts[line[0]] = line[1]
    return verdicts


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mbox-dir", type=Path, required=True)
    ap.add_argument("--out", type=Path)
    ap.add_argument("--sample", type=int, default=0)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--distinct", action="store_true")
    ap.add_argument("--verdicts", type=Path)
    args = ap.parse_args()

    mboxes = sorted(p for p in args.mbox_dir.iterdir() if p.suffix in (".mbox", ".mbx", ".eml"))
    if not mboxes:
        print(f"no .mbox files in {args.mbox_dir}", file=sys.stderr)
        return 2
    start = time.monotonic()
    rows = review(mboxes)
    elapsed = time.monotonic() - start
    if args.out:
        args.out.write_text("".join(json.dumps(r) + "\n" for r in rows))

    tally = collections.Counter((r["rule"], r["severity"]) for r in rows)
    print(f"{len(mboxes)} series in {elapsed:.1f} s; findings per rule and severity:")
    for (rule, sev), n in sorted(tally.items(), key=lambda kv: (-kv[1], kv[0])):
        print(f"  {n:5d}  {sev:8s} {rule}")
    loud = [r for r in rows if r["severity"] in LOUD]
    print(f"warnings and errors: {len(loud)} on {len({r['series'] for r in loud})} series")
    if args.distinct:
        first: dict[tuple, dict] = {}
        for r in loud:
            first.setdefault((r["rule"], r["path"], (r["snippet"] or "").strip(), r["message"]), r)
        loud = list(first.values())
        print(f"distinct warnings and errors: {len(loud)}")

    if args.sample:
        rnd = random.Random(args.seed)
        for r in rnd.sample(loud, min(args.sample, len(loud))):
            print(f"\n{r['fingerprint']}  {r['series']} patch {r['patch']} {r['path']}:{r['line']}"
                  f"  [{r['severity']}] {r['rule']}\n    + {(r['snippet'] or '').strip()}\n    {r['message']}")

    if args.verdicts:
        verdicts = read_verdicts(args.verdicts)
        per_rule: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
        unjudged = 0
        for r in loud:
            verdict = verdicts.get(r["fingerprint"])
            per_rule[r["rule"]][verdict or "unjudged"] += 1
            unjudged += verdict is None
        print("\nverdicts on warnings and errors (right / wrong / doubtful / unjudged):")
        total: collections.Counter = collections.Counter()
        for rule, c in sorted(per_rule.items()):
            total.update(c)
            if c["right"] + c["wrong"] + c["doubtful"]:
                print(f"  {rule:50s} {c['right']:3d} {c['wrong']:3d} {c['doubtful']:3d} {c['unjudged']:3d}")
        print(f"  {'all':50s} {total['right']:3d} {total['wrong']:3d} {total['doubtful']:3d} {unjudged:3d}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
