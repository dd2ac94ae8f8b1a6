"""`check --cocci`: the kernel tree's own semantic patches (scripts/coccinelle) on the series' post-images.

Like `make coccicheck MODE=report`: every `scripts/coccinelle/**/*.cocci` that declares `virtual report`
runs once (`spatch -D report --no-show-diff --very-quiet`) over the last post-image of each changed
C file, written under a temporary folder at its real relative path. Reports on lines the series added
become `cocci/<script stem>` findings (severity `check`), anchored on the patch that added the line.
spatch missing or a script failing is one line through `warn`, never an exception.
"""

from __future__ import annotations

import contextlib
import os
import re
import shlex
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path, PurePosixPath

from ..record import dataclass
from ..rule.model import Confidence, Finding, Location, RuleDocs, RuleMeta, Scope, Severity
from ..series.model import ChangeKind
from ..views.context import FULL, FileView, SeriesContext
from .select import matches

SCRIPTS_DIR = "scripts/coccinelle"
SCRIPT_TIMEOUT = 120.0  # seconds per script (all files at once); spatch gets the same per file
MAX_PROCS = 4  # spatch processes at a time, one script each
# spatch options a script's `// Options:` line may not pass: they write outside the temporary folder
_UNSAFE_OPTIONS = ("-o", "--out-place", "--in-place", "--output-file", "--tmp-dir", "--save-tmp-files")
_REPORT = re.compile(r"^(?P<file>[^:\n]+):(?P<line>\d+):(?:(?P<col>\d+)(?:-\d+)?:)?\s*(?P<msg>.*)$")
_LEVEL_WORD = re.compile(r"^(?:WARNING|ERROR|INFO|CHECK)\b:?\s*")  # our severity says it already
_VIRTUAL_REPORT = re.compile(r"^\s*virtual\b[^\n]*\breport\b", re.M)
_CONFIDENCE = {"high": Confidence.HIGH, "moderate": Confidence.MEDIUM, "medium": Confidence.MEDIUM,
               "low": Confidence.LOW}

Warn = Callable[[str], None]
Origin = tuple[FileView, int]  # the view of the patch that added a line, and the line in that view


@dataclass(frozen=True)
class Script:
    path: Path
    rel: str  # relative to the tree, for messages
    meta: RuleMeta
    options: tuple[str, ...]
    requires: tuple[int, ...] | None


def _version(text: str) -> tuple[int, ...] | None:
    m = re.search(r"\d+(?:\.\d+)*", text)
    return tuple(int(x) for x in m.group(0).split(".")) if m else None


def _header(text: str, key: str) -> str | None:
    m = re.search(rf"^//\s*{key}:(.*)$", text, re.M | re.I)
    return m.group(1).strip() if m else None


def load_script(path: Path, tree: Path, taken: set[str]) -> Script | None:
    """A report-mode script, or None (patch/context only, unreadable)."""
    try:
        text = path.read_text("utf-8", "replace")
    except OSError:
        return None
    if not _VIRTUAL_REPORT.search(text):
        return None
    rel = path.relative_to(tree).as_posix()
    rule_id = f"cocci/{path.stem}"
    if rule_id in taken:  # two scripts with one stem in different folders
        rule_id = f"cocci/{path.parent.name}-{path.stem}"
    taken.add(rule_id)
    what = [ln[3:].strip() for ln in text.splitlines() if ln.startswith("///")]
    why = [ln[3:].strip() for ln in text.splitlines() if ln.startswith("//#")]
    conf = _CONFIDENCE.get((_header(text, "Confidence") or "").split(" ")[0].lower(), Confidence.MEDIUM)
    options = tuple(o for o in shlex.split(_header(text, "Options") or "", comments=False)
                    if o.startswith("-") and o.split("=")[0] not in _UNSAFE_OPTIONS)
    req = _header(text, "Requires")
    meta = RuleMeta(
        id=rule_id, title=next((w for w in what if w), path.stem), severity=Severity.CHECK, confidence=conf,
        scope=Scope.FILE, files=("*.c", "*.h"), needs_base=True, uses_tree=True, origin=rel,
        docs=RuleDocs(what=" ".join(w for w in what if w), why=" ".join(w for w in why if w),
                      known_problems="A semantic patch of the kernel tree under review, run by `--cocci`; "
                                     "its reports are as precise as the script.",
                      references=(rel,)))
    return Script(path=path, rel=rel, meta=meta, options=options, requires=_version(req) if req else None)


def find_scripts(tree: Path) -> list[Script]:
    root = tree / SCRIPTS_DIR
    taken: set[str] = set()
    out = []
    for path in sorted(root.rglob("*.cocci")) if root.is_dir() else ():
        script = load_script(path, tree, taken)
        if script is not None:
            out.append(script)
    return out


# -- which patch added each line of the final post-image ---------------------------------------------

def _split(text: str) -> list[str]:
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return lines


def _carry(view: FileView) -> list[int | None] | None:
    """Post-image line -> pre-image line it was carried from (None: added); None when unsure."""
    if view.line_map is None or view.pre_text is None:
        return None
    pre, post = _split(view.pre_text), _split(view.text)
    inv = {new: p for p, new in view.line_map.items()}
    removed: set[int] = set()
    for h in view.change.hunks:
        # a hunk applied at an offset moves old and new numbers alike (apply_hunks has no fuzz)
        shift = next((inv[ln.new_no] - ln.new_no for ln in h.lines if ln.kind != "-" and ln.new_no in inv), None)
        if shift is None:
            return None
        removed.update(ln.old_no + shift for ln in h.lines if ln.kind == "-" and ln.old_no)
    kept = [i for i in range(1, len(pre) + 1) if i not in removed]
    out: list[int | None] = [None] * (len(post) + 1)
    k = 0
    for p in range(1, len(post) + 1):
        if p in view.added:
            continue
        if k >= len(kept) or pre[kept[k] - 1] != post[p - 1]:
            return None  # the walk disagrees with the texts: attribute only what is certain
        out[p] = kept[k]
        k += 1
    return out if k == len(kept) else None


def final_images(ctx: SeriesContext) -> dict[str, tuple[FileView, list[Origin | None]]]:
    """Each C file as the series leaves it (full-mode views only) with, per line (1-based), where it
    was added; None for base lines and lines whose history is unsure."""
    state: dict[str, tuple[FileView, list[Origin | None]] | None] = {}
    for patch in ctx.patches:
        for change in patch.files:
            src = change.old_path or change.path
            if change.kind == ChangeKind.DELETED:
                state.pop(change.path, None)
                continue
            view = ctx.view(patch.number, change.path)
            if view is None:  # binary or mode-only: the text is unchanged
                continue
            prev = state.pop(src, None) if src != change.path else state.get(src)
            if view.mode != FULL or not view.is_c:
                state[change.path] = None
                continue
            n = len(_split(view.text))
            carry = None if change.kind == ChangeKind.ADDED else _carry(view)
            origins: list[Origin | None] = [None] * (n + 1)
            for p in range(1, n + 1):
                if p in view.added:
                    origins[p] = (view, p)
                elif carry is not None and prev is not None and (c := carry[p]) is not None and c < len(prev[1]):
                    origins[p] = prev[1][c]
            state[change.path] = (view, origins)
    return {path: s for path, s in state.items() if s is not None and any(s[1])}


# -- running spatch ---------------------------------------------------------------------------------

def _safe_rel(path: str) -> str | None:
    p = PurePosixPath(path)
    return None if p.is_absolute() or ".." in p.parts or not p.parts else p.as_posix()


def _first_error(stderr: str, rc: int | None) -> str:
    lines = [" ".join(ln.split()) for ln in stderr.splitlines() if ln.strip()]
    lines = [ln for ln in lines if not ln.startswith("warning:")] or lines
    text = "; ".join(lines[:3]) if lines else f"exit status {rc}"
    return text[:300]


def _kill(proc: subprocess.Popen) -> None:
    with contextlib.suppress(OSError):  # already gone
        os.killpg(proc.pid, signal.SIGKILL)


def _run(argv: list[str], cwd: str, timeout: float,
         live: set[subprocess.Popen] | None = None) -> tuple[int | None, str, str]:
    """(exit status or None on timeout, stdout, stderr); the whole process group dies on timeout.
    `live` holds the running processes, for the caller to kill on Ctrl-C."""
    proc = subprocess.Popen(argv, cwd=cwd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, start_new_session=True)
    if live is not None:
        live.add(proc)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        _kill(proc)
        proc.communicate()
        return None, "", ""
    finally:
        if live is not None:
            live.discard(proc)
    return proc.returncode, out.decode("utf-8", "replace"), err.decode("utf-8", "replace")


def _spatch_version(spatch: str, timeout: float) -> tuple[int, ...] | None:
    try:
        rc, out, _ = _run([spatch, "--version"], cwd=".", timeout=min(timeout, 10))
    except OSError:
        return None
    first = out.splitlines()[0] if out else ""
    return _version(first.split("version", 1)[-1]) if rc == 0 else None


def run_cocci(ctx: SeriesContext, tree: Path | None, *, warn: Warn, select: tuple[str, ...] = (),
              ignore: tuple[str, ...] = (), spatch: str | None = None, timeout: float = SCRIPT_TIMEOUT,
              procs: int | None = None) -> tuple[list[Finding], dict[str, RuleMeta]]:
    """Findings of the tree's report-mode semantic patches on lines the series added, and the metas of
    the scripts that ran. Problems go to `warn` (one line each) and never stop the review."""
    if not ctx.full or tree is None:
        warn("--cocci needs a kernel tree (--tree) for the post-images and the scripts; skipped")
        return [], {}
    if not (tree / SCRIPTS_DIR).is_dir():
        warn(f"--cocci: {tree / SCRIPTS_DIR}: no such folder; skipped")
        return [], {}
    scripts = [s for s in find_scripts(tree)
               if not (select and not matches(s.meta.id, select)) and not (ignore and matches(s.meta.id, ignore))]
    images = {rel: img for path, img in final_images(ctx).items() if (rel := _safe_rel(path))}
    if not scripts or not images:
        return [], {}
    exe = shutil.which(spatch or os.environ.get("SPATCH") or "spatch")
    if exe is None:
        warn("--cocci: spatch not found (install coccinelle); skipped")
        return [], {}
    if any(s.requires for s in scripts):
        have = _spatch_version(exe, timeout)
        scripts = [s for s in scripts if not s.requires or (have is not None and have >= s.requires)]

    findings: list[Finding] = []
    ran: dict[str, RuleMeta] = {}
    with tempfile.TemporaryDirectory(prefix="pmureview-cocci-") as tmp:
        for rel, (view, _) in images.items():
            target = Path(tmp, rel)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(view.text, "utf-8", "surrogateescape")
        files = sorted(images)

        def one(script: Script) -> tuple[Script, tuple[int | None, str, str] | OSError]:
            argv = [exe, "-D", "report", "--no-show-diff", "--very-quiet", "--no-includes", "--include-headers",
                    "--timeout", str(max(1, int(timeout))), *script.options, "--cocci-file", str(script.path), *files]
            try:
                return script, _run(argv, tmp, timeout, live)
            except OSError as exc:
                return script, exc

        workers = max(1, min(procs or min(MAX_PROCS, os.cpu_count() or 1), len(scripts)))
        live: set[subprocess.Popen] = set()
        with ThreadPoolExecutor(max_workers=workers) as pool:
            try:
                results = list(pool.map(one, scripts))
            except BaseException:  # Ctrl-C: the spatch groups run in their own sessions, end them
                pool.shutdown(wait=False, cancel_futures=True)
                for proc in list(live):
                    _kill(proc)
                raise
    failed: dict[str, list[str]] = {}  # reason -> scripts: one line per reason, not one per script
    for script, res in results:
        if isinstance(res, OSError):
            failed.setdefault(f"cannot run spatch: {res.strerror or res}", []).append(script.rel)
            continue
        rc, out, err = res
        if rc is None:
            failed.setdefault(f"timed out after {timeout:g} s; skipped", []).append(script.rel)
        elif rc != 0:
            failed.setdefault(f"spatch failed: {_first_error(err, rc)}", []).append(script.rel)
        else:
            ran[script.meta.id] = script.meta
            findings += _findings(script, out, images)
    for reason, rels in failed.items():
        more = ", …" if len(rels) > 3 else ""
        who = rels[0] if len(rels) == 1 else f"{len(rels)} scripts ({', '.join(rels[:3])}{more})"
        warn(f"--cocci: {who}: {reason}")
    return sorted(set(findings), key=Finding.sort_key), ran


def _findings(script: Script, out: str, images: dict[str, tuple[FileView, list[Origin | None]]]) -> list[Finding]:
    found = []
    for raw in out.splitlines():
        m = _REPORT.match(raw.strip())
        if not m:
            continue
        rel = m.group("file").removeprefix("./")
        img = images.get(rel)
        line = int(m.group("line"))
        if img is None or not 0 < line < len(img[1]) or img[1][line] is None:
            continue  # a line the series did not add (or another file): not this review's business
        view, at = img[1][line]  # type: ignore[misc]
        col = int(m.group("col")) + 1 if m.group("col") else None  # spatch columns are 0-based
        msg = _LEVEL_WORD.sub("", " ".join(m.group("msg").split())) or script.meta.title
        loc = Location(patch=view.patch.number, path=view.path, line=view.patch_line(at), column=col,
                       mail_line=view.mail_line(at))
        found.append(Finding(rule=script.meta.id, severity=script.meta.severity,
                             confidence=script.meta.confidence, message=f"{msg} ({script.rel})",
                             note=script.meta.docs.why or None, snippet=view.line_text(at), origin=script.rel,
                             location=loc))
    return found
