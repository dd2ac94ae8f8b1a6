"""Mail splitting and the series model."""

from __future__ import annotations

import pytest
from mailfactory import mbox, patch_mail, simple_diff

from pmureview.errors import InputError
from pmureview.series.mail import split_mbox
from pmureview.series.model import ChangeKind
from pmureview.series.parse import parse_series, parse_subject


def test_split_mboxrd_unescapes_from_lines():
    raw = mbox(patch_mail(body="From the start this was wrong.\n>From quoted.\n\nSigned-off-by: A <a@b>\n"))
    msgs = split_mbox(raw.encode())
    assert len(msgs) == 1
    assert b"\nFrom the start this was wrong.\n" in msgs[0]
    assert b"\n>From quoted.\n" in msgs[0]


def test_split_format_patch_output_without_blank_separator():
    a = "From 1234567890abcdef Mon Sep 17 00:00:00 2001\n" + patch_mail(msgid="a@x")
    b = "From fedcba0987654321 Mon Sep 17 00:00:00 2001\n" + patch_mail(msgid="b@x", subject="[PATCH 2/2] x")
    assert len(split_mbox((a + b).encode())) == 2


def test_split_crlf():
    raw = mbox(patch_mail()).replace("\n", "\r\n").encode()
    series, _ = parse_series(split_mbox(raw))
    assert series.patches[0].files[0].added == frozenset({12})


@pytest.mark.parametrize(("subject", "expected"), [
    ("[PATCH v5 10/24] KVM: arm64: Set up FGT", ("KVM: arm64: Set up FGT", 5, 10, 24)),
    ("[RFC PATCH net-next v2 3/7] x", ("x", 2, 3, 7)),
    ("[PATCH] single", ("single", None, None, None)),
    ("[PATCH 0/3] cover", ("cover", None, 0, 3)),
    ("[PATCH v3] [PATCH 2/4] odd", ("odd", 3, 2, 4)),
])
def test_parse_subject(subject, expected):
    title, _, rev, counter, total = parse_subject(subject)
    assert (title, rev, counter, total) == expected


def test_series_model_fields():
    cover = patch_mail(subject="[PATCH v2 0/2] cover", msgid="c@x", diff="",
                       body="Cover text.\n\nbase-commit: abcdef1234567\nchange-id: 20251209-foo-123\n")
    cover = cover.split("---\n")[0]
    p1 = patch_mail(subject="[PATCH v2 1/2] KVM: arm64: Do a thing", msgid="1@x", in_reply_to="c@x")
    p2 = patch_mail(subject="[PATCH v2 2/2] KVM: arm64: Other", msgid="2@x", in_reply_to="c@x",
                    body="Other.\n\nReviewed-by: R <r@x>\nSigned-off-by: A <a@x>\n---\nv2: changed\n",
                    diff=simple_diff("arch/arm64/kvm/bar.c", ("\tbaz();", "\tqux();")))
    series, problems = parse_series(split_mbox(mbox(cover, p1, p2).encode()))
    assert not problems
    assert series.revision == 2 and series.total == 2 and series.missing == ()
    assert series.cover is not None and series.base_commit == "abcdef1234567"
    assert series.change_id == "20251209-foo-123"
    p = series.patches[1]
    assert p.number == 2 and p.mail.title == "KVM: arm64: Other"
    assert [t.name for t in p.trailers] == ["Reviewed-by", "Signed-off-by"]
    assert p.message == "Other."
    assert "v2: changed" in p.notes
    f = p.files[0]
    assert f.path == "arch/arm64/kvm/bar.c" and f.kind == ChangeKind.MODIFIED
    assert f.added == frozenset({12, 13})
    assert (f.old_blob, f.new_blob) == ("1111111", "2222222")
    assert p.mail.cc == ("Maint Ainer <m@example.org>",)


def test_mail_lines_point_into_the_mail():
    text = patch_mail()
    series, _ = parse_series([text.encode()])
    hl = series.patches[0].files[0].added_lines()[0]
    assert text.split("\n")[hl.mail_line - 1] == "+" + hl.text


def test_latest_revision_by_date_and_explicit_revision():
    v1 = patch_mail(subject="[PATCH 1/1] x", msgid="v1@x", date="Mon, 01 Dec 2025 10:00:00 +0000")
    v3 = patch_mail(subject="[PATCH v3 1/1] x", msgid="v3@x", date="Tue, 02 Dec 2025 10:00:00 +0000")
    v2 = patch_mail(subject="[PATCH v2 1/1] x", msgid="v2@x", date="Wed, 03 Dec 2025 10:00:00 +0000")
    raws = split_mbox(mbox(v1, v3, v2).encode())
    assert parse_series(raws)[0].revision == 2  # b4's rule: the newest first patch wins
    assert parse_series(raws, revision=3)[0].revision == 3
    with pytest.raises(InputError, match="no revision v7"):
        parse_series(raws, revision=7)


def test_missing_and_duplicate_patches():
    p1 = patch_mail(subject="[PATCH 1/3] a", msgid="1@x")
    p3 = patch_mail(subject="[PATCH 3/3] c", msgid="3@x")
    other3 = patch_mail(subject="[PATCH 3/3] c again", msgid="3b@x", date="Wed, 10 Dec 2025 20:51:08 +0000")
    series, problems = parse_series(split_mbox(mbox(p1, p3, p3, other3).encode()))
    assert series.missing == (2,)
    assert [p.number for p in series.patches] == [1, 3]
    assert series.duplicates == 2
    assert [p.rule for p in problems] == ["pmureview/duplicate-patch"]


def test_replies_are_skipped():
    p1 = patch_mail(subject="[PATCH 1/1] a", msgid="1@x")
    reply = patch_mail(subject="Re: [PATCH 1/1] a", msgid="r@x", in_reply_to="1@x")
    series, _ = parse_series(split_mbox(mbox(p1, reply).encode()))
    assert len(series.patches) == 1 and series.patches[0].mail.msgid == "1@x"


def test_quoted_printable_and_charset():
    body = "Caf=C3=A9 na=C3=AFve.\n\nSigned-off-by: A <a@x>\n---\n\n" + simple_diff().replace("=", "=3D")
    mail = patch_mail(extra_headers='Content-Type: text/plain; charset="utf-8"\n'
                                    "Content-Transfer-Encoding: quoted-printable\n", body=body, diff="")
    series, _ = parse_series([mail.encode()])
    assert series.patches[0].message == "Café naïve."
    assert series.patches[0].files[0].added == frozenset({12})


def test_binary_rename_and_mode_changes_are_listed():
    diff = ("diff --git a/img.png b/img.png\nindex 1111111..2222222 100644\nBinary files a/img.png and "
            "b/img.png differ\ndiff --git a/old.c b/new.c\nsimilarity index 100%\nrename from old.c\n"
            "rename to new.c\ndiff --git a/run.sh b/run.sh\nold mode 100644\nnew mode 100755\n")
    series, _ = parse_series([patch_mail(diff=diff).encode()])
    kinds = {f.path: f.kind for f in series.patches[0].files}
    assert kinds == {"img.png": ChangeKind.BINARY, "new.c": ChangeKind.RENAMED, "run.sh": ChangeKind.MODE_ONLY}
