"""The commit-message structure analysis (pmureview.analyses.commitmsg) on mails written here."""

from __future__ import annotations

import pytest
from mailfactory import simple_diff

from pmureview.analyses import commitmsg as cm
from pmureview.series.parse import parse_series

SOB = "Signed-off-by: Ann Author <ann@example.org>"


def mail(body: str, *, subject: str = "[PATCH v3 02/10] KVM: arm64: Do a thing",
         sender: str = "Ann Author <ann@example.org>", notes: str = "",
         paths: tuple[str, ...] = ("arch/arm64/kvm/foo.c",)) -> cm.CommitMessage:
    head = (f"From: {sender}\nTo: kvmarm@lists.linux.dev\nSubject: {subject}\n"
            "Date: Tue, 09 Dec 2025 20:51:08 +0000\nMessage-ID: <p2@example.org>\n")
    stat = "".join(f" {p} | 1 +\n" for p in paths) + f" {len(paths)} files changed\n"
    diff = "".join(simple_diff(p) for p in paths)
    text = f"{head}\n{body.rstrip()}\n---\n{notes}{stat}\n{diff}"
    series, _ = parse_series([text.encode()])
    return cm.analyse_patch(series.patches[0])


def test_subject_parts() -> None:
    a = mail(f"Do it.\n\n{SOB}\n", subject="[RFC PATCH v3 02/10] KVM: arm64: nv: Handle the thing")
    assert a.tag == "[RFC PATCH v3 02/10]"
    assert a.rfc
    assert a.title == "KVM: arm64: nv: Handle the thing"
    assert a.prefixes == ("KVM", "arm64", "nv")
    assert a.summary == "Handle the thing"
    assert a.subject.at == ("subject", 1)


@pytest.mark.parametrize(("title", "prefixes", "summary"), [
    ('Revert "KVM: arm64: Do a thing"', (), 'Revert "KVM: arm64: Do a thing"'),
    ("kselftest/arm64: Add a test", ("kselftest/arm64",), "Add a test"),
    ("arm64: kvm: Fix it: really", ("arm64", "kvm"), "Fix it: really"),
])
def test_prefix_split(title: str, prefixes: tuple[str, ...], summary: str) -> None:
    _tag, t, p, s = cm.split_subject(f"[PATCH] {title}")
    assert (t, p, s) == (title, prefixes, summary)


def test_body_paragraphs_and_trailers_use_section_lines() -> None:
    a = mail(f"First line.\nSecond line.\n\nThird paragraph.\n\nFixes: 0123456789ab (\"KVM: arm64: Old\")\n"
             f"Reviewed-by: Rev Iewer <rev@example.org>\n{SOB}\n")
    assert [p.first.at for p in a.body] == [("message", 1), ("message", 4)]
    assert a.trailers_contiguous
    assert [t.key for t in a.trailers] == ["Fixes", "Reviewed-by", "Signed-off-by"]
    assert [t.anchor.at for t in a.trailers] == [("trailers", 1), ("trailers", 2), ("trailers", 3)]
    assert a.trailers[1].person == cm.Person("Rev Iewer", "rev@example.org")
    assert a.fixes[0].well_formed and a.fixes[0].commit == "0123456789ab" and a.fixes[0].title == "KVM: arm64: Old"
    assert a.sender_signoff is a.signoffs[-1] and a.sender_signoff_last


def test_mail_lines_of_message_and_trailers() -> None:
    a = mail(f"Do it.\n\n{SOB}\n")
    # header lines 1-5, blank 6, message from 7; one blank line before the trailers
    assert a.line_at("message", 1).mail_line == 7
    assert a.line_at("trailers", 1).mail_line == 9


def test_wrapped_fixes_split_from_the_other_trailers() -> None:
    a = mail(f"Explain.\n\nFixes: 0123456789ab (\"KVM: arm64: Walk the tables to\ncompute the size\")\n\n{SOB}\n")
    assert not a.trailers_contiguous
    assert [[t.key for t in b] for b in a.trailer_blocks] == [["Fixes"], ["Signed-off-by"]]
    (fx,) = a.fixes
    assert fx.split and fx.trailer.wrapped
    assert fx.trailer.anchor.at == ("message", 3)
    assert fx.problems == ("it is wrapped over 2 lines",)
    assert fx.title == "KVM: arm64: Walk the tables to compute the size"
    assert [p.first.at for p in a.body] == [("message", 1)]


@pytest.mark.parametrize(("line", "problem"), [
    ('Fixes: 0123456 ("KVM: arm64: Old")', "the commit id has 7 characters, not 12 or more"),
    ("Fixes: 0123456789ab", "the subject is not given as (\"<subject>\")"),
    ('Fixes: commit 0123456789ab ("KVM: arm64: Old")', "'commit' before the id"),
    ('fixes: 0123456789ab ("KVM: arm64: Old")', "the tag is spelled 'fixes:'"),
    ('Fixes: 0123456789AB ("KVM: arm64: Old")', "the commit id is not lower case"),
])
def test_fixes_problems(line: str, problem: str) -> None:
    (fx,) = mail(f"Explain.\n\n{line}\n{SOB}\n").fixes
    assert problem in fx.problems and not fx.split


def test_fixes_in_prose_or_below_the_cut_line_is_not_a_tag() -> None:
    a = mail(f"Fixes: the broken thing in the walker.\nMore prose.\n\n{SOB}\n",
             notes='Fixes: 0123 ("x")\n\n')
    assert a.fixes == ()
    assert a.notes == ('Fixes: 0123 ("x")',)


def test_annotation_between_signoffs_keeps_the_block() -> None:
    a = mail("Explain.\n\nSigned-off-by: Ann Author <ann@example.org>\n[bob: rebased]\n"
             "Signed-off-by: Bob Sender <bob@example.org>\n", sender="Bob Sender <bob@example.org>")
    assert len(a.trailer_blocks) == 1
    assert [str(s.person) for s in a.signoffs] == ["Ann Author <ann@example.org>", "Bob Sender <bob@example.org>"]
    assert a.sender_signoff_last


@pytest.mark.parametrize(("sender", "signed"), [
    ("Ann Author <ann@example.org>", True),
    ("Ann Author <ann@work.example.com>", True),  # one person, two addresses
    ("Ann Author via B4 Relay <devnull+ann.example.org@kernel.org>", True),
    ("Bob Sender <bob@example.org>", False),
    ("Ann <ann2@example.org>", False),  # a single word is no name to match on
    ("A. Nother <ann+kernel@example.org>", True),  # subaddress of the same mailbox
])
def test_sender_signoff(sender: str, signed: bool) -> None:
    a = mail(f"Do it.\n\n{SOB}\n", sender=sender)
    assert (a.sender_signoff is not None) is signed


def test_notes_below_the_cut_line_without_diffstat() -> None:
    a = mail(f"Do it.\n\n{SOB}\n", notes="v2: fix the build\n\n")
    assert a.notes == ("v2: fix the build",)
    assert a.diffstat[-1].strip().endswith("files changed")
    assert cm.meta_notes(a) == []


@pytest.mark.parametrize("note", [
    "Based on kvmarm/next.",
    "Based on arm64 for-next/core.",
    "This series is based on v6.1-rc3.",
    "Applies on top of the PMU rework series.",
    "Changes in v2:\n- fix the build",
    "v1 -> v2:\n- drop the helper",
    "v3: rename the field",
])
def test_meta_notes_above_the_cut_line(note: str) -> None:
    a = mail(f"Do it.\n\n{note}\n\n{SOB}\n")
    assert [ln.at for ln, _ in cm.meta_notes(a)] == [("message", 3)]


def test_meta_note_right_after_the_signoff() -> None:
    a = mail(f"Do it.\n\n{SOB}\nChanges since v1:\n- rename\n")
    assert [ln.text for ln, _ in cm.meta_notes(a)] == ["Changes since v1:"]


@pytest.mark.parametrize("prose", [
    "Based on an earlier patch by Bob Sender.",
    "Based on the pseudo-code in the ARM ARM, walk the tables.",
    "Based on the value of the flag, pick the mask.",
    "based on the kernels spread across the fleet.",
    "Changes to the mask are made under the lock.",
    "Changes:\n- the mask is wider\n- the lock is taken earlier",
    "GICv3: nothing else.",
])
def test_prose_is_not_a_meta_note(prose: str) -> None:
    assert cm.meta_notes(mail(f"Do it.\n\n{prose}\n\n{SOB}\n")) == []


@pytest.mark.parametrize(("body", "lines"), [
    ("In this patch, move the flush.", [1]),
    ("The flush is slow. This patch moves it.", [1]),
    ("Prose first.\nThis commit adds a helper.", [2]),
    ("With this patch, the guest sees it.", [1]),
    ("It is expected that this patch will slow the fault path.", []),
    ("The previous patch added it; a later patch uses it.", []),
    ("> This patch was wrong, said someone.", []),
    ("Commit 0123456789ab (\"KVM: arm64: Old\") added X. This commit broke Y.", []),
    ("\tThis patch in a code block", []),
])
def test_this_patch_phrases(body: str, lines: list[int]) -> None:
    a = mail(f"{body}\n\n{SOB}\n")
    assert [ln.line for ln, _ in cm.this_patch_phrases(a)] == lines


@pytest.mark.parametrize(("title", "period"), [
    ("KVM: arm64: Fix the use of VA_BITS.", True),
    ("KVM: arm64: Fix the thing...", False),
    ("KVM: arm64: Handle FEAT_X, FEAT_Y, etc.", False),
    ("KVM: arm64: Expose ARMv8.5", False),
])
def test_trailing_period(title: str, period: bool) -> None:
    assert cm.trailing_period(mail(f"Do it.\n\n{SOB}\n", subject=f"[PATCH] {title}")) is period


@pytest.mark.parametrize(("title", "tag"), [
    ("ANDROID: KVM: arm64: Add it", "ANDROID"),
    ("FROMLIST: KVM: arm64: Add it", "FROMLIST"),
    ('Revert "ANDROID: KVM: arm64: Add it"', None),
    ("KVM: arm64: Android: Add it", None),
])
def test_vendor_tag(title: str, tag: str | None) -> None:
    assert cm.vendor_tag(mail(f"Do it.\n\n{SOB}\n", subject=f"[PATCH] {title}")) == tag


@pytest.mark.parametrize(("prefixes", "used"), [
    (("arm64", "kvm"), 2), (("kvm", "arm64", "vgic"), 2), (("KVM/arm64",), 1), (("arm64/kvm",), 1),
    (("KVM", "ARM64"), 2), (("KVM", "arm64"), 0), (("KVM", "arm64/mmu"), 0), (("KVM", "arm/arm64"), 0),
    (("arm64", "mte"), 0), (("KVM", "selftests"), 0), ((), 0),
])
def test_misspelt_kvm_arm64(prefixes: tuple[str, ...], used: int) -> None:
    assert cm.misspelt_kvm_arm64(prefixes) == used


@pytest.mark.parametrize(("paths", "only"), [
    (["arch/arm64/kvm/mmu.c", "arch/arm64/include/asm/kvm_host.h", "include/uapi/linux/kvm.h"], True),
    (["arch/arm64/kvm/mmu.c", "Documentation/virt/kvm/api.rst"], True),
    (["arch/arm64/kvm/mmu.c", "arch/arm64/kernel/mte.c"], False),
    (["include/uapi/linux/kvm.h"], False),
    (["arch/arm64/kvm/hyp/include/nvhe/spinlock.h"], True),
])
def test_kvm_arm64_only(paths: list[str], only: bool) -> None:
    assert cm.kvm_arm64_only(paths) is only


@pytest.mark.parametrize(("prefixes", "paths", "used"), [
    (("kvm", "arm64"), ["arch/arm64/kvm/fpsimd.c", "arch/arm64/kernel/fpsimd.c"], 2),  # claims KVM already
    (("arm64", "kvm"), ["arch/arm64/kvm/fpsimd.c", "arch/arm64/kernel/fpsimd.c"], 0),  # arm64 core work
    (("arm64", "kvm"), ["arch/arm64/kvm/fpsimd.c"], 2),
    (("KVM/arm64",), ["virt/kvm/kvm_main.c"], 0),
])
def test_wrong_kvm_arm64_prefix(prefixes: tuple[str, ...], paths: list[str], used: int) -> None:
    assert cm.wrong_kvm_arm64_prefix(prefixes, paths) == used


def test_cover_letter() -> None:
    from pmureview.series.model import CoverLetter, Message

    m = Message(msgid="c@x", subject="[PATCH v2 0/3] KVM: arm64: Things", title="KVM: arm64: Things",
                author_name="Ann Author", author_email="ann@example.org", date="", prefixes=("PATCH", "v2", "0/3"))
    a = cm.analyse_cover(CoverLetter(mail=m, body="Intro.\n\nChanges in v2:\n- more\n"))
    assert a.is_cover and a.number == 0
    assert [p.first.at for p in a.paragraphs] == [("cover", 1), ("cover", 3)]


def test_no_message_no_trailers_does_not_raise() -> None:
    a = mail("")
    assert a.lines == () and a.signoffs == () and a.fixes == ()
