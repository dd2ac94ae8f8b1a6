"""The VNCR page layout (DOMAIN-PACK2.md §1.4): `VNCR_<reg>` byte offsets of asm/vncr_mapping.h.

Read from the base tree when a reader is given, else from the bundled table in
data/pack2-wiring.json ("generated from arch/arm64/include/asm/vncr_mapping.h" of the reference
tree). A missing table means "unknown": callers stay silent.
"""

from __future__ import annotations

from pmureview.lazyre import lazy_re

from ..record import dataclass

VNCR_MAPPING_PATH = "arch/arm64/include/asm/vncr_mapping.h"
VNCR_PAGE_SIZE = 0x1000

_DEFINE = lazy_re(r"^\s*#\s*define\s+VNCR_(\w+)\s+\(?\s*(0[xX][0-9a-fA-F]+|\d+)[uUlL]*\s*\)?\s*(?:/[*/].*)?$")


@dataclass(frozen=True, slots=True)
class VncrOffset:
    register: str  # the name after VNCR_ (FOO_EL1)
    offset: int
    line: int  # 1-based line in the text it was read from


def parse_vncr(text: str) -> list[VncrOffset]:
    """Every `#define VNCR_<R> <number>` (function-like or computed defines are skipped)."""
    out: list[VncrOffset] = []
    for i, line in enumerate(text.split("\n"), 1):
        m = _DEFINE.match(line)
        if m:
            try:
                out.append(VncrOffset(m.group(1), int(m.group(2), 0), i))
            except ValueError:
                continue
    return out


def offsets(text: str | None) -> dict[str, int]:
    return {v.register: v.offset for v in parse_vncr(text)} if text else {}
