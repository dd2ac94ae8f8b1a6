"""`pmureview check <msgid>` through the real b4 CLI (fake lore server) and its failure modes."""

from __future__ import annotations

import json
import sys
import textwrap
from pathlib import Path

import pytest
from lore_server import LoreServer
from test_cli import assert_one_line_error, run

from pmureview.series.mail import split_mbox

DEMO = Path(__file__).resolve().parent.parent / "fixtures" / "demo" / "series.mbox"
PATCH1 = "20251209205100.4706848-1-ann@example.org"


@pytest.fixture
def demo_server():
    with LoreServer(split_mbox(DEMO.read_bytes())) as srv:
        yield srv


def test_check_msgid_fetches_with_b4(demo_server, capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    code, out, _ = run(capsys, "check", f"<{PATCH1}>", "--midmask", demo_server.midmask, "--format", "json")
    data = json.loads(out)
    assert data["series"]["total"] == 2 and len(data["series"]["patches"]) == 2
    assert any(f["rule"] == "series/debug-scaffolding" for f in data["findings"])
    assert code == 1


def test_check_unknown_msgid(demo_server, capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    code, _, err = run(capsys, "check", "nope@example.org", "--midmask", demo_server.midmask)
    assert_one_line_error(code, err, "not found")


def _fake_bin(tmp_path: Path, monkeypatch, body: str | None) -> None:
    bindir = tmp_path / "bin"
    bindir.mkdir()
    python = sys.executable
    monkeypatch.setattr(sys, "executable", str(bindir / "python"))
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    if body is not None:
        (bindir / "b4").write_text(f"#!{python}\n" + textwrap.dedent(body))
        (bindir / "b4").chmod(0o755)


def test_check_without_b4(capsys, tmp_path, monkeypatch):
    _fake_bin(tmp_path, monkeypatch, None)
    code, _, err = run(capsys, "check", "a@example.org")
    assert_one_line_error(code, err, "b4 not found")


def test_check_with_a_hung_b4(capsys, tmp_path, monkeypatch):
    _fake_bin(tmp_path, monkeypatch, "import time\ntime.sleep(60)\n")
    code, _, err = run(capsys, "check", "a@example.org", "--fetch-timeout", "1")
    assert_one_line_error(code, err, "did not answer within 1")


def test_msgid_with_shell_metacharacters_never_reaches_a_shell(capsys, tmp_path, monkeypatch):
    _fake_bin(tmp_path, monkeypatch, "import sys\nsys.exit(1)\n")
    monkeypatch.chdir(tmp_path)
    code, _, err = run(capsys, "check", "$(touch pwned)`touch pwned2`;x@y")
    assert code == 2 and "Traceback" not in err
    assert not list(tmp_path.glob("pwned*"))
