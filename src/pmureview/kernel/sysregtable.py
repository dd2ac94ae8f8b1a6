"""The sys_reg_descs[] table of arch/arm64/kvm/sys_regs.c (DOMAIN-PACK2 §1.1), entry by entry.

Entries are read from C text without compiling it: the table body is split at top-level commas and
each entry's wrapper macro (ID_WRITABLE(), EL2_REG(), ...) is expanded with the `#define`s of the
same text, else with the bundled definitions of pack2-gating.json ("entry_macros"), so positional
and designated initialisers end up as named fields (access, reset, reg, val, get_user, set_user,
visibility). In hunk-only mode only the known lines are read: each run of known lines is scanned
on its own and only complete entries that look like table entries are kept.

The table's `#define`s are also read with tree-sitter where it can (function-like macros), and
callbacks are found by name in the same text (`*_visibility` functions).
"""

from __future__ import annotations

import re
from bisect import bisect_left
from functools import cache

from pmureview.lazyre import lazy_re

from ..record import dataclass, field
from .predicates import gating_data

SYS_REGS = "arch/arm64/kvm/sys_regs.c"
POSITIONAL = ("access", "reset", "reg", "val")
_TABLE = lazy_re(r"\bsys_reg_descs\s*\[\s*\]\s*=\s*\{")
_DEFINE = lazy_re(r"^[ \t]*#[ \t]*define[ \t]+([A-Za-z_]\w*)\(([^)]*)\)((?:[^\n]*\\\n)*[^\n]*)", re.M)
_CALL = lazy_re(r"^\s*([A-Za-z_]\w*)\s*\((.*)\)\s*$", re.S)
_ENC = lazy_re(r"^\s*(Op0|Op1|CRn|CRm|Op2)\s*\(\s*(\w+)\s*\)\s*$")


@dataclass(frozen=True)
class Macro:
    name: str
    params: tuple[str, ...]
    body: str

    def expand(self, args: list[str]) -> str:
        out = self.body
        for p, a in zip(self.params, args, strict=False):
            out = re.sub(rf"(?<![\w]){re.escape(p)}(?![\w])", lambda _m, a=a: a.strip(), out)
        return re.sub(r"\s*##\s*", "", out)


@dataclass
class Entry:
    """One sys_reg_descs[] entry after macro expansion."""

    text: str  # as written
    start: int  # 1-based first line
    end: int  # 1-based last line
    macro: str | None = None  # outer wrapper macro as written (ID_WRITABLE, EL2_REG, ...)
    args: tuple[str, ...] = ()
    name: str | None = None  # register (SYS_FOO_EL1 -> FOO_EL1)
    enc: tuple[str, ...] = ()  # Op0..Op2 values when written that way
    fields: dict[str, str] = field(default_factory=dict)

    @property
    def key(self) -> str:
        return self.name or ("enc:" + ",".join(self.enc) if self.enc else self.text)

    def get(self, name: str) -> str:
        return self.fields.get(name, "").strip()

    @property
    def has_storage(self) -> bool:
        """Storage-backed or visible through ONE_REG (a `reg` index or a get_user accessor)."""
        reg = self.get("reg")
        return bool(reg and reg not in ("0", "NULL")) or bool(self.get("get_user") not in ("", "NULL"))

    @property
    def visibility(self) -> str | None:
        v = self.get("visibility")
        return v if v and v != "NULL" else None


def _strip_comments(s: str) -> str:
    """Comments and string contents blanked, newlines kept (offsets stay valid)."""
    def blank(m: re.Match[str]) -> str:
        return re.sub(r"[^\n]", " ", m.group(0))
    return re.sub(r"/\*.*?\*/|//[^\n]*", blank, s, flags=re.S)


_SPLIT = {}  # sep -> compiled pattern of the characters split_top looks at


def split_top(s: str, sep: str = ",") -> list[tuple[int, str]]:
    """(offset, piece) split at top-level `sep` (outside (), {}, [])."""
    out: list[tuple[int, str]] = []
    depth = 0
    start = 0
    pat = _SPLIT.get(sep)
    if pat is None:
        pat = _SPLIT[sep] = re.compile(r"[(){}\[\]" + re.escape(sep) + "]")
    # only brackets and separators matter: let the regex engine skip everything else (this ran
    # a Python loop over every character of the whole table)
    for m in pat.finditer(s):
        ch = m.group()
        i = m.start()
        if ch in "({[":
            depth += 1
        elif ch in ")}]":
            depth -= 1
            if depth < 0:  # a run of known lines that starts inside an entry: drop the tail
                depth = 0
                start = i + 1
        elif depth == 0:
            out.append((start, s[start:i]))
            start = i + 1
    out.append((start, s[start:]))
    return out


def _macros_in(c_text: str) -> dict[str, Macro]:
    out: dict[str, Macro] = {}
    for m in _DEFINE.finditer(c_text):
        params = tuple(p.strip() for p in m.group(2).split(",") if p.strip())
        out[m.group(1)] = Macro(m.group(1), params, m.group(3).replace("\\\n", " ").strip())
    return out


@cache
def bundled_macros() -> dict[str, Macro]:
    out = {}
    for name, d in gating_data().get("entry_macros", {}).items():
        if not isinstance(d, dict):
            continue  # "source"
        out[name] = Macro(name, tuple(d["params"]), d["body"])
    return out


def _is_brace(s: str) -> bool:
    s = s.strip()
    return s.startswith("{") and s.endswith("}")


def _parse_fields(entry: Entry, body: str, macros: dict[str, Macro], depth: int = 0) -> None:
    inner = body.strip()
    if _is_brace(inner):
        inner = inner[1:-1]
    pos = 0
    for _, part in split_top(inner):
        part = part.strip()
        if not part:
            continue
        if part.startswith("."):
            k, _, v = part[1:].partition("=")
            entry.fields[k.strip()] = " ".join(v.split())
            continue
        m = _CALL.match(part)
        if m and m.group(1) == "SYS_DESC":
            entry.name = re.sub(r"^SYS_", "", " ".join(m.group(2).split()))
            continue
        em = _ENC.match(part)
        if em:
            entry.enc = (*entry.enc, em.group(2))
            continue
        if m and m.group(1) in macros and depth < 6 and not _is_brace(macros[m.group(1)].body):
            sub = macros[m.group(1)].expand([a for _, a in split_top(m.group(2))])
            _parse_fields(entry, sub, macros, depth + 1)  # e.g. ID_DESC(name) inside ID_SANITISED
            continue
        if pos < len(POSITIONAL):
            entry.fields.setdefault(POSITIONAL[pos], " ".join(part.split()))
        pos += 1


def make_entry(raw: str, start: int, end: int, macros: dict[str, Macro]) -> Entry | None:
    """An Entry from its text, or None when it does not look like a table entry."""
    s = raw.strip()
    if not s:
        return None
    e = Entry(text=s, start=start, end=end)
    body = s
    for _ in range(6):  # nested wrapper macros whose body is a whole `{ ... }` entry
        m = _CALL.match(body)
        if not m or m.group(1) not in macros:
            break
        if e.macro is None:
            e.macro = m.group(1)
            e.args = tuple(" ".join(a.split()) for _, a in split_top(m.group(2)))
        body = macros[m.group(1)].expand([a for _, a in split_top(m.group(2))])
        if _is_brace(body):
            break
    if not _is_brace(body):
        return None
    _parse_fields(e, body, macros)
    if e.name is None and not e.enc:
        return None
    return e


def _line_of(text: str, offset: int) -> int:
    return text.count("\n", 0, offset) + 1


def _newlines(text: str) -> list[int]:
    return [m.start() for m in re.finditer("\n", text)]


def _entries_in(region: str, base_off: int, full_text: str, macros: dict[str, Macro],
                nls: list[int] | None = None) -> list[Entry]:
    out = []
    # newline offsets once, then a bisect per entry (counting from 0 per entry was quadratic)
    if nls is None:
        nls = _newlines(full_text)
    for off, piece in split_top(region):
        stripped = piece.strip()
        if not stripped or stripped.startswith("#"):
            continue
        lead = len(piece) - len(piece.lstrip())
        a = base_off + off + lead
        b = base_off + off + len(piece.rstrip())
        # preprocessor lines inside the table (#ifdef) are dropped from the entry text
        clean = "\n".join(ln for ln in stripped.split("\n") if not ln.lstrip().startswith("#"))
        e = make_entry(clean, bisect_left(nls, a) + 1, bisect_left(nls, max(a, b - 1)) + 1, macros)
        if e is not None:
            out.append(e)
    return out


@cache
def _parse_cached(digest: str, c_text: str, known_key: tuple[int, ...] | None) -> tuple[Entry, ...]:
    clean = _strip_comments(c_text)
    macros = {**bundled_macros(), **_macros_in(c_text)}
    m = _TABLE.search(clean)
    if m is not None and known_key is None:
        start = m.end()
        depth = 1
        i = len(clean)  # unbalanced: up to the end
        for b in re.finditer(r"[{}]", clean[start:]):  # only the braces, not every character
            depth += 1 if b.group() == "{" else -1
            if not depth:
                i = start + b.end()
                break
        return tuple(_entries_in(clean[start:i - 1], start, c_text, macros))
    # hunk-only (or no table header in sight): each run of known lines on its own
    lines = clean.split("\n")
    known = set(known_key) if known_key is not None else set(range(1, len(lines) + 1))
    out: list[Entry] = []
    nls: list[int] | None = None
    offsets = [0]
    for ln in lines:
        offsets.append(offsets[-1] + len(ln) + 1)
    n = 1
    while n <= len(lines):
        if n not in known:
            n += 1
            continue
        first = n
        while n <= len(lines) and n in known:
            n += 1
        region = clean[offsets[first - 1]:offsets[n - 1]]
        if m is not None and offsets[first - 1] < m.end():
            continue  # before the table
        if nls is None:
            nls = _newlines(c_text)
        out.extend(_entries_in(region, offsets[first - 1], c_text, macros, nls))
    return tuple(out)


def parse_table(c_text: str, known: frozenset[int] | None = None) -> list[Entry]:
    """The sys_reg_descs[] entries of a sys_regs.c text (only known lines when `known` is given
    and the table header is not among them)."""
    from ..cachefile import content_key

    digest = content_key(c_text)
    key = None
    if known is not None and not _TABLE.search(_strip_comments(c_text)):
        key = tuple(sorted(known))
    try:
        return list(_parse_cached(digest, c_text, key) if known is not None else _whole_file(digest, c_text))
    except (RecursionError, ValueError):
        return []


_WHOLE: dict[str, tuple[Entry, ...]] = {}  # content key -> entries, for the rules of this process


def _whole_file(digest: str, c_text: str) -> tuple[Entry, ...]:
    """The table of a whole sys_regs.c (a base tree's, a full-mode view's): ~40 ms to parse, and the
    hook asks it again in every process of a series, so the entries are kept on disk by content;
    several rules of a run ask the same versions (patch k's "before" is patch k-1's "after")."""
    if digest not in _WHOLE:
        if len(_WHOLE) > 64:
            _WHOLE.clear()
        _WHOLE[digest] = _whole_file_read(digest, c_text)
    return _WHOLE[digest]


def _whole_file_read(digest: str, c_text: str) -> tuple[Entry, ...]:
    from ..cachefile import content_cache_file, read_marshal, write_content

    path = content_cache_file("sysregtable", digest)
    rows = read_marshal(path)
    if isinstance(rows, list):
        try:
            return tuple(Entry(text, start, end, macro, tuple(args), name, tuple(enc), dict(fields))
                         for text, start, end, macro, args, name, enc, fields in rows)
        except (TypeError, ValueError):
            pass  # another layout: parse again
    entries = _parse_cached(digest, c_text, None)
    write_content(path, [[e.text, e.start, e.end, e.macro, list(e.args), e.name, list(e.enc), dict(e.fields)]
                         for e in entries])
    return entries


def parse_lines(lines: list[str]) -> list[Entry]:
    """Entries among loose lines (the removed lines of a patch)."""
    text = "\n".join(lines)
    return parse_table(text, frozenset(range(1, len(lines) + 1)) if lines else frozenset())


def view_entries(view) -> list[Entry]:
    """The entries of a FileView of sys_regs.c (whole table in full mode, known runs otherwise)."""
    known = None if view.mode == "full" else view.known
    return parse_table(view.text, known)


def pre_entries(view, base_text: str | None = None) -> list[Entry] | None:
    """The entries before this patch: the pre-image in full mode, else the removed lines (None
    when neither says anything)."""
    if view.pre_text is not None:
        return parse_table(view.pre_text)
    if base_text is not None:
        return parse_table(base_text)
    removed = list(view.change.removed_text)
    return parse_lines(removed) if removed else []


def visibility_functions(c_text: str) -> dict[str, int]:
    """Functions of the text that look like visibility callbacks -> 1-based line of the name."""
    out = {}
    for m in re.finditer(r"^(?:static\s+)?(?:inline\s+)?unsigned\s+int\s+(\w+)\s*\(", c_text, re.M):
        out[m.group(1)] = _line_of(c_text, m.start(1))
    return out
