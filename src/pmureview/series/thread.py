"""The non-patch mails of a posting's thread (review replies), and mbox writing for re-reading raws.

`parse_series` keeps only the patches and the cover letter of one revision; version tracking also
needs the replies to the previous posting (analyses/thread_comments.py splits them into comments).
A reply belongs to a posting when its parent (In-Reply-To, else the last References entry) is one
of the posting's mails or, in turn, such a reply.
"""

from __future__ import annotations

from ..errors import InputError
from ..record import dataclass
from .mail import parse_mail
from .model import Message, Series


@dataclass(frozen=True, slots=True)
class ThreadMail:
    """One mail of a thread that is not a patch or cover letter of the series: headers and body."""

    mail: Message
    body: str

    @property
    def msgid(self) -> str:
        return self.mail.msgid


def series_msgids(series: Series) -> set[str]:
    ids = {p.mail.msgid for p in series.patches}
    if series.cover:
        ids.add(series.cover.mail.msgid)
    return ids


def thread_of(raws: list[bytes], series: Series, *, exclude: set[str] = frozenset()) -> list[ThreadMail]:
    """Every mail in `raws` that answers (transitively) a mail of `series` and is not itself a patch
    or cover of it or in `exclude` (the other revisions' patches), in date order."""
    from .parse import _date_key, _message

    own = series_msgids(series)
    mails: list[ThreadMail] = []
    for raw in raws:
        try:
            rm = parse_mail(raw)
        except InputError:
            continue
        msg = _message(rm)
        if not msg.msgid or msg.msgid in own or msg.msgid in exclude:
            continue
        mails.append(ThreadMail(msg, rm.body))
    reached = set(own)
    out: dict[str, ThreadMail] = {}
    changed = True
    while changed:  # replies to replies: grow the set until it stops
        changed = False
        for tm in mails:
            if tm.msgid in out:
                continue
            # the direct parent only: a reply to vN, when vN was sent in reply to vN-1, lists
            # vN-1's mails in References too
            parent = tm.mail.in_reply_to or (tm.mail.references[-1] if tm.mail.references else None)
            if parent in reached:
                out[tm.msgid] = tm
                reached.add(tm.msgid)
                changed = True
    return sorted(out.values(), key=lambda t: (_date_key(t.mail.date), t.msgid))


def to_mbox(raws: list[bytes]) -> bytes:
    """Raw messages as mboxrd (the `From ` line of a body gains a `>`), readable by mail.split_mbox."""
    import re

    out = bytearray()
    for raw in raws:
        raw = raw.replace(b"\r\n", b"\n")
        head, sep, body = raw.partition(b"\n\n")
        body = re.sub(rb"^(>*From )", rb">\1", body, flags=re.M)
        out += b"From pmureview@localhost Thu Jan  1 00:00:00 1970\n" + head + sep + body.rstrip(b"\n") + b"\n\n"
    return bytes(out)
