"""Issue 13 items 5 and 6: a kernel tree found from the current folder, and a plain folder as the tree.

Scratch repositories are built in tmp_path with real git from a shared fixture tree plus the
top-level names checkpatch.pl's `top_of_kernel_tree()` looks for. Every assertion about findings
compares two runs (found tree vs --tree, applied folder vs base folder), so rule work elsewhere does
not move these tests.
"""

from __future__ import annotations

import io
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import pmureview.api
from pmureview.entry import main
from pmureview.hooks import is_kernel_tree as hooks_is_kernel_tree
from pmureview.hooks.b4check import main as b4check_main
from pmureview.series.kerneltree import TOP_LEVEL, find_kernel_tree, is_kernel_top, is_kernel_tree
from pmureview.series.mail import split_mbox

ROOT = Path(__file__).resolve().parent.parent
CASE = ROOT / "fixtures/series/kvmarm/fgt-trap-polarity/bad-negative-bits-or-ed"
TREE = ROOT / "fixtures/trees/fgt-cross-register-field-8f8ef7"
SERIES = CASE / "series.mbox"
RULE = "kvmarm/fgt-trap-polarity"


@pytest.fixture(autouse=True)
def _git_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    home = tmp_path / "home"
    home.mkdir()
    for k, v in {"HOME": str(home), "XDG_CACHE_HOME": str(home / ".cache"), "GIT_CONFIG_NOSYSTEM": "1",
                 "GIT_AUTHOR_NAME": "A", "GIT_AUTHOR_EMAIL": "a@example.org",
                 "GIT_COMMITTER_NAME": "A", "GIT_COMMITTER_EMAIL": "a@example.org"}.items():
        monkeypatch.setenv(k, v)
    for k in ("GIT_DIR", "GIT_WORK_TREE", "GIT_CONFIG_GLOBAL"):
        monkeypatch.delenv(k, raising=False)


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True, check=True).stdout.strip()


def skeleton(path: Path) -> Path:
    """Add what checkpatch's top-level test wants to `path` (files upper-case, folders the rest)."""
    path.mkdir(parents=True, exist_ok=True)
    for name in TOP_LEVEL:
        p = path / name
        if p.exists():
            continue
        if name.isupper() or name in ("Kbuild", "Makefile"):
            p.write_text(f"{name}\n")
        else:
            p.mkdir(parents=True)
            (p / ".keep").write_text("")
    return path


def kernel_repo(path: Path) -> Path:
    shutil.copytree(TREE, path)
    skeleton(path)
    git(path, "init", "-q", "-b", "main")
    git(path, "add", "-A")
    git(path, "commit", "-qm", "base")
    return path


def applied_folder(path: Path, tree: Path = TREE, series: Path = SERIES) -> Path:
    """The fixture tree with the whole series applied (`git apply` outside a repository)."""
    shutil.copytree(tree, path)
    subprocess.run(["git", "apply", str(series)], cwd=path, check=True, capture_output=True)
    return path


def run(capsys, *args: str) -> tuple[int, dict | str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, (json.loads(out) if "json" in args else out), err


def keyed(doc: dict) -> list[tuple]:
    return sorted((f["rule"], f["patch"], f["path"], f["line"], f["message"]) for f in doc["findings"])


# -- the one helper -------------------------------------------------------------------------------

def test_checkpatch_top_level_test(tmp_path: Path) -> None:
    top = skeleton(tmp_path / "k")
    assert is_kernel_top(top) and not is_kernel_tree(top)  # no .git yet
    git(top, "init", "-q")
    assert is_kernel_tree(top)
    (top / "MAINTAINERS").unlink()
    assert not is_kernel_top(top) and not is_kernel_tree(top)
    assert hooks_is_kernel_tree is is_kernel_tree  # the hooks ask the same helper


def test_find_from_a_subfolder_without_a_subprocess(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    top = kernel_repo(tmp_path / "k")
    plain = tmp_path / "plain"
    plain.mkdir()
    git(plain, "init", "-q")

    def no_subprocess(*a, **kw):
        raise AssertionError("a file check was enough")

    monkeypatch.setattr(subprocess, "run", no_subprocess)
    monkeypatch.setattr(subprocess, "Popen", no_subprocess)
    assert find_kernel_tree(top / "arch/arm64/kvm") == top
    assert find_kernel_tree(top) == top
    assert find_kernel_tree(plain) is None
    assert find_kernel_tree(tmp_path) is None  # no .git above (tmp_path is not a repository)


def test_git_environment_asks_git(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    top = kernel_repo(tmp_path / "k")
    monkeypatch.setenv("GIT_DIR", str(top / ".git"))
    monkeypatch.setenv("GIT_WORK_TREE", str(top))
    assert find_kernel_tree(tmp_path) == top


def test_the_test_suite_does_not_run_in_a_kernel_tree() -> None:
    # every other test runs `check` from here: a kernel tree here would turn them all to full mode
    assert find_kernel_tree(Path.cwd()) is None and find_kernel_tree(ROOT) is None


# -- item 5: check inside a kernel tree -----------------------------------------------------------

def test_check_in_a_kernel_tree_uses_it(tmp_path: Path, capsys, monkeypatch: pytest.MonkeyPatch) -> None:
    top = kernel_repo(tmp_path / "k")
    monkeypatch.chdir(top / "arch")
    code, doc, err = run(capsys, "check", str(SERIES), "--format", "json", "--select", RULE)
    assert doc["series"]["mode"] == "full"
    assert doc["series"]["base"] == git(top, "rev-parse", "HEAD")  # found by the pre-image blob ids
    lines = err.splitlines()
    assert len(lines) == 1 and str(top) in lines[0] and "current folder" in lines[0] and "blob ids" in lines[0]
    assert "--no-tree" in lines[0]
    monkeypatch.chdir(tmp_path)
    code2, explicit, _ = run(capsys, "check", str(SERIES), "--format", "json", "--select", RULE, "--tree", str(top))
    assert explicit["series"]["mode"] == "full" and keyed(explicit) == keyed(doc) and code2 == code


def test_no_tree_turns_it_off(tmp_path: Path, capsys, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(kernel_repo(tmp_path / "k"))
    _, doc, err = run(capsys, "check", str(SERIES), "--format", "json", "--select", RULE, "--no-tree")
    assert doc["series"]["mode"] == "hunk-only" and doc["series"]["base"] is None and err == ""


def test_found_tree_base_commit_wins_and_head_is_never_used(tmp_path: Path, capsys,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    top = kernel_repo(tmp_path / "k")
    first = git(top, "rev-parse", "HEAD")
    config = top / "arch/arm64/kvm/config.c"
    config.write_text(config.read_text() + "/* later work */\n")
    for p in (top / "arch/arm64").rglob("*.[ch]"):
        p.write_text(p.read_text() + "\n")  # every pre-image blob differs at HEAD
    git(top, "commit", "-qam", "later")
    monkeypatch.chdir(top)
    # base-commit: names the first commit -> full mode there
    mbox = re.sub(r"(?m)^base-commit: \w+", f"base-commit: {first}", SERIES.read_text())
    (tmp_path / "with-base.mbox").write_text(mbox)
    _, doc, err = run(capsys, "check", str(tmp_path / "with-base.mbox"), "--format", "json", "--select", RULE)
    assert doc["series"]["base"] == first and doc["series"]["mode"] == "full" and "base-commit" in err
    # --base names it too
    _, doc, err = run(capsys, "check", str(SERIES), "--format", "json", "--select", RULE, "--base", first)
    assert doc["series"]["base"] == first and "from --base" in err
    # nothing names a base: the blob ids exist only in the first commit, which is no longer HEAD...
    git(top, "replace", "--graft", "HEAD")  # ...and not reachable from HEAD either
    _, doc, err = run(capsys, "check", str(SERIES), "--format", "json", "--select", RULE)
    assert doc["series"]["mode"] == "hunk-only" and doc["series"]["base"] is None
    lines = err.splitlines()
    assert len(lines) == 1 and "never HEAD" in lines[0] and "hunks only" in lines[0]


def test_config_tree(tmp_path: Path, capsys, monkeypatch: pytest.MonkeyPatch) -> None:
    top = kernel_repo(tmp_path / "k")
    work = tmp_path / "work"
    work.mkdir()
    git(work, "init", "-q")
    (work / ".pmureview.toml").write_text('tree = "../k"\n')
    monkeypatch.chdir(work)
    _, doc, err = run(capsys, "check", str(SERIES), "--format", "json", "--select", RULE)
    assert doc["series"]["mode"] == "full" and doc["series"]["base"] == git(top, "rev-parse", "HEAD")
    assert "from the config" in err and len(err.splitlines()) == 1
    _, doc, _ = run(capsys, "check", str(SERIES), "--format", "json", "--select", RULE, "--no-tree")
    assert doc["series"]["mode"] == "hunk-only"


def test_b4_check_stays_hunk_only_unless_given_tree(tmp_path: Path, capfd, monkeypatch: pytest.MonkeyPatch) -> None:
    top = kernel_repo(tmp_path / "k")
    monkeypatch.chdir(top)
    patch = next(m for m in split_mbox(SERIES.read_bytes()) if b"diff --git" in m)
    opened: list[tuple[Path | None, bool]] = []
    real = pmureview.api._open_tree

    def spy(options, series, *, hook):
        opened.append((options.tree, hook))
        return real(options, series, hook=hook)

    monkeypatch.setattr(pmureview.api, "_open_tree", spy)
    for argv in ([], ["--tree", str(top)]):
        monkeypatch.setattr(sys, "stdin", type("In", (), {"buffer": io.BytesIO(patch)}))
        assert b4check_main(argv) == 0
    assert opened == [(top, True)]  # only the run given --tree, with the hooks' base rule
    assert capfd.readouterr().err == ""


# -- item 6: a plain folder -----------------------------------------------------------------------

def test_plain_folder_is_reported(tmp_path: Path, capsys, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = shutil.copytree(TREE, tmp_path / "f")
    monkeypatch.chdir(tmp_path)
    _, doc, err = run(capsys, "check", str(SERIES), "--format", "json", "--select", RULE, "--tree", "f")
    assert doc["series"]["mode"] == "full" and doc["series"]["base"] == f"folder:{folder.resolve()}"
    assert err.splitlines() == ["pmureview: --tree f: a plain folder, used as the series' base"]
    _, sarif, _ = run(capsys, "check", str(SERIES), "--format", "sarif", "--select", RULE, "--tree", "f")
    assert json.loads(sarif)["runs"][0]["properties"]["base"] == f"folder:{folder.resolve()}"
    _, text, _ = run(capsys, "check", str(SERIES), "--select", RULE, "--tree", "f")
    assert f"base folder:{folder.resolve()}" in text


@pytest.mark.parametrize(("case", "rule"), [
    (CASE, RULE),
    # a file the series adds and then changes again, and one two patches change in turn
    (ROOT / "fixtures/series/series/helper-without-user/bad-first-user-later", "series/helper-without-user"),
])
def test_folder_holding_the_applied_series(tmp_path: Path, capsys, monkeypatch: pytest.MonkeyPatch,
                                           case: Path, rule: str) -> None:
    import yaml

    tree = (case / yaml.safe_load((case / "expected.yml").read_text())["tree"]).resolve()
    series = case / "series.mbox"
    shutil.copytree(tree, tmp_path / "f")
    applied_folder(tmp_path / "fa", tree, series)
    monkeypatch.chdir(tmp_path)
    _, base, _ = run(capsys, "check", str(series), "--format", "json", "--select", f"{rule},pmureview",
                     "--tree", "f")
    _, applied, err = run(capsys, "check", str(series), "--format", "json", "--select", f"{rule},pmureview",
                          "--tree", "fa")
    assert applied["series"]["mode"] == "full" and applied["series"]["base"].startswith("folder:")
    assert not any(f["rule"] == "pmureview/apply-failed" for f in applied["findings"])
    assert keyed(applied) == keyed(base) and any(f["rule"] == rule for f in base["findings"])
    lines = err.splitlines()
    assert len(lines) == 1 and "already holds the series applied" in lines[0] and "reverse-applying" in lines[0]


def test_folder_half_applied_says_so(tmp_path: Path, capsys, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = applied_folder(tmp_path / "fa")
    # one touched file back at its base: the others still hold the series applied
    shutil.copyfile(TREE / "arch/arm64/kvm/emulate-nested.c", folder / "arch/arm64/kvm/emulate-nested.c")
    monkeypatch.chdir(tmp_path)
    _, doc, err = run(capsys, "check", str(SERIES), "--format", "json", "--select", f"{RULE},pmureview",
                      "--tree", "fa")
    assert not any(f["rule"] == "pmureview/apply-failed" for f in doc["findings"])
    assert "the others are its base" in err and len(err.splitlines()) == 1


# -- folder_base on small synthetic series ------------------------------------------------------------

LINES = "".join(f"line {i}\n" for i in range(1, 21))


def _series(*diffs: str):
    from mailfactory import patch_mail

    from pmureview.series.parse import parse_series

    mails = [patch_mail(subject=f"[PATCH {n}/{len(diffs)}] p{n}", msgid=f"{n}@x", diff=d).encode()
             for n, d in enumerate(diffs, 1)]
    return parse_series(mails)[0]


def _mod(path: str, start: int, ctx: tuple[str, str, str], added: str) -> str:
    return (f"diff --git a/{path} b/{path}\n--- a/{path}\n+++ b/{path}\n@@ -{start},3 +{start},4 @@\n"
            f" {ctx[0]}\n {ctx[1]}\n+{added}\n {ctx[2]}\n")


def _add(path: str, text: str) -> str:
    body = "".join(f"+{ln}\n" for ln in text.splitlines())
    n = len(text.splitlines())
    return f"diff --git a/{path} b/{path}\nnew file mode 100644\n--- /dev/null\n+++ b/{path}\n@@ -0,0 +1,{n} @@\n{body}"


def _reader(files: dict[str, str]):
    return files.get


def test_folder_base_decides_per_file_and_rebuilds_the_base() -> None:
    from pmureview.views.image import folder_base

    # two patches on the same file (the second's context holds the first's line), one new file
    s = _series(_mod("a.c", 2, ("line 2", "line 3", "line 4"), "one"),
                _mod("a.c", 3, ("line 3", "one", "line 4"), "two") + _add("new.h", "int x;\n"))
    applied = LINES.replace("line 3\n", "line 3\none\ntwo\n")
    state = folder_base(s, _reader({"a.c": LINES}))
    assert (state.base, state.applied) == (1, 0)
    state = folder_base(s, _reader({"a.c": applied, "new.h": "int x;\n"}))
    assert (state.base, state.applied) == (0, 1)
    assert state.reader("a.c") == LINES and state.reader("new.h") is None  # the base, without the new file
    state = folder_base(s, _reader({"a.c": "something else\n"}))
    assert (state.base, state.applied) == (0, 0)  # neither: the views report apply-failed as before


def test_folder_base_series_that_only_adds_files() -> None:
    from pmureview.views.image import folder_base

    s = _series(_add("new.h", "int x;\n"))
    assert folder_base(s, _reader({})).applied == 0
    state = folder_base(s, _reader({"new.h": "int x;\n"}))
    assert state.applied == 1 and state.reader("new.h") is None


def test_rebuilt_base_queries_do_not_count_the_series_own_uses() -> None:
    from pmureview.views.image import RebuiltBase

    class Folder:
        def __call__(self, path: str) -> str | None:
            return {"a.c": "use_me();\n", "b.c": "use_me();\n", "new.c": "use_me();\n"}.get(path)

        def grep_files(self, word, globs=("*.c",)):
            return ["a.c", "b.c", "new.c"]

        def list_files(self, prefix):
            return ["a.c", "b.c", "new.c"]

    base = RebuiltBase(Folder(), {"a.c": "nothing here\n"}, frozenset({"new.c"}))
    assert base.grep_files("use_me", ("*.c",)) == ["b.c"]
    assert base.list_files("") == ["a.c", "b.c"]


def test_sendemail_hook_in_a_kernel_tree_without_the_base(tmp_path: Path, capsys,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    from pmureview.hooks.sendemail import validate_main

    top = skeleton(tmp_path / "k")  # a kernel tree that has none of the series' pre-images
    git(top, "init", "-q", "-b", "main")
    git(top, "add", "-A")
    git(top, "commit", "-qm", "base")
    patch = next(m for m in split_mbox(SERIES.read_bytes()) if b"diff --git" in m)
    (tmp_path / "p.patch").write_bytes(patch)
    monkeypatch.chdir(top)
    code = validate_main([str(tmp_path / "p.patch")])
    err = capsys.readouterr().err
    assert code in (0, 1)  # reviewed from the hunks, not "nothing could be reviewed" (2)
    assert err.splitlines()[0].startswith(f"pmureview: kernel tree {top}: no base") and "never HEAD" in err
