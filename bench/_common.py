"""Shared helpers of the benchmark scripts: kernel sources, series cache, timing.

Nothing here reads anything outside the project except the Debian kernel source packages
(`/usr/src/linux-source-N.tar.xz`, installed with apt-get when missing) and the cache folder
(`$PMUREVIEW_BENCH_CACHE`, else `$XDG_CACHE_HOME/pmureview-bench`, else `~/.cache/pmureview-bench`).
"""

from __future__ import annotations

import os
import re
import shutil
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent


def cache_dir() -> Path:
    env = os.environ.get("PMUREVIEW_BENCH_CACHE")
    if env:
        d = Path(env)
    else:
        base = os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache")
        d = Path(base) / "pmureview-bench"
    d.mkdir(parents=True, exist_ok=True)
    return d


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


# ---- kernel sources ---------------------------------------------------------------------------


def _apt_install(pkg: str) -> None:
    if os.geteuid() != 0:
        sys.exit(f"{pkg} is not installed; run: sudo apt-get install -y {pkg}")
    log(f"installing {pkg} with apt-get ...")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    r = subprocess.run(["apt-get", "install", "-y", "-q", pkg], env=env, capture_output=True, text=True)
    if r.returncode != 0:
        subprocess.run(["apt-get", "update", "-qq"], env=env, capture_output=True)
        subprocess.run(["apt-get", "install", "-y", "-q", pkg], env=env, check=True, capture_output=True)


def newest_linux_source() -> str:
    """The newest N of the `linux-source-N` packages apt offers (e.g. "6.12")."""

    def search() -> list[str]:
        r = subprocess.run(
            ["apt-cache", "search", "--names-only", r"^linux-source-[0-9.]+$"], capture_output=True, text=True
        )
        return re.findall(r"^linux-source-([0-9.]+) ", r.stdout, re.M)

    found = search()
    if not found and os.geteuid() == 0:
        subprocess.run(["apt-get", "update", "-qq"], capture_output=True)
        found = search()
    if not found:
        sys.exit("apt-cache offers no linux-source-N package; pass --src DIR")
    return max(found, key=lambda v: tuple(int(x) for x in v.split(".")))


def ensure_linux(version: str) -> Path:
    """An unpacked linux-source-VERSION tree in the cache (installs and extracts it when missing)."""
    dest = cache_dir() / f"linux-source-{version}"
    if (dest / "MAINTAINERS").is_file() and (dest / ".extracted").is_file():
        return dest
    tarball = Path(f"/usr/src/linux-source-{version}.tar.xz")
    if not tarball.is_file():
        _apt_install(f"linux-source-{version}")
    tmp = cache_dir() / f".extract-{version}-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    log(f"extracting {tarball} into {dest} ...")
    subprocess.run(["tar", "xf", str(tarball), "-C", str(tmp)], check=True)
    (top,) = list(tmp.iterdir())
    shutil.rmtree(dest, ignore_errors=True)
    top.rename(dest)
    tmp.rmdir()
    (dest / ".extracted").write_text(str(tarball) + "\n")
    return dest


# ---- the benchmark series ---------------------------------------------------------------------

# checkpatch.pl's top_of_kernel_tree() names: the pre-send hook runs in full mode only at such a top
KERNEL_TOP = ("COPYING", "CREDITS", "Kbuild", "MAINTAINERS", "Makefile", "README", "Documentation", "arch",
              "include", "drivers", "fs", "init", "ipc", "kernel", "lib", "scripts")


def kernel_shaped(repo: Path) -> Path:
    """Give the builder's git tree (arch/ and include/ of the kernel only) the other top-level names
    of a kernel tree, untracked and empty, so the hook run in it takes the full-mode path as it does
    in a real kernel tree. Returns `repo`."""
    for name in KERNEL_TOP:
        path = repo / name
        if not path.exists():
            if name[0].isupper():
                path.touch()
            else:
                path.mkdir()
    return repo



def ensure_series(npatch: int = 24, version: str = "6.1") -> Path:
    """WORK dir holding kvm-repo/ and series/ (built by build_series.py when missing)."""
    work = cache_dir() / (f"series-{version}-{npatch}")
    if not (work / "series" / "MANIFEST.txt").is_file():
        src = ensure_linux(version)
        cmd = [
            sys.executable,
            str(BENCH / "build_series.py"),
            "--src",
            str(src),
            "--work",
            str(work),
            "--patches",
            str(npatch),
        ]
        log("building the series: " + " ".join(cmd))
        subprocess.run(cmd, check=True)
    return work


def patch_files(work: Path) -> list[Path]:
    return sorted((work / "series").glob("*.patch"))


def median_patch(work: Path) -> Path:
    """The patch of median size (the 'one patch' of the hook path)."""
    ps = sorted(patch_files(work), key=lambda p: (p.stat().st_size, p.name))
    return ps[len(ps) // 2]


# ---- commands and timing ----------------------------------------------------------------------


def pmureview_cmd() -> list[str]:
    exe = Path(sys.executable).parent / "pmureview"
    if exe.is_file():
        return [str(exe)]
    found = shutil.which("pmureview")
    if found:
        return [found]
    return [sys.executable, "-m", "pmureview"]


# Children run with byte-code caching on, as an installed pmureview does: PYTHONDONTWRITEBYTECODE
# (set in some sandboxes) would make every run recompile every module. The .pyc files go to the
# bench cache, not into the source tree. `--no-pyc` (PMUREVIEW_BENCH_NO_PYC=1) measures without.
def child_env() -> dict[str, str]:
    env = dict(os.environ)
    if env.get("PMUREVIEW_BENCH_NO_PYC") == "1":
        env["PYTHONDONTWRITEBYTECODE"] = "1"
        return env
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPYCACHEPREFIX"] = str(cache_dir() / "pycache")
    return env


def pyc_state() -> str:
    if os.environ.get("PMUREVIEW_BENCH_NO_PYC") == "1":
        return "off (PYTHONDONTWRITEBYTECODE=1: every module compiled on every run)"
    return f"on (PYTHONPYCACHEPREFIX={cache_dir() / 'pycache'})"


def add_pyc_flag(ap) -> None:
    ap.add_argument(
        "--no-pyc", action="store_true", help="run pmureview without byte-code caching (PYTHONDONTWRITEBYTECODE=1)"
    )


def apply_pyc_flag(args) -> None:
    if getattr(args, "no_pyc", False):
        os.environ["PMUREVIEW_BENCH_NO_PYC"] = "1"


TIMED_OUT = -9999


def run_once(
    argv: list[str], stdin: Path | None = None, cwd: Path | None = None, timeout: float | None = None
) -> tuple[float, int, int]:
    wall, rc, rss, _cpu = run_once_cpu(argv, stdin, cwd, timeout)
    return wall, rc, rss


def run_once_cpu(
    argv: list[str], stdin: Path | None = None, cwd: Path | None = None, timeout: float | None = None
) -> tuple[float, int, int, float]:
    """Wall seconds, exit code, peak RSS (KiB) and CPU seconds (user + sys) of one run, from the
    wait4 rusage of that child. CPU time is what to compare when the machine is shared.

    With `timeout`, a child still running after that many seconds is killed and the exit code is
    TIMED_OUT.
    """
    env = child_env()
    with open(stdin or os.devnull, "rb") as fin:
        t0 = time.perf_counter()
        p = subprocess.Popen(argv, stdin=fin, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=cwd, env=env)
        timer = threading.Timer(timeout, p.kill) if timeout else None
        if timer:
            timer.start()
        _, status, ru = os.wait4(p.pid, 0)
        dt = time.perf_counter() - t0
        if timer:
            timer.cancel()
        rc = os.waitstatus_to_exitcode(status)
        p.returncode = rc
        if timeout and dt >= timeout and rc < 0:
            rc = TIMED_OUT
    return dt, rc, ru.ru_maxrss, ru.ru_utime + ru.ru_stime


def run_many(jobs: list[tuple[list[str], Path | None]]) -> tuple[float, int, list[int]]:
    """Run each (argv, stdin) one after the other: total wall, peak RSS, exit codes."""
    total, peak, rcs = 0.0, 0, []
    for argv, stdin in jobs:
        dt, rc, rss = run_once(argv, stdin)
        total += dt
        peak = max(peak, rss)
        rcs.append(rc)
    return total, peak, rcs


def alternate(variants: dict[str, object], runs: int, warmup: int = 1) -> dict[str, list[float]]:
    """Run the variants A B C A B C ... `runs` times (after `warmup` untimed rounds); wall times.

    Each variant is a callable returning seconds.
    """
    times: dict[str, list[float]] = {k: [] for k in variants}
    for i in range(warmup + runs):
        for k, fn in variants.items():
            dt = fn()  # type: ignore[operator]
            if i >= warmup:
                times[k].append(dt)
    return times


def med(xs: list[float]) -> float:
    return statistics.median(xs)


def fmt_s(x: float) -> str:
    return f"{x:.3f} s" if x >= 0.1 else f"{x * 1000:.1f} ms"


def machine() -> str:
    cpu = "?"
    mem = ""
    try:
        cpu = next(
            (
                ln.split(":", 1)[1].strip()
                for ln in Path("/proc/cpuinfo").read_text().splitlines()
                if ln.startswith("model name")
            ),
            "?",
        )
        mem = next(
            (
                f", {int(ln.split()[1]) // 1024} MiB RAM"
                for ln in Path("/proc/meminfo").read_text().splitlines()
                if ln.startswith("MemTotal")
            ),
            "",
        )
    except OSError:
        pass
    return f"{os.cpu_count()} CPUs ({cpu}){mem}, Python {sys.version.split()[0]}"


def table(rows: list[list[str]], head: list[str]) -> str:
    out = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
    out += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(out)
