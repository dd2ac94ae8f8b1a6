"""series/fetch.py: the real b4 against a fake lore server on 127.0.0.1, and fake b4 scripts."""

from __future__ import annotations

import json
import mailbox
import os
import sys
import textwrap
import time
from pathlib import Path

import pytest
from lore_server import LoreServer, sample_series

from pmureview.errors import FetchError, UsageError
from pmureview.series import fetch
from pmureview.series.fetch import fetch_thread, normalise_msgid, resolve_midmask

COVER = "20250101000000.0-demo@example.org"
PATCH1 = "20250101000000.1-demo@example.org"


def _msgids(path: Path) -> set[str]:
    return {m["Message-ID"].strip("<>") for m in mailbox.mbox(str(path))}


# --- real b4 -------------------------------------------------------------------------------------


def test_fetch_whole_thread_as_mboxrd(lore_server: LoreServer, tmp_path: Path) -> None:
    t0 = time.monotonic()
    out = fetch_thread(PATCH1, midmask=lore_server.midmask, workdir=tmp_path)
    elapsed = time.monotonic() - t0
    data = out.read_bytes()
    assert out.suffix == ".mbx" and out.is_relative_to(tmp_path)
    assert data.count(b"\nFrom mboxrd@z ") + data.startswith(b"From mboxrd@z ") == 4
    assert _msgids(out) == {f"20250101000000.{n}-demo@example.org" for n in range(4)}
    assert b"\n>From the start this adds alpha." in data  # mboxrd quoting kept
    assert ("GET", f"/test/{PATCH1.replace('@', '%40')}/t.mbox.gz") in lore_server.requests
    assert elapsed < 30, elapsed


def test_fetch_url_names_the_server(lore_server: LoreServer, tmp_path: Path) -> None:
    url = f"{lore_server.base}/test/{COVER.replace('@', '%40')}/T/#t"
    out = fetch_thread(url, midmask=None, workdir=tmp_path)
    assert len(_msgids(out)) == 4


def test_unknown_msgid_is_a_fetch_error(lore_server: LoreServer, tmp_path: Path) -> None:
    with pytest.raises(FetchError) as exc:
        fetch_thread("<nobody@example.org>", midmask=lore_server.midmask, workdir=tmp_path)
    msg = str(exc.value)
    assert msg == f"message <nobody@example.org> not found at {lore_server.base}/test"
    assert exc.value.exit_code == 2


def test_server_down_is_a_fetch_error(tmp_path: Path) -> None:
    with LoreServer([]) as srv:
        mask = srv.midmask  # the port is closed once the server is gone
    with pytest.raises(FetchError) as exc:
        fetch_thread(PATCH1, midmask=mask, workdir=tmp_path, timeout=30)
    # One line either way; the wording depends on whether the closed port was already taken again by
    # another test's server (seen once in CI: "message ... not found at ...").
    assert "\n" not in str(exc.value) and ("could not fetch" in str(exc.value) or "not found" in str(exc.value))


def test_metachar_msgid_with_real_b4(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # A message whose Message-ID holds shell syntax is fetched like any other, and nothing runs.
    evil = "$(touch pwned);`touch pwned2`x@y"
    raw = (f"From: A <a@example.org>\nSubject: [PATCH] x\nDate: Wed, 01 Jan 2025 00:00:00 +0000\n"
           f"Message-ID: <{evil}>\n\nbody\n").encode()
    monkeypatch.chdir(tmp_path)
    with LoreServer([raw]) as srv:
        out = fetch_thread(evil, midmask=srv.midmask, workdir=tmp_path / "w")
    assert _msgids(out) == {evil}
    assert not list(tmp_path.rglob("pwned*"))


# --- fake b4 scripts -----------------------------------------------------------------------------


@pytest.fixture
def fake_bin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A folder posing as the interpreter's bin/ (where fetch looks for b4 first); PATH is emptied."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    monkeypatch.setattr(sys, "executable", str(bindir / "python"))
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    return bindir


# Captured at import: the tests below point sys.executable at a fake bin/ folder.
_PYTHON = sys.executable


def _write_b4(bindir: Path, body: str) -> Path:
    script = bindir / "b4"
    script.write_text(f"#!{_PYTHON}\n" + textwrap.dedent(body))
    script.chmod(0o755)
    return script

RECORDING_B4 = """
    import json, os, sys
    argv = sys.argv[1:]
    with open(os.environ["FAKE_B4_LOG"], "w") as fh:
        json.dump({"argv": argv, "stdin_tty": os.isatty(0), "cache": os.environ.get("XDG_CACHE_HOME")}, fh)
    out = argv[argv.index("-o") + 1]
    with open(os.path.join(out, "whatever-b4-calls-it.mbx"), "w") as fh:
        fh.write("From mboxrd@z Thu Jan  1 00:00:00 1970\\nMessage-ID: <a@b>\\n\\nbody\\n")
"""


def test_b4_missing(fake_bin: Path, tmp_path: Path) -> None:
    with pytest.raises(FetchError) as exc:
        fetch_thread(PATCH1, midmask=None, workdir=tmp_path)
    assert str(exc.value) == "b4 not found: install it with pip install b4"


def test_b4_found_on_path(fake_bin: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    other = tmp_path / "elsewhere"
    other.mkdir()
    script = _write_b4(other, "pass\n")
    monkeypatch.setenv("PATH", str(other))
    assert fetch.find_b4() == str(script)
    beside = _write_b4(fake_bin, "pass\n")
    assert fetch.find_b4() == str(beside)  # beside the interpreter wins over PATH


def test_metachar_msgid_is_one_argv_element(fake_bin: Path, tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    _write_b4(fake_bin, RECORDING_B4)
    log = tmp_path / "argv.json"
    monkeypatch.setenv("FAKE_B4_LOG", str(log))
    monkeypatch.chdir(tmp_path)
    evil = "$(touch pwned);x@y"
    out = fetch_thread(f"<{evil}>", midmask="http://127.0.0.1:9/lst/%s", workdir=tmp_path / "w")
    rec = json.loads(log.read_text())
    assert rec["argv"] == [
        "-q", "-c", "b4.midmask=http://127.0.0.1:9/lst/%s", "-c", "b4.save-maildirs=no",
        "-c", "b4.attestation-policy=off", "mbox", "-C", "-o", rec["argv"][10], "--", evil,
    ]
    assert Path(rec["argv"][10]).is_dir()
    assert not rec["stdin_tty"]
    assert rec["cache"].startswith(str(tmp_path / "w"))
    assert out.name == "whatever-b4-calls-it.mbx"
    assert not list(tmp_path.rglob("pwned"))


def test_timeout_kills_b4_and_its_children(fake_bin: Path, tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    pidfile = tmp_path / "child.pid"
    _write_b4(fake_bin, f"""
        import subprocess, sys, time
        child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
        open({str(pidfile)!r}, "w").write(str(child.pid))
        time.sleep(60)
    """)
    t0 = time.monotonic()
    with pytest.raises(FetchError) as exc:
        fetch_thread(PATCH1, midmask=None, timeout=1.5, workdir=tmp_path / "w")
    elapsed = time.monotonic() - t0
    assert str(exc.value) == f"b4 did not answer within 1.5 s fetching <{PATCH1}>"
    assert elapsed < 5, elapsed
    child = int(pidfile.read_text())
    for _ in range(50):  # the killed child is reaped by init shortly after
        try:
            os.kill(child, 0)
        except ProcessLookupError:
            break
        if Path(f"/proc/{child}/stat").read_text().split()[2] == "Z":
            break
        time.sleep(0.05)
    else:
        pytest.fail("b4's child survived the timeout")


def test_b4_exit_without_output(fake_bin: Path, tmp_path: Path) -> None:
    _write_b4(fake_bin, "pass\n")
    with pytest.raises(FetchError, match=r"^b4 returned no messages for <a@b> from https://lore"):
        fetch_thread("a@b", midmask=None, workdir=tmp_path)


def test_b4_crash_is_one_line(fake_bin: Path, tmp_path: Path) -> None:
    _write_b4(fake_bin, "import sys\nsys.stderr.write('Traceback...\\nKeyError: boom\\n')\nsys.exit(3)\n")
    with pytest.raises(FetchError) as exc:
        fetch_thread("a@b", midmask=None, workdir=tmp_path)
    assert str(exc.value) == (
        "b4 could not fetch <a@b> from https://lore.kernel.org/all (exit 3): KeyError: boom")


# --- msgid and midmask ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "msgid", "mask"),
    [
        ("a.b@c.d", "a.b@c.d", None),
        ("  <a.b@c.d>\n", "a.b@c.d", None),
        ("id:a.b@c.d", "a.b@c.d", None),
        ("rfc822msgid:a.b@c.d", "a.b@c.d", None),
        ("mid:<a.b@c.d>", "a.b@c.d", None),
        ("https://lore.kernel.org/all/a.b@c.d/", "a.b@c.d", "https://lore.kernel.org/all/%s"),
        ("https://lore.kernel.org/r/a.b@c.d", "a.b@c.d", "https://lore.kernel.org/all/%s"),
        ("https://lore.kernel.org/kvmarm/a.b%40c.d/T/#u", "a.b@c.d", "https://lore.kernel.org/kvmarm/%s"),
        ("https://lore.kernel.org/kvmarm/a.b@c.d/t.mbox.gz", "a.b@c.d", "https://lore.kernel.org/kvmarm/%s"),
        ("https://lore.kernel.org/kvmarm/a.b@c.d/raw", "a.b@c.d", "https://lore.kernel.org/kvmarm/%s"),
        ("http://127.0.0.1:8080/test/x%2Fy@z/", "x/y@z", "http://127.0.0.1:8080/test/%s"),
        ("https://inbox.example.org/a.b@c.d/", "a.b@c.d", "https://inbox.example.org/%s"),
        ("https://patch.msgid.link/a.b@c.d", "a.b@c.d", None),
        ("https://patchwork.kernel.org/project/kvm/patch/a.b@c.d/", "a.b@c.d", None),
    ],
)
def test_normalise_msgid(given: str, msgid: str, mask: str | None) -> None:
    ref = normalise_msgid(given)
    assert (ref.msgid, ref.midmask) == (msgid, mask)


@pytest.mark.parametrize("bad", ["", "<>", "a\nb@c", "a\x00b@c", "https://lore.kernel.org/all/"])
def test_bad_msgid(bad: str) -> None:
    with pytest.raises(UsageError):
        normalise_msgid(bad)


def test_explicit_midmask_beats_url(fake_bin: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _write_b4(fake_bin, RECORDING_B4)
    log = tmp_path / "argv.json"
    monkeypatch.setenv("FAKE_B4_LOG", str(log))
    fetch_thread("https://lore.kernel.org/kvmarm/a@b/", midmask="http://127.0.0.1:1/m/%s", workdir=tmp_path)
    assert "b4.midmask=http://127.0.0.1:1/m/%s" in json.loads(log.read_text())["argv"]
    fetch_thread("https://lore.kernel.org/kvmarm/a@b/", midmask=None, workdir=tmp_path)
    assert "b4.midmask=https://lore.kernel.org/kvmarm/%s" in json.loads(log.read_text())["argv"]
    monkeypatch.setenv("PMUREVIEW_MIDMASK", "http://127.0.0.1:2/env/%s")
    fetch_thread("a@b", midmask=None, workdir=tmp_path, config_midmask="http://127.0.0.1:3/cfg/%s")
    assert "b4.midmask=http://127.0.0.1:2/env/%s" in json.loads(log.read_text())["argv"]


def test_resolve_midmask(monkeypatch: pytest.MonkeyPatch) -> None:
    assert resolve_midmask(None, None) == "https://lore.kernel.org/all/%s"
    assert resolve_midmask(None, "http://cfg/x/%s") == "http://cfg/x/%s"
    monkeypatch.setenv("PMUREVIEW_MIDMASK", "http://env/x/%s")
    assert resolve_midmask(None, "http://cfg/x/%s") == "http://env/x/%s"
    assert resolve_midmask("http://cli/x/%s", "http://cfg/x/%s") == "http://cli/x/%s"
    with pytest.raises(UsageError):
        resolve_midmask("lore.kernel.org/all", None)


def test_sample_series_is_what_the_server_serves() -> None:
    with LoreServer(sample_series(), list_name="lst") as srv:
        assert srv.thread_of(COVER) == srv.thread_of("20250101000000.3-demo@example.org")
        assert srv.thread_of("missing@x") is None
