"""Finding the previous posting (vN-1) of a series: in the same source, from `--since`, or on the server.

The server search mirrors `b4 diff`'s look-back (b4's `get_extra_series(direction=-1)`): ONE search
request to the public-inbox server of the msgid (its URL or the midmask), for `nq:"change-id: <id>"`
when the cover letter carries b4's `change-id:`, else `(s:"<subject>" AND f:"<sender>")`, limited to the
12 months before the posting (`d:YYYYMMDD..YYYYMMDD`). public-inbox answers `POST /<inbox>/?x=m&q=…`
with a gzipped mbox of the hits (what b4's library sends); the hit that is vN-1's cover letter or first
patch is then fetched, thread and all, with `b4 mbox` like any msgid. b4's command line cannot look
backwards (`b4 diff` needs a range or both msgids), hence this one request of our own; see
docs/design.md and docs/versions.md.
"""

from __future__ import annotations

import calendar
import email.utils
import gzip
import time
import urllib.error
import urllib.parse
import urllib.request

from ..errors import FetchError
from ..record import dataclass
from .model import Series

SEARCH_DAYS = 365


@dataclass(frozen=True, slots=True)
class SearchHit:
    msgid: str
    revision: int
    query: str
    found_by: str  # "change-id" | "subject"


def search_query(series: Series) -> tuple[str, str] | None:
    """-> (query, found_by) for vN-1 of `series`, or None (v1, or no date to bound the search)."""
    mail = series.cover.mail if series.cover else (series.patches[0].mail if series.patches else None)
    if mail is None or series.revision <= 1:
        return None
    parsed = email.utils.parsedate_tz(mail.date or "")
    if parsed is None:
        return None
    # the header's own calendar day, as b4 takes it (its local date, not UTC)
    day = calendar.timegm(parsed[:9])
    end = time.strftime("%Y%m%d", time.gmtime(day))
    start = time.strftime("%Y%m%d", time.gmtime(day - SEARCH_DAYS * 86400))
    if series.change_id:
        return f'(nq:"change-id: {series.change_id}") AND d:{start}..{end}', "change-id"
    title = mail.title.replace('"', "")
    return f'((s:"{title}" AND f:"{mail.author_email}")) AND d:{start}..{end}', "subject"


def search_server(mask: str) -> str:
    """The inbox URL a midmask names: `https://lore.kernel.org/all/%s` -> `https://lore.kernel.org/all`."""
    return mask.replace("%s", "").rstrip("/")


def search_previous(series: Series, mask: str, *, timeout: float = 60.0) -> SearchHit | None:
    """One search request; the msgid of vN-1's cover letter (or first patch), or None when not found.
    Raises FetchError when the server cannot be asked."""
    from .mail import parse_mail, split_mbox
    from .parse import _message, parse_subject

    q = search_query(series)
    if q is None:
        return None
    query, found_by = q
    url = f"{search_server(mask)}/?x=m&q={urllib.parse.quote_plus(query)}"
    req = urllib.request.Request(url, data=b"x=m", method="POST")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            data = resp.read()
    except urllib.error.HTTPError as exc:
        if exc.code == 404:  # public-inbox's "no results"
            return None
        raise FetchError(f"search at {search_server(mask)} failed: HTTP {exc.code}") from None
    except (urllib.error.URLError, OSError, TimeoutError) as exc:
        raise FetchError(f"search at {search_server(mask)} failed: {getattr(exc, 'reason', exc)}") from None
    if data[:2] == b"\x1f\x8b":
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError):
            raise FetchError(f"search at {search_server(mask)}: a broken gzip answer") from None
    want = series.revision - 1
    best: tuple[int, str] | None = None  # (counter, msgid): the cover letter beats patch 1
    for raw in split_mbox(data):
        try:
            msg = _message(parse_mail(raw))
        except Exception:  # a malformed hit is skipped, never fatal
            continue
        _t, words, rev, counter, _total = parse_subject(msg.subject)
        if msg.subject.lower().startswith(("re:", "aw:")) or (rev or 1) != want or not words:
            continue
        c = counter if counter is not None else 1
        if c <= 1 and (best is None or c < best[0]):
            best = (c, msg.msgid)
    return SearchHit(best[1], want, query, found_by) if best else None
