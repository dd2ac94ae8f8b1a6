"""End to end against a real public-inbox-httpd on 127.0.0.1 (ECOSYSTEM.md §2.1).

The demo series is imported into a v2 inbox, then fetched by the real b4 — once through
`fetch_thread`, once through `python -m pmureview check <msgid> --midmask …`.
Skipped only when public-inbox is not installed (`.ci/run` installs it with apt).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.parser import BytesHeaderParser
from pathlib import Path

import pytest
from lore_server import sample_series

import pmureview
from pmureview.errors import FetchError
from pmureview.series.fetch import fetch_thread
from pmureview.series.mail import split_mbox

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "fixtures" / "demo" / "series.mbox"
INBOX = "test"
ADDRESS = "test@example.org"
_COUNTER = re.compile(r"\[[^\]]*PATCH[^\]]*?\b(\d+)/(\d+)\]")

pytestmark = pytest.mark.skipif(
    shutil.which("public-inbox-httpd") is None,
    reason="public-inbox-httpd not on PATH (apt-get install public-inbox); the real-server e2e test needs it",
)


@dataclass
class PublicInbox:
    port: int
    home: Path
    env: dict[str, str]
    setup_seconds: float = 0.0
    proc: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def midmask(self) -> str:
        return f"http://127.0.0.1:{self.port}/{INBOX}/%s"

    def deliver(self, raw: bytes) -> None:
        env = dict(self.env, ORIGINAL_RECIPIENT=ADDRESS)
        subprocess.run(["public-inbox-mda", "--no-precheck"], input=raw, env=env, check=True,
                       capture_output=True, timeout=60)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _clean_env(tmp: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.lower().endswith("_proxy") and k != "PMUREVIEW_MIDMASK"}
    env.update(PI_CONFIG=str(tmp / "pi-config"), HOME=str(tmp / "home"), XDG_CACHE_HOME=str(tmp / "cache"),
               NO_PROXY="127.0.0.1,localhost", LC_ALL="C.UTF-8")
    return env


def _wait_ready(pi: PublicInbox, errlog: Path, deadline: float = 20.0) -> None:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback, never a proxy
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        assert pi.proc is not None
        if pi.proc.poll() is not None:
            tail = errlog.read_text()[-2000:]
            raise RuntimeError(f"public-inbox-httpd exited {pi.proc.returncode}: {tail}")
        try:
            with opener.open(f"http://127.0.0.1:{pi.port}/{INBOX}/", timeout=2) as resp:
                if resp.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.05)
    raise RuntimeError(f"public-inbox-httpd not ready after {deadline} s: {errlog.read_text()[-2000:]}")


def demo_messages() -> list[bytes]:
    if not DEMO.is_file():
        pytest.fail(f"{DEMO.relative_to(ROOT)} is missing: the e2e test reviews the demo series")
    return split_mbox(DEMO.read_bytes())


@pytest.fixture(scope="module")
def public_inbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PublicInbox]:
    t0 = time.monotonic()
    tmp = tmp_path_factory.mktemp("pi")
    env = _clean_env(tmp)
    (tmp / "home").mkdir()
    pi = PublicInbox(port=_free_port(), home=tmp, env=env)
    run = {"env": env, "check": True, "capture_output": True, "timeout": 60}
    subprocess.run(["public-inbox-init", "-V2", "-L", "medium", INBOX, str(tmp / INBOX),
                    f"http://127.0.0.1:{pi.port}/{INBOX}", ADDRESS], **run)
    subprocess.run(["git", "config", "-f", env["PI_CONFIG"], "publicinboxmda.spamcheck", "none"], **run)
    for raw in sample_series("pi") + (demo_messages() if DEMO.is_file() else []):
        pi.deliver(raw)
    errlog = tmp / "httpd.err"
    pi.proc = subprocess.Popen(
        ["public-inbox-httpd", "-W0", "-l", f"127.0.0.1:{pi.port}", "-2", str(errlog)],
        env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        _wait_ready(pi, errlog)
        pi.setup_seconds = time.monotonic() - t0
        print(f"\npublic-inbox setup: {pi.setup_seconds:.2f} s")
        yield pi
    finally:
        os.killpg(pi.proc.pid, signal.SIGTERM)
        try:
            pi.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(pi.proc.pid, signal.SIGKILL)
            pi.proc.wait()


def _series_info(messages: list[bytes]) -> tuple[str, int]:
    """(msgid of the cover letter, else patch 1; number of patches) from the subjects."""
    parser = BytesHeaderParser()
    first: dict[int, str] = {}
    total = 0
    for raw in messages:
        hdr = parser.parsebytes(raw)
        m = _COUNTER.search(str(hdr.get("Subject", "")).replace("\n", " "))
        if not m or str(hdr.get("Subject", "")).lower().startswith("re:"):
            continue
        n, total = int(m.group(1)), int(m.group(2))
        first.setdefault(n, str(hdr["Message-ID"]).strip().strip("<>"))
    start = first.get(0) or first[1]
    return start, total


def _rules_in(obj: object) -> Iterator[str]:
    """Every finding's rule id, wherever the report nests its findings."""
    if isinstance(obj, dict):
        if isinstance(obj.get("rule"), str):
            yield obj["rule"]
        for value in obj.values():
            yield from _rules_in(value)
    elif isinstance(obj, list):
        for value in obj:
            yield from _rules_in(value)


def test_fetch_thread_from_public_inbox(public_inbox: PublicInbox, tmp_path: Path) -> None:
    t0 = time.monotonic()
    out = fetch_thread("20250101000000.2-pi@example.org", midmask=public_inbox.midmask, workdir=tmp_path)
    print(f"\nb4 fetch from public-inbox: {time.monotonic() - t0:.2f} s")
    msgs = split_mbox(out.read_bytes())
    assert out.read_bytes().startswith(b"From mboxrd@z ")
    assert len(msgs) == 4
    assert any(b"\nFrom the start this adds alpha." in m for m in msgs)  # mboxrd quoting undone


def test_fetch_thread_by_url(public_inbox: PublicInbox, tmp_path: Path) -> None:
    url = public_inbox.midmask.replace("%s", "20250101000000.0-pi%40example.org/T/#t")
    out = fetch_thread(url, midmask=None, workdir=tmp_path)
    assert len(split_mbox(out.read_bytes())) == 4


def test_fetch_demo_series(public_inbox: PublicInbox, tmp_path: Path) -> None:
    messages = demo_messages()
    start, _total = _series_info(messages)
    out = fetch_thread(start, midmask=public_inbox.midmask, workdir=tmp_path)
    assert len(split_mbox(out.read_bytes())) == len(messages)


def test_check_demo_series_through_cli(public_inbox: PublicInbox, tmp_path: Path) -> None:
    start, total = _series_info(demo_messages())
    env = dict(public_inbox.env, XDG_CACHE_HOME=str(tmp_path / "cache"))
    # The CLI runs from this checkout even when the package is not installed.
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(Path(pmureview.__file__).parents[1]),
                                                      env.get("PYTHONPATH")]))
    proc = subprocess.run(
        [sys.executable, "-m", "pmureview", "check", start, "--midmask", public_inbox.midmask,
         "--format", "json"],
        cwd=tmp_path, env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=120,
    )
    shown = f"exit {proc.returncode}\nstdout: {proc.stdout[-3000:]}\nstderr: {proc.stderr[-3000:]}"
    try:  # parse first: `python -m` with a broken import also exits 1
        report = json.loads(proc.stdout)
    except json.JSONDecodeError:
        pytest.fail(f"no JSON from pmureview check\n{shown}")
    assert proc.returncode == 1, shown
    assert report["series"]["total"] == total
    rules = set(_rules_in(report.get("findings", report)))
    assert "series/debug-scaffolding" in rules, sorted(rules)


def test_unknown_msgid_on_public_inbox(public_inbox: PublicInbox, tmp_path: Path) -> None:
    with pytest.raises(FetchError, match=r"^message <nobody@example.org> not found at http://127\.0\.0\.1:"):
        fetch_thread("nobody@example.org", midmask=public_inbox.midmask, workdir=tmp_path)
