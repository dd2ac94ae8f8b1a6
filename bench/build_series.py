#!/usr/bin/env python3
"""Build a realistic KVM/arm64 patch series from real kernel code ("hide and re-add").

Method: pick N groups of real top-level C functions (each with the comment block directly above
it) from a kernel tree. The `base` commit is the tree with every picked function removed (kind
"add") or with its body replaced by a one-line stub (kind "implement"). Commit i restores the
functions of group i, so every patch adds real kernel code (1-3 files, 20-120 added lines) in its
real context, and HEAD equals the original files. `git format-patch --thread=shallow --base=base`
gives each patch a Message-ID and a `base-commit:` line; `series.mbox` is the concatenation.

The default, 24 patches, draws from arch/arm64/kvm/**/*.c, arch/arm64/include/asm/kvm_*.h and
include/kvm/*.h. `--patches N` scales the same method to N patches (100/200/500 for the scale
benchmark); past what arch/arm64/kvm can supply, the pool widens to arch/arm64/kernel,
arch/arm64/mm and virt/kvm. Everything is seeded: the same tree and N give the same series.

usage: build_series.py [--src LINUX_SRC] [--version 6.1] [--work WORK_DIR] [--patches N]

LINUX_SRC defaults to the Debian linux-source-VERSION tree unpacked in the bench cache
(installed and extracted when missing). WORK_DIR (default: the cache's series-VERSION-N) gets
kvm-repo/ (git, tag `base`, HEAD = the series applied) and series/ (N .patch files, series.mbox,
MANIFEST.txt). Needs tree-sitter and tree-sitter-c (pmureview's own dependencies).
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common

SEED = 20251125
MIN_LINES, MAX_LINES = 20, 120  # added lines per patch
FN_MIN, FN_MAX = 8, 70  # lines of one picked function (with its comment)

# Pools: the KVM/arm64 core first; the wider arm64 pool only when N needs it.
POOL_KVM = ["arch/arm64/kvm", "include/kvm"]
POOL_WIDE = ["arch/arm64/kernel", "arch/arm64/mm", "virt/kvm"]
# Copied into the repository besides the pool folders (what the rules and full mode read).
CONTEXT = [
    "arch/arm64/include",
    "arch/arm64/tools",
    "include/kvm",
    "include/uapi/linux/kvm.h",
    "include/linux/kvm_host.h",
    "MAINTAINERS",
]

AUTHOR = ("Jane Developer", "jane.developer@example.org")
BODIES = [
    "The {area} code open-codes this logic in several places. Factor it out into {fn}() so that "
    "the callers share one implementation and the follow-up patches in this series can reuse it.",
    "Introduce {fn}() to handle this case explicitly. Without it, a guest can observe stale state "
    "after {area} reconfiguration, which the architecture does not allow.",
    "{fn}() is currently a stub that returns an error. Implement it properly so that userspace can "
    "rely on the {area} interface as documented.",
    "Move the {area} handling into {fn}(). No functional change intended, but this makes the "
    "locking rules easier to follow and document.",
    "Add {fn}() in preparation for supporting the new {area} behaviour. The helper follows the "
    "existing conventions for sanitising guest-provided values.",
]
IMPLEMENT_BODY = 2
AREAS = [
    ("vgic", "vGIC"),
    ("hyp", "hypervisor"),
    ("pmu", "PMU"),
    ("timer", "arch timer"),
    ("mmu", "stage-2 MMU"),
    ("sys_regs", "system register"),
    ("psci", "PSCI"),
    ("pgtable", "page-table"),
    ("guest", "vcpu ioctl"),
    ("mm/", "memory management"),
    ("virt/kvm", "KVM core"),
]


class Func:
    __slots__ = ("body", "end", "name", "nonvoid", "path", "start")

    def __init__(self, path, start, body, end, name, nonvoid):
        self.path, self.start, self.body, self.end = path, start, body, end
        self.name, self.nonvoid = name, nonvoid

    @property
    def nlines(self) -> int:
        return self.end - self.start + 1

    @property
    def key(self):
        return (self.path, self.start)


def _parser():
    import tree_sitter_c
    from tree_sitter import Language, Parser

    return Parser(Language(tree_sitter_c.language()))


def _decl_name(decl):
    d = decl
    while d is not None:
        if d.type == "identifier":
            return d.text.decode()
        d = d.child_by_field_name("declarator")
    return None


def top_functions(parser, src: Path, rel: str) -> list[Func]:
    """Error-free top-level function definitions of one file, each with its leading comment."""
    data = (src / rel).read_bytes()
    kids = parser.parse(data).root_node.children
    out = []
    for i, node in enumerate(kids):
        if node.type != "function_definition" or node.has_error:
            continue
        body = node.child_by_field_name("body")
        decl = node.child_by_field_name("declarator")
        typ = node.child_by_field_name("type")
        name = _decl_name(decl)
        if body is None or name is None or typ is None:
            continue
        start = node.start_point[0]
        j = i - 1
        while j >= 0 and kids[j].type == "comment" and kids[j].end_point[0] == start - 1:
            start = kids[j].start_point[0]
            j -= 1
        nonvoid = not (typ.text == b"void" and decl.type == "function_declarator")
        out.append(Func(rel, start, body.start_point[0], node.end_point[0], name, nonvoid))
    return out


def pool_files(src: Path, dirs: list[str]) -> list[str]:
    files = []
    for d in dirs:
        for root, subdirs, names in os.walk(src / d):
            subdirs.sort()
            for n in sorted(names):
                if (n.endswith(".c") and "gen-hyprel" not in n) or (d == "include/kvm" and n.endswith(".h")):
                    files.append(os.path.relpath(os.path.join(root, n), src))
    asm = src / "arch/arm64/include/asm"
    files += ["arch/arm64/include/asm/" + n for n in sorted(os.listdir(asm)) if n.startswith("kvm_")]
    return sorted(set(files))


def pick_groups(cands: dict[str, list[Func]], npatch: int, rng: random.Random):
    """N groups of (Func, kind); 1-3 files per patch, MIN_LINES..MAX_LINES lines per patch."""
    plan = ([1] * 10 + [2] * 9 + [3] * 5) * (npatch // 24 + 1)
    plan = plan[:npatch]
    rng.shuffle(plan)
    used: set = set()
    fkeys = sorted(cands)
    groups = []
    for nf in plan:
        picks = None
        for attempt in range(4000):
            want = nf if attempt < 2000 else 1  # a depleted pool: fall back to one file
            target = rng.randint(MIN_LINES, MAX_LINES)
            files = rng.sample(fkeys, want)
            if sum(f.endswith(".h") for f in files) > 1:
                continue
            trial, total = [], 0
            for k, f in enumerate(files):
                share = (target - total) if k == want - 1 else max(FN_MIN, (target - total) // (want - k))
                opts = [c for c in cands[f] if c.key not in used and c.nlines <= share + 10]
                if not opts:
                    break
                opts.sort(key=lambda c: (abs(c.nlines - share), c.start))
                c = rng.choice(opts[:3])
                implement = c.body - c.start < 6 and c.end - c.body > 8 and rng.random() < 0.4
                trial.append((c, "implement" if implement else "add"))
                total += c.nlines
            else:
                if MIN_LINES <= total <= MAX_LINES:
                    picks = trial
                    break
        if picks is None:
            sys.exit(f"the pool ran out after {len(groups)} patches; ask for fewer")
        used.update(c.key for c, _ in picks)
        groups.append(picks)
    return groups


def render(lines: list[str], hidden: list[tuple[Func, str]]) -> str:
    """The file with the `hidden` functions removed (add) or stubbed (implement)."""
    out: list[str] = []
    i = 0
    for c, kind in sorted(hidden, key=lambda h: h[0].start):
        out.extend(lines[i : c.start])
        if kind == "add":
            i = c.end + 1
            if i < len(lines) and not lines[i].strip() and out and not out[-1].strip():
                i += 1  # keep one blank line between the neighbours, not two
        else:
            out.extend(lines[c.start : c.body + 1])
            out.append("\treturn -EOPNOTSUPP;" if c.nonvoid else "\t/* not implemented yet */")
            out.append("}")
            i = c.end + 1
    out.extend(lines[i:])
    return "\n".join(out)


def area_of(path: str) -> str:
    for k, v in AREAS:
        if k in path:
            return v
    return "KVM/arm64"


def prefix_of(path: str) -> str:
    if "/vgic" in path or "arm_vgic" in path:
        return "KVM: arm64: vgic: "
    if "/nvhe/" in path:
        return "KVM: arm64: nVHE: "
    if "/vhe/" in path:
        return "KVM: arm64: VHE: "
    if "pmu" in path:
        return "KVM: arm64: PMU: "
    if path.startswith("virt/kvm"):
        return "KVM: "
    if path.startswith(("arch/arm64/kernel", "arch/arm64/mm")):
        return "arm64: "
    return "KVM: arm64: "


def build(src: Path, work: Path, npatch: int) -> None:
    seed = SEED + (0 if npatch == 24 else npatch)
    rng = random.Random(seed)
    parser = _parser()
    repo, out = work / "kvm-repo", work / "series"

    def candidates(dirs):
        res = {}
        for f in pool_files(src, dirs):
            fl = [c for c in top_functions(parser, src, f) if FN_MIN <= c.nlines <= FN_MAX]
            if fl:
                res[f] = fl
        return res

    dirs = list(POOL_KVM)
    cands = candidates(dirs)
    # about 1 function in 4 of the pool is picked at most, so the groups stay spread out
    if sum(len(v) for v in cands.values()) < npatch * 1.7 * 4:
        dirs += POOL_WIDE
        cands = candidates(dirs)
    groups = pick_groups(cands, npatch, rng)

    orig: dict[str, list[str]] = {}
    hidden: dict[str, list[tuple[Func, str]]] = {}
    for g in groups:
        for c, kind in g:
            orig.setdefault(c.path, (src / c.path).read_text(errors="surrogateescape").split("\n"))
            hidden.setdefault(c.path, []).append((c, kind))

    shutil.rmtree(repo, ignore_errors=True)
    repo.mkdir(parents=True)
    for rel in sorted(set(dirs + CONTEXT)):
        s, d = src / rel, repo / rel
        if s.is_dir():
            shutil.copytree(s, d, dirs_exist_ok=True)
        elif s.is_file():
            d.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(s, d)

    env = dict(
        os.environ,
        GIT_AUTHOR_NAME=AUTHOR[0],
        GIT_AUTHOR_EMAIL=AUTHOR[1],
        GIT_COMMITTER_NAME=AUTHOR[0],
        GIT_COMMITTER_EMAIL=AUTHOR[1],
        GIT_CONFIG_GLOBAL=os.devnull,
        GIT_CONFIG_NOSYSTEM="1",
    )

    def git(*args, date=None, stdin=None):
        e = dict(env)
        if date:
            e["GIT_AUTHOR_DATE"] = e["GIT_COMMITTER_DATE"] = date
        return subprocess.run(
            ["git", "-C", str(repo), *args], env=e, input=stdin, check=True, capture_output=True, text=True
        ).stdout

    def write(rel, hidden_now):
        (repo / rel).write_text(render(orig[rel], hidden_now), errors="surrogateescape")

    for rel in orig:
        write(rel, hidden[rel])
    git("init", "-q", "-b", "master")
    git("add", "-A")
    git(
        "commit",
        "-q",
        "-m",
        f"Linux {src.name.removeprefix('linux-source-')} KVM/arm64 subset (base)",
        date="2025-11-01T10:00:00+00:00",
    )
    git("tag", "base")

    for i, g in enumerate(groups, 1):
        for rel in sorted({c.path for c, _ in g}):
            hidden[rel] = [h for h in hidden[rel] if h not in g]
            write(rel, hidden[rel])
        c0, k0 = g[0]
        subj = f"{prefix_of(c0.path)}{'Implement' if k0 == 'implement' else 'Add'} {c0.name}()"
        if len(subj) > 70:
            subj = subj[:70].rsplit(" ", 1)[0]
        paras = []
        for c, kind in g:
            if kind == "implement":
                t = BODIES[IMPLEMENT_BODY]
            else:
                t = rng.choice([b for j, b in enumerate(BODIES) if j != IMPLEMENT_BODY])
            paras.append(textwrap.fill(t.format(fn=c.name, area=area_of(c.path)), 72))
        trailers = []
        if rng.random() < 0.3:
            trailers.append("Reviewed-by: Alex Reviewer <alex.reviewer@example.com>")
        if rng.random() < 0.2:
            trailers.append(f"Link: https://lore.kernel.org/r/20251101000000.{i}-1-{AUTHOR[1]}")
        trailers.append(f"Signed-off-by: {AUTHOR[0]} <{AUTHOR[1]}>")
        msg = subj + "\n\n" + "\n\n".join(paras) + "\n\n" + "\n".join(trailers) + "\n"
        git("add", "-A")
        stamp = f"2025-11-02T{(i // 60) % 24:02d}:{i % 60:02d}:00+00:00"
        git("commit", "-q", "-F", "-", date=stamp, stdin=msg)

    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    git(
        "format-patch",
        "-q",
        "--thread=shallow",
        "--base=base",
        "--to=kvmarm@lists.linux.dev",
        "--cc=linux-arm-kernel@lists.infradead.org",
        "-o",
        str(out),
        "base..HEAD",
    )
    patches = sorted(out.glob("*.patch"))
    with open(out / "series.mbox", "wb") as mbox:
        for p in patches:
            mbox.write(p.read_bytes())
    added = 0
    with open(out / "MANIFEST.txt", "w") as m:
        m.write(f"# {npatch} patches from {src.name}, seed {seed}, pool: {', '.join(dirs)}\n")
        for i, g in enumerate(groups, 1):
            added += sum(c.nlines for c, _ in g)
            m.write(f"{i:03d}: " + ", ".join(f"{c.path}:{c.name}({kind},{c.nlines}l)" for c, kind in g) + "\n")
        m.write(f"# {added} added lines in functions\n")
    _common.log(f"built {len(patches)} patches ({added} function lines) in {out}; repo {repo}")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--src", type=Path, help="an unpacked kernel tree (default: Debian linux-source)")
    ap.add_argument("--version", default="6.1", help="linux-source-VERSION when --src is not given")
    ap.add_argument("--work", type=Path, help="output folder (default: the bench cache)")
    ap.add_argument("--patches", type=int, default=24, help="number of patches (default 24)")
    a = ap.parse_args(argv)
    if a.patches < 1:
        ap.error("--patches must be at least 1")
    src = (a.src or _common.ensure_linux(a.version)).resolve()
    work = (a.work or _common.cache_dir() / f"series-{a.version}-{a.patches}").resolve()
    build(src, work, a.patches)
    print(work)
    return 0


if __name__ == "__main__":
    sys.exit(main())
