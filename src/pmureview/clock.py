"""datetime's classes, from its C module where there is one.

`import datetime` runs the whole pure-Python implementation (100 KB of byte code) before replacing
it with the C module's classes: ~2 ms of every hook run for the Date header. The classes are the
same objects either way (datetime.py re-exports _datetime's).
"""

from __future__ import annotations

try:
    from _datetime import UTC, date, datetime, timedelta, timezone
except ImportError:  # another Python implementation
    from datetime import UTC, date, datetime, timedelta, timezone

__all__ = ["UTC", "date", "datetime", "timedelta", "timezone"]
