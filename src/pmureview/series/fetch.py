"""Fetch a whole thread with the real `b4` CLI (never its internals: they change between releases).

One subprocess: `b4 -q -c b4.midmask=MASK -c b4.save-maildirs=no -c b4.attestation-policy=off
mbox -C -o DIR -- MSGID`. The msgid is one argv element (no shell), stdin is /dev/null (b4 reads a
message from a non-tty stdin otherwise), b4 gets its own XDG_CACHE_HOME under the work folder, and
the whole process group is killed when the timeout fires.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import urllib.parse
from pathlib import Path

from pmureview.errors import FetchError, UsageError

from ..record import dataclass

DEFAULT_MIDMASK = "https://lore.kernel.org/all/%s"
MIDMASK_ENV = "PMUREVIEW_MIDMASK"

# Path tails public-inbox puts after the msgid: thread views, raw message, mbox downloads.
_URL_TAILS = {"T", "t", "raw", "t.mbox.gz", "t.atom", "t.mbox"}
# lore's /r/ only redirects; b4 wants a real inbox path (or /all) as the base.
_REDIRECT_LISTS = {"r": "all"}
# Hosts that redirect to lore but are not public-inbox servers themselves.
_REDIRECT_HOSTS = {"patch.msgid.link", "msgid.link"}
_PREFIX_RE = re.compile(r"^(?:rfc822msgid|mid|id):", re.IGNORECASE)
_BAD_CHARS_RE = re.compile(r"[\x00-\x1f\x7f]")  # control chars; other oddities are b4's business


@dataclass(frozen=True, slots=True)
class MsgidRef:
    msgid: str  # bare, without <>
    midmask: str | None  # the server the URL named, if it was a URL


def resolve_midmask(cli: str | None, config: str | None) -> str:
    """--midmask > $PMUREVIEW_MIDMASK > config file > lore.kernel.org/all."""
    for value in (cli, os.environ.get(MIDMASK_ENV), config):
        if value:
            return check_midmask(value)
    return DEFAULT_MIDMASK


def check_midmask(mask: str) -> str:
    parts = urllib.parse.urlsplit(mask)
    if parts.scheme not in ("http", "https") or not parts.netloc or mask.count("%s") != 1:
        raise UsageError(f"midmask must be an http(s) URL with one %s, like {DEFAULT_MIDMASK}: {mask!r}")
    return mask


def _check_msgid(msgid: str, original: str) -> str:
    msgid = msgid.strip().removeprefix("<").removesuffix(">").strip()
    if not msgid or _BAD_CHARS_RE.search(msgid) or "<" in msgid or ">" in msgid:
        raise UsageError(f"not a message-id: {original!r}")
    return msgid


def normalise_msgid(value: str) -> MsgidRef:
    """Accept a bare msgid, `<msgid>`, `id:`/`mid:`/`rfc822msgid:` prefixes or a lore/public-inbox URL.

    For a URL the midmask is derived from its host and list (`https://lore.kernel.org/kvmarm/<id>/T/`
    gives `https://lore.kernel.org/kvmarm/%s`), as b4 itself does.
    """
    text = value.strip()
    if not re.match(r"^https?://", text, re.IGNORECASE):
        return MsgidRef(_check_msgid(_PREFIX_RE.sub("", text.strip("<>")), value), None)

    url = urllib.parse.urlsplit(text)
    # Split before unquoting: a msgid may hold an encoded "/" (%2F).
    segs = [s for s in url.path.split("/") if s]
    while segs and segs[-1] in _URL_TAILS:
        segs.pop()
    if not segs:
        raise UsageError(f"no message-id in URL: {value!r}")
    msgid = _check_msgid(urllib.parse.unquote(segs[-1]), value)
    if "@" not in msgid:  # an inbox or listing URL, not a message
        raise UsageError(f"no message-id in URL: {value!r}")
    lists = [urllib.parse.unquote(s) for s in segs[:-1]]
    host = (url.hostname or "").lower()
    if host in _REDIRECT_HOSTS or ("project" in lists and "patch" in lists):  # patchwork
        return MsgidRef(msgid, None)
    if lists:
        lists[-1] = _REDIRECT_LISTS.get(lists[-1], lists[-1])
    path = "/".join(urllib.parse.quote(s, safe="") for s in lists)
    mask = f"{url.scheme.lower()}://{url.netloc}/{path + '/' if path else ''}%s"
    return MsgidRef(msgid, mask)


def find_b4() -> str:
    """b4 beside our interpreter first (the venv we were installed into), then PATH."""
    beside = Path(sys.executable).parent / "b4"
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    found = shutil.which("b4")
    if found:
        return found
    raise FetchError("b4 not found: install it with pip install b4")


def _server(mask: str) -> str:
    return mask.replace("/%s", "").replace("%s", "")


def _last_line(text: str) -> str:
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    line = lines[-1] if lines else "no message"
    return line if len(line) <= 300 else line[:297] + "..."


def _kill_session(proc: subprocess.Popen[bytes]) -> None:
    # b4 may have children (git); take the whole session down, then reap.
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    # A grandchild that left the session could hold the pipes open: do not wait forever.
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.communicate(timeout=5)


def fetch_thread(msgid_or_url: str, *, midmask: str | None, timeout: float = 60.0, workdir: Path,
                 config_midmask: str | None = None) -> Path:
    """Fetch the whole thread of a message into an mboxrd file under `workdir` and return its path.

    `midmask` is the explicit one (`--midmask`); without it a URL's own server is used, else
    `resolve_midmask(None, config_midmask)` ($PMUREVIEW_MIDMASK > config > lore).
    """
    ref = normalise_msgid(msgid_or_url)
    if midmask:
        mask = check_midmask(midmask)
    elif ref.midmask:
        mask = ref.midmask
    else:
        mask = resolve_midmask(None, config_midmask)
    b4 = find_b4()

    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    run_dir = Path(tempfile.mkdtemp(prefix="b4-", dir=workdir))
    out_dir = run_dir / "out"
    out_dir.mkdir()  # b4 mbox crashes when -o names a missing folder
    env = dict(os.environ, XDG_CACHE_HOME=str(run_dir / "cache"))
    argv = [
        b4, "-q",
        "-c", f"b4.midmask={mask}",
        "-c", "b4.save-maildirs=no",
        "-c", "b4.attestation-policy=off",  # DKIM checks would do DNS
        "mbox", "-C", "-o", str(out_dir),
        "--", ref.msgid,  # "--": a msgid starting with "-" must not read as an option
    ]
    shown = f"<{ref.msgid}>"
    try:
        proc = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            cwd=run_dir, env=env, start_new_session=True,
        )
    except OSError as exc:
        raise FetchError(f"cannot run b4 ({b4}): {exc.strerror or exc}") from exc
    try:
        _out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        _kill_session(proc)
        raise FetchError(f"b4 did not answer within {timeout:g} s fetching {shown}") from None
    except BaseException:
        # Ctrl-C does not reach b4 in its own session: take it down with us.
        _kill_session(proc)
        raise
    stderr = err.decode("utf-8", "replace")

    if proc.returncode != 0:
        if proc.returncode == 1 and ("404" in stderr or "No messages found" in stderr or not stderr.strip()):
            raise FetchError(f"message {shown} not found at {_server(mask)}")
        raise FetchError(f"b4 could not fetch {shown} from {_server(mask)} "
                         f"(exit {proc.returncode}): {_last_line(stderr)}")
    # b4 names the file after the msgid; never rebuild that name ourselves.
    found = sorted(p for p in out_dir.glob("*.mbx") if p.is_file())
    if not found or found[0].stat().st_size == 0:
        raise FetchError(f"b4 returned no messages for {shown} from {_server(mask)}")
    return found[0]
