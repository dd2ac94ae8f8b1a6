"""The sendemail-validate hook and `b4-check`, down to the real git send-email and `b4 prep --check`.

The seeded defect is caught by `series/debug-scaffolding`, a *warning*; the hook blocks at `error` by
default (a warning should not stop a send unless the author asks), so the blocking tests install the
hook with `fail_on="warning"` and one test shows the default lets the same patch through.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from pmureview.errors import UsageError
from pmureview.hooks import is_cover_or_not_patch
from pmureview.hooks.b4check import main as b4check_main
from pmureview.hooks.sendemail import MARKER, install, uninstall, validate_main

BAD = "int f(int a)\n{\n\tif (0)\n\t\treturn 1;\n\treturn a && false;\n}\n"
GOOD = "int f(int a)\n{\n\treturn a;\n}\n"
FROM = "Ann Author <ann@example.org>"


def git(repo: Path, *args: str, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True, check=True, **kw)


@pytest.fixture
def repo(tmp_path: Path, env: dict[str, str]) -> Path:
    r = tmp_path / "repo"
    r.mkdir()
    git(r, "init", "-q", "-b", "main")
    git(r, "config", "user.name", "Ann Author")
    git(r, "config", "user.email", "ann@example.org")
    (r / "drivers/foo").mkdir(parents=True)
    (r / "drivers/foo/foo.c").write_text(GOOD)
    git(r, "add", ".")
    git(r, "commit", "-q", "-m", "foo: initial")
    return r


def commit(repo: Path, text: str, *, amend: bool = False) -> None:
    (repo / "drivers/foo/foo.c").write_text(text)
    git(repo, "commit", "-q", "-a", "-m", "foo: speed up f()", *(["--amend"] if amend else []))


def format_patch(repo: Path, out: Path) -> Path:
    return Path(git(repo, "format-patch", "-1", "-o", str(out)).stdout.strip())


# -- install / uninstall -------------------------------------------------------------------------


def test_install_writes_an_executable_marked_hook(repo: Path) -> None:
    path = install(repo, force=False)
    assert path == (repo / ".git/hooks/sendemail-validate").resolve()
    text = path.read_text()
    assert text.startswith("#!/bin/sh\n") and MARKER in text
    assert sys.executable in text and "-m pmureview hook sendemail-validate" in text and '"$@"' in text
    assert os.access(path, os.X_OK)
    assert install(repo, force=False, fail_on="warning") == path  # our own hook is replaced freely
    assert "--fail-on warning" in path.read_text()


def test_refuses_a_foreign_hook_unless_forced(repo: Path) -> None:
    hook = repo / ".git/hooks/sendemail-validate"
    hook.parent.mkdir(exist_ok=True)
    hook.write_text("#!/bin/sh\nexit 0\n")
    with pytest.raises(UsageError) as exc:
        install(repo, force=False)
    assert "--force" in str(exc.value) and "\n" not in str(exc.value)
    assert hook.read_text() == "#!/bin/sh\nexit 0\n"
    with pytest.raises(UsageError):
        uninstall(repo)  # not ours: left alone
    assert hook.exists()
    install(repo, force=True)
    assert MARKER in hook.read_text()


def test_honours_core_hooks_path(repo: Path) -> None:
    git(repo, "config", "core.hooksPath", "myhooks")
    path = install(repo, force=False)
    assert path == (repo / "myhooks/sendemail-validate").resolve()
    assert not (repo / ".git/hooks/sendemail-validate").exists()
    assert uninstall(repo) == path and not path.exists()
    assert uninstall(repo) is None


def test_install_outside_a_repository(tmp_path: Path, env: dict[str, str]) -> None:
    with pytest.raises(UsageError):
        install(tmp_path, force=False)
    with pytest.raises(UsageError):
        install(tmp_path, force=False, fail_on="fatal")


# -- validate_main in-process --------------------------------------------------------------------


def test_validate_skip_cover_and_bad_input(
    repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    monkeypatch.chdir(repo)
    commit(repo, BAD)
    patch = format_patch(repo, tmp_path / "p")
    monkeypatch.setenv("PMUREVIEW_SKIP", "1")
    assert validate_main(["--fail-on", "check", str(patch)]) == 0
    monkeypatch.delenv("PMUREVIEW_SKIP")
    cover = tmp_path / "0000-cover-letter.patch"
    cover.write_text("From: a@b\nSubject: [PATCH 0/3] foo: things\n\n*** BLURB HERE ***\n")
    assert is_cover_or_not_patch(cover.read_bytes())
    assert validate_main([str(cover)]) == 0
    capsys.readouterr()
    assert validate_main([str(tmp_path / "missing.patch")]) == 2
    assert validate_main(["--bogus", str(patch)]) == 2
    assert validate_main(["--fail-on", "fatal", str(patch)]) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 3 and all(ln.startswith("pmureview: error: ") for ln in err)


def test_validate_prints_lines_and_exits_by_level(
    repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    monkeypatch.chdir(repo)
    commit(repo, BAD)
    patch = format_patch(repo, tmp_path / "p")
    headers = tmp_path / "headers"  # newer git passes the SMTP headers as $2
    headers.write_text("From: a@b\n")
    assert validate_main([str(patch), str(headers)]) == 0  # warnings only: the default (error) lets it go
    assert validate_main(["--fail-on", "warning", str(patch)]) == 1
    err = capsys.readouterr().err
    assert "drivers/foo/foo.c:3: WARNING:SERIES_DEBUG_SCAFFOLDING: " in err


# -- real git send-email -------------------------------------------------------------------------


def _send_email_available() -> bool:
    r = subprocess.run(["git", "send-email", "--help"], capture_output=True)
    return (
        r.returncode == 0
        and subprocess.run(["perl", "-MMail::Address", "-e1"], capture_output=True).returncode == 0
    )


needs_send_email = pytest.mark.skipif(
    not _send_email_available(), reason="git send-email (git-email + libmailtools-perl) not installed"
)


def send_email(repo: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["git", "send-email", "--dry-run", "--to=x@example.org", f"--from={FROM}", "--confirm=never", "-1"],
        cwd=repo,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )


@needs_send_email
def test_git_send_email_rejected_then_passes(repo: Path, env: dict[str, str]) -> None:
    install(repo, force=False, fail_on="warning")
    commit(repo, BAD)
    r = send_email(repo, env)
    assert r.returncode != 0, r.stdout + r.stderr
    assert "rejected by sendemail-validate hook" in r.stderr
    assert "WARNING:SERIES_DEBUG_SCAFFOLDING:" in r.stderr
    assert "Dry-OK" not in r.stdout

    env_skip = {**env, "PMUREVIEW_SKIP": "1"}
    assert send_email(repo, env_skip).returncode == 0

    commit(repo, GOOD.replace("return a;", "return a + 1;"), amend=True)
    r = send_email(repo, env)
    assert r.returncode == 0, r.stderr
    assert "Dry-OK" in r.stdout and "SERIES_DEBUG_SCAFFOLDING" not in r.stderr


@needs_send_email
def test_git_send_email_default_level_lets_warnings_through(repo: Path, env: dict[str, str]) -> None:
    install(repo, force=False)
    commit(repo, BAD)
    r = send_email(repo, env)
    assert r.returncode == 0, r.stderr
    assert "WARNING:SERIES_DEBUG_SCAFFOLDING:" in r.stderr  # shown, not blocking


# -- b4-check ------------------------------------------------------------------------------------


def run_b4check(args: list[str], data: bytes, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "pmureview", "b4-check", *args],
        input=data,
        cwd=cwd,
        env=env,
        capture_output=True,
        timeout=120,
    )


def test_b4check_protocol(repo: Path, tmp_path: Path, env: dict[str, str]) -> None:
    commit(repo, BAD)
    # as b4 feeds it: the mail itself, without format-patch's mbox `From <sha>` line
    data = format_patch(repo, tmp_path / "p").read_bytes().split(b"\n", 1)[1]
    r = run_b4check([], data, env, repo)
    assert r.returncode == 0 and r.stderr == b""
    lines = r.stdout.decode().splitlines()
    assert lines and all(ln.startswith("-:") and ": WARNING:SERIES_DEBUG_SCAFFOLDING: " in ln for ln in lines)
    n = int(lines[0].split(":")[1])
    assert "if (0)" in data.decode().splitlines()[n - 1]  # -:N is the line in the mail

    r = run_b4check(["--format", "b4"], data, env, repo)
    out = json.loads(r.stdout)
    assert r.stderr == b"" and out[0]["tool"] == "pmureview" and out[0]["status"] == "warn"

    commit(repo, GOOD.replace("return a;", "return a + 1;"), amend=True)
    clean = format_patch(repo, tmp_path / "q").read_bytes()
    r = run_b4check([], clean, env, repo)
    assert (r.returncode, r.stdout, r.stderr) == (0, b"", b"")  # nothing at all when clean

    # the project's config decides what is checked on the hook paths too
    (repo / ".pmureview.toml").write_text('ignore = ["series/debug-scaffolding"]\n')
    assert run_b4check([], data, env, repo).stdout == b""
    (repo / ".pmureview.toml").unlink()

    r = run_b4check([], b"not a mail at all", env, repo)
    assert (r.returncode, r.stdout, r.stderr) == (0, b"", b"")
    r = run_b4check(["--nope"], data, env, repo)
    assert r.returncode == 2 and r.stderr == b"" and r.stdout.startswith(b"-:1: ERROR:PMUREVIEW_USAGE: ")


def test_b4check_crash_is_one_stdout_line(
    monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture, repo: Path, tmp_path: Path
) -> None:
    import pmureview.api

    def boom(*a, **kw):
        print("noise", file=sys.stderr)
        raise RuntimeError("kaput")

    monkeypatch.setattr(pmureview.api, "review", boom)
    commit(repo, BAD)
    data = format_patch(repo, tmp_path / "p").read_bytes()

    class In:
        buffer = __import__("io").BytesIO(data)

    monkeypatch.setattr(sys, "stdin", In)
    assert b4check_main([]) == 0
    out, err = capfd.readouterr()
    assert err == ""
    assert out.startswith("-:1: ERROR:PMUREVIEW_INTERNAL_ERROR: ") and out.count("\n") == 1


def test_b4_prep_check_shows_our_lines(repo: Path, env: dict[str, str]) -> None:
    b4 = Path(sys.executable).with_name("b4")
    if not b4.exists():
        b4 = Path(shutil.which("b4") or "b4")
    if not shutil.which(str(b4)):
        pytest.skip("b4 not installed")
    r = subprocess.run(
        [str(b4), "prep", "-n", "test"],
        cwd=repo,
        env=env,
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=120,
    )
    assert r.returncode == 0, r.stderr
    commit(repo, BAD)
    (repo / ".b4-config").write_text(
        f"[b4]\n  prep-perpatch-check-cmd = {sys.executable} -m pmureview b4-check\n"
    )
    r = subprocess.run(
        [str(b4), "prep", "--check"],
        cwd=repo,
        env=env,
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=300,
    )
    out = r.stdout + r.stderr
    assert "-m pmureview b4-check" in out
    assert "WARNING:SERIES_DEBUG_SCAFFOLDING: 'if (0)'" in out, out
    assert "Warning: 2" in out and "Error: 0" in out, out
