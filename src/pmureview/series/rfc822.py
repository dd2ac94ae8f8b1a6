"""The common shapes of mail headers, read without the email package.

Importing `email.parser` and `email.utils` costs ~15-20 ms (they pull in socket, urllib, datetime,
random, ...): a tenth of a one-patch hook run. git format-patch writes plain ASCII headers (RFC 2047
words for non-ASCII names), one text/plain part and 7bit/8bit bodies; those shapes are read here. Each
function answers exactly as its `email` counterpart on the shapes it accepts and hands anything else to
that counterpart (tests/test_rfc822.py compares the two on many shapes).
"""

from __future__ import annotations

import re

from .. import lazyre
from ..clock import datetime, timedelta, timezone

# -- header blocks ---------------------------------------------------------------------------------

_FIELD = lazyre.compile(rb"([!-9;-~]+):")  # RFC 5322 field name (printable ASCII but ':')
_SEP = lazyre.compile(rb"From \S")  # a kept mbox separator / unixfrom line


def header_pairs(head: bytes) -> list[tuple[str, str]] | None:
    """(name, value) of a header block (the bytes before the first blank line), each value as
    email's compat32 policy gives it (continuation lines kept, joined by "\\n"); None when the block
    is not plain ASCII or holds a line that is neither a field nor a continuation."""
    if not head.isascii():
        return None
    lines = head.split(b"\n")
    if lines and _SEP.match(lines[0]):
        lines = lines[1:]
    out: list[tuple[str, list[str]]] = []
    for line in lines:
        if not line:
            continue  # only the last line of a block (head ends at "\n\n")
        if line[:1] in (b" ", b"\t"):
            if not out:
                return None
            out[-1][1].append(line.decode("ascii"))
            continue
        m = _FIELD.match(line)
        if m is None:
            return None
        name = m.group(1).decode("ascii")
        out.append((name, [line[m.end():].decode("ascii").lstrip(" \t")]))
    return [(name, "\n".join(parts).rstrip("\r\n")) for name, parts in out]


def decode_header(value: str) -> str:
    """An unfolded header value with RFC 2047 words decoded (as make_header(decode_header()))."""
    if "=?" in value:
        import email.header

        try:
            decoded = str(email.header.make_header(email.header.decode_header(value)))
        except (ValueError, LookupError, UnicodeError):
            decoded = value
        value = decoded
    return " ".join(value.split())


_CTYPE = lazyre.compile(r'\s*text/plain\s*((?:;\s*[A-Za-z0-9_-]+\s*=\s*(?:"[^"\\]*"|[^;"\\\s]+)\s*)*);?\s*', re.I)
_PARAM = lazyre.compile(r';\s*([A-Za-z0-9_-]+)\s*=\s*(?:"([^"\\]*)"|([^;"\\\s]+))')
PLAIN_ENCODINGS = ("", "7bit", "8bit", "binary")


def plain_charset(content_type: str | None) -> str | None:
    """The charset ("" when none is given) of a text/plain Content-Type email would read the same
    way; None for any other type or an unusual shape (multipart, RFC 2231 parameters, ...)."""
    if content_type is None:
        return ""
    m = _CTYPE.fullmatch(content_type)
    if m is None:
        return None
    charset = ""
    for p in _PARAM.finditer(m.group(1)):
        if p.group(1).lower() == "charset":
            if "*" in p.group(1) or charset:
                return None
            charset = (p.group(2) if p.group(2) is not None else p.group(3)).lower()
    return charset


# -- addresses -------------------------------------------------------------------------------------

# a display-name word: no RFC 5322 special, no '.' (email reads "J. Doe" its own way), no control/space
_WORD = r"[^()<>@,:;.\"\\\[\]\x00-\x20\x7f]+"
_LOCAL = r"[A-Za-z0-9_%+=-]+(?:\.[A-Za-z0-9_%+=-]+)*"
_DOMAIN = r"[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*"
_NAMED = lazyre.compile(rf"[ \t]*((?:{_WORD}[ \t]+)*{_WORD})?[ \t]*<({_LOCAL}@{_DOMAIN})>[ \t]*")
_BARE = lazyre.compile(rf"[ \t]*({_LOCAL}@{_DOMAIN})[ \t]*")


def _one(text: str) -> tuple[str, str] | None:
    m = _NAMED.fullmatch(text)
    if m is not None:
        return " ".join((m.group(1) or "").split()), m.group(2)
    m = _BARE.fullmatch(text)
    return ("", m.group(1)) if m is not None else None


def parseaddr(value: str) -> tuple[str, str]:
    """email.utils.parseaddr."""
    got = _one(value)
    if got is not None:
        return got
    import email.utils

    return email.utils.parseaddr(value)


def getaddresses(values: list[str]) -> list[tuple[str, str]]:
    """email.utils.getaddresses."""
    out: list[tuple[str, str]] = []
    for value in values:
        for piece in value.split(","):
            got = _one(piece)
            if got is None:
                import email.utils

                return email.utils.getaddresses(values)
            out.append(got)
    return out


_SPECIALS = lazyre.compile(r'[][\\()<>@,:;".]')


def formataddr(pair: tuple[str, str]) -> str:
    """email.utils.formataddr."""
    name, addr = pair
    if addr.isascii() and (not name or (name.isascii() and not _SPECIALS.search(name))):
        return f"{name} <{addr}>" if name else addr
    import email.utils

    return email.utils.formataddr(pair)


# -- dates -----------------------------------------------------------------------------------------

_MONTHS = {m: i for i, m in enumerate(
    ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"), 1)}
_DATE = lazyre.compile(
    r"\s*(?:(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun),\s*)?(\d{1,2})\s+([A-Za-z]{3})\s+(\d{4})\s+"
    r"(\d{1,2}):(\d{2})(?::(\d{2}))?\s+([+-])(\d{2})([0-5]\d)\s*")


def parsedate_to_datetime(value: str) -> datetime:
    """email.utils.parsedate_to_datetime (naive for "-0000", RFC 5322's unknown zone)."""
    m = _DATE.fullmatch(value)
    month = _MONTHS.get(m.group(2).lower()) if m is not None else None
    if m is None or month is None:
        import email.utils

        return email.utils.parsedate_to_datetime(value)
    day, year, hour, minute = int(m.group(1)), int(m.group(3)), int(m.group(4)), int(m.group(5))
    second = int(m.group(6) or 0)
    offset = int(m.group(8)) * 3600 + int(m.group(9)) * 60
    if offset == 0 and m.group(7) == "-":
        return datetime(year, month, day, hour, minute, second)
    zone = timezone(timedelta(seconds=-offset if m.group(7) == "-" else offset))
    return datetime(year, month, day, hour, minute, second, tzinfo=zone)
