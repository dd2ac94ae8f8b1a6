"""The fixture harness (reused by `pmureview rules test` for plugin authors) and the series builder.

A case is a folder `<rule-id>/bad-<slug>/` or `good-<slug>/` holding `series.mbox`, `expected.yml`
and optionally `tree/` (the pre-image; the case then runs in hunk-only and full mode, the tree
committed into a temporary git repository as the base). expected.yml:

    rules: [kvmarm/fgt-trap-polarity]   # checked exhaustively; default: the folder's rule id
    tree: ../../../../trees/NAME         # optional: a shared base tree instead of the case's own tree/
    findings:                           # must appear (both modes unless under `modes:`)
      - {rule: kvmarm/fgt-trap-polarity, patch: 1, path: arch/arm64/kvm/config.c, line: 12, severity: error}
    modes: {full: [...], hunk-only: [...]}   # findings for one mode only
    todo: []                            # known misses/noise: reported, not failing

A finding of a checked rule that is not expected is **Noisy**; an expected one not found is **Missing**.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from .record import dataclass, field

HUNK_ONLY = "hunk-only"
FULL = "full"


@dataclass
class Case:
    root: Path  # the case folder
    rule_id: str  # from the folder path (may be a pseudo id for multi-rule cases)
    kind: str  # bad | good
    expected: dict[str, Any] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return f"{self.rule_id}/{self.root.name}"

    @property
    def tree(self) -> Path | None:
        return case_tree(self.root, self.expected)

    def modes(self) -> list[str]:
        return [HUNK_ONLY, FULL] if self.tree else [HUNK_ONLY]

    @property
    def rules(self) -> list[str]:
        return list(self.expected.get("rules") or [self.rule_id])

    def expected_findings(self, mode: str) -> list[dict[str, Any]]:
        out = list(self.expected.get("findings") or [])
        out += list((self.expected.get("modes") or {}).get(mode) or [])
        return out


def case_tree(case_dir: Path, expected: dict[str, Any] | None = None) -> Path | None:
    """The case's base tree: its own `tree/`, or a shared one named by `tree:` in expected.yml
    (a path relative to the case, e.g. `../../../../trees/fgt-pmu`), so identical fake kernels
    are written once."""
    own = case_dir / "tree"
    if own.is_dir():
        return own
    if expected is None:
        import yaml

        exp = case_dir / "expected.yml"
        expected = (yaml.safe_load(exp.read_text("utf-8")) or {}) if exp.is_file() else {}
    shared = expected.get("tree")
    if shared:
        t = (case_dir / shared).resolve()
        return t if t.is_dir() else None
    return None


def discover_cases(root: Path) -> list[Case]:
    import yaml

    cases = []
    for mbox in sorted(root.rglob("series.mbox")):
        case_dir = mbox.parent
        if not case_dir.name.startswith(("bad-", "good-")) or "tree" in case_dir.relative_to(root).parts[:-1]:
            continue
        exp_file = case_dir / "expected.yml"
        expected = yaml.safe_load(exp_file.read_text("utf-8")) if exp_file.is_file() else {}
        rel = case_dir.parent.relative_to(root).as_posix()
        # pointing at one rule's folder (`rules test fixtures/series/kvmarm/x`) names the rule by it
        rule_id = rel if rel != "." else f"{root.resolve().parent.name}/{root.resolve().name}"
        cases.append(Case(case_dir, rule_id, case_dir.name.split("-", 1)[0], expected or {}))
    return cases


def _base_repo(base: Path, repo: Path) -> Path:
    """The case's base committed into a fresh repository (an empty commit when the case has none)."""
    if base.is_dir():
        return git_tree(base, repo)
    repo.mkdir()
    subprocess.run(["git", "-C", str(repo), "init", "-q", "-b", "main"], check=True)
    subprocess.run(["git", "-C", str(repo), "-c", "user.name=F", "-c", "user.email=f@example.org",
                    "commit", "-q", "--allow-empty", "-m", "base"], check=True)
    return repo


def git_tree(src: Path, dest: Path) -> Path:
    """Copy `src` into a fresh git repository at `dest` and commit it (the fixture's base)."""
    shutil.copytree(src, dest)
    env = {**os.environ, "GIT_AUTHOR_NAME": "Fixture", "GIT_AUTHOR_EMAIL": "fixture@example.org",
           "GIT_COMMITTER_NAME": "Fixture", "GIT_COMMITTER_EMAIL": "fixture@example.org",
           "GIT_AUTHOR_DATE": "2025-12-01T00:00:00+0000", "GIT_COMMITTER_DATE": "2025-12-01T00:00:00+0000"}
    for args in (["init", "-q", "-b", "main"], ["add", "-A"], ["commit", "-q", "-m", "base"]):
        subprocess.run(["git", "-C", str(dest), *args], check=True, env=env, capture_output=True)
    return dest


def run_case(case: Case, *, mode: str, rules_dirs: tuple[Path, ...] = ()) -> list[str]:
    """Review the case in `mode`; -> the list of problems (Missing / Noisy), empty when it passes."""
    from .api import Options, review

    with tempfile.TemporaryDirectory(prefix="pmureview-case-") as tmp:
        opts = Options(rules_dirs=rules_dirs, select=tuple(case.rules), fail_on=_check())
        if mode == FULL:
            assert case.tree is not None
            opts.tree = git_tree(case.tree, Path(tmp) / "tree")
        result = review([str(case.root / "series.mbox")], opts)
    got = [f for f in result.findings if f.rule in case.rules]
    internal = [f for f in result.findings if f.rule == "pmureview/internal-error"]
    problems = [f"Internal: {f.message}" for f in internal]
    todo = case.expected.get("todo") or []
    want = case.expected_findings(mode) if case.kind == "bad" else []
    if case.kind == "bad" and not want:
        problems.append("bad case with no expected findings")
    unmatched = list(got)
    for w in want:
        hit = next((f for f in unmatched if _same(f, w)), None)
        if hit is None:
            if w not in todo:
                problems.append(f"Missing: {_fmt(w)}")
        else:
            unmatched.remove(hit)
    for f in unmatched:
        d = {"rule": f.rule, "patch": f.location.patch, "path": f.location.path, "line": f.location.line}
        if not any(_same(f, t) for t in todo):
            problems.append(f"Noisy: {_fmt(d)} {f.message}")
    return problems


def _check():
    from .rule.model import Severity

    return Severity.CHECK


def _same(f, w: dict[str, Any]) -> bool:
    loc = f.location
    return (f.rule == w.get("rule") and loc.patch == w.get("patch", loc.patch)
            and loc.path == w.get("path", loc.path) and loc.line == w.get("line", loc.line)
            and loc.section == w.get("section", loc.section)
            and f.severity.value == w.get("severity", f.severity.value))


def _fmt(d: dict[str, Any]) -> str:
    where = d.get("path") or d.get("section") or "?"
    return f"{d.get('rule')} patch {d.get('patch')} {where}:{d.get('line')}"


# -- building fixture series with real git ---------------------------------------------------------

def build_series(case_dir: Path) -> Path:
    """Write `case_dir/series.mbox` from `case_dir/src/series.yml` with `git format-patch`.

    series.yml: {author: "Name <mail>", date: "2025-12-09T20:51:00+0000", version: 5, total: N,
    first: K, cover: {subject, body} (optional), patches: [{subject, message, dir}]}. The base is
    `case_dir/tree/` when present, else `case_dir/src/base/`; each patch's `dir` (default `src/<n>`)
    holds the full post-image of the files that patch changes (a file named X.delete deletes X).
    Message-IDs and dates are deterministic; `first`/`total` renumber a slice of a longer series.
    The `src/<n>/` folders are not committed: `unpack_series` recreates them from series.mbox.
    """
    import yaml

    spec = yaml.safe_load((case_dir / "src" / "series.yml").read_text("utf-8"))
    base = case_tree(case_dir) or case_dir / "src" / "base"
    author = spec.get("author", "Ann Author <ann@example.org>")
    name, email = author.split("<")[0].strip(), author.split("<")[1].rstrip(">")
    date = spec.get("date", "2025-12-09T20:51:00+0000")
    with tempfile.TemporaryDirectory(prefix="pmureview-build-") as tmp:
        repo = _base_repo(base, Path(tmp) / "repo")
        env = {**os.environ, "GIT_AUTHOR_NAME": name, "GIT_AUTHOR_EMAIL": email, "GIT_COMMITTER_NAME": name,
               "GIT_COMMITTER_EMAIL": email, "GIT_AUTHOR_DATE": date, "GIT_COMMITTER_DATE": date}
        for n, p in enumerate(spec["patches"], 1):
            pdir = case_dir / p.get("dir", f"src/{n}")
            for f in sorted(x for x in pdir.rglob("*") if x.is_file()):
                rel = f.relative_to(pdir)
                target = repo / (rel.as_posix().removesuffix(".delete"))
                if f.name.endswith(".delete"):
                    target.unlink()
                    continue
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(f, target)
            msg = p["subject"] + "\n\n" + p.get("message", "").rstrip() + "\n"
            subprocess.run(["git", "-C", str(repo), "add", "-A"], check=True, env=env)
            subprocess.run(["git", "-C", str(repo), "commit", "-q", "--allow-empty", "-F", "-"],
                           input=msg.encode(), check=True, env=env)
        count = len(spec["patches"])
        prefix = f"PATCH v{spec['version']}" if spec.get("version", 1) > 1 else "PATCH"
        args = ["format-patch", "--stdout", "--no-signature", "--thread=shallow", f"-{count}",
                f"--subject-prefix={prefix}"]
        if spec.get("cover"):
            args.append("--cover-letter")
        if count > 1 or spec.get("cover") or spec.get("total"):
            args.append("--numbered")
        if base.is_dir():
            args.append(f"--base=HEAD~{count}")
        out = subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True, env=env).stdout
    mbox = _rewrite(out.decode("utf-8"), spec, case_dir.name, date)
    (case_dir / "series.mbox").write_text(mbox, "utf-8")
    return case_dir / "series.mbox"


def _rewrite(mbox: str, spec: dict[str, Any], slug: str, date: str) -> str:
    """Deterministic Message-IDs/dates/recipients, the cover's text, and N/M renumbering."""
    import email.utils
    import re
    from datetime import datetime

    from .series.mail import split_mbox

    when = datetime.fromisoformat(date)
    total = spec.get("total")
    first = spec.get("first", 1)
    msgs = [m.decode("utf-8") for m in split_mbox(mbox.encode("utf-8"))]
    ids: list[str] = []
    out = []
    stamp = when.strftime("%Y%m%d%H%M%S")
    for i, m in enumerate(msgs):
        n = i if spec.get("cover") else i + 1
        msgid = f"{stamp}.{abs(hash_str(slug)) % 10_000_000}-{n if n == 0 else n + first - 1}-ann@example.org"
        ids.append(msgid)
        head, _, body = m.partition("\n\n")
        head = re.sub(r"(?m)^Message-Id: .*$", f"Message-ID: <{msgid}>", head)
        head = re.sub(r"(?m)^(In-Reply-To|References): .*$", "", head)
        if i > 0:
            head += f"\nIn-Reply-To: <{ids[0]}>\nReferences: <{ids[0]}>"
        stamp_date = email.utils.format_datetime(when.replace(second=(when.second + i) % 60))
        head = re.sub(r"(?m)^Date: .*$", f"Date: {stamp_date}", head)
        head += "\nTo: " + spec.get("to", "kvmarm@lists.linux.dev")
        if spec.get("cc"):
            head += "\nCc: " + spec["cc"]
        head = "\n".join(ln for ln in head.split("\n") if ln.strip())
        if total:
            def renumber(mm: re.Match[str]) -> str:
                n = int(mm.group(2))
                return f"{mm.group(1)}{n + (first - 1 if n else 0)}/{total}]"

            head = re.sub(r"(\[PATCH[^\]]*?)(\d+)/(\d+)\]", renumber, head)
        if i == 0 and spec.get("cover"):
            cov = spec["cover"]
            head = re.sub(r"(?m)^(Subject: \[PATCH[^\]]*\]) \*\*\* SUBJECT HERE \*\*\*", rf"\1 {cov['subject']}", head)
            body = re.sub(r"\*\*\* BLURB HERE \*\*\*", cov.get("body", "").rstrip(), body)
        body = re.sub(r"(?m)^(>*From )", r">\1", body.rstrip("\n"))  # mboxrd quoting; keep a last " " context line
        out.append(f"From mboxrd@z Thu Jan  1 00:00:00 1970\n{head}\n\n{body}\n")
    return "\n".join(out)


def hash_str(text: str) -> int:
    import zlib

    return zlib.crc32(text.encode())


def unpack_series(case_dir: Path) -> list[Path]:
    """Recreate `src/<n>/` (the post-images `build_series` reads) from the base and series.mbox.

    The post-images are derived data: series.mbox plus the base hold them exactly, so they are not
    committed. Run this before editing a case, edit, then `build_series` again.
    """
    base = case_tree(case_dir) or case_dir / "src" / "base"
    written: list[Path] = []
    with tempfile.TemporaryDirectory(prefix="pmureview-unpack-") as tmp:
        repo = _base_repo(base, Path(tmp) / "repo")
        from .series.mail import parse_mail, split_mbox

        patches = []
        for raw in split_mbox((case_dir / "series.mbox").read_bytes()):
            m = parse_mail(raw)
            if "diff --git " in m.body:
                patches.append(m.body)
        for n, body in enumerate(patches, 1):
            diff = body[body.index("diff --git "):]
            r = subprocess.run(["git", "-C", str(repo), "apply", "--index", "-"], input=diff.encode(),
                               capture_output=True, check=False)
            if r.returncode:
                raise RuntimeError(f"{case_dir}: patch {n} does not apply: {r.stderr.decode().strip()}")
            names = subprocess.run(["git", "-C", str(repo), "diff", "--cached", "--name-status", "--no-renames"],
                                   capture_output=True, text=True, check=True).stdout.split("\n")
            out = case_dir / "src" / str(n)
            for line in filter(None, names):
                status, path = line.split("\t", 1)
                target = out / (path + ".delete" if status == "D" else path)
                target.parent.mkdir(parents=True, exist_ok=True)
                if status == "D":
                    target.write_text("")
                else:
                    shutil.copyfile(repo / path, target)
                written.append(target)
            subprocess.run(["git", "-C", str(repo), "-c", "user.name=F", "-c", "user.email=f@example.org",
                            "commit", "-q", "-m", f"patch {n}"], check=True)
    return written


if __name__ == "__main__":
    import sys

    # python -m pmureview.testing [unpack] CASE_DIR...: build series.mbox (default) or recreate src/<n>/
    unpack = sys.argv[1:2] == ["unpack"]
    for d in sys.argv[2 if unpack else 1:]:
        if unpack:
            print(f"{d}: {len(unpack_series(Path(d)))} post-image files")
        else:
            print(build_series(Path(d)))
