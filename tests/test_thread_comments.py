"""Review comments on vN-1 left unanswered or promised and not done (analyses/thread_comments.py)."""

from __future__ import annotations

from collections.abc import Sequence

from pmureview.analyses.thread_comments import _diff_lines, agrees, clean_comment, review_comments, split_comments
from pmureview.series.mail import parse_mail
from pmureview.series.model import Series
from pmureview.series.parse import _message, parse_series

AUTHOR = "Ann Author <ann@example.org>"
PATH = "arch/arm64/kvm/pmu-traps.c"


def diff(path: str, hunks: Sequence[tuple[int, str, Sequence[str]]]) -> str:
    """A unified diff from (start, section, lines with their +/space prefix); counts computed."""
    out = [f"diff --git a/{path} b/{path}", "index 1111111..2222222 100644", f"--- a/{path}", f"+++ b/{path}"]
    shift = 0
    for start, section, lines in hunks:
        old = sum(1 for ln in lines if ln[0] != "+")
        new = sum(1 for ln in lines if ln[0] != "-")
        out.append(f"@@ -{start},{old} +{start + shift},{new} @@ {section}".rstrip())
        out += list(lines)
        shift += new - old
    return "\n".join(out) + "\n"


def patch_mail(rev: int, n: int, total: int, body_diff: str, *, trailers: str = "", day: int = 1,
               subject: str = "KVM: arm64: Trap PMU overflow accesses") -> bytes:
    pfx = f"PATCH v{rev} {n}/{total}" if rev > 1 else f"PATCH {n}/{total}"
    head = (f"From: {AUTHOR}\nTo: kvmarm@lists.linux.dev\nSubject: [{pfx}] {subject}\n"
            f"Date: Mon, {day:02d} Dec 2025 10:00:{n:02d} +0000\nMessage-ID: <v{rev}-{n}@example.org>\n")
    if n > 1:
        head += f"In-Reply-To: <v{rev}-1@example.org>\nReferences: <v{rev}-1@example.org>\n"
    msg = "Trap the overflow register so the host sees it.\n\n" + (trailers or "") + f"Signed-off-by: {AUTHOR}\n"
    return f"{head}\n{msg}---\n{body_diff}".encode()


def reply(msgid: str, parent: str, refs: Sequence[str], sender: str, body: str, *, day: int = 2):
    raw = (f"From: {sender}\nTo: {AUTHOR}\nSubject: Re: [PATCH 1/2] KVM: arm64: Trap PMU overflow accesses\n"
           f"Date: Tue, {day:02d} Dec 2025 11:00:00 +0000\nMessage-ID: <{msgid}>\nIn-Reply-To: <{parent}>\n"
           f"References: {' '.join(f'<{r}>' for r in refs)}\n\n{body}")
    m = parse_mail(raw.encode())
    return _message(m), m.body


def series(*mails: bytes) -> Series:
    s, _ = parse_series(list(mails))
    return s


TRAPS = [
    "+static int pmu_setup_traps(struct kvm_vcpu *vcpu)",
    "+{",
    "+\tu64 val = read_sysreg_s(SYS_HDFGRTR_EL2);",
    "+",
    "+\tval |= HDFGRTR_EL2_PMOVS;",
    "+\twrite_sysreg_s(val, SYS_HDFGRTR_EL2);",
    "+\treturn 0;",
    "+}",
]
LOAD_V1 = [
    "+static void pmu_load_state(struct kvm_vcpu *vcpu)",
    "+{",
    "+\tif (!vcpu->arch.pmu_on)",
    "+\t\treturn;",
    "+\tpr_info(\"pmu: loading state\\n\");",
    "+\tkvm_pmu_load_regs(vcpu);",
    "+}",
]
# v2 changed the condition the reviewer asked about, and nothing else
LOAD_V2 = [ln.replace("!vcpu->arch.pmu_on", "!kvm_vcpu_has_pmu(vcpu)") for ln in LOAD_V1]


def v_patch(rev: int, load: list[str], *, day: int) -> bytes:
    d = diff(PATH, [
        (10, "#include <asm/kvm_pmu.h>", [" #include <asm/sysreg.h>", " ", *TRAPS, " ", " static int other;"]),
        (40, "static int other;", [" /* loaders */", *load, " ", " void pmu_done(void)"]),
    ])
    return patch_mail(rev, 1, 2, d, day=day)


def p2(rev: int, *, day: int) -> bytes:
    d = diff("arch/arm64/kvm/other.c", [(5, "", [" int a;", "+int b;", " int c;"])])
    return patch_mail(rev, 2, 2, d, day=day, subject="KVM: arm64: Add b")


V1 = series(v_patch(1, LOAD_V1, day=1), p2(1, day=1))
V2 = series(v_patch(2, LOAD_V2, day=9), p2(2, day=9))
OLIVER = "Oliver Upton <oliver@example.org>"
MARC = "Marc Zyngier <maz@example.org>"
P1 = "v1-1@example.org"

REVIEW = """On Mon, Dec 01, 2025 at 10:00:01AM +0000, Ann Author wrote:
> Trap the overflow register so the host sees it.

Hi Ann,

> @@ -10,3 +10,13 @@ #include <asm/kvm_pmu.h>
[...]
> +\tval |= HDFGRTR_EL2_PMOVS;

PMOVS is a negative-polarity bit: OR-ing it untraps the register.

> +\twrite_sysreg_s(val, SYS_HDFGRTR_EL2);
> +\treturn 0;

This cannot fail; make the function void.

>  /* loaders */
>

Context only: nothing to act on here but a long remark anyway.

> +\tif (!vcpu->arch.pmu_on)
> +\t\treturn;

Use kvm_vcpu_has_pmu() instead of peeking at the flag.

> +\tpr_info("pmu: loading state\\n");

Please drop the debug print.

Thanks,
Oliver
"""

ANSWER = """On Tue, Dec 02, 2025, Oliver Upton wrote:
> PMOVS is a negative-polarity bit: OR-ing it untraps the register.

No, PMOVS is positive polarity in HDFGRTR_EL2, the write traps it as intended.

> This cannot fail; make the function void.

Good point, will fix in v2.

> Use kvm_vcpu_has_pmu() instead of peeking at the flag.

Sure.
"""

# Oliver answers Ann's answer: his quotes are her prose (depth 1) and his own earlier code quote (depth 2)
NESTED = """On Wed, Dec 03, 2025, Ann Author wrote:
> On Tue, Dec 02, 2025, Oliver Upton wrote:
> > +\tval |= HDFGRTR_EL2_PMOVS;
> >
> > PMOVS is a negative-polarity bit: OR-ing it untraps the register.
>
> No, PMOVS is positive polarity in HDFGRTR_EL2, the write traps it as intended.

Right, my mistake.
"""

TRAILER_ONLY = """> +\tkvm_pmu_load_regs(vcpu);

Reviewed-by: Marc Zyngier <maz@example.org>
"""


def thread():
    return [
        reply("r1@example.org", P1, [P1], OLIVER, REVIEW),
        reply("a1@example.org", "r1@example.org", [P1, "r1@example.org"], AUTHOR, ANSWER, day=3),
        reply("r2@example.org", "a1@example.org", [P1, "r1@example.org", "a1@example.org"], OLIVER, NESTED,
              day=4),
        reply("m1@example.org", P1, [P1], MARC, TRAILER_ONLY, day=5),
    ]


def test_statuses_of_every_comment() -> None:
    got = review_comments(V1, thread(), V2, {1: 1, 2: 2})
    by_comment = {c.comment.split("\n")[0]: c for c in got}
    # ignored and unchanged
    drop = by_comment.pop("Please drop the debug print.")
    assert drop.kind == "unanswered" and drop.author == OLIVER and drop.msgid == "r1@example.org"
    assert drop.previous_patch == 1 and drop.patch == 1 and drop.path == PATH and drop.revision == 1
    assert drop.quote == '+\tpr_info("pmu: loading state\\n");'
    assert drop.line == 53  # the vN post-image line of the quoted added line
    # promised ("Good point, will fix in v2") and not done
    void = by_comment.pop("This cannot fail; make the function void.")
    assert void.kind == "promised" and void.line == 18
    assert void.quote.splitlines() == ["+\twrite_sysreg_s(val, SYS_HDFGRTR_EL2);", "+\treturn 0;"]
    # answered with an explanation, the code changed, context-only quote, nested and trailer-only
    # mails, the greeting and the top text: all silent
    assert by_comment == {}
    assert [c.as_dict()["kind"] for c in got] == ["promised", "unanswered"]
    assert set(got[0].as_dict()) == {"kind", "msgid", "author", "revision", "previous_patch", "quote",
                                     "comment", "patch", "path", "line"}


def test_summary_line_names_the_reviewer_and_the_code() -> None:
    got = review_comments(V1, thread(), V2, {1: 1, 2: 2})
    assert got[1].summary() == ("Oliver's comment on v1 about `pr_info(\"pmu: loading state\\n\");` still "
                                "applies.")
    assert got[0].summary() == "Oliver's comment on v1 about `return 0;` still applies (agreed, not done)."


def test_an_unmatched_patch_or_an_empty_thread_is_silent() -> None:
    assert review_comments(V1, thread(), V2, {2: 2}) == []
    assert review_comments(V1, [], V2, {1: 1, 2: 2}) == []


def test_whole_reply_without_quotes_answers_every_comment() -> None:
    top = reply("a2@example.org", "r1@example.org", [P1, "r1@example.org"], AUTHOR,
                "Thanks Oliver, will fix all of these in v2.\n")
    got = review_comments(V1, [thread()[0], top], V2, {1: 1})
    # all but the comment on the condition v2 rewrote
    assert {c.kind for c in got} == {"promised"} and len(got) == 3
    assert not any("kvm_vcpu_has_pmu" in c.comment for c in got)


def test_code_changed_in_vn_is_silent_even_when_unanswered() -> None:
    v2 = series(v_patch(2, [ln for ln in LOAD_V2 if "pr_info" not in ln], day=9), p2(2, day=9))
    got = review_comments(V1, [thread()[0]], v2, {1: 1, 2: 2})
    assert all("debug print" not in c.comment for c in got)
    assert any("make the function void" in c.comment for c in got)


def test_a_line_added_next_to_the_quote_counts_as_a_change() -> None:
    traps = [*TRAPS]
    traps.insert(6, "+\tisb();")  # after the write: the reviewer's "return 0" quote has a new neighbour
    d = diff(PATH, [(10, "", [" #include <asm/sysreg.h>", " ", *traps, " ", " static int other;"]),
                    (40, "", [" /* loaders */", *LOAD_V1, " ", " void pmu_done(void)"])])
    v2 = series(patch_mail(2, 1, 2, d, day=9), p2(2, day=9))
    got = review_comments(V1, [thread()[0]], v2, {1: 1})
    assert [c.comment for c in got] == ["PMOVS is a negative-polarity bit: OR-ing it untraps the register.",
                                        "Use kvm_vcpu_has_pmu() instead of peeking at the flag.",
                                        "Please drop the debug print."]  # not "make the function void"


def test_author_mail_and_self_replies_are_not_reviews() -> None:
    own = reply("a9@example.org", P1, [P1], AUTHOR, "> +\tpr_info(\"pmu: loading state\\n\");\n\nOops, left over.\n")
    assert review_comments(V1, [own], V2, {1: 1}) == []


def test_split_comments_and_cleaning() -> None:
    blocks = split_comments("Top text\n\n> +a\n> [...]\n> +b\n>> nested\n\nComment one.\n\n"
                            "[...]\n> +c\n\nTwo.\n\nThanks,\nQ\n" + "_" * 47 + "\nlist footer\n")
    assert [b.quote for b in blocks] == [(), ("+a", None, "+b"), (None, "+c")]
    assert [clean_comment(b.text) for b in blocks] == ["Top text", "Comment one.", "Two."]
    assert clean_comment(["Reviewed-by: A <a@example.org>"]) == ""
    assert clean_comment(["Otherwise looks good."]) == ""
    assert clean_comment(["Nice cleanup."]) == "" and clean_comment(["Thanks for fixing this!"]) == ""
    assert clean_comment(["Nice, but this leaks the lock."]) != ""
    assert clean_comment(["Fix this.", "", "Thanks,", "M."]) == "Fix this."


def test_agreement_words() -> None:
    for yes in ("Will fix.", "Ack", "Good point, done in next version.", "Agreed.", "Sure.", "Right.",
                "Fixed locally.", "Will do", "Makes sense, thanks."):
        assert agrees(yes), yes
    for no in ("I don't think so: the lock is held here.", "Good point, but the caller checks it.",
               "Why would it fail?", "Not sure this matters.", "It is intentional."):
        assert not agrees(no), no


def test_a_blank_quoted_context_line_keeps_the_run_whole() -> None:
    # mail clients strip the space of a blank context line: "> " or ">" inside a quoted hunk
    quote = (" {", " \tint ret;", "", "+\tw->resets = 0;", "", "")
    assert _diff_lines(quote) == [[" {", " \tint ret;", " ", "+\tw->resets = 0;"]]
    assert _diff_lines(("+a", "", "prose, not diff")) == [["+a"]]
