"""Property tests (hypothesis) of the mail splitter, the patch parser and the post-image reconstruction.

Example counts come from the profile conftest.py loads: 2,000 per property, 50,000 with `--slow`.
- arbitrary bytes (raw and mail-shaped) never raise anything but pmureview.errors.PmuError;
- arbitrary text as the diff of a patch mail: likewise, through the hunk-only and full-mode views;
- a generated valid patch round-trips: the parsed added lines and their post-image numbers are
  exactly those of the generated diff, the hunk-only view holds each at its number, and
  apply_hunks(pre, hunks) rebuilds the post-image exactly.
"""

from __future__ import annotations

import difflib

from hypothesis import given
from hypothesis import strategies as st
from mailfactory import mbox, patch_mail

from pmureview.errors import PmuError
from pmureview.series.mail import split_mbox
from pmureview.series.model import Hunk
from pmureview.series.parse import parse_series
from pmureview.views.image import apply_hunks, build_views, hunk_only_view

# -- strategies -----------------------------------------------------------------------------------

_MAIL_BITS = [
    b"From mboxrd@z Thu Jan  1 00:00:00 1970\n", b"From 1234abcd Mon Sep 17 00:00:00 2001\n", b">From x\n",
    b"From: Ann <a@x>\n", b"From: =?utf-8?b?!!!?=\n", b"To: ,,,<<>>\n", b"Cc: a@x, b@y\n",
    b"Subject: [PATCH 1/2] x\n", b"Subject: [PATCH v2 0/3] cover\n", b"Subject: [PATCH 3/2] y\n",
    b"Subject: Re: [PATCH] x\n", b"Subject: [PATCH 0/0] z\n", b"Subject: [PATCH v99999999999999999999 1/1] q\n",
    b"Message-ID: <a@b>\n", b"Message-ID: <../x y>\n", b"Message-ID: <>\n", b"In-Reply-To: <a@b>\n",
    b"References: <a@b> <c>\n", b"Reply-To: <<@>>\n", b"Date: Tue, 09 Dec 2025 20:51:08 +0000\n",
    b"Date: garbage 99:99\n", b"Date: Tue, 31 Feb 99999 25:61:61 +9999\n",
    b"MIME-Version: 1.0\n", b"Content-Type: text/plain; charset=klingon\n", b"Content-Type: text/x-patch\n",
    b"Content-Type: multipart/mixed; boundary=zz\n", b"--zz\n", b"--zz--\n",
    b"Content-Transfer-Encoding: base64\n", b"Content-Transfer-Encoding: quoted-printable\n",
    b"\n", b"\n\n", b"---\n", b"-- \n", b"diff --git a/x.c b/x.c\n", b"diff --git a/y.h b/z.h\n", b"Index: x\n",
    b"--- a/x.c\n", b"+++ b/x.c\n", b"--- /dev/null\n", b"+++ /dev/null\n", b"index 1111111..2222222 100644\n",
    b"new file mode 100644\n", b"deleted file mode 100644\n", b"old mode 100644\n", b"new mode 100755\n",
    b"similarity index 90%\n", b"rename from a.c\n", b"rename to b.c\n", b"Binary files a/x and b/x differ\n",
    b"GIT binary patch\n", b"literal 12\n", b"@@ -1,3 +1,4 @@ f()\n", b"@@ -0,0 +1 @@\n", b"@@ -1 +0,0 @@\n",
    b"@@ -99999999999,2 +99999999999,3 @@\n", b"@@ -1,99999999999 +1,99999999999 @@\n", b"@@ @@\n",
    b" ctx\n", b"+add\n", b"-del\n", b"+\tif (0)\n", b"+#if 0\n", b"+\t| x\n", b"\\ No newline at end of file\n",
    b"Signed-off-by: A <a@x>\n", b"base-commit: abcdef0123\n", b"change-id: 2025-x\n",
    b"\r\n", b"\r", b"\x00", b"\xff\xfe", b"=?", b"=C3=A9\n", b"ZGlmZg==\n",
]
mail_bytes = st.lists(st.one_of(st.sampled_from(_MAIL_BITS), st.binary(max_size=12)), max_size=60).map(b"".join)
any_bytes = st.one_of(st.binary(max_size=3000), mail_bytes)

_DIFF_BITS = [s.decode("latin-1").rstrip("\n") for s in _MAIL_BITS]
diff_text = st.lists(st.one_of(st.sampled_from(_DIFF_BITS), st.text(max_size=24)), max_size=50).map("\n".join)

# line texts: anything but a line end, with the characters str.splitlines() (not "\n") breaks on,
# and the lines a diff or mail parser might mistake for its own syntax
_SPECIAL_LINES = ["", " ", "- ", "-- ", "--- a/x.c", "+++ b/x.c", "+", "-", "@@ -1 +1 @@",
                  "\\ No newline at end of file",
                  "diff --git a/x b/x", "From x", ">From x", "---", "\x0c", "\x0b", "\x1c", "\x85", "\u2028", "\x00",
                  "\t|| x", "#if 0", "Subject: x", "=?utf-8?q?x?="]
line_text = st.one_of(
    st.sampled_from(_SPECIAL_LINES),
    st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\n\r"), max_size=10),
)


def _reviewed(data: bytes) -> None:
    """Split, parse and view `data`; only the project's own errors may come out."""
    try:
        series, _ = parse_series(split_mbox(data))
    except PmuError:
        return
    build_views(series, None)
    build_views(series, lambda path: "int x;\n{\n}\n" if path.endswith("x.c") else None)


# -- never anything but PmuError ------------------------------------------------------------------

@given(any_bytes)
def test_arbitrary_bytes_raise_only_pmu_errors(data: bytes) -> None:
    _reviewed(data)


@given(diff_text, st.text(max_size=200))
def test_arbitrary_diff_body_raises_only_pmu_errors(diff: str, pre: str) -> None:
    raw = patch_mail(diff=diff + "\n").encode("utf-8", "surrogatepass")
    try:
        series, _ = parse_series(split_mbox(raw))
    except PmuError:
        return
    build_views(series, None)
    build_views(series, lambda path: pre)  # full mode: apply to an arbitrary pre-image
    for patch in series.patches:
        for change in patch.files:
            hunk_only_view(patch, change)
            result = apply_hunks(pre, change.hunks)
            assert isinstance(result, Hunk | tuple)


# -- round trip -----------------------------------------------------------------------------------

@st.composite
def edited_file(draw: st.DrawFn) -> tuple[list[str], list[str], bool, bool]:
    """(pre lines, post lines, pre ends with a newline, post ends with a newline); post != pre.

    Lines come from a small pool: drawing indexes is cheap, and repeated lines make the diff's
    alignment ambiguous, which is where line numbering goes wrong."""
    pool = draw(st.lists(line_text, min_size=1, max_size=6))
    # the structure comes from byte strings: one draw each, and they still shrink (towards "keep
    # every line", "the first pool entry")
    pre = [pool[b % len(pool)] for b in draw(st.binary(max_size=30))]
    ops = draw(st.binary(min_size=len(pre) + 1, max_size=len(pre) + 1))
    new_lines = iter(draw(st.binary(min_size=3 * len(ops), max_size=3 * len(ops))))
    post: list[str] = []
    for ln, op in zip([*pre, None], (b % 12 for b in ops), strict=True):
        if op >= 9:  # insert 1..3 lines before this one
            post += [pool[next(new_lines) % len(pool)] for _ in range(op - 8)]
        if ln is None or op == 7:  # 7: drop
            continue
        post.append(pool[next(new_lines) % len(pool)] if op == 8 else ln)  # 8: change, else keep
    # a last line that is empty and has no newline is no line at all: such files end with "\n"
    pre_nl = not pre or pre[-1] == "" or draw(st.booleans())
    post_nl = not post or post[-1] == "" or draw(st.booleans())
    if pre == post and pre_nl == post_nl:
        post.append("added at the end")
        post_nl = True
    return pre, post, pre_nl, post_nl


def _with_ends(lines: list[str], final_nl: bool) -> list[str]:
    out = [ln + "\n" for ln in lines]
    if out and not final_nl:
        out[-1] = out[-1][:-1]
    return out


def unified(path: str, pre: list[str], post: list[str], pre_nl: bool, post_nl: bool, context: int) -> str:
    """A git-style diff of one file: difflib's hunks plus git's `\\ No newline at end of file`."""
    out = [f"diff --git a/{path} b/{path}\n", "index 1111111..2222222 100644\n"]
    for ln in difflib.unified_diff(_with_ends(pre, pre_nl), _with_ends(post, post_nl), f"a/{path}", f"b/{path}",
                                   n=context):
        out.append(ln if ln.endswith("\n") else ln + "\n\\ No newline at end of file\n")
    return "".join(out)


def expected_added(pre: list[str], post: list[str], pre_nl: bool, post_nl: bool) -> dict[int, str]:
    """Post-image line number -> text of every line the diff adds (difflib's own alignment)."""
    sm = difflib.SequenceMatcher(None, _with_ends(pre, pre_nl), _with_ends(post, post_nl), autojunk=False)
    return {j + 1: post[j] for tag, _, _, j1, j2 in sm.get_opcodes() if tag in ("insert", "replace")
            for j in range(j1, j2)}


@given(st.lists(edited_file(), min_size=1, max_size=2), st.integers(0, 4), st.booleans(), st.booleans())
def test_generated_patch_round_trips(files, context: int, as_mbox: bool, signature: bool) -> None:
    paths = [f"dir/f{i}.c" for i in range(len(files))]
    diff = "".join(unified(p, *f, context) for p, f in zip(paths, files, strict=True))
    mail = patch_mail(diff=diff) + ("-- \n2.43.0\n\n" if signature else "")
    raw = (mbox(mail) if as_mbox else mail).encode("utf-8", "surrogatepass")

    series, problems = parse_series(split_mbox(raw))
    assert problems == []
    (patch,) = series.patches
    assert [c.path for c in patch.files] == paths
    for change, (pre, post, pre_nl, post_nl) in zip(patch.files, files, strict=True):
        want = expected_added(pre, post, pre_nl, post_nl)
        # the parsed added lines: exactly the generated ones, at their post-image numbers
        assert {ln.new_no: ln.text for ln in change.added_lines()} == want
        assert change.added == frozenset(want)
        # the hunk-only view has each added line (and every line it knows) at its number
        view = hunk_only_view(patch, change)
        text_lines = view.text.split("\n")
        for n, t in want.items():
            assert text_lines[n - 1] == t
        for n in view.known:
            assert text_lines[n - 1] == post[n - 1]
        # applying the hunks to the pre-image rebuilds the post-image exactly
        result = apply_hunks("".join(_with_ends(pre, pre_nl)), change.hunks)
        assert not isinstance(result, Hunk), f"hunk {result} did not apply"
        lines, line_map = result
        assert lines == post
        assert all(post_no == new_no for post_no, new_no in line_map.items())
    # and full mode (the series applied in memory) sees the same post-images and added lines
    pre_of = {p: "".join(_with_ends(f[0], f[2])) for p, f in zip(paths, files, strict=True)}
    views, failures = build_views(series, pre_of.get)
    assert failures == []
    for view, (pre, post, pre_nl, post_nl) in zip(views[1], files, strict=True):
        assert view.text == "\n".join(post) + "\n"
        assert view.added == frozenset(expected_added(pre, post, pre_nl, post_nl))
