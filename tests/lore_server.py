"""A fake lore / public-inbox server on 127.0.0.1, enough for `b4 mbox` and `b4 am` (b4 0.16).

It answers what b4 0.16 asks (ECOSYSTEM.md §1.2): `GET /<list>/<msgid>/t.mbox.gz` with the gzip'd
mboxrd of the whole thread, `HEAD /<list>/<msgid>/` with 200, `HEAD /<msgid>/` at the root with a 302
to the list (public-inbox does that), `GET …/raw` with the one message, 404 for anything else and for
every POST (b4 treats a failed search as "no extra trailers"). Every request is logged in `requests`
so tests can check what b4 asked for.
"""

from __future__ import annotations

import gzip
import re
import threading
import urllib.parse
from collections.abc import Callable, Iterable
from email.parser import BytesHeaderParser
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType

_MSGID_RE = re.compile(r"<([^<>]+)>")
_FROM_LINE = re.compile(rb"^(>*From )", re.MULTILINE)


def _ids(value: str | None) -> list[str]:
    return [m.strip() for m in _MSGID_RE.findall(value or "")]


def to_mboxrd(messages: Iterable[bytes]) -> bytes:
    """Join raw messages as mboxrd: `From ` and `>From ` lines in bodies gain one more `>`."""
    out = bytearray()
    for raw in messages:
        raw = raw.replace(b"\r\n", b"\n")
        head, sep, body = raw.partition(b"\n\n")
        body = _FROM_LINE.sub(rb">\1", body)
        if not body.endswith(b"\n"):
            body += b"\n"
        out += b"From mboxrd@z Thu Jan  1 00:00:00 1970\n" + head + sep + body + b"\n"
    return bytes(out)


class LoreServer:
    """`with LoreServer(messages) as srv:` serves the messages under `/<list_name>/`.

    `srv.midmask` is ready for `b4 -c b4.midmask=…`; `srv.requests` lists `(method, path)`.
    """

    def __init__(self, messages: Iterable[bytes], list_name: str = "test",
                 search: Callable[[str], list[bytes]] | None = None) -> None:
        self.list_name = list_name
        # `search(query) -> raw messages`: answers `POST /<list>/?x=m&q=…` (gzip'd mboxrd, 404 when
        # empty), as public-inbox does; without it every POST is a 404
        self.search = search
        self.requests: list[tuple[str, str]] = []
        self._by_id: dict[str, bytes] = {}
        self._order: list[str] = []
        parent: dict[str, str] = {}

        def root(mid: str) -> str:
            while parent.get(mid, mid) != mid:
                mid = parent[mid]
            return mid

        for raw in messages:
            hdr = BytesHeaderParser().parsebytes(raw)
            found = _ids(hdr.get("Message-ID"))
            if not found:
                raise ValueError("message without a Message-ID")
            mid = found[0]
            self._by_id[mid] = raw
            self._order.append(mid)
            # Threads are the connected parts of the In-Reply-To/References graph.
            for ref in _ids(hdr.get("In-Reply-To")) + _ids(hdr.get("References")):
                parent[root(ref)] = root(mid)
        self._root = {mid: root(mid) for mid in self._order}

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._httpd.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return self._httpd.server_address[1]

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def midmask(self) -> str:
        return f"{self.base}/{self.list_name}/%s"

    def thread_of(self, msgid: str) -> list[bytes] | None:
        if msgid not in self._by_id:
            return None
        want = self._root[msgid]
        return [self._by_id[m] for m in self._order if self._root[m] == want]

    def _lookup(self, segment: str) -> str | None:
        # b4 sends quote_plus(msgid) ("@" as %40, " " as "+"); others send a plain unquote()-able path.
        for cand in (urllib.parse.unquote(segment), urllib.parse.unquote_plus(segment)):
            if cand in self._by_id:
                return cand
        return None

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: object) -> None:  # keep test output clean
                pass

            def _send(self, code: int, body: bytes = b"", ctype: str = "text/plain",
                      headers: dict[str, str] | None = None) -> None:
                self.send_response(code)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(body)

            def _route(self) -> None:
                server.requests.append((self.command, self.path))
                path = urllib.parse.urlsplit(self.path).path
                parts = path.strip("/").split("/")
                if self.command == "POST":
                    length = int(self.headers.get("Content-Length") or 0)
                    self.rfile.read(length)
                    query = urllib.parse.parse_qs(urllib.parse.urlsplit(self.path).query).get("q", [""])[0]
                    hits = server.search(query) if server.search and parts == [server.list_name] else []
                    if not hits:
                        return self._send(404, b"no search here\n")
                    return self._send(200, gzip.compress(to_mboxrd(hits)), "application/gzip")
                if len(parts) == 1 and self.command == "HEAD":
                    mid = server._lookup(parts[0])
                    if mid is None:
                        return self._send(404)
                    loc = f"/{server.list_name}/{urllib.parse.quote(mid, safe='@')}/"
                    return self._send(302, headers={"Location": loc})
                if len(parts) < 2 or parts[0] != server.list_name:
                    return self._send(404, b"not found\n")
                mid = server._lookup(parts[1])
                rest = parts[2:]
                if mid is None:
                    return self._send(404, b"not found\n")
                if rest in ([], [""]):
                    return self._send(200, f"<{mid}>\n".encode(), "text/html")
                if rest == ["t.mbox.gz"]:
                    thread = server.thread_of(mid) or []
                    return self._send(200, gzip.compress(to_mboxrd(thread)), "application/gzip")
                if rest == ["raw"]:
                    return self._send(200, server._by_id[mid], "text/plain")
                return self._send(404, b"not found\n")

            do_GET = do_HEAD = do_POST = _route

        return Handler

    def __enter__(self) -> LoreServer:
        self._thread = threading.Thread(target=self._httpd.serve_forever, args=(0.05,), daemon=True)
        self._thread.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)


def sample_series(prefix: str = "demo") -> list[bytes]:
    """A tiny git-format-patch style thread: cover letter, 2 patches and a reply with Reviewed-by.

    Patch 1 carries a body line starting with "From " to exercise mboxrd quoting.
    Message-IDs are `<20250101000000.N-<prefix>@example.org>`, N = 0 (cover), 1, 2, 3 (reply).
    """

    def mid(n: int) -> str:
        return f"<20250101000000.{n}-{prefix}@example.org>"

    def mail(n: int, subject: str, body: str, *, frm: str = "Ann Author <ann@example.org>",
             parent: int | None = 0) -> bytes:
        head = [
            f"From: {frm}",
            "To: test@example.org",
            f"Subject: {subject}",
            f"Date: Wed, 01 Jan 2025 00:00:0{n} +0000",
            f"Message-ID: {mid(n)}",
        ]
        if parent is not None:
            head += [f"In-Reply-To: {mid(parent)}", f"References: {mid(0)}"
                     + (f" {mid(parent)}" if parent else "")]
        head += ["MIME-Version: 1.0", "Content-Type: text/plain; charset=UTF-8"]
        return ("\n".join(head) + "\n\n" + body).encode()

    def patch(n: int, name: str) -> str:
        return (
            f"Add {name}.\n\nFrom the start this adds {name}.\n\n"
            "Signed-off-by: Ann Author <ann@example.org>\n---\n"
            f" drivers/foo/{name}.c | 1 +\n 1 file changed, 1 insertion(+)\n\n"
            f"diff --git a/drivers/foo/{name}.c b/drivers/foo/{name}.c\n"
            "new file mode 100644\nindex 0000000..e69de29\n"
            f"--- /dev/null\n+++ b/drivers/foo/{name}.c\n@@ -0,0 +1 @@\n+int {name};\n"
            "-- \n2.39.5\n"
        )

    return [
        mail(0, "[PATCH 0/2] foo: two tiny things", "Two tiny things.\n\n-- \n2.39.5\n", parent=None),
        mail(1, "[PATCH 1/2] foo: add alpha", patch(1, "alpha")),
        mail(2, "[PATCH 2/2] foo: add beta", patch(2, "beta")),
        mail(3, "Re: [PATCH 1/2] foo: add alpha",
             "> Add alpha.\n\nReviewed-by: Rev Iewer <rev@example.net>\n",
             frm="Rev Iewer <rev@example.net>", parent=1),
    ]
