"""Replies as short as a maintainer's: quote budget, quoted lines per comment, the why once per rule,
the re-review opening lines, and every reply parsing, threading and passing git send-email --dry-run."""

from __future__ import annotations

import email
import re
import shutil
import subprocess
from email.message import EmailMessage
from email.policy import default
from pathlib import Path

import pytest
import test_replies as tr
import test_thread_comments as tc

from pmureview.analyses.thread_comments import review_comments
from pmureview.api import Options, review
from pmureview.report.reply import CONTEXT, QUOTE_SHARE, STATEMENT_BACK, write_replies
from pmureview.rule.model import Severity
from pmureview.testing import discover_cases

ROOT = Path(__file__).resolve().parent.parent / "fixtures" / "series"
SENDER = "Rev Iewer <rev@example.net>"


def _parse(path: Path) -> EmailMessage:
    msg = email.message_from_bytes(path.read_bytes(), policy=default)
    assert isinstance(msg, EmailMessage) and not msg.defects
    return msg


def _added_quotes(lines: list[str]) -> int:
    return sum(1 for ln in lines if ln.startswith("> +") and not ln.startswith("> +++"))


def _comments(body: str) -> list[list[str]]:
    """The quote runs of a reply body, one per comment under them."""
    runs: list[list[str]] = [[]]
    for ln in body.splitlines():
        if ln.startswith(">") or ln == "[...]":
            runs[-1].append(ln)
        elif ln.strip() and runs[-1]:
            runs.append([])
    return [r for r in runs if r]


@pytest.fixture(scope="module")
def fixture_replies(tmp_path_factory: pytest.TempPathFactory) -> list[tuple[Path, int]]:
    """Replies to every bad fixture case (hunk-only): (reply file, added lines of its patch)."""
    out_root = tmp_path_factory.mktemp("replies")
    mp = pytest.MonkeyPatch()
    mp.setenv("SOURCE_DATE_EPOCH", "1765313467")
    out: list[tuple[Path, int]] = []
    try:
        for case in (c for c in discover_cases(ROOT) if c.kind == "bad"):
            r = review([str(case.root / "series.mbox")],
                       Options(select=tuple(case.rules), fail_on=Severity.CHECK, track_versions=False))
            added = {p.number: sum(len(fc.added_lines()) for fc in p.files) for p in r.series.patches}
            for path in write_replies(r, out_root / case.name.replace("/", "_"), sender=SENDER):
                out.append((path, added.get(int(path.name[:4]), 0)))
    finally:
        mp.undo()
    return out


def test_quote_budget_and_lines_per_comment_on_the_fixtures(fixture_replies: list[tuple[Path, int]]) -> None:
    assert len(fixture_replies) > 50
    quoted = added_total = 0
    for path, added in fixture_replies:
        body = _parse(path).get_content()
        lines = body.splitlines()
        q = _added_quotes(lines)
        # at most two thirds of the patch's added lines in one reply
        assert q * QUOTE_SHARE[1] <= added * QUOTE_SHARE[0] or path.name.startswith("0000"), (path, q, added)
        for run in _comments(body):
            # the lines a comment is about: its range (ends kept around a cut) plus the statement start
            assert _added_quotes(run) <= CONTEXT + STATEMENT_BACK, (path, run)
        if not path.name.startswith("0000"):
            quoted, added_total = quoted + q, added_total + added
    ratio = quoted / added_total
    print(f"\nreply quote ratio on the fixtures: {quoted}/{added_total} added lines = {ratio:.1%}")
    assert ratio < 0.2  # 12% when written; the reply format before terse quoting quoted 46%


def test_every_fixture_reply_threads(fixture_replies: list[tuple[Path, int]]) -> None:
    for path, _ in fixture_replies:
        msg = _parse(path)
        assert msg["Subject"].startswith("Re: ") and msg["Message-ID"]
        if msg["In-Reply-To"]:
            assert msg["References"].split()[-1] == msg["In-Reply-To"]


def test_the_why_once_per_rule_even_when_notes_differ(tmp_path: Path) -> None:
    same = [tr.f("style/continuation-operator", Severity.CHECK, line=n, note=f"Operators end line {n}.")
            for n in (43, 49)]
    body = _parse(write_replies(tr.make_review(same), tmp_path / "o", sender=SENDER)[0]).get_content()
    assert body.count("Operators end line") == 1
    assert body.count("[pmureview: style/continuation-operator]") == 2


def test_over_budget_comments_name_their_line(tmp_path: Path) -> None:
    # a three-line hunk: two lines may be quoted, the third comment names its line instead
    h = tr.hunk(1, 1, ["+\ta();", "+\tb();", "+\tc();"])
    fc = tr.FileChange(path="x.c", old_path="x.c", kind=tr.ChangeKind.MODIFIED, hunks=(h,),
                       diff_header="diff --git a/x.c b/x.c")
    s = tr.make_series()
    p2 = tr.Patch(number=2, mail=s.patches[1].mail, message="m", message_start=12, files=(fc,))
    s = tr.Series(revision=5, total=3, patches=(s.patches[0], p2, s.patches[2]), cover=s.cover)
    found = [tr.f("style/continuation-operator", Severity.CHECK, path="x.c", line=n, message=f"point {n}")
             for n in (1, 3, 2)]
    body = _parse(write_replies(tr.make_review(found, s), tmp_path / "o", sender=SENDER)[0]).get_content()
    assert _added_quotes(body.splitlines()) == 2
    assert "x.c:3: Point 3." in body


def test_re_review_opens_with_the_open_comments(tmp_path: Path) -> None:
    open_comments = review_comments(tc.V1, tc.thread(), tc.V2, {1: 1, 2: 2})
    assert [c.kind for c in open_comments] == ["promised", "unanswered"]
    empty = tr.Review(series=tc.V2, findings=[], rules={}, mode="hunk-only", options=Options())
    written = write_replies(empty, tmp_path / "o", sender=SENDER, earlier_comments=open_comments)
    assert [p.name for p in written] == ["0001-reply.eml"]  # no finding, but two comments still open
    msg = _parse(written[0])
    assert msg["In-Reply-To"] == "<v2-1@example.org>"
    body = msg.get_content().splitlines()
    assert body[0] == "Oliver's comment on v1 about `return 0;` still applies (agreed, not done)."
    assert body[1] == "Oliver's comment on v1 about `pr_info(\"pmu: loading state\\n\");` still applies."
    # and in front of the findings when there are some
    f = tr.f("series/debug-scaffolding", patch=1, path=tc.PATH, line=53, message="a debug print is left in")
    r = tr.Review(series=tc.V2, findings=[f], rules={}, mode="hunk-only", options=Options())
    body = _parse(write_replies(r, tmp_path / "p", sender=SENDER, earlier_comments=open_comments)[0]).get_content()
    lines = body.splitlines()
    assert lines[0].startswith("Oliver's comment on v1") and "> +\tpr_info(\"pmu: loading state\\n\");" in lines
    assert re.search(r"^A debug print is left in\.$", body, re.M)


def _send_email_ok() -> bool:
    if not shutil.which("git") or subprocess.run(["git", "send-email", "--help"], capture_output=True).returncode:
        return False
    return subprocess.run(["perl", "-MMail::Address", "-e1"], capture_output=True).returncode == 0


@pytest.mark.skipif(not _send_email_ok(), reason="git send-email (git-email + libmailtools-perl) not installed")
def test_fixture_replies_pass_git_send_email_dry_run(fixture_replies: list[tuple[Path, int]], tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    files = [str(p) for p, _ in fixture_replies]
    r = subprocess.run(["git", "send-email", "--dry-run", "--to=x@example.org", f"--from={SENDER}",
                        "--confirm=never", "--no-validate", "--suppress-cc=all", *files],
                       cwd=repo, capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL)
    assert r.returncode == 0, r.stderr
    assert r.stdout.count("Dry-OK. Log says:") == len(files)
