"""Small JSON caches under $XDG_CACHE_HOME/pmureview: a missing or broken file is a cache miss, and
a write that fails only costs speed (written atomically, so parallel hook runs never read half a file)."""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Any

# str paths throughout: the hook path does not import pathlib (with the urllib it pulls in, ~4 ms)


def cache_path(*parts: str) -> str:
    root = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(root, "pmureview", *parts)


def read_json(path: str | os.PathLike | None) -> Any:
    if path is None:
        return None
    import json  # here, not at the top: lazyre imports this module before it serves json's patterns

    try:
        with open(path, encoding="utf-8") as f:
            return json.loads(f.read())
    except (OSError, ValueError):
        return None


def write_json(path: str | os.PathLike | None, data: Any) -> None:
    if path is None:
        return
    import json

    try:
        raw = json.dumps(data).encode("utf-8")
    except (TypeError, ValueError):
        return
    write_bytes(os.fspath(path), raw)


def crc(text: str) -> str:
    """A short hex name for a cache file kept per folder, per import path, per code version."""
    from binascii import crc32

    return f"{crc32(text.encode('utf-8', 'surrogateescape')):08x}"


def content_key(data: str | bytes) -> str:
    """A file name for data derived from this content (CRC-32, Adler-32 and length: 72 bits, plenty
    for the few hundred base-file versions kept; hashlib would cost ~4 ms of imports per process)."""
    import zlib

    raw = data.encode("utf-8", "surrogateescape") if isinstance(data, str) else data
    return f"{zlib.crc32(raw):08x}{zlib.adler32(raw):08x}{len(raw):x}"


def code_stamp(files: Iterable[str | None]) -> str:
    """The version and each file's path, mtime and size: data derived by other code (an upgrade, an
    edit) is never read back. A missing file counts as such."""
    from . import __version__

    parts = [__version__]
    for f in files:
        try:
            st = os.stat(f) if f else None
        except OSError:
            st = None
        parts.append(f"{f}:{st.st_mtime_ns}:{st.st_size}" if st else f"{f}:-")
    return crc(chr(0).join(parts))


def per_build_file(name: str) -> str:
    """A cache file of data only this Python build may read back (marshal, code objects, sre code)."""
    import sys

    return cache_path(f"{name}-{sys.implementation.cache_tag}-{sys.hexversion:x}.marshal")


def read_marshal(path: str) -> Any:
    """The marshalled data of `path`; None when missing or unreadable (a cache miss, never an error)."""
    import marshal

    try:
        with open(path, "rb") as f:
            raw = f.read()
        # loads, not load(f): from a file object marshal reads object by object (5-8x slower)
        return marshal.loads(raw)
    except Exception:  # a truncated or foreign file raises EOFError, ValueError, TypeError, ...
        return None


def read_marshal_dict(path: str) -> dict:
    data = read_marshal(path)
    return data if isinstance(data, dict) else {}


class BuildCache:
    """A dict kept in a per-build marshal file for the next processes: read on first use, written at
    exit when this run added to it; past `cap` entries only what this run used is kept.

    `stamp` names the version of the code the values derive from: writing drops the files of other
    stamps of the same cache (an upgrade or an edit would otherwise leave one file per version)."""

    def __init__(self, name: str, cap: int, stamp: str | None = None) -> None:
        self.name = f"{name}-{stamp}" if stamp else name
        self.family = f"{name}-" if stamp else None
        self.cap = cap
        self.data: dict | None = None
        self.used: dict = {}
        self.added = False

    def load(self) -> dict:
        if self.data is None:
            import atexit

            path = per_build_file(self.name)
            self.data = read_marshal_dict(path)
            atexit.register(self._save, path)
        return self.data

    def get(self, key: Any) -> Any:
        value = self.load().get(key)
        if value is not None:
            self.used[key] = value
        return value

    def put(self, key: Any, value: Any) -> None:
        self.load()[key] = self.used[key] = value
        self.added = True

    def _save(self, path: str) -> None:
        if self.added and self.data:
            write_marshal(path, self.data if len(self.data) <= self.cap else self.used)
            if self.family:
                _drop_siblings(path, self.family)


def _drop_siblings(path: str, family: str) -> None:
    """Remove the files of `family` (`<name>-<stamp>-<build>.marshal`) other than `path`, same build."""
    folder, mine = os.path.split(path)
    build = mine[len(family):].split("-", 1)[-1]  # the part after the stamp: this Python build's tag
    try:
        for other in os.listdir(folder):
            if other != mine and other.startswith(family) and other.endswith("-" + build):
                os.unlink(os.path.join(folder, other))
    except OSError:  # a parallel run removed it first
        pass


CONTENT_KEPT = 600  # files in content/: past this, the oldest written go


def content_cache_file(kind: str, digest: str) -> str:
    """Where a value derived from a text with this content digest is kept (per Python build): facts
    parsed from a base tree's files, which every hook run of a series asks again."""
    return per_build_file(f"content/{kind}-{digest}")


def write_content(path: str, data: Any) -> None:
    """Write a content_cache_file() (bytes as they are, anything else marshalled). One file per
    base-file version ever reviewed, so the folder is trimmed to the CONTENT_KEPT most recently
    written (a write is a cache miss: rare)."""
    if isinstance(data, bytes):
        write_bytes(path, data)
    else:
        write_marshal(path, data)
    folder = os.path.dirname(path)
    try:
        names = os.listdir(folder)
        if len(names) <= CONTENT_KEPT:
            return
        stamped = sorted((os.stat(os.path.join(folder, n)).st_mtime_ns, n) for n in names)
        for _, name in stamped[:len(stamped) - CONTENT_KEPT]:
            os.unlink(os.path.join(folder, name))
    except OSError:  # a parallel run trimmed it first
        pass


def write_marshal(path: str, data: Any) -> None:
    """Write `data` with marshal, atomically; an object marshal cannot write only costs speed."""
    import marshal

    try:
        raw = marshal.dumps(data)
    except ValueError:
        return
    write_bytes(path, raw)


def write_bytes(path: str, raw: bytes) -> None:
    """Write a cache file atomically (a parallel run reads the old file or the new one); a failure
    (an unwritable folder) only costs speed and leaves no temporary file behind."""
    import contextlib

    tmp = f"{path}.{os.getpid()}.tmp"
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(tmp, "wb") as f:
            f.write(raw)
        os.replace(tmp, path)
    except OSError:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
