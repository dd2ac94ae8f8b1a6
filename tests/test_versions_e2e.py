"""End to end: `check <v2 msgid>` finds v1 on a real public-inbox by one search, fetches its thread with
the real b4, and reports statuses and the unanswered review comment.

The inbox is initialised with `-L full`: the search for the previous posting is a phrase query
(`s:"<subject>" AND f:"<sender>"`, as b4's), and public-inbox answers phrases only with positional
data (at `-L medium` the same query is a 404). Skipped when public-inbox is not installed.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from test_e2e_public_inbox import ADDRESS, INBOX, PublicInbox, _clean_env, _free_port, _wait_ready

import pmureview
from pmureview.series.mail import read_path

W = Path(__file__).resolve().parents[1] / "fixtures" / "versions" / "widget"
V2_COVER = "20251117100000.3584399-0-ann@example.org"

pytestmark = pytest.mark.skipif(
    shutil.which("public-inbox-httpd") is None,
    reason="public-inbox-httpd not on PATH (apt-get install public-inbox)",
)


def postings() -> list[bytes]:
    """v1 with its review thread, then v2 (two postings of fixtures/versions/widget)."""
    out = read_path(W / "v1" / "series.mbox")
    out += [p.read_bytes() for p in sorted((W / "replies").glob("v1-*.eml"))]
    return out + read_path(W / "v2" / "series.mbox")


def with_change_id(raws: list[bytes]) -> list[bytes]:
    """The same postings as another series that carries b4's `change-id:`: other Message-IDs, another
    subject (so only the change-id can find it), the change-id under the cover's base-commit line."""
    out = []
    for raw in raws:
        raw = re.sub(rb"<(?=[^<>@]+@example\.(?:org|net|com)>)", b"<cid.", raw)
        raw = raw.replace(b"demo: widget: reset counting", b"demo: gadget: counters")
        raw = re.sub(rb"(?m)^(base-commit: [0-9a-f]+)$", rb"\1\nchange-id: 20251103-widget-resets-0a1b2c", raw)
        out.append(raw)
    return out


@pytest.fixture(scope="module")
def inbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PublicInbox]:
    tmp = tmp_path_factory.mktemp("pi-full")
    env = _clean_env(tmp)
    (tmp / "home").mkdir()
    pi = PublicInbox(port=_free_port(), home=tmp, env=env)
    run = {"env": env, "check": True, "capture_output": True, "timeout": 60}
    subprocess.run(["public-inbox-init", "-V2", "-L", "full", INBOX, str(tmp / INBOX),
                    f"http://127.0.0.1:{pi.port}/{INBOX}", ADDRESS], **run)
    subprocess.run(["git", "config", "-f", env["PI_CONFIG"], "publicinboxmda.spamcheck", "none"], **run)
    for raw in postings() + with_change_id(postings()):
        pi.deliver(raw)
    errlog = tmp / "httpd.err"
    pi.proc = subprocess.Popen(
        ["public-inbox-httpd", "-W0", "-l", f"127.0.0.1:{pi.port}", "-2", str(errlog)],
        env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        _wait_ready(pi, errlog)
        yield pi
    finally:
        os.killpg(pi.proc.pid, signal.SIGTERM)
        try:
            pi.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(pi.proc.pid, signal.SIGKILL)
            pi.proc.wait()


def test_check_v2_msgid_finds_v1_and_its_unanswered_comment(inbox: PublicInbox, tmp_path: Path) -> None:
    env = dict(inbox.env, XDG_CACHE_HOME=str(tmp_path / "cache"))
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(Path(pmureview.__file__).parents[1]),
                                                      env.get("PYTHONPATH")]))
    t0 = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-m", "pmureview", "check", V2_COVER, "--midmask", inbox.midmask,
         "--select", "series/debug-scaffolding", "--format", "json"],
        cwd=tmp_path, env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=180,
    )
    print(f"\nversion-aware check through public-inbox: {time.monotonic() - t0:.2f} s")
    shown = f"exit {proc.returncode}\nstdout: {proc.stdout[-3000:]}\nstderr: {proc.stderr[-3000:]}"
    doc = json.loads(proc.stdout)
    assert proc.returncode == 1, shown
    assert doc["series"]["revision"] == 2
    assert doc["series"]["previous"] == {"revision": 1, "source": "20251103100000.8082613-0-ann@example.org",
                                         "found_by": "subject", "reason": None}, shown
    assert [(f["patch"], f["status"], f["since"]) for f in doc["findings"]] == [(2, "carried", 1)]
    assert [(r["patch"], r["line"], r["status"]) for r in doc["resolved"]] == [(1, 8, "resolved")]
    assert [m["change"] for m in doc["patch_map"]] == ["modified", "unchanged"]
    assert [(c["kind"], c["msgid"], c["author"], c["patch"], c["line"]) for c in doc["unanswered"]] == [
        ("unanswered", "v1-2-oliver@example.com", "Oliver Owl <oliver@example.com>", 2, 25)], shown
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("pmureview: compared with v1 ("), shown
    assert "found by subject search" in lines[0]


def test_change_id_search_finds_v1(inbox: PublicInbox, tmp_path: Path) -> None:
    env = dict(inbox.env, XDG_CACHE_HOME=str(tmp_path / "cache"))
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(Path(pmureview.__file__).parents[1]),
                                                      env.get("PYTHONPATH")]))
    proc = subprocess.run(
        [sys.executable, "-m", "pmureview", "check", "cid." + V2_COVER, "--midmask", inbox.midmask,
         "--select", "series/debug-scaffolding", "--format", "json"],
        cwd=tmp_path, env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=180,
    )
    shown = f"exit {proc.returncode}\nstdout: {proc.stdout[-3000:]}\nstderr: {proc.stderr[-3000:]}"
    doc = json.loads(proc.stdout)
    assert doc["series"]["change_id"] == "20251103-widget-resets-0a1b2c", shown
    assert doc["series"]["previous"] == {"revision": 1, "source": "cid.20251103100000.8082613-0-ann@example.org",
                                         "found_by": "change-id", "reason": None}, shown
    assert [(f["patch"], f["status"], f["since"]) for f in doc["findings"]] == [(2, "carried", 1)]
    assert [c["msgid"] for c in doc["unanswered"]] == ["cid.v1-2-oliver@example.com"]
    assert "found by change-id search" in proc.stderr
