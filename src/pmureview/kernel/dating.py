"""How much a bundled kernel fact is worth for one series (issue 13, class 1; docs/knowledge.md).

Every bundled fact file under kernel/data/ records the kernel it was made from: top-level
`kernel_version` ("v6.12") and `release_date` ("2024-11-17"); a section may carry its own pair when
it describes a different kernel (the curated FGT guards of snapshot.json). Facts are taken, in this
order, from the series itself, the base tree, and only then a bundled file; `trust()` answers for
the last step:

- a base tree is present: the tree wins, the bundled file is not used (`use` is False);
- no tree, the series is dated after the release: a base older than the facts is unlikely, so the
  fact may support a warning (`warn`);
- otherwise (an older or undated series): at most a `check`, whose message says `as_of`.
"""

from __future__ import annotations

import os
from functools import cache
from typing import Any

from .. import clock as _dt
from ..record import dataclass
from ..series.rfc822 import parsedate_to_datetime

_DATA = os.path.join(os.path.dirname(__file__), "data")  # str: the hook path does not import pathlib


def __getattr__(name: str) -> Any:
    if name == "DATA_DIR":  # the bundled data folder, as a Path (tests, tools)
        from pathlib import Path

        return Path(_DATA)
    raise AttributeError(name)


SNAPSHOT = "snapshot.json"
GATING = "pack2-gating.json"
WIRING = "pack2-wiring.json"


@dataclass(frozen=True, slots=True)
class Dated:
    """The kernel a bundled fact was made from."""

    kernel_version: str  # "v6.12"
    release_date: _dt.date

    @property
    def as_of(self) -> str:
        return f"as of {self.kernel_version}"


@dataclass(frozen=True, slots=True)
class Trust:
    """The worth of one bundled fact for one series."""

    use: bool  # False: a base tree is present and wins
    warn: bool  # the fact may support a warning (else at most a check)
    dated: Dated | None

    @property
    def as_of(self) -> str:
        """'as of v6.12' ('' when the file is undated)."""
        return self.dated.as_of if self.dated else ""


@cache
def _load(name: str) -> dict[str, Any]:
    try:
        with open(os.path.join(_DATA, name), encoding="utf-8") as f:
            import json  # here: the hook path imports json only when it reads a data file
            return json.loads(f.read())
    except (OSError, ValueError):
        return {}


def _parse(d: Any) -> Dated | None:
    if not isinstance(d, dict):
        return None
    ver, rel = d.get("kernel_version"), d.get("release_date")
    if not isinstance(ver, str) or not isinstance(rel, str):
        return None
    try:
        return Dated(ver, _dt.date.fromisoformat(rel))
    except ValueError:
        return None


@cache
def dated(name: str, section: str | None = None) -> Dated | None:
    """The kernel bundled file `name` (or its `section`, when it records its own) was made from."""
    data = _load(name)
    if section is not None:
        sec = data.get(section)
        prov = (data.get("provenance") or {}).get(section) if isinstance(data.get("provenance"), dict) else None
        for d in (sec, prov):
            got = _parse(d)
            if got is not None:
                return got
    return _parse(data)


# series_date() is asked once per rule and file (hundreds of times per run) and parses every mail's
# Date header: remember the last few answers by identity (the entry holds the series, so its id
# cannot be reused while cached; the model is immutable, so the answer cannot go stale)
_DATES: list[tuple[Any, _dt.date | None]] = []
_DATES_KEPT = 4


def series_date(series: Any) -> _dt.date | None:
    """The date a series was posted: the earliest parseable Date header of its mails (UTC)."""
    for seen, when in _DATES:
        if seen is series:
            return when
    when = _series_date(series)
    if series is not None:
        _DATES.insert(0, (series, when))
        del _DATES[_DATES_KEPT:]
    return when


def _series_date(series: Any) -> _dt.date | None:
    mails = [p.mail for p in getattr(series, "patches", ())]
    cover = getattr(series, "cover", None)
    if cover is not None:
        mails.append(cover.mail)
    best: _dt.datetime | None = None
    for m in mails:
        raw = getattr(m, "date", "") or ""
        try:
            when = parsedate_to_datetime(raw)
        except (TypeError, ValueError, IndexError):
            continue
        if when is None:
            continue
        if when.tzinfo is None:
            when = when.replace(tzinfo=_dt.UTC)
        if best is None or when < best:
            best = when
    return best.astimezone(_dt.UTC).date() if best is not None else None


def dated_from(d: Any) -> Dated | None:
    """The Dated of a provenance mapping ({"kernel_version": "v6.18", "release_date": "2025-11-30"}),
    e.g. a section of the loaded knowledge rather than of a bundled file; None when undated."""
    return _parse(d)


def trust(ctx: Any, name: str, section: str | None = None) -> Trust:
    """How much bundled file `name` is worth for the series of `ctx` (a SeriesContext, or anything
    with `.series` and `.full`; a FileContext's `.series` is the SeriesContext)."""
    return trust_dated(ctx, dated(name, section))


def trust_dated(ctx: Any, d: Dated | None) -> Trust:
    """trust() for a bundled fact dated `d` (None: undated, never supports a warning on its own)."""
    sctx = ctx
    while not hasattr(sctx, "full") and hasattr(sctx, "series"):
        sctx = sctx.series
    if getattr(sctx, "full", False):
        return Trust(False, False, d)
    when = series_date(getattr(sctx, "series", None))
    warn = d is not None and when is not None and when > d.release_date
    return Trust(True, warn, d)
