"""series/rfc822: the fast readers answer exactly as the email package on every shape they accept."""

from __future__ import annotations

import email
import email.policy
import email.utils
import itertools

import pytest

from pmureview.series import rfc822
from pmureview.series.mail import parse_mail

NAMES = ["", "Marc Zyngier", "  Ada   Lovelace ", "Jörg Rödel", "O'Neil Smith", "A. N. Other", '"Doe, Jane"',
         "Anne-Marie", "x(comment)", "Zoë", "\tTab\tName", "R2 D2"]
ADDRS = ["maz@kernel.org", "a.b+c@x-y.example.org", "first.last@sub.dom", "weird..dots@x.org", "no-at-sign",
         "trailing.@x.org", "UPPER@EXAMPLE.COM", "a=b%c_d@e.f"]


def _shapes() -> list[str]:
    out = []
    for name, addr in itertools.product(NAMES, ADDRS):
        out += [f"{name} <{addr}>", f"{name}<{addr}>", addr, f" {addr} ", f"{name} <{addr}> ", f"<{addr}>"]
    return [*out, "", " ", "Name <a@b>, Other <c@d>", "a@b,", ", a@b", "Group: a@b;", "a@b (Comment)"]


@pytest.mark.parametrize("value", _shapes())
def test_addresses_as_email_utils(value: str) -> None:
    assert rfc822.parseaddr(value) == email.utils.parseaddr(value)
    assert rfc822.getaddresses([value]) == email.utils.getaddresses([value])
    assert rfc822.getaddresses([value, "x@y.z"]) == email.utils.getaddresses([value, "x@y.z"])


@pytest.mark.parametrize("pair", [(n, a) for n, a in itertools.product(NAMES, ADDRS)])
def test_formataddr_as_email_utils(pair: tuple[str, str]) -> None:
    assert rfc822.formataddr(pair) == email.utils.formataddr(pair)


DATES = ["Fri, 4 Dec 2026 10:00:00 +0000", "Fri,  4 Dec 2026 10:00:00 +0130", "4 Dec 2026 10:00 +0000",
         "Thu, 04 Dec 2025 23:59:59 -0800", "Mon, 1 Jan 2024 00:00:00 -0000", "Sat, 5 dec 2026 1:02:03 +1400",
         "Fri, 4 Dec 2026 10:00:00 +0000 (UTC)", "Fri, 4 December 2026 10:00:00 +0000", "4 Dec 26 10:00 GMT",
         "Fri, 4 Dec 2026 10:00:00 EST", "Fri, 31 Feb 2026 10:00:00 +0000", "garbage", ""]


@pytest.mark.parametrize("value", DATES)
def test_dates_as_email_utils(value: str) -> None:
    def outcome(fn):
        try:
            got = fn(value)
            return got, got.tzinfo.utcoffset(got) if got.tzinfo else None
        except Exception as exc:  # the same exception type, as callers catch by type
            return type(exc)
    assert outcome(rfc822.parsedate_to_datetime) == outcome(email.utils.parsedate_to_datetime)


HEADS = [
    b"From: A <a@b.c>\nSubject: [PATCH 1/2] KVM: arm64: Do a thing\nDate: Fri, 4 Dec 2026 10:00:00 +0000\n",
    b"From 1234abcd Mon Sep 17 00:00:00 2001\nFrom: A <a@b.c>\nSubject: [PATCH] a very long subject that\n"
    b" continues here\n\tand here\n",
    b"From: =?UTF-8?q?J=C3=B6rg=20R=C3=B6del?= <j@x.de>\nSubject: x\n",
    b"Subject: =?utf-8?b?W1BBVENIXSDDqXTDqQ==?=\n",
    b"Content-Type: text/plain; charset=\"UTF-8\"\nContent-Transfer-Encoding: 8bit\nSubject: s\n",
    b"Content-Type: text/plain; charset=iso-8859-1; format=flowed\nSubject: s\n",
    b"Content-Type: TEXT/PLAIN\nContent-Transfer-Encoding: 7BIT\nSubject: s\n",
    b"Content-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: quoted-printable\nSubject: s\n",
    b"Content-Type: multipart/mixed; boundary=XX\nSubject: s\n",
    b"Content-Type: text/plain; charset*=utf-8''x\nSubject: s\n",
    b"Subject: caf\xc3\xa9 8-bit header\n",
    b"Subject: s\nnot a header line\n",
    b"Subject: s\nSubject: second\nCc: a@b, c@d\nCc: e@f\n",
]
BODIES = [b"", b"body line\n---\n diff\n", "caf\u00e9 \u2014 utf-8\n".encode(), b"lat\xe9in-1 byte\n",
          b"=E2=80=94 qp soft=\nbreak\n"]


@pytest.mark.parametrize("head,body", list(itertools.product(HEADS, BODIES)))
def test_parse_mail_fast_path_as_email(head: bytes, body: bytes, monkeypatch) -> None:
    raw = head + b"\n" + body
    fast = parse_mail(raw)
    monkeypatch.setattr("pmureview.series.mail._parse_plain", lambda raw, head: None)
    slow = parse_mail(raw)
    assert (fast.headers, fast.body, fast.header_lines, fast.has_diff_attachment) == \
           (slow.headers, slow.body, slow.header_lines, slow.has_diff_attachment)


def test_header_pairs_decline_what_is_not_plain() -> None:
    assert rfc822.header_pairs(b"Subject: caf\xc3\xa9") is None
    assert rfc822.header_pairs(b" leading continuation\nSubject: x") is None
    assert rfc822.header_pairs(b"Subject: x\nno colon here") is None
    assert rfc822.header_pairs(b"Subject: a\n b\nTo: c") == [("Subject", "a\n b"), ("To", "c")]


def test_header_pairs_match_compat32() -> None:
    for head in HEADS:
        pairs = rfc822.header_pairs(head)
        if pairs is None:
            continue
        msg = email.message_from_bytes(head + b"\n", policy=email.policy.compat32)
        assert pairs == [(k, str(v)) for k, v in msg.items()]
