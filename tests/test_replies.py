"""Reply mails: headers, threading, trimmed quotes, wrapping, file safety, and a real git send-email."""

from __future__ import annotations

import email
import os
import re
import shutil
import subprocess
from datetime import UTC, datetime
from email.message import EmailMessage
from email.policy import default
from email.utils import getaddresses
from pathlib import Path

import pytest

from pmureview.api import Options, Review
from pmureview.errors import UsageError
from pmureview.report.reply import mutt_date, write_replies
from pmureview.rule.model import Confidence, Finding, Location, RuleMeta, Scope, Severity
from pmureview.series.model import ChangeKind, CoverLetter, FileChange, Hunk, HunkLine, Message, Patch, Series

SENDER = "Rev Iewer <rev@example.net>"
C_FILE = "arch/arm64/kvm/pmu-direct.c"
H_FILE = "arch/arm64/include/asm/kvm_pmu.h"
LONG_NOTE = (
    "Negative-polarity fine-grained trap bits trap when they are clear, so OR-ing the whole mask into "
    "the register value untraps them instead of trapping them. Should this go through the nMASK "
    "handling in config.c rather than a helper of its own?"
)


def hunk(old_start: int, new_start: int, lines: list[str], section: str = "") -> Hunk:
    old, new, out = old_start, new_start, []
    for raw in lines:
        kind, text = raw[:1], raw[1:]
        out.append(HunkLine(kind, text, old if kind != "+" else None, new if kind != "-" else None))
        old += kind != "+"
        new += kind != "-"
    return Hunk(
        old_start,
        sum(k.kind != "+" for k in out),
        new_start,
        sum(k.kind != "-" for k in out),
        section,
        tuple(out),
    )


C_HUNK = hunk(
    40,
    40,
    [
        " #include <asm/kvm_pmu.h>",
        " ",
        "+bool kvm_vcpu_pmu_is_partitioned(struct kvm_vcpu *vcpu)",
        "+{",
        "+\tstruct arm_pmu *pmu = vcpu->kvm->arch.arm_pmu;",
        "+",
        "+\tif (!pmu)",
        "+\t\treturn false;",
        "+",
        "+\t/* partitioning needs FEAT_HPMN0 */",
        "+\treturn pmu->hpmn_max < pmu->num_events &&",
        "+\t       false;",
        "+}",
    ],
)
C_HUNK2 = hunk(
    90,
    101,
    [" int x;", "+u64 kvm_pmu_fgt_bits(void)", "+{", "+\treturn HDFGRTR_EL2_PMOVS;", "+}"],
    section="static int y;",
)
H_HUNK = hunk(
    96,
    96,
    [" void kvm_pmu_host_counters_disable(void);", " ", "+bool kvm_vcpu_pmu_use_fgt(struct kvm_vcpu *vcpu);"],
    section="u64 kvm_pmu_guest_counter_mask(struct arm_pmu *pmu);",
)


def mail(n: int, total: int, **kw) -> Message:
    base = dict(
        msgid=f"20251209.{n}-coltonlewis@example.com",
        subject=f"[PATCH v5 {n:02d}/{total}] KVM: arm64: Set up FGT for Partitioned PMU",
        title="KVM: arm64: Set up FGT for Partitioned PMU",
        author_name="Ann Author",
        author_email="ann@example.org",
        date="Tue, 09 Dec 2025 20:51:07 +0000",
        to=("Ann Author <ann@example.org>", "kvmarm@lists.linux.dev"),
        cc=(
            "Maint Ainer <maint@example.org>, kvmarm@lists.linux.dev",
            SENDER,
            "linux-kernel@vger.kernel.org",
        ),
        in_reply_to="20251209.0-coltonlewis@example.com",
        references=("20251209.0-coltonlewis@example.com",),
        revision=5,
        counter=n,
        total=total,
    )
    base.update(kw)
    return Message(**base)


MESSAGE = (
    "Utilise fine grain traps to avoid trapping common PMU accesses.\n\n"
    "Untrapped:\n* PMCR_EL0\n* PMOVS_EL0\n\n"
    "NOTE: This patch temporarily forces kvm_vcpu_pmu_is_partitioned() to be false."
)


def make_series(*, cover: bool = True, total: int = 3, **mail_kw) -> Series:
    files = (
        FileChange(
            path=H_FILE,
            old_path=H_FILE,
            kind=ChangeKind.MODIFIED,
            hunks=(H_HUNK,),
            diff_header=f"diff --git a/{H_FILE} b/{H_FILE}",
        ),
        FileChange(
            path=C_FILE,
            old_path=C_FILE,
            kind=ChangeKind.MODIFIED,
            hunks=(C_HUNK, C_HUNK2),
            diff_header=f"diff --git a/{C_FILE} b/{C_FILE}",
        ),
    )
    patches = tuple(
        Patch(number=n, mail=mail(n, total, **mail_kw), message=MESSAGE, message_start=12, files=files)
        for n in (1, 2, 3)[:total]
    )
    cov = None
    if cover:
        cov = CoverLetter(
            mail=mail(
                0,
                total,
                subject=f"[PATCH v5 00/{total}] KVM: arm64: Partitioned PMU",
                in_reply_to=None,
                references=(),
                msgid="20251209.0-coltonlewis@example.com",
            ),
            body="This series partitions the PMU.\n\nbase-commit: 1234",
        )
    return Series(revision=5, total=total, patches=patches, cover=cov, source="test")


def f(
    rule: str,
    sev: Severity = Severity.WARNING,
    *,
    patch: int = 2,
    path: str | None = C_FILE,
    line: int | None = None,
    section: str | None = None,
    note: str | None = None,
    message: str | None = None,
) -> Finding:
    return Finding(
        rule=rule,
        severity=sev,
        confidence=Confidence.HIGH,
        message=message or f"{rule} fired on this line",
        note=note,
        location=Location(patch=patch, path=path, line=line, section=section),
    )


RULES = {
    "kvmarm/fgt-trap-polarity": Scope.FILE,
    "series/debug-scaffolding": Scope.FILE,
    "series/commit-message-claim-unbacked": Scope.PATCH,
    "series/helper-without-user": Scope.SERIES,
    "style/continuation-operator": Scope.FILE,
}


def make_review(findings: list[Finding], series: Series | None = None) -> Review:
    rules = {r: RuleMeta(id=r, title=r, severity=Severity.WARNING, scope=s) for r, s in RULES.items()}
    return Review(
        series=series or make_series(),
        findings=sorted(findings, key=Finding.sort_key),
        rules=rules,
        mode="hunk-only",
        options=Options(),
    )


FINDINGS = [
    f(
        "series/debug-scaffolding",
        line=51,
        message="kvm_vcpu_pmu_is_partitioned() is forced to false by `&& false`",
        note="Debug scaffolding like this should not be merged: it hides the feature.",
    ),
    f(
        "kvmarm/fgt-trap-polarity",
        Severity.ERROR,
        line=104,
        note=LONG_NOTE,
        message="kvm_pmu_fgt_bits() ORs HDFGRTR_EL2.PMOVS, a negative-polarity bit, into the trap value",
    ),
    f(
        "series/debug-scaffolding",
        patch=2,
        path=None,
        section="message",
        line=7,
        message="The commit message announces a temporary debug hack",
    ),
    f("style/continuation-operator", Severity.CHECK, path=H_FILE, line=98, patch=3),
]
SERIES_FINDING = f(
    "series/helper-without-user",
    patch=0,
    path=None,
    line=None,
    message="kvm_vcpu_pmu_use_fgt() is declared in patch 3 and never called in the series",
)


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No git identity from the machine: a temp HOME and no system config."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(home / ".gitconfig"))
    monkeypatch.delenv("SOURCE_DATE_EPOCH", raising=False)
    for var in ("GIT_AUTHOR_NAME", "GIT_AUTHOR_EMAIL", "GIT_COMMITTER_NAME", "GIT_COMMITTER_EMAIL", "EMAIL"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def parse(path: Path) -> EmailMessage:
    msg = email.message_from_bytes(path.read_bytes(), policy=default)
    assert isinstance(msg, EmailMessage)
    return msg


def body_of(msg: EmailMessage) -> str:
    return msg.get_content()


def flat(text: str) -> str:
    return " ".join(text.split())


def test_one_reply_per_patch_with_findings_and_headers(env: Path) -> None:
    out = env / "out"
    written = write_replies(make_review([*FINDINGS, SERIES_FINDING]), out, sender=SENDER)
    assert [p.name for p in written] == ["0000-reply.eml", "0002-reply.eml", "0003-reply.eml"]  # 1 is clean
    for path in written:
        msg = parse(path)
        assert not msg.defects
        assert msg["From"] == SENDER
        assert msg["MIME-Version"] == "1.0"
        assert msg.get_content_type() == "text/plain" and msg.get_content_charset() == "utf-8"
        assert msg["Content-Transfer-Encoding"] == "8bit"
        assert msg["Message-ID"].startswith("<") and msg["Date"]
    p2 = parse(out / "0002-reply.eml")
    assert p2["Subject"] == "Re: [PATCH v5 02/3] KVM: arm64: Set up FGT for Partitioned PMU"
    assert p2["In-Reply-To"] == "<20251209.2-coltonlewis@example.com>"
    assert p2["References"].split() == [
        "<20251209.0-coltonlewis@example.com>",
        "<20251209.2-coltonlewis@example.com>",
    ]
    assert p2["To"] == "Ann Author <ann@example.org>"
    cc = [a for _, a in getaddresses([p2["Cc"]])]
    assert cc == [
        "kvmarm@lists.linux.dev",
        "maint@example.org",
        "linux-kernel@vger.kernel.org",
    ]  # no dups, no sender
    cover = parse(out / "0000-reply.eml")
    assert cover["Subject"] == "Re: [PATCH v5 00/3] KVM: arm64: Partitioned PMU"
    assert cover["In-Reply-To"] == "<20251209.0-coltonlewis@example.com>"
    assert "never called in the series" in flat(body_of(cover))
    assert "never called" not in flat(body_of(p2))
    ids = {parse(p)["Message-ID"] for p in written}
    assert len(ids) == 3


def test_reply_to_wins_and_reply_subject_kept(env: Path) -> None:
    series = make_series(reply_to="List Owner <owner@example.org>")
    written = write_replies(make_review(FINDINGS[:1], series), env / "o", sender=SENDER)
    msg = parse(written[0])
    assert msg["To"] == "List Owner <owner@example.org>"
    assert "ann@example.org" in msg["Cc"]  # the author was in the original To


def test_body_quotes_attribution_and_snips(env: Path) -> None:
    written = write_replies(make_review(FINDINGS), env / "o", sender=SENDER)
    body = body_of(parse(written[0]))
    lines = body.splitlines()
    assert lines[0] == "On Tue, Dec 09, 2025 at 08:51:07PM +0000, Ann Author wrote:"
    # the commit-message finding quotes its line, first (message findings sort first)
    assert lines[1] == "> NOTE: This patch temporarily forces kvm_vcpu_pmu_is_partitioned() to be false."
    # the file: diff header, hunk header, a snip, at most six lines of context, the anchored line
    i = lines.index(f"> diff --git a/{C_FILE} b/{C_FILE}")
    assert lines[i + 1] == "> @@ -40,2 +40,13 @@"
    assert lines[i + 2] == "[...]"
    quoted = []
    for ln in lines[i + 3 :]:
        if not ln.startswith(">"):
            break
        quoted.append(ln)
    # only the lines the comment is about: the anchored line and the start of its statement
    assert quoted == ["> +\treturn pmu->hpmn_max < pmu->num_events &&", "> +\t       false;"]
    # the second hunk of the same file: its own header, a cut, then the comment under the anchored line
    j = lines.index("> @@ -90 +101,5 @@ static int y;")  # git leaves out a length of 1
    assert lines[j + 1 : j + 3] == ["[...]", "> +\treturn HDFGRTR_EL2_PMOVS;"] and lines[j + 3] == ""
    assert lines[j + 4].startswith("kvm_pmu_fgt_bits() ORs HDFGRTR_EL2.PMOVS")
    assert "[pmureview: kvmarm/fgt-trap-polarity]" in lines
    assert "[pmureview: series/debug-scaffolding]" in lines


def test_prose_wrapped_quotes_untouched_no_trailers(env: Path) -> None:
    long_line = "+\tval |= " + " | ".join(f"HDFGRTR_EL2_PMEVCNTR{n}" for n in range(8)) + ";"
    series = make_series()
    h = hunk(1, 1, [long_line, "+\tfoo();", "+\tbar();"])  # one of three added lines: within the 2/3 quote budget
    fc = FileChange(
        path="x.c", old_path="x.c", kind=ChangeKind.MODIFIED, hunks=(h,), diff_header="diff --git a/x.c b/x.c"
    )
    p2 = series.patches[1]
    series = Series(
        revision=5,
        total=3,
        patches=(
            series.patches[0],
            Patch(number=2, mail=p2.mail, message=p2.message, message_start=12, files=(fc,)),
            series.patches[2],
        ),
        cover=series.cover,
    )
    finding = f(
        "kvmarm/fgt-trap-polarity",
        path="x.c",
        line=1,
        note=LONG_NOTE + "\n\n" + LONG_NOTE,
        message="This OR sets eight negative-polarity bits of HDFGRTR_EL2 at once, which untraps them all",
    )
    body = body_of(
        parse(write_replies(make_review([finding], series), env / "o", sender=SENDER, signature="Rev")[0])
    )
    lines = body.splitlines()
    assert "> " + long_line in lines  # quoted lines are never rewrapped
    prose = [ln for ln in lines if not ln.startswith(">") and not ln.startswith("On ")]
    assert all(len(ln) <= 72 for ln in prose), [ln for ln in prose if len(ln) > 72]
    assert sum(1 for ln in prose if ln) > 6  # the note really was wrapped into several lines
    assert not any(re.match(r"^[A-Za-z-]+-by: ", ln) for ln in lines)  # no Reviewed-by or other trailer
    assert lines[-2:] == ["-- ", "Rev"]


def test_no_cover_series_findings_go_to_patch_one(env: Path) -> None:
    series = make_series(cover=False)
    written = write_replies(make_review([SERIES_FINDING, FINDINGS[0]], series), env / "o", sender=SENDER)
    assert [p.name for p in written] == ["0001-reply.eml", "0002-reply.eml"]
    body = body_of(parse(written[0]))
    assert "never called in the series" in flat(body) and "[pmureview: series/helper-without-user]" in body


def test_no_message_id_means_no_threading_headers(env: Path) -> None:
    series = make_series(msgid="", references=(), in_reply_to=None)
    msg = parse(write_replies(make_review(FINDINGS[:1], series), env / "o", sender=SENDER)[0])
    assert msg["In-Reply-To"] is None and msg["References"] is None and msg["Message-ID"]


def test_message_finding_quotes_its_paragraph_and_engine_findings_stay_out(env: Path) -> None:
    long_msg = "\n".join(f"line {i} of a long paragraph" for i in range(1, 13))
    series = make_series()
    p2 = series.patches[1]
    patch = Patch(
        number=2, mail=p2.mail, message=long_msg + "\n\nAnother paragraph.", message_start=12, files=p2.files
    )
    series = Series(
        revision=5, total=3, patches=(series.patches[0], patch, series.patches[2]), cover=series.cover
    )
    engine = [
        f("pmureview/missing-patch", patch=4, path=None, message="patch 4/3 is missing"),
        f("pmureview/internal-error", Severity.ERROR, patch=0, path=None, message="rule x raised"),
    ]
    hit = f(
        "series/commit-message-claim-unbacked", path=None, section="message", line=9, message="Says trapped"
    )
    written = write_replies(make_review([hit, *engine], series), env / "o", sender=SENDER)
    assert [p.name for p in written] == ["0002-reply.eml"]  # no cover reply just for the engine's findings
    lines = body_of(parse(written[0])).splitlines()
    # the anchored line with at most two lines either side of it, cut with [...] (no sentence end here)
    assert lines[1:8] == ["[...]", *(f"> line {i} of a long paragraph" for i in range(7, 12)), "[...]"]
    assert "missing" not in " ".join(lines) and "raised" not in " ".join(lines)


def test_the_why_is_given_once_per_mail(env: Path) -> None:
    same = [
        f("style/continuation-operator", Severity.CHECK, line=n, note="Operators end the line.")
        for n in (49, 54)
    ]
    body = body_of(parse(write_replies(make_review(same), env / "o", sender=SENDER)[0]))
    assert body.count("Operators end the line.") == 1
    assert body.count("[pmureview: style/continuation-operator]") == 2


def test_a_run_of_the_same_point_is_one_comment(env: Path) -> None:
    same = [f("style/continuation-operator", Severity.CHECK, line=n, note="Operators end the line.")
            for n in (49, 50)]
    body = body_of(parse(write_replies(make_review(same), env / "o", sender=SENDER)[0]))
    assert body.count("[pmureview: style/continuation-operator]") == 1


def test_clean_review_writes_nothing_and_needs_no_identity(env: Path) -> None:
    assert write_replies(make_review([]), env / "o", sender=None) == []


def test_sender_from_git_config(env: Path) -> None:
    subprocess.run(["git", "config", "--global", "user.name", "Git User"], check=True)
    subprocess.run(["git", "config", "--global", "user.email", "git@example.net"], check=True)
    msg = parse(write_replies(make_review(FINDINGS[:1]), env / "a", sender=None)[0])
    assert msg["From"] == "Git User <git@example.net>"
    subprocess.run(["git", "config", "--global", "sendemail.from", "Send Er <send@example.net>"], check=True)
    msg = parse(write_replies(make_review(FINDINGS[:1]), env / "b", sender=None)[0])
    assert msg["From"] == "Send Er <send@example.net>"
    msg = parse(write_replies(make_review(FINDINGS[:1]), env / "c", sender=SENDER)[0])
    assert msg["From"] == SENDER


def test_no_identity_is_a_usage_error(env: Path) -> None:
    with pytest.raises(UsageError) as exc:
        write_replies(make_review(FINDINGS[:1]), env / "o", sender=None)
    assert "\n" not in str(exc.value)
    with pytest.raises(UsageError):
        write_replies(make_review(FINDINGS[:1]), env / "o", sender="not an address")


def test_never_overwrites(env: Path) -> None:
    out = env / "o"
    out.mkdir()
    (out / "0002-reply.eml").write_text("mine\n")
    outside = env / "outside.txt"
    outside.write_text("keep\n")
    (out / "0002-reply.1.eml").symlink_to(outside)
    written = write_replies(make_review(FINDINGS[:1]), out, sender=SENDER)
    assert [p.name for p in written] == ["0002-reply.2.eml"]
    assert (out / "0002-reply.eml").read_text() == "mine\n" and outside.read_text() == "keep\n"


def test_hostile_message_id_and_subject(env: Path) -> None:
    series = make_series(
        msgid="../../../../tmp/evil>\r\nBcc: victim@example.com\r\n<x",
        subject="[PATCH 2/3] ../../etc/passwd\r\nBcc: victim@example.com",
        author_name="Eve\r\nBcc: victim@example.com",
    )
    out = env / "o"
    written = write_replies(make_review(FINDINGS[:1], series), out, sender=SENDER)
    assert [p.parent for p in written] == [out.resolve()]
    assert sorted(os.listdir(env)) == ["home", "o"]
    msg = parse(written[0])
    assert msg["Bcc"] is None  # CR/LF in mail data never makes a header of its own
    assert msg["In-Reply-To"].count("<") == 1
    raw = written[0].read_bytes()
    assert b"\nBcc:" not in raw
    assert "\n" not in msg["Subject"] and msg["Subject"].startswith("Re: [PATCH 2/3] ../../etc/passwd")


def test_deterministic_with_source_date_epoch(env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1765313467")
    a = write_replies(make_review([*FINDINGS, SERIES_FINDING]), env / "a", sender=SENDER)
    b = write_replies(make_review([*FINDINGS, SERIES_FINDING]), env / "b", sender=SENDER)
    assert [p.read_bytes() for p in a] == [p.read_bytes() for p in b]
    msg = parse(a[1])
    assert msg["Date"] == "Tue, 09 Dec 2025 20:51:07 +0000"
    assert msg["Message-ID"].endswith("@example.net>")


def test_mutt_date_keeps_the_offset() -> None:
    from datetime import timedelta, timezone

    dt = datetime(2025, 12, 9, 13, 8, 13, tzinfo=timezone(timedelta(hours=-8)))
    assert mutt_date(dt) == "Tue, Dec 09, 2025 at 01:08:13PM -0800"
    assert mutt_date(datetime(2025, 1, 2, 0, 5, 0, tzinfo=UTC)) == "Thu, Jan 02, 2025 at 12:05:00AM +0000"


def _send_email_available() -> bool:
    if not shutil.which("git"):
        return False
    r = subprocess.run(["git", "send-email", "--help"], capture_output=True, text=True)
    if r.returncode != 0:
        return False
    probe = subprocess.run(["perl", "-MMail::Address", "-e1"], capture_output=True)
    return probe.returncode == 0


@pytest.mark.skipif(
    not _send_email_available(), reason="git send-email (git-email + libmailtools-perl) not installed"
)
def test_git_send_email_dry_run_keeps_headers(env: Path) -> None:
    repo = env / "repo"
    repo.mkdir()
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    written = write_replies(make_review([*FINDINGS, SERIES_FINDING]), env / "out", sender=SENDER)
    r = subprocess.run(
        [
            "git",
            "send-email",
            "--dry-run",
            "--to=x@example.org",
            f"--from={SENDER}",
            "--confirm=never",
            "--no-validate",
            "--suppress-cc=self",
            *map(str, written),
        ],
        cwd=repo,
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )
    assert r.returncode == 0, r.stderr
    # per mail: "Dry-OK. Log says:", the SMTP envelope lines, then the headers up to a blank line
    printed = [
        re.search(r"^From: .*?(?=\n\n)", part, re.M | re.S).group(0)
        for part in r.stdout.split("Dry-OK. Log says:")[1:]
    ]
    assert len(printed) == len(written), r.stdout
    for path, block in zip(written, printed, strict=True):
        sent = email.message_from_string(block + "\n\n", policy=default)
        orig = parse(path)
        for name in (
            "From",
            "Cc",
            "Subject",
            "Message-ID",
            "In-Reply-To",
            "References",
            "MIME-Version",
            "Content-Type",
            "Content-Transfer-Encoding",
        ):
            got, want = sent[name], orig[name]
            if name == "Cc":
                got = sorted(a.lower() for _, a in getaddresses([str(got or "")]))
                want = sorted(a.lower() for _, a in getaddresses([str(want or "")]))
            elif name == "Content-Type":
                got, want = str(got).replace('"', ""), str(want).replace('"', "")
            assert " ".join(str(got).split()) == " ".join(str(want).split()), (path.name, name, block)
        assert "x@example.org" in str(sent["To"])
