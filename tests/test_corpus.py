"""The hostile-input corpus: every broken or odd input ends in a review (exit 0/1) or one line + exit 2.

`tests/corpus/` holds the small inputs (bytes exact: see its .gitattributes); the big ones (200 files,
a 50,000-line hunk) are generated here. The table CASES says, beside each input, what must happen:
the exit code, the substring of the one stderr line (exit 2), and the exact findings of
`--select series/debug-scaffolding` (the engine's own `pmureview/*` findings always come too).
Every case is then also run through *all* rules, in hunk-only and full mode, in the terminal format
and with `--reply-dir`: none of that may raise, print a traceback or give `pmureview/internal-error`.
"""

from __future__ import annotations

import email
import email.policy
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from mailfactory import patch_mail, simple_diff

from pmureview.entry import main
from pmureview.series.mail import split_mbox
from pmureview.series.model import Hunk, HunkLine
from pmureview.series.parse import parse_series
from pmureview.views.image import apply_hunks, build_views

CORPUS = Path(__file__).resolve().parent / "corpus"
SCAF = "series/debug-scaffolding"
FOO = "arch/arm64/kvm/foo.c"
SC = simple_diff(added=("\tif (0)", "\t\tbar();"))  # `if (0)` lands on post-image line 12


# -- generated inputs (too big to commit) ---------------------------------------------------------

def many_files() -> bytes:
    """One patch touching 200 files; every 10th adds `if (0)` (line 12), the rest a plain call."""
    diff = "".join(simple_diff(path=f"drivers/pmu/f{i:03d}.c", added=("\tif (0)", "\t\tbar();") if i % 10 == 0
                               else ("\tbar();",)) for i in range(200))
    return patch_mail(subject="[PATCH] drivers: pmu: touch 200 files", diff=diff).encode()


BIG = 50_000
BIG_MARKS = (1, 25_000, BIG)  # `#if 0` on these post-image lines


def big_hunk() -> bytes:
    """A new file of 50,000 lines in one hunk."""
    lines = [f"#if 0 /* {n} */" if n in BIG_MARKS else f"int v{n} = {n};" for n in range(1, BIG + 1)]
    diff = ("diff --git a/drivers/pmu/big.c b/drivers/pmu/big.c\nnew file mode 100644\nindex 0000000..1111111\n"
            f"--- /dev/null\n+++ b/drivers/pmu/big.c\n@@ -0,0 +1,{BIG} @@\n" + "".join(f"+{ln}\n" for ln in lines))
    return patch_mail(subject="[PATCH] drivers: pmu: a big file", diff=diff).encode()


GENERATED: dict[str, Callable[[], bytes]] = {"200-files.patch": many_files, "50000-line-hunk.patch": big_hunk}


# -- the expected outcomes ------------------------------------------------------------------------

@dataclass(frozen=True)
class Expect:
    code: int
    stderr: str | None = None  # exit 2: a substring of the one `pmureview: error:` line
    findings: tuple[tuple[str, int, str | None, int | None], ...] = ()  # (rule, patch, path, line), exact
    check: Callable[[dict], None] | None = None  # further assertions on the JSON document
    slow_all_rules: bool = False  # all-rules runs only with --slow (minutes of tree walks otherwise)


def _crlf(doc: dict) -> None:
    assert [p["subject"] for p in doc["series"]["patches"]] == [
        "[PATCH 1/2] KVM: arm64: crlf one", "[PATCH 2/2] KVM: arm64: crlf two"]
    assert "\r" not in json.dumps(doc)


def _long_subject(doc: dict) -> None:
    assert len(doc["series"]["subject"]) > 2000 and doc["series"]["subject"].endswith(" end")


def _hostile_msgid(doc: dict) -> None:
    assert doc["series"]["patches"][0]["msgid"] == "../../etc/ pass wd/..@x"


def _duplicate(doc: dict) -> None:
    assert [p["msgid"] for p in doc["series"]["patches"]] == ["d1@x", "d2@x"]  # the first copy is kept
    assert doc["series"]["duplicates"] == 1


def _reply_skipped(doc: dict) -> None:
    assert [p["msgid"] for p in doc["series"]["patches"]] == ["r1@x", "r2@x"]


def _no_hunks(doc: dict) -> None:
    assert doc["series"]["patches"][0]["files"] == [{"path": "a.c", "old_path": None, "kind": "mode-only"}]


def _nul(doc: dict) -> None:
    assert doc["series"]["subject"] == "[PATCH] KVM: arm64: nul\x00bytes"


def _charset(doc: dict) -> None:
    assert doc["series"]["patches"][0]["files"][0]["path"] == FOO


def _two_hundred(doc: dict) -> None:
    assert len(doc["series"]["patches"][0]["files"]) == 200


CASES: dict[str, Expect] = {
    # line ends are normalised: the same finding as with LF, no \r anywhere
    "crlf.mbox": Expect(1, findings=((SCAF, 1, FOO, 12),), check=_crlf),
    # the marker is not a line of the file: `#if 0` stays on post-image line 3
    "no-newline-at-eof.patch": Expect(1, findings=((SCAF, 1, "a.c", 3),)),
    "200-files.patch": Expect(1, findings=tuple((SCAF, 1, f"drivers/pmu/f{i:03d}.c", 12) for i in range(0, 200, 10)),
                              check=_two_hundred),
    "50000-line-hunk.patch": Expect(1, findings=tuple((SCAF, 1, "drivers/pmu/big.c", n) for n in BIG_MARKS),
                                    slow_all_rules=True),
    # tree-sitter sees mostly ERROR nodes; the line-based rules still work (full mode adds
    # pmureview/unparsable, checked in test_kernel_macros_full_mode_says_unparsable)
    "kernel-macros.patch": Expect(1, findings=((SCAF, 1, "arch/arm64/kvm/macros.c", 7),)),
    "long-subject.patch": Expect(1, findings=((SCAF, 1, FOO, 12),), check=_long_subject),
    "hostile-msgid.patch": Expect(1, findings=((SCAF, 1, FOO, 12),), check=_hostile_msgid),
    # two mails claim 1/2: the earlier is kept, the other named in a check-level finding
    "duplicate-number.mbox": Expect(1, findings=(("pmureview/duplicate-patch", 1, None, None), (SCAF, 1, FOO, 12)),
                                    check=_duplicate),
    # the `Re:` mail quotes and carries a diff of its own (`#if 0`): skipped, not reviewed
    "reply-mixed.mbox": Expect(1, findings=((SCAF, 1, FOO, 12),), check=_reply_skipped),
    "cover-only.mbox": Expect(2, stderr="a cover letter with no patches"),
    # undecodable base64 yields no diff: nothing to review
    "broken-base64.eml": Expect(2, stderr="no patch (no mail with a diff)"),
    # an unknown charset falls back to UTF-8 (then Latin-1): reviewed as usual
    "unknown-charset.eml": Expect(1, findings=((SCAF, 1, FOO, 12),), check=_charset),
    # no closing boundary, bogus charset, broken base64 in the attachment: no diff found
    "multipart-broken.eml": Expect(2, stderr="no patch (no mail with a diff)"),
    "headers-only.eml": Expect(2, stderr="no patch (no mail with a diff)"),
    # the hunk header promises 10 lines, 1 follows: the diff is reported, the run goes on
    "truncated-hunk.patch": Expect(0, findings=(("pmureview/unparsable", 1, None, None),)),
    # a `diff --git` with ---/+++ but no @@: a file without hunks (mode-only), nothing to say
    "no-hunks.patch": Expect(0, check=_no_hunks),
    # NUL in subject, message and code: carried as data, shown escaped
    "nul-bytes.patch": Expect(1, findings=((SCAF, 1, FOO, 12),), check=_nul),
    # `@@ -9999999999,1 +9999999999,1 @@`: that file is skipped with a finding (it would need
    # 10^10 lines in memory); the other file of the patch is reviewed
    # a hunk 900,000 lines down: hunk-only keeps the number; full mode finds `int y;` in the 2-line
    # a.c by offset, as git apply does, without walking 900,000 candidate positions
    "far-hunk.patch": Expect(1, findings=((SCAF, 1, "a.c", 900_001),)),
    "huge-line-number.patch": Expect(1, findings=(("pmureview/unparsable", 1, None, None), (SCAF, 1, FOO, 12))),
}


def test_every_corpus_file_has_an_expectation() -> None:
    on_disk = {p.name for p in CORPUS.iterdir() if not p.name.startswith(".")}
    assert on_disk | set(GENERATED) == set(CASES)
    assert b"\r\n" in (CORPUS / "crlf.mbox").read_bytes()  # not normalised by git


def _input(name: str, tmp_path: Path) -> Path:
    if name in GENERATED:
        path = tmp_path / name
        path.write_bytes(GENERATED[name]())
        return path
    return CORPUS / name


def run(capsys, *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def assert_clean_stderr(err: str) -> None:
    assert "Traceback" not in err and "internal error" not in err, err


def assert_one_line_error(code: int, err: str, needle: str) -> None:
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("pmureview: error:") and needle in lines[0], err
    assert "Traceback" not in err and "internal error" not in err, err


@pytest.mark.parametrize("name", sorted(CASES))
def test_corpus_case(name: str, tmp_path: Path, capsys) -> None:
    exp = CASES[name]
    code, out, err = run(capsys, "check", str(_input(name, tmp_path)), "--format", "json", "--select", SCAF)
    if exp.code == 2:
        assert exp.stderr
        assert_one_line_error(code, err, exp.stderr)
        assert out == ""
        return
    assert code == exp.code, err
    assert err == ""
    doc = json.loads(out)
    got = tuple((f["rule"], f["patch"], f["path"], f["line"]) for f in doc["findings"])
    assert got == exp.findings
    if exp.check:
        exp.check(doc)


@pytest.fixture(scope="module")
def plain_tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A plain (non-git) kernel-shaped folder holding the pre-images the corpus patches name."""
    root = tmp_path_factory.mktemp("tree")
    foo = root / FOO
    foo.parent.mkdir(parents=True)
    foo.write_text("".join(f"/* {n} */\n" for n in range(1, 10)) + "{\n\tint x;\n}\n" + "/* tail */\n" * 5)
    (root / "a.c").write_text("int x;\nint y;")  # no newline at the end
    return root


@pytest.mark.parametrize("mode", ["hunk-only", "full"])
@pytest.mark.parametrize("name", sorted(CASES))
def test_corpus_all_rules(name: str, mode: str, tmp_path: Path, plain_tree: Path, capsys,
                          request: pytest.FixtureRequest) -> None:
    exp = CASES[name]
    if exp.slow_all_rules and not request.config.getoption("--slow"):
        pytest.skip("all rules over 50,000 lines takes ~10 s: run with --slow")
    src = str(_input(name, tmp_path))
    tree = ["--tree", str(plain_tree)] if mode == "full" else []
    replies = tmp_path / "replies"
    code, out, err = run(capsys, "check", src, *tree, "--format", "json", "--fail-on", "check",
                         "--reply-dir", str(replies), "--from", "R <r@example.org>", "--deterministic")
    if exp.code == 2:
        assert_one_line_error(code, err, exp.stderr or "")
        return
    assert_clean_stderr(err)
    doc = json.loads(out)
    crashed = [f["message"] for f in doc["findings"] if f["rule"] == "pmureview/internal-error"]
    assert not crashed
    assert code == (1 if doc["findings"] else 0), err
    assert doc["series"]["mode"] == mode
    # replies (if any) are well-formed mails inside the folder
    for p in replies.iterdir() if replies.exists() else ():
        assert p.parent == replies and p.suffix == ".eml"
        msg = email.message_from_bytes(p.read_bytes(), policy=email.policy.default)
        assert msg["Subject"].startswith("Re: ") and "\n" not in msg["Subject"]
    if mode == "full":
        return
    # and the terminal format renders the same review
    code2, out2, err2 = run(capsys, "check", src, *tree, "--strict", "--fail-on", "check")
    assert_clean_stderr(err2)
    assert code2 == code
    assert "\x00" not in out2 and "\x1b" not in out2


def test_kernel_macros_full_mode_says_unparsable(plain_tree: Path, capsys) -> None:
    code, out, _ = run(capsys, "check", str(CORPUS / "kernel-macros.patch"), "--tree", str(plain_tree),
                       "--format", "json", "--select", SCAF)
    got = [(f["rule"], f["path"]) for f in json.loads(out)["findings"]]
    assert ("pmureview/unparsable", "arch/arm64/kvm/macros.c") in got
    assert (SCAF, "arch/arm64/kvm/macros.c") in got and code == 1


def test_big_hunk_parses_to_exact_line_numbers() -> None:
    series, problems = parse_series(split_mbox(big_hunk()))
    (change,) = series.patches[0].files
    assert not problems and change.added == frozenset(range(1, BIG + 1))
    views, _ = build_views(series, None)
    lines = views[1][0].text.split("\n")
    assert len(lines) == BIG
    assert [n for n, ln in enumerate(lines, 1) if ln.startswith("#if 0")] == list(BIG_MARKS)
    # full mode (a new file: empty pre-image) gives the same lines; this once took minutes (O(n^2))
    import time

    start = time.monotonic()
    views, failures = build_views(series, lambda path: None)
    assert not failures and views[1][0].added == frozenset(range(1, BIG + 1))
    assert views[1][0].text.split("\n")[:-1] == lines
    assert time.monotonic() - start < 20


def test_truncated_hunk_mid_series_keeps_the_other_patches(tmp_path: Path, capsys) -> None:
    from mailfactory import mbox

    trunc = (CORPUS / "truncated-hunk.patch").read_text()
    good = patch_mail(subject="[PATCH 2/2] KVM: arm64: fine", msgid="t2@x", diff=SC)
    bad = trunc.replace("Subject: [PATCH]", "Subject: [PATCH 1/2]").replace("<p1@example.org>", "<t1@x>")
    src = tmp_path / "s.mbox"
    src.write_text(mbox(bad, good))
    code, out, err = run(capsys, "check", str(src), "--format", "json", "--select", SCAF)
    got = [(f["rule"], f["patch"]) for f in json.loads(out)["findings"]]
    assert code == 1 and got == [("pmureview/unparsable", 1), (SCAF, 2)], err


def test_apply_hunks_far_past_the_end_is_bounded() -> None:
    # the search for a hunk's place is bounded by the file, not by the number in the hunk header
    import time

    far = 10**9
    miss = Hunk(far, 1, far, 2, "", (HunkLine(" ", "zzz", far, far), HunkLine("+", "new", None, far + 1)))
    hit = Hunk(far, 1, far, 2, "", (HunkLine(" ", "c", far, far), HunkLine("+", "new", None, far + 1)))
    start = time.monotonic()
    assert apply_hunks("a\nb\nc\n", (miss,)) is miss
    assert apply_hunks("a\nb\nc\n", (hit,)) == (["a", "b", "c", "new"], {3: far, 4: far + 1})
    assert time.monotonic() - start < 1.0
