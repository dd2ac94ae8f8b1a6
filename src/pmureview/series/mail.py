"""Reading mail: mboxrd splitting, maildirs, folders of patches, and body decoding.

Our own splitter (not mailbox.mbox): public-inbox and `b4 mbox` write mboxrd, whose `>From `
quoting must be undone, and git format-patch output must split on its `From <sha> <date>` lines only.
"""

from __future__ import annotations

import os
import re
from typing import TYPE_CHECKING

from .. import lazyre
from ..errors import InputError
from ..record import dataclass
from . import rfc822

if TYPE_CHECKING:
    from email.message import Message as EmailMessage
    from pathlib import Path

# A separator is "From " + a sender token + a date-like tail; a bare "From " in prose is not.
_SEP = lazyre.compile(
    rb"^From \S+\s+(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun)\s+\w{3}\s+\d{1,2}\s+\d\d:\d\d(?::\d\d)?\s+\d{4}\s*$")
_QUOTED_FROM = lazyre.compile(rb"^>+From ")
MAIL_SUFFIXES = (".patch", ".eml", ".mbox", ".mbx", ".diff", ".txt")


def split_mbox(data: bytes) -> list[bytes]:
    """Split an mbox (mboxrd or format-patch output) into raw messages; a lone mail is one message."""
    data = data.replace(b"\r\n", b"\n")
    lines = data.split(b"\n")
    if not lines or not _SEP.match(lines[0]):
        return [data] if data.strip() else []
    out: list[bytes] = []
    cur: list[bytes] = []
    for line in lines:
        # format-patch --no-signature puts no blank line before the next separator, so the
        # date-shaped separator alone decides
        if _SEP.match(line):
            if cur:
                out.append(_join(cur))
            cur = []
            continue
        if _QUOTED_FROM.match(line):
            line = line[1:]
        cur.append(line)
    if cur:
        out.append(_join(cur))
    return [m for m in out if m.strip()]


def _join(lines: list[bytes]) -> bytes:
    return b"\n".join(lines).rstrip(b"\n") + b"\n"


def read_path(path: str | Path) -> list[bytes]:
    """Raw messages from an mbox file, a single mail, a maildir or a folder of patch/eml files."""
    try:
        if os.path.isdir(path):
            from pathlib import Path  # a folder: not the hook's case

            path = Path(path)
            if all((path / d).is_dir() for d in ("cur", "new")):
                files = sorted(p for d in ("cur", "new") for p in (path / d).iterdir() if p.is_file())
            else:
                files = sorted(p for p in path.iterdir() if p.is_file() and p.suffix in MAIL_SUFFIXES)
            if not files:
                raise InputError(f"{path}: no mail or patch files in this folder")
            return [m for f in files for m in split_mbox(f.read_bytes())]
        with open(path, "rb") as f:
            return split_mbox(f.read())
    except OSError as exc:
        raise InputError(f"{path}: cannot read: {exc.strerror or exc}") from None


@dataclass(frozen=True, slots=True)
class RawMail:
    """One decoded mail: headers as str, the body as text, and where the body starts."""

    headers: dict[str, list[str]]
    body: str
    header_lines: int  # lines before the blank line that ends the headers
    has_diff_attachment: bool = False

    def get(self, name: str, default: str = "") -> str:
        vals = self.headers.get(name.lower())
        return vals[0] if vals else default

    def get_all(self, name: str) -> list[str]:
        return self.headers.get(name.lower(), [])


def _decode_part(part: EmailMessage) -> str:
    payload = part.get_payload(decode=True)
    if payload is None:
        raw = part.get_payload()
        return raw if isinstance(raw, str) else ""
    return _decode_bytes(payload, part.get_content_charset() or "utf-8")


def _decode_bytes(payload: bytes, charset: str) -> str:
    try:
        return payload.decode(charset)
    except (LookupError, UnicodeDecodeError):
        try:
            return payload.decode("utf-8")
        except UnicodeDecodeError:
            return payload.decode("latin-1")


def parse_mail(raw: bytes) -> RawMail:
    """Decode one message. Raises InputError when it is not a mail at all."""
    raw = raw.replace(b"\r\n", b"\n")
    head, sep, _ = raw.partition(b"\n\n")
    if not sep and b"\n" not in raw.strip():
        raise InputError("not a mail: no headers")
    first = head.split(b"\n", 1)[0]
    if _SEP.match(first):  # a kept mbox separator (one format-patch file on stdin): skip it
        first = head.split(b"\n", 2)[1] if head.count(b"\n") >= 1 else b""
    if not re.match(rb"^[!-9;-~]+:", first):
        raise InputError("not a mail: it does not start with a header line")
    fast = _parse_plain(raw, head)
    if fast is not None:
        return fast
    import email
    import email.policy

    msg = email.message_from_bytes(raw, policy=email.policy.compat32)
    headers: dict[str, list[str]] = {}
    for k, v in msg.items():
        headers.setdefault(k.lower(), []).append(rfc822.decode_header(str(v)))
    texts: list[str] = []
    has_diff_attachment = False
    for part in msg.walk() if msg.is_multipart() else [msg]:
        if part.is_multipart():
            continue
        ctype = part.get_content_type()
        if ctype in ("text/plain", "text/x-patch", "text/x-diff", "application/x-patch") or ctype == "":
            texts.append(_decode_part(part))
            has_diff_attachment |= ctype != "text/plain"
    body = "\n".join(texts).replace("\r\n", "\n")
    return RawMail(headers=headers, body=body, header_lines=head.count(b"\n") + 1,
                   has_diff_attachment=has_diff_attachment)


def _parse_plain(raw: bytes, head: bytes) -> RawMail | None:
    """The git format-patch shape (ASCII headers, one text/plain 7bit/8bit part) without the email
    package; None for any other shape, which parse_mail hands to email."""
    pairs = rfc822.header_pairs(head)
    if pairs is None:
        return None
    headers: dict[str, list[str]] = {}
    for k, v in pairs:
        headers.setdefault(k.lower(), []).append(rfc822.decode_header(v))
    ctype, cte = headers.get("content-type", []), headers.get("content-transfer-encoding", [])
    if len(ctype) > 1 or len(cte) > 1 or (cte and cte[0].strip().lower() not in rfc822.PLAIN_ENCODINGS):
        return None
    charset = rfc822.plain_charset(ctype[0] if ctype else None)
    if charset is None:
        return None
    body = raw[len(head) + 2:] if raw[len(head):len(head) + 2] == b"\n\n" else b""
    text = _decode_bytes(body, charset or "utf-8").replace("\r\n", "\n")
    return RawMail(headers=headers, body=text, header_lines=head.count(b"\n") + 1)


def addresses(values: list[str]) -> tuple[str, ...]:
    """`Name <addr>` strings from To/Cc headers, in order, without duplicates."""
    out: list[str] = []
    seen: set[str] = set()
    for name, addr in rfc822.getaddresses(values):
        if not addr or addr.lower() in seen:
            continue
        seen.add(addr.lower())
        out.append(rfc822.formataddr((name, addr)) if name else addr)
    return tuple(out)


def msgid_of(value: str) -> str:
    value = value.strip()
    m = re.search(r"<([^<>\s]+)>", value)
    return m.group(1) if m else value.strip("<>")
