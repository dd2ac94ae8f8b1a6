"""What pmureview must never do with a hostile series, each guarded by a test that fails on regression:
send mail, write outside --reply-dir, hand mail text to a shell, or let mail text act as rich markup.
"""

from __future__ import annotations

import os
import re
import smtplib
import subprocess
import sys
from pathlib import Path

import pytest
from mailfactory import mbox, patch_mail, simple_diff, write

from pmureview.entry import main

ROOT = Path(__file__).resolve().parent.parent
DEMO = ROOT / "fixtures" / "demo" / "series.mbox"
SENDER = "Rev Iewer <rev@example.org>"
SCAF = simple_diff(added=("\tif (0)", "\t\tbar();"))


def run(capsys, *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


class Recorder:
    """Every process pmureview starts, and every shell it would reach."""

    def __init__(self) -> None:
        self.calls: list[tuple[list[str], bool]] = []

    def note(self, args, shell: bool) -> None:
        argv = [args] if isinstance(args, str | bytes | os.PathLike) else list(args)
        self.calls.append(([os.fsdecode(a) for a in argv], shell))


_SENDERS = re.compile(r"(^|/)(sendmail|msmtp|ssmtp|mutt|neomutt|mailx?|s-nail|exim4?|postfix)$|send-email|imap-send")


@pytest.fixture
def recorder(monkeypatch: pytest.MonkeyPatch) -> Recorder:
    rec = Recorder()
    real_popen = subprocess.Popen

    class Popen(real_popen):  # type: ignore[misc,valid-type]
        def __init__(self, args, *a, **kw):
            rec.note(args, bool(kw.get("shell")))
            argv = rec.calls[-1][0]
            if kw.get("shell") or any(_SENDERS.search(x) for x in argv[:3]):
                raise AssertionError(f"pmureview ran {argv!r} (shell={kw.get('shell')!r})")
            super().__init__(args, *a, **kw)

    def no_shell(*args, **kw):
        rec.note(args[:1], True)
        raise AssertionError(f"pmureview reached a shell: {args!r}")

    def no_smtp(*args, **kw):
        rec.note(["smtplib"], False)
        raise AssertionError("pmureview opened an SMTP connection")

    monkeypatch.setattr(subprocess, "Popen", Popen)  # subprocess.run/call/check_output go through it
    for name in ("system", "popen", "execv", "execvp", "execve", "spawnv", "spawnvp", "posix_spawn", "posix_spawnp"):
        if hasattr(os, name):
            monkeypatch.setattr(os, name, no_shell)
    for name in ("SMTP", "SMTP_SSL", "LMTP"):
        monkeypatch.setattr(smtplib, name, no_smtp)
    return rec


def assert_nothing_forbidden(rec: Recorder, *markers: str) -> None:
    for argv, shell in rec.calls:
        assert not shell, argv
        assert not any(_SENDERS.search(a) for a in argv[:3]), argv
        for m in markers:  # mail text may be an argv element (a msgid for b4), never part of a command
            assert all(m not in a for a in argv[:1]), argv


# -- nothing is ever sent -----------------------------------------------------------------------

def test_reply_dir_sends_nothing(tmp_path: Path, capsys, recorder: Recorder) -> None:
    out = tmp_path / "replies"
    code, _, err = run(capsys, "check", str(DEMO), "-q", "--reply-dir", str(out), "--from", SENDER)
    assert code == 1, err
    assert "internal error" not in err and "Traceback" not in err
    assert sorted(p.name for p in out.iterdir())  # replies were written, to files only
    assert_nothing_forbidden(recorder)
    assert not any(argv[0] == "smtplib" for argv, _ in recorder.calls)


def test_the_recorder_catches_a_sender(recorder: Recorder) -> None:
    # the guard itself works: a regression that shells out or sends would be stopped and seen
    with pytest.raises(AssertionError):
        subprocess.run(["/usr/sbin/sendmail", "-t"], check=False)
    with pytest.raises(AssertionError):
        subprocess.run("true", shell=True, check=False)
    with pytest.raises(AssertionError):
        smtplib.SMTP("127.0.0.1")
    with pytest.raises(AssertionError):
        os.system("true")


# -- nothing is written outside --reply-dir ------------------------------------------------------

def _all_files(root: Path) -> dict[Path, bytes]:
    return {p: p.read_bytes() for p in root.rglob("*") if p.is_file() and not p.is_symlink()}


def test_nothing_written_outside_reply_dir(tmp_path: Path, capsys, monkeypatch, recorder: Recorder) -> None:
    work = tmp_path / "work"
    replies = work / "deep" / "replies"
    (work / "deep").mkdir(parents=True)
    monkeypatch.chdir(work)
    outside = tmp_path / "outside.txt"
    outside.write_text("keep me\n")
    # a planted symlink with the name of the first reply, pointing outside, and one dangling
    replies.mkdir()
    (replies / "0001-reply.eml").symlink_to(outside)
    (replies / "0002-reply.eml").symlink_to(tmp_path / "dangling-target.eml")
    hostile = [
        ("../../../escaped-1@x", "[PATCH 1/3] ../../../escaped-subject"),
        (f"{tmp_path}/absolute-2@x", f"[PATCH 2/3] {tmp_path}/absolute-subject"),
        ("..@..", "[PATCH 3/3] /etc/passwd ../.. ~/x"),
    ]
    mails = [patch_mail(subject=s, msgid=m, diff=SCAF) for m, s in hostile]
    src = write(tmp_path, "s.mbox", mbox(*mails))
    before = _all_files(tmp_path)

    code, _, err = run(capsys, "check", str(src), "-q", "--reply-dir", str(Path("deep/replies")),
                       "--from", SENDER, "--deterministic")
    assert code == 1, err

    after = _all_files(tmp_path)
    new = sorted(p.relative_to(replies) for p in after.keys() - before.keys() if p.is_relative_to(replies))
    assert {p for p in after.keys() - before.keys()} == {replies / p for p in new}  # nothing new elsewhere
    assert all(after[p] == before[p] for p in before)  # nothing outside changed (the symlink's target)
    assert outside.read_text() == "keep me\n" and not (tmp_path / "dangling-target.eml").exists()
    assert [str(p) for p in new] == ["0001-reply.1.eml", "0002-reply.1.eml", "0003-reply.eml"]
    assert not list(tmp_path.rglob("*escaped*")) and not list(tmp_path.rglob("*absolute*"))
    assert_nothing_forbidden(recorder)


# -- mail text never reaches a shell -------------------------------------------------------------

def _shell_series(tmp_path: Path) -> tuple[Path, list[Path]]:
    canaries = [tmp_path / f"pwned{i}" for i in range(6)]
    c = [str(p) for p in canaries]
    body = (f"Run $(touch {c[2]}) and `touch {c[3]}`; touch {c[4]} | sh && true\n\n"
            "Signed-off-by: Ann Author <ann@example.org>\n")
    code = (f"\tsystem(\"$(touch {c[5]})\");", f"\tif (0) /* `touch {c[5]}` ; rm -rf ~ | sh */",
            "\t\tbar(\"'\\\"$IFS${PATH}\");")
    mail = patch_mail(subject=f"[PATCH] $(touch {c[0]}) `touch {c[1]}`; touch {c[4]}",
                      msgid=f"$(touch {c[0]})`touch {c[1]}`;x@y", body=body, diff=simple_diff(added=code))
    return write(tmp_path, "shell.patch", mail), canaries


@pytest.mark.parametrize("fmt", ["terminal", "json", "checkpatch", "sarif", "b4"])
def test_mail_text_never_reaches_a_shell(tmp_path: Path, capsys, monkeypatch, recorder: Recorder, fmt: str) -> None:
    src, canaries = _shell_series(tmp_path)
    monkeypatch.chdir(tmp_path)
    code, out, err = run(capsys, "check", str(src), "--format", fmt, "--reply-dir", str(tmp_path / "r"),
                         "--from", SENDER)
    assert code == 1, err
    if fmt in ("terminal", "json"):
        assert "touch" in out  # the text is shown as text ...
    assert not [p for p in canaries if p.exists()]  # ... and never run
    assert not list(tmp_path.rglob("pwned*"))
    assert_nothing_forbidden(recorder, "touch")


def test_mail_text_never_reaches_a_shell_in_full_mode_and_hooks(tmp_path: Path, capsys, monkeypatch) -> None:
    # full mode runs git (cat-file, grep) with words from the patch; b4-check reads the mail on stdin
    src, canaries = _shell_series(tmp_path)
    tree = tmp_path / "tree"
    (tree / "arch/arm64/kvm").mkdir(parents=True)
    (tree / "arch/arm64/kvm/foo.c").write_text("".join(f"/* {n} */\n" for n in range(1, 10)) + "{\n\tint x;\n}\n")
    env = ["-c", "user.name=A", "-c", "user.email=a@example.org"]
    subprocess.run(["git", "init", "-q", str(tree)], check=True)
    subprocess.run(["git", "-C", str(tree), *env, "add", "-A"], check=True)
    subprocess.run(["git", "-C", str(tree), *env, "commit", "-qm", "base"], check=True)
    monkeypatch.chdir(tmp_path)
    code, _, err = run(capsys, "check", str(src), "--tree", str(tree), "--format", "json")
    assert code == 1, err
    r = subprocess.run([sys.executable, "-m", "pmureview", "b4-check"], input=src.read_bytes(), cwd=tmp_path,
                       capture_output=True, timeout=120, check=False)
    assert r.stderr == b"" and b"DEBUG_SCAFFOLDING" in r.stdout.upper().replace(b"-", b"_")
    assert not [p for p in canaries if p.exists()]
    assert not list(tmp_path.rglob("pwned*"))


# -- mail text never reaches rich markup ---------------------------------------------------------

MARKUP = "[bold]B[/bold] [/] [link=http://evil.example/]L[/link] [red on white]R[/]"
ANSI = "\x1b[31mred\x1b[0m\x1b[2J\x1b]8;;http://evil.example/\x1b\\"


@pytest.mark.parametrize("force_color", [False, True])
def test_mail_text_is_never_markup(tmp_path: Path, capsys, monkeypatch, force_color: bool) -> None:
    if force_color:  # rich treats the output as a colour terminal: styles are emitted, markup still not
        monkeypatch.setenv("FORCE_COLOR", "1")
        monkeypatch.setenv("COLUMNS", "400")
    else:
        monkeypatch.delenv("FORCE_COLOR", raising=False)
    body = f"HACK for easier debugging {MARKUP} {ANSI}\n\nSigned-off-by: Ann Author <ann@example.org>\n"
    path = "arch/arm64/kvm/[bold]p[/].c"
    mail = patch_mail(subject=f"[PATCH] {MARKUP} {ANSI}", body=body,
                      diff=simple_diff(path=path, added=(f"\tif (0) /* {MARKUP} {ANSI} */",)))
    src = write(tmp_path, "m.patch", mail)
    code, out, err = run(capsys, "check", str(src), "--strict", "--reply-dir", str(tmp_path / "[red]r[/]"),
                         "--from", SENDER)
    assert code == 1, err
    assert "MarkupError" not in err and "internal error" not in err and "Traceback" not in err
    plain = re.sub(r"\x1b\[[0-9;]*m", "", out)  # rich's own styling, if colour is forced
    assert plain.count(MARKUP) >= 3  # subject (header and patch line), message snippet, code snippet
    assert "[bold]p[/].c" in plain
    assert "\x1b[31mred" not in out and "\x1b[2J" not in out and "\x1b]8;;" not in out
    assert "\\x1b[31mred" in plain and "\\x1b[2J" in plain
    if not force_color:
        assert "\x1b" not in out
    assert "[red]r[/]" in err  # the reply folder is echoed as text too
