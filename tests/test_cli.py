"""The CLI end to end in-process: exit codes, one-line errors, formats, config and suppression."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from mailfactory import mbox, patch_mail, simple_diff, write

from pmureview.entry import main

ROOT = Path(__file__).resolve().parent.parent
DEMO = ROOT / "fixtures" / "demo" / "series.mbox"
SCAFFOLD = simple_diff(added=("\tif (0)", "\t\tbar();"))


def run(capsys, *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def assert_one_line_error(code: int, err: str, needle: str) -> None:
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("pmureview: error:") and needle in lines[0], err
    assert "Traceback" not in err


# -- bad input: one clear line, exit 2 ---------------------------------------------------------

@pytest.mark.parametrize(("content", "needle"), [
    (b"", "empty"),
    (b"just some words\nand more words\n", "not a mail"),
    (b"From mboxrd@z Thu Jan  1 00:00:00 1970\nFrom: a@b\nSubj", "no patch"),
    (b"\x00\x01\x02binary\xff\xfe", "not a mail"),
    (patch_mail(subject="[PATCH 0/3] only a cover", diff="").split("---\n")[0].encode(), "cover letter"),
])
def test_bad_input_one_line_exit_2(tmp_path, capsys, content, needle):
    code, _, err = run(capsys, "check", str(write(tmp_path, "in.mbox", content)))
    assert_one_line_error(code, err, needle)


def test_missing_file_and_bad_options(tmp_path, capsys):
    code, _, err = run(capsys, "check", str(tmp_path / "nope.mbox"))
    assert_one_line_error(code, err, "no such file")
    code, _, err = run(capsys, "check", str(DEMO), "--revision", "9")
    assert_one_line_error(code, err, "no revision v9")
    code, _, err = run(capsys, "check", str(DEMO), "--tree", str(tmp_path / "none"))
    assert_one_line_error(code, err, "not a folder")


def test_non_utf8_body_is_reviewed(tmp_path, capsys):
    mail = patch_mail(extra_headers="Content-Type: text/plain; charset=iso-8859-1\n",
                      body="Caf\xe9.\n\nSigned-off-by: A <a@x>\n", diff=SCAFFOLD).encode("latin-1")
    code, out, _ = run(capsys, "check", str(write(tmp_path, "p.eml", mail)), "--format", "json")
    data = json.loads(out)
    assert code == 1 and any(f["rule"] == "series/debug-scaffolding" for f in data["findings"])


def test_binary_and_rename_only_patches_are_reviewed_clean(tmp_path, capsys):
    diff = ("diff --git a/img.png b/img.png\nindex 1111111..2222222 100644\n"
            "Binary files a/img.png and b/img.png differ\n")
    code, out, _ = run(capsys, "check", str(write(tmp_path, "b.patch", patch_mail(diff=diff))), "--format", "json")
    assert code == 0 and json.loads(out)["series"]["patches"][0]["files"][0]["kind"] == "binary"
    diff = "diff --git a/old.c b/new.c\nsimilarity index 100%\nrename from old.c\nrename to new.c\n"
    code, out, _ = run(capsys, "check", str(write(tmp_path, "r.patch", patch_mail(diff=diff))), "--format", "json")
    assert code == 0 and json.loads(out)["series"]["patches"][0]["files"][0]["kind"] == "renamed"


def test_incomplete_series_is_reported_and_reviewed(tmp_path, capsys):
    p1 = patch_mail(subject="[PATCH 1/3] a", msgid="1@x", diff=SCAFFOLD)
    code, out, _ = run(capsys, "check", str(write(tmp_path, "s.mbox", mbox(p1))), "--format", "json")
    data = json.loads(out)
    assert code == 1
    missing = [f for f in data["findings"] if f["rule"] == "pmureview/missing-patch"]
    assert len(missing) == 1 and "patches 2-3 of 3 are missing" in missing[0]["message"]
    assert any(f["rule"] == "series/debug-scaffolding" and f["patch"] == 1 for f in data["findings"])


def test_markup_and_ansi_in_mail_are_not_interpreted(tmp_path, capsys):
    evil = "[bold red]boom[/] \x1b[31mred\x1b[0m [link=http://x]y[/link]"
    mail = patch_mail(subject=f"[PATCH] {evil}", diff=simple_diff(added=("\tif (0) /* [/] \x1b[2J */",)))
    code, out, err = run(capsys, "check", str(write(tmp_path, "m.patch", mail)))
    assert code == 1, err
    assert "[bold red]boom[/]" in out
    assert "\x1b[" not in out  # escapes shown as text, never sent to the terminal
    assert "\\x1b[31mred" in out


def test_stdin_source(monkeypatch, capsys):
    import io

    data = patch_mail(diff=SCAFFOLD).encode()
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(data)))
    code, out, _ = run(capsys, "check", "-", "--format", "json")
    assert code == 1 and json.loads(out)["findings"][0]["rule"] == "series/debug-scaffolding"


# -- exit codes, selection, config, suppression ---------------------------------------------------

def test_demo_exit_codes_and_fail_on(capsys):
    assert run(capsys, "check", str(DEMO), "-q")[0] == 1
    assert run(capsys, "check", str(DEMO), "-q", "--fail-on", "error")[0] in (0, 1)
    code, out, _ = run(capsys, "check", str(DEMO), "--select", "style", "--format", "json")
    rules = {f["rule"] for f in json.loads(out)["findings"]}
    assert rules == {"style/continuation-operator"}
    assert code == 0  # check level is below the default fail-on (warning)
    assert run(capsys, "check", str(DEMO), "--select", "style", "--fail-on", "check")[0] == 1


def test_json_is_sorted_and_versioned(capsys):
    _, out, _ = run(capsys, "check", str(DEMO), "--format", "json")
    data = json.loads(out)
    assert data["schema_version"] == 2
    keys = [(f["patch"], f["path"] is not None, f["path"] or "", f["line"] or 0) for f in data["findings"]]
    assert keys == sorted(keys)
    assert {"rule", "severity", "confidence", "patch", "path", "line", "message", "note"} <= set(data["findings"][0])


def test_strict_controls_terminal_only(capsys):
    _, out, _ = run(capsys, "check", str(DEMO), "--select", "style", "-q")
    assert "continuation" not in out
    _, out, _ = run(capsys, "check", str(DEMO), "--select", "style", "-q", "--strict")
    assert "continuation" in out


def _git_repo(tmp_path: Path) -> Path:
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    return tmp_path


def test_config_file_and_cli_precedence(tmp_path, capsys, monkeypatch):
    repo = _git_repo(tmp_path)
    (repo / ".pmureview.toml").write_text(
        'select = ["style", "series"]\nignore = ["series"]\n[severity]\n"style/continuation-operator" = "error"\n')
    monkeypatch.chdir(repo)
    code, out, _ = run(capsys, "check", str(DEMO), "--format", "json")
    data = json.loads(out)
    assert {f["rule"] for f in data["findings"]} == {"style/continuation-operator"}
    assert {f["severity"] for f in data["findings"]} == {"error"}
    assert code == 1
    code, out, _ = run(capsys, "check", str(DEMO), "--format", "json", "--ignore", "style")
    assert all(f["rule"] != "style/continuation-operator" for f in json.loads(out)["findings"])
    (repo / ".pmureview.toml").write_text("bogus = 1\n")
    code, _, err = run(capsys, "check", str(DEMO))
    assert_one_line_error(code, err, "unknown config keys")


def test_inline_ignore_and_baseline(tmp_path, capsys):
    mail = patch_mail(diff=simple_diff(added=("\tif (0) /* pmureview: ignore[series/debug-scaffolding] */",)))
    code, out, _ = run(capsys, "check", str(write(tmp_path, "p.patch", mail)), "--format", "json")
    assert code == 0 and json.loads(out)["findings"] == []
    base = tmp_path / "baseline.json"
    code, _, _ = run(capsys, "check", str(DEMO), "--format", "json", "--write-baseline", str(base))
    assert code == 1
    code, out, _ = run(capsys, "check", str(DEMO), "--format", "json", "--baseline", str(base))
    assert code == 0 and json.loads(out)["findings"] == []


def test_rules_list_show_and_version(capsys):
    code, out, _ = run(capsys, "rules", "list")
    assert code == 0 and "series/debug-scaffolding" in out and "style/continuation-operator" in out
    code, out, _ = run(capsys, "rules", "show", "series/debug-scaffolding")
    assert code == 0 and "## What it does" in out and "## Use instead" in out
    code, _, err = run(capsys, "rules", "show", "nope/nope")
    assert_one_line_error(code, err, "no rule")
    assert run(capsys, "--version")[1].startswith("pmureview ")


def test_files_mode_reviews_existing_files(tmp_path, capsys):
    c = write(tmp_path, "x.c", "int f(void)\n{\n\tif (0)\n\t\treturn 1;\n\treturn 0;\n}\n")
    code, out, _ = run(capsys, "check", "--files", str(c), "--format", "json")
    f = [x for x in json.loads(out)["findings"] if x["severity"] != "check"]  # (the file has no SPDX line)
    assert code == 1 and [(x["rule"], x["line"]) for x in f] == [("series/debug-scaffolding", 3)]


def test_range_in_a_git_repo(tmp_path, capsys):
    repo = _git_repo(tmp_path)
    env = ["-c", "user.name=A", "-c", "user.email=a@example.org"]
    (repo / "a.c").write_text("int f(void)\n{\n\treturn 0;\n}\n")
    subprocess.run(["git", "-C", str(repo), *env, "add", "-A"], check=True)
    subprocess.run(["git", "-C", str(repo), *env, "commit", "-qm", "base"], check=True)
    (repo / "a.c").write_text("int f(void)\n{\n\tif (0)\n\t\treturn 1;\n\treturn 0;\n}\n")
    subprocess.run(["git", "-C", str(repo), *env, "commit", "-qam", "scaffold"], check=True)
    code, out, _ = run(capsys, "check", "--range", "HEAD~1..HEAD", "--tree", str(repo), "--format", "json")
    data = json.loads(out)
    assert code == 1 and data["series"]["mode"] == "full"
    # (the commit has no Signed-off-by: a check-level series/missing-submitter-signoff as well)
    assert [(f["rule"], f["line"]) for f in data["findings"] if f["severity"] != "check"] == [
        ("series/debug-scaffolding", 3)]


def test_python_m_entry_point_runs(tmp_path):
    r = subprocess.run([sys.executable, "-m", "pmureview", "check", str(DEMO), "-q"], capture_output=True, text=True)
    assert r.returncode == 1 and "debug-scaffolding" in r.stdout


def test_stdin_format_patch_lines_count_like_checkpatch(monkeypatch, capsys):
    import io

    text = "From 1234567890abcdef1234567890abcdef12345678 Mon Sep 17 00:00:00 2001\n" + patch_mail(diff=SCAFFOLD)
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(text.encode())))
    code, out, _ = run(capsys, "check", "-", "--format", "checkpatch")
    n = int(out.split(":")[1])
    assert code == 1 and text.split("\n")[n - 1] == "+\tif (0)"
