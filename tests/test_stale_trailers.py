"""Review tags carried over a patch that changed since they were given (analyses/trailers_history.py)."""

from __future__ import annotations

import test_thread_comments as tc

from pmureview.analyses.trailers_history import material_change, stale_trailers

MARC = "Marc Zyngier <maz@example.org>"
RB = f"Reviewed-by: {MARC}\n"


def traps(extra: list[str] | None = None, *, start: int = 10, indent: str = "\t") -> str:
    body = [ln.replace("\t", indent) for ln in tc.TRAPS]
    if extra:
        body[5:5] = extra
    return tc.diff(tc.PATH, [(start, "#include <asm/kvm_pmu.h>", [" #include <asm/sysreg.h>", " ", *body, " "])])


def other(start: int = 5, context: str = " int a;") -> str:
    return tc.diff("arch/arm64/kvm/other.c", [(start, "", [context, "+int b;", " int c;"])])


def v1(trailer2: str = ""):
    return tc.series(tc.patch_mail(1, 1, 2, traps(), day=1),
                     tc.patch_mail(1, 2, 2, other(), trailers=trailer2, day=1, subject="KVM: arm64: Add b"))


def given_in_reply():
    return [tc.reply("m1@example.org", "v1-1@example.org", ["v1-1@example.org"], MARC,
                     "> +\treturn 0;\n\nLooks fine.\n\nReviewed-by: Marc Zyngier <maz@example.org>\n")]


def test_tag_from_a_reply_kept_over_a_changed_patch_is_reported() -> None:
    v2 = tc.series(tc.patch_mail(2, 1, 2, traps(["+\tisb();"]), trailers=RB, day=9),
                   tc.patch_mail(2, 2, 2, other(), day=9, subject="KVM: arm64: Add b"))
    got = stale_trailers(v1(), given_in_reply(), v2, {1: 1, 2: 2})
    assert len(got) == 1
    st = got[0]
    assert (st.patch, st.previous_patch, st.index, st.given_in, st.msgid, st.revision) == (
        1, 1, 1, "thread", "m1@example.org", 1)
    assert str(st.trailer) == f"Reviewed-by: {MARC}" and st.changed == "1 changed line in the diff"


def test_tag_carried_in_the_previous_patch_and_a_changed_file_set() -> None:
    ack = "Acked-by: Rae Viewer <rae@example.org>\n"
    d = other() + tc.diff("arch/arm64/kvm/third.c", [(1, "", [" x", "+y", " z"])])
    v2 = tc.series(tc.patch_mail(2, 1, 2, traps(), day=9),
                   tc.patch_mail(2, 2, 2, d, trailers=ack, day=9, subject="KVM: arm64: Add b"))
    got = stale_trailers(v1(ack), [], v2, {1: 1, 2: 2})
    assert [(s.patch, s.given_in, s.changed) for s in got] == [(2, "patch", "now touches arch/arm64/kvm/third.c")]


def test_rebased_or_reindented_patch_keeps_its_tag_silently() -> None:
    # other line numbers, other context, spaces for tabs, a reworded comment: not a material change
    v2 = tc.series(tc.patch_mail(2, 1, 2, traps(["+\t/* reworded note */"], start=30, indent="        "),
                                 trailers=RB, day=9),
                   tc.patch_mail(2, 2, 2, other(start=70, context=" int aa;"), day=9, subject="KVM: arm64: Add b"))
    assert stale_trailers(v1(), given_in_reply(), v2, {1: 1, 2: 2}) == []
    assert material_change(v1().patches[1], v2.patches[1]) is None


def test_tag_not_given_on_the_previous_posting_or_explained_is_silent() -> None:
    changed = traps(["+\tisb();"])
    v2 = tc.series(tc.patch_mail(2, 1, 2, changed, trailers=RB, day=9),
                   tc.patch_mail(2, 2, 2, other(), day=9, subject="KVM: arm64: Add b"))
    assert stale_trailers(v1(), [], v2, {1: 1, 2: 2}) == []  # given off-list or on v2 itself
    kept = tc.patch_mail(2, 1, 2, changed, trailers=RB, day=9).replace(
        b"---\n", b"---\nv2: added an isb(), kept Marc's R-b as the change is trivial\n\n", 1)
    v2k = tc.series(kept, tc.patch_mail(2, 2, 2, other(), day=9, subject="KVM: arm64: Add b"))
    assert stale_trailers(v1(), given_in_reply(), v2k, {1: 1, 2: 2}) == []
    # an unmatched (added) patch has nothing to compare with
    assert stale_trailers(v1(), given_in_reply(), v2, {2: 2}) == []


def test_a_quoted_tag_is_not_a_given_tag() -> None:
    quoted = [tc.reply("m2@example.org", "v1-1@example.org", ["v1-1@example.org"], "X Y <xy@example.org>",
                       f"> {RB}\nWhy did Marc review this?\n")]
    v2 = tc.series(tc.patch_mail(2, 1, 2, traps(["+\tisb();"]), trailers=RB, day=9),
                   tc.patch_mail(2, 2, 2, other(), day=9, subject="KVM: arm64: Add b"))
    assert stale_trailers(v1(), quoted, v2, {1: 1, 2: 2}) == []
