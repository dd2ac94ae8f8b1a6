"""`check` without typer (checkcmd): its option table is typer's, it reads an argument list exactly as
the typer app does, and it leaves to typer whatever it cannot read with certainty."""

from __future__ import annotations

from pathlib import Path

import click
import pytest
import typer.main

from pmureview import checkcmd
from pmureview.cli import app
from pmureview.entry import main

ROOT = Path(__file__).resolve().parent.parent
DEMO = str(ROOT / "fixtures" / "demo" / "series.mbox")


def _typer_check() -> click.Command:
    group = typer.main.get_command(app)
    return group.commands["check"]  # type: ignore[attr-defined]


def test_the_option_table_is_the_typer_signature() -> None:
    params = {p.name: p for p in _typer_check().params}
    assert set(params) == {*checkcmd.CHECK_OPTIONS, "sources"}
    for name, (flags, kind) in checkcmd.CHECK_OPTIONS.items():
        p = params[name]
        assert isinstance(p, click.Option), name
        assert tuple(sorted(p.opts)) == tuple(sorted(flags)), name
        assert sorted(p.secondary_opts) == sorted(n for n, v in checkcmd.NEGATIVE.items() if v == name), name
        assert p.is_flag == (kind == "flag"), name
        assert p.multiple == (kind in ("list", "paths")), name
        default = p.default.value if hasattr(p.default, "value") else p.default
        assert default == checkcmd.DEFAULTS.get(name) or (default is None and name not in checkcmd.DEFAULTS) \
            or (default is False and kind == "flag" and checkcmd.DEFAULTS.get(name) is None), name
        if isinstance(kind, type):
            assert sorted(p.type.choices) == sorted(m.value for m in kind), name


def _both(monkeypatch, args: list[str]) -> tuple[dict | None, dict]:
    """What checkcmd.parse reads, and what the typer app hands check()."""
    seen: dict = {}
    monkeypatch.setattr(checkcmd, "run_check", lambda **kw: seen.update(kw) or 0)
    from pmureview.cli import run

    assert run(["check", *args]) == 0
    return checkcmd.parse(args), seen


@pytest.mark.parametrize("args", [
    [DEMO],
    [DEMO, "--format", "json", "--strict"],
    ["--format=sarif", DEMO, "-q", "--select", "a/b", "--select=c", "--ignore", "x"],
    [DEMO, "other.mbox", "--tree", "/tmp", "--base", "HEAD~1", "--revision", "2", "--fail-on", "check"],
    ["--range", "A..B", "--files", "--no-tree", "--cocci", "--preview", "--fetch-timeout", "2.5"],
    [DEMO, "--rules-dir", "r1", "--rules-dir", "r2", "--config", "c.toml", "--baseline", "b.json",
     "--write-baseline", "w.json", "--reply-dir", "out", "--from", "A <a@b>", "--signature", "s",
     "--deterministic", "--since", "old.mbox", "--fail-on-new", "--midmask", "http://x/%s"],
    ["-", "--format", "b4", "--no-deterministic"],
    [DEMO, "--tree", "--no-tree"],  # a value that looks like an option is the value, as click reads it
    [DEMO, "--format", "json", "--format", "checkpatch"],  # the last wins
])
def test_reads_arguments_as_typer_does(monkeypatch, args: list[str]) -> None:
    mine, theirs = _both(monkeypatch, args)
    assert mine == theirs


@pytest.mark.parametrize("args", [
    ["--help"], [DEMO, "-h"], [DEMO, "--formt", "json"], [DEMO, "--format", "html"],
    [DEMO, "--revision", "two"], [DEMO, "--tree"], [DEMO, "--strict=yes"], [DEMO, "--strict", "--strict"],
    ["--", DEMO], [DEMO, "-qq"], [DEMO, "--deterministic", "--no-deterministic"],
])
def test_leaves_to_typer_what_it_cannot_read(args: list[str]) -> None:
    assert checkcmd.parse(args) is None


def test_same_output_and_exit_code_both_ways(capsys) -> None:
    for args in (["check", DEMO, "--format", "json"], ["check", DEMO, "--format", "checkpatch", "--fail-on", "error"],
                 ["check", str(ROOT / "nope.mbox")], ["check", DEMO, "--since", DEMO, "--files"]):
        fast = main(args), *capsys.readouterr()
        from pmureview.cli import run

        slow = run(args), *capsys.readouterr()
        assert fast == slow, args


def test_typer_answers_what_the_fast_path_leaves(capsys) -> None:
    assert main(["check", "--help"]) == 0
    assert "--fail-on-new" in capsys.readouterr().out
    assert main(["check", DEMO, "--format", "html"]) == 2
    assert "html" in capsys.readouterr().err


def test_own_process_leaves_without_teardown_but_with_output_caches_and_code(tmp_path) -> None:
    """`check` in a process of its own ends with os._exit after the atexit functions and a flush:
    the whole report is on stdout, the per-build caches are written, the exit code is check's."""
    import json
    import os
    import subprocess
    import sys

    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path / "cache")}
    r = subprocess.run([sys.executable, "-m", "pmureview", "check", str(DEMO), "--format", "json"],
                       capture_output=True, text=True, env=env, timeout=120)
    assert r.returncode == 1, r.stderr  # the demo series has error findings
    report = json.loads(r.stdout)
    assert report["findings"] and r.stdout.endswith("\n")
    cached = {p.name.split("-")[0] for p in (tmp_path / "cache" / "pmureview").iterdir()}
    assert {"regex", "record"} <= cached, cached
