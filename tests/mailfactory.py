"""Small builders of patch mails for tests (the fixtures under fixtures/ are built with real git)."""

from __future__ import annotations

from pathlib import Path


def patch_mail(
    *,
    subject: str = "[PATCH] KVM: arm64: Do a thing",
    msgid: str = "p1@example.org",
    date: str = "Tue, 09 Dec 2025 20:51:08 +0000",
    body: str = "Do the thing.\n\nSigned-off-by: Ann Author <ann@example.org>\n",
    diff: str | None = None,
    extra_headers: str = "",
    in_reply_to: str | None = None,
) -> str:
    if diff is None:
        diff = simple_diff()
    head = (f"From: Ann Author <ann@example.org>\nTo: kvmarm@lists.linux.dev\nCc: Maint Ainer <m@example.org>\n"
            f"Subject: {subject}\nDate: {date}\nMessage-ID: <{msgid}>\n")
    if in_reply_to:
        head += f"In-Reply-To: <{in_reply_to}>\nReferences: <{in_reply_to}>\n"
    head += extra_headers
    return f"{head}\n{body}---\n arch/arm64/kvm/foo.c | 2 ++\n\n{diff}"


def simple_diff(path: str = "arch/arm64/kvm/foo.c", added: tuple[str, ...] = ("\tbar();",)) -> str:
    plus = "".join(f"+{a}\n" for a in added)
    n = len(added)
    return (f"diff --git a/{path} b/{path}\nindex 1111111..2222222 100644\n--- a/{path}\n+++ b/{path}\n"
            f"@@ -10,3 +10,{3 + n} @@ void f(void)\n {{\n \tint x;\n{plus} }}\n")


def mbox(*mails: str) -> str:
    out = []
    for m in mails:
        # mboxrd: every line matching ^>*From gains one more '>'
        body = "\n".join((">" + ln) if ln.lstrip(">").startswith("From ") else ln for ln in m.split("\n"))
        out.append("From mboxrd@z Thu Jan  1 00:00:00 1970\n" + body.rstrip("\n") + "\n")
    return "\n".join(out)


def write(tmp: Path, name: str, text: str | bytes) -> Path:
    p = tmp / name
    p.write_bytes(text if isinstance(text, bytes) else text.encode())
    return p
