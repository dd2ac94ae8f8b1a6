"""Turning a SOURCE argument into raw messages: files, folders, stdin, a git range or a msgid (b4)."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from .. import lazyre
from ..errors import InputError, UsageError
from .mail import read_path

if TYPE_CHECKING:
    from pathlib import Path

_MSGID_LIKE = lazyre.compile(r"^(<[^<>\s]+@[^<>\s]+>|(id|rfc822msgid):\S+|[^\s/<>]+@[^\s/<>]+|https?://\S+)$")


def looks_like_msgid(arg: str) -> bool:
    return bool(_MSGID_LIKE.match(arg.strip())) and not os.path.exists(arg)


def read_sources(sources: list[str], *, stdin: bytes | None = None, midmask: str | None = None,
                 config_midmask: str | None = None, fetch_timeout: float = 60.0) -> tuple[list[bytes], str, bool]:
    """-> (raw messages, a label for messages, read from stdin?)."""
    raws: list[bytes] = []
    from_stdin = False
    for src in sources:
        if src == "-":
            import sys

            data = stdin if stdin is not None else sys.stdin.buffer.read()
            from .mail import split_mbox

            msgs = split_mbox(data)
            if len(msgs) == 1 and data.startswith(b"From ") and not msgs[0].startswith(b"From "):
                # one format-patch file: keep its `From <sha>` line so `-:N` counts as checkpatch does
                msgs = [data.split(b"\n", 1)[0].rstrip(b"\r") + b"\n" + msgs[0]]
            raws += msgs
            from_stdin = True
        elif os.path.exists(src):
            raws += read_path(src)
        elif looks_like_msgid(src):
            import tempfile  # only a fetch needs it
            from pathlib import Path

            from .fetch import fetch_thread

            with tempfile.TemporaryDirectory(prefix="pmureview-") as tmp:
                mbox = fetch_thread(src, midmask=midmask, config_midmask=config_midmask,
                                    timeout=fetch_timeout, workdir=Path(tmp))
                raws += read_path(mbox)
        else:
            raise InputError(f"{src}: no such file, and not a Message-ID or URL")
    label = "stdin" if from_stdin and len(sources) == 1 else ", ".join(sources)
    return raws, label, from_stdin


def read_range(repo: Path, rev_range: str) -> list[bytes]:
    """The commits of A..B as `git format-patch` would mail them."""
    if rev_range.startswith("-") or "\n" in rev_range:
        raise UsageError(f"--range {rev_range!r}: not a revision range")
    import subprocess  # only a git range needs it

    r = subprocess.run(["git", "-C", str(repo), "format-patch", "--stdout", "--no-signature", rev_range, "--"],
                       capture_output=True, stdin=subprocess.DEVNULL, check=False)
    if r.returncode != 0:
        msg = r.stderr.decode("utf-8", "replace").strip().splitlines()
        raise UsageError(f"--range {rev_range}: {msg[-1] if msg else 'git format-patch failed'}")
    from .mail import split_mbox

    out = split_mbox(r.stdout)
    if not out:
        raise InputError(f"--range {rev_range}: no commits")
    return out
