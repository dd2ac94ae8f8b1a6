"""The same input reviewed twice gives byte-identical output: in-process, as `python -m pmureview`,
and under different PYTHONHASHSEEDs. Replies are identical too when `--deterministic` or
SOURCE_DATE_EPOCH sets their Message-ID and Date (otherwise those two headers differ by design).
"""

from __future__ import annotations

import email
import email.policy
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from pmureview.entry import main

ROOT = Path(__file__).resolve().parent.parent
DEMO = ROOT / "fixtures" / "demo" / "series.mbox"
SENDER = "Rev Iewer <rev@example.org>"
EPOCH = "1765400000"


def run(capsys, *args: str) -> tuple[int, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    assert "error" not in err, err
    return code, out


def replies(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


@pytest.fixture
def no_epoch(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SOURCE_DATE_EPOCH", raising=False)


@pytest.mark.parametrize("fmt", ["json", "sarif", "checkpatch", "b4"])
def test_in_process_twice_is_byte_identical(capsys, fmt: str) -> None:
    first = run(capsys, "check", str(DEMO), "--format", fmt)
    second = run(capsys, "check", str(DEMO), "--format", fmt)
    assert first == second
    assert first[0] == 1 and first[1]
    if fmt in ("json", "sarif"):
        json.loads(first[1])


@pytest.mark.usefixtures("no_epoch")
def test_deterministic_replies_are_byte_identical(tmp_path: Path, capsys) -> None:
    for name in ("a", "b"):
        code, _ = run(capsys, "check", str(DEMO), "-q", "--reply-dir", str(tmp_path / name), "--from", SENDER,
                      "--deterministic")
        assert code == 1
    a, b = replies(tmp_path / "a"), replies(tmp_path / "b")
    assert a and a == b
    # the Date is derived from the original mail, not the clock
    for raw in a.values():
        msg = email.message_from_bytes(raw, policy=email.policy.default)
        assert msg["Message-ID"].startswith("<pmureview.") and "2025" in msg["Date"]


def test_source_date_epoch_replies_are_byte_identical(tmp_path: Path, capsys, monkeypatch) -> None:
    monkeypatch.setenv("SOURCE_DATE_EPOCH", EPOCH)
    for name in ("a", "b"):
        run(capsys, "check", str(DEMO), "-q", "--reply-dir", str(tmp_path / name), "--from", SENDER)
    a, b = replies(tmp_path / "a"), replies(tmp_path / "b")
    assert a and a == b
    dates = {email.message_from_bytes(raw, policy=email.policy.default)["Date"].datetime.timestamp()
             for raw in a.values()}
    assert dates == {float(EPOCH)}


@pytest.mark.usefixtures("no_epoch")
def test_without_either_only_message_id_and_date_differ(tmp_path: Path, capsys) -> None:
    # the control for the two tests above: the reply writer really does vary these two headers
    for name in ("a", "b"):
        run(capsys, "check", str(DEMO), "-q", "--reply-dir", str(tmp_path / name), "--from", SENDER)
    a, b = replies(tmp_path / "a"), replies(tmp_path / "b")
    assert a.keys() == b.keys()
    for name in a:
        ma, mb = (email.message_from_bytes(x[name], policy=email.policy.default) for x in (a, b))
        assert ma["Message-ID"] != mb["Message-ID"]
        for header in ("From", "To", "Cc", "Subject", "In-Reply-To", "References"):
            assert ma[header] == mb[header]
        assert ma.get_content() == mb.get_content()


def _subprocess(seed: str, out_dir: Path, fmt: str) -> tuple[int, bytes, dict[str, bytes]]:
    env = {**os.environ, "PYTHONHASHSEED": seed, "SOURCE_DATE_EPOCH": EPOCH}
    r = subprocess.run([sys.executable, "-m", "pmureview", "check", str(DEMO), "--format", fmt,
                        "--reply-dir", str(out_dir), "--from", SENDER],
                       capture_output=True, env=env, stdin=subprocess.DEVNULL, timeout=120, check=False)
    assert b"error" not in r.stderr, r.stderr
    return r.returncode, r.stdout, replies(out_dir)


@pytest.mark.parametrize("fmt", ["json", "sarif"])
def test_python_m_and_hash_seed_do_not_change_output(tmp_path: Path, capsys, monkeypatch, fmt: str) -> None:
    one = _subprocess("1", tmp_path / "seed1", fmt)
    other = _subprocess("4242", tmp_path / "seed4242", fmt)
    assert one == other
    assert one[0] == 1 and one[2]
    # and in-process (a third hash seed) gives the same bytes as `python -m pmureview`
    monkeypatch.setenv("SOURCE_DATE_EPOCH", EPOCH)
    code, out = run(capsys, "check", str(DEMO), "--format", fmt, "--reply-dir", str(tmp_path / "inproc"),
                    "--from", SENDER)
    assert (code, out.encode(), replies(tmp_path / "inproc")) == one


def test_every_fixture_case_is_independent_of_the_hash_seed():
    """All rules over every fixture series, in two processes with different PYTHONHASHSEED: set
    iteration order must never leak into findings or messages (a call path once did)."""
    script = (
        "import json, pathlib\n"
        "from pmureview.api import review, Options\n"
        "root = pathlib.Path('fixtures/series')\n"
        "out = {}\n"
        "for m in sorted(root.rglob('series.mbox')):\n"
        "    r = review([str(m)], Options())\n"
        "    out[str(m)] = [f.to_dict() for f in r.findings]\n"
        "print(json.dumps(out, sort_keys=True))\n"
    )
    top = Path(__file__).resolve().parent.parent
    runs = [subprocess.run([sys.executable, "-c", script], cwd=top, capture_output=True, text=True, check=True,
                           env={**os.environ, "PYTHONHASHSEED": seed}).stdout for seed in ("1", "977")]
    assert runs[0] == runs[1]
