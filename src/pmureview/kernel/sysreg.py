"""Parser for the kernel's system-register description (arch/arm64/tools/sysreg).

The format is line based (see the header comment of the kernel file): `Sysreg NAME op0 op1 CRn CRm op2`
... `EndSysreg`, `SysregFields NAME` ... `EndSysregFields`, and inside them `Res0`/`Res1`/`Unkn`/`Raz`
ranges, `Field msb[:lsb] NAME`, `Enum`/`UnsignedEnum`/`SignedEnum msb[:lsb] NAME` + `<value> <name>`
lines + `EndEnum`, `Fields NAME` (use a SysregFields layout) and `Mapping REG` (a VHE alias).
Separators are any whitespace (the real file mixes tabs and spaces). Malformed or unknown lines are
skipped and recorded in `SysregFile.problems`; the parser never raises on input text.

The generated C names follow scripts of the kernel (gen-sysreg.awk): `<REG>_<FIELD>` (mask),
`_MASK`, `_SHIFT`, `_WIDTH`, `_SIGNED` (enums with a sign), `<REG>_<FIELD>_<VALUE>`, `<REG>_RES0`,
`<REG>_RES1`, `<REG>_UNKN` and `SYS_<REG>`.
"""

from __future__ import annotations

from collections.abc import Iterator

from ..record import dataclass, field

ENUM_KINDS = {"Enum": "enum", "UnsignedEnum": "unsigned", "SignedEnum": "signed"}
RANGE_KINDS = ("Res0", "Res1", "Unkn", "Raz")


def genmask(msb: int, lsb: int) -> int:
    """Bits lsb..msb set, as GENMASK_ULL(msb, lsb)."""
    return ((1 << (msb - lsb + 1)) - 1) << lsb


@dataclass(frozen=True, slots=True)
class Field:
    name: str
    msb: int
    lsb: int
    kind: str = "field"  # field | enum | unsigned | signed
    enums: tuple[tuple[str, int], ...] = ()  # (value name, value)

    @property
    def mask(self) -> int:
        return genmask(self.msb, self.lsb)

    @property
    def width(self) -> int:
        return self.msb - self.lsb + 1

    def enum_value(self, name: str) -> int | None:
        return next((v for n, v in self.enums if n == name), None)


@dataclass(slots=True)
class Register:
    """One `Sysreg` block (encoding set) or `SysregFields` layout (encoding None)."""

    name: str
    encoding: tuple[int, int, int, int, int] | None
    fields: list[Field] = field(default_factory=list)
    res0: int = 0
    res1: int = 0
    unkn: int = 0
    raz: int = 0
    fields_from: str | None = None  # `Fields NAME`: the layout (and C prefix) comes from NAME
    mapping: str | None = None  # `Mapping REG`: alias of REG
    line: int = 0  # 1-based line of the block header

    @property
    def is_layout(self) -> bool:
        """True for a SysregFields block (a shared layout, not a register)."""
        return self.encoding is None

    def field(self, name: str) -> Field | None:
        return next((f for f in self.fields if f.name == name), None)

    def field_at(self, bit: int) -> Field | None:
        return next((f for f in self.fields if f.lsb <= bit <= f.msb), None)

    @property
    def c_prefix(self) -> str:
        """Prefix of the field C names (a `Fields` user's fields are named after the layout)."""
        return self.fields_from or self.name

    def c_names(self) -> dict[str, tuple[str, str | None, int]]:
        """Generated C name -> (kind, field, value): the names gen-sysreg.awk defines."""
        out: dict[str, tuple[str, str | None, int]] = {}
        if self.encoding is not None:
            out["SYS_" + self.name] = ("encoding", None, encode(self.encoding))
            for part, value in zip(("OP0", "OP1", "CRN", "CRM", "OP2"), self.encoding, strict=True):
                out[f"{self.name}_{part}"] = (part.lower(), None, value)
        # A Fields user gets its defines from the SysregFields block; only its own ranges are here.
        if self.fields_from is None:
            out[self.name + "_RES0"] = ("res0", None, self.res0)
            out[self.name + "_RES1"] = ("res1", None, self.res1)
            out[self.name + "_UNKN"] = ("unkn", None, self.unkn)
            for f in self.fields:
                base = f"{self.name}_{f.name}"
                out[base] = ("field", f.name, f.mask)
                out[base + "_MASK"] = ("mask", f.name, f.mask)
                out[base + "_SHIFT"] = ("shift", f.name, f.lsb)
                out[base + "_WIDTH"] = ("width", f.name, f.width)
                if f.kind in ("unsigned", "signed"):
                    out[base + "_SIGNED"] = ("signed", f.name, int(f.kind == "signed"))
                for vname, value in f.enums:
                    out[f"{base}_{vname}"] = ("enum", f.name, value)
        return out


def encode(enc: tuple[int, int, int, int, int]) -> int:
    """sys_reg(op0, op1, CRn, CRm, op2) as the kernel packs it."""
    op0, op1, crn, crm, op2 = enc
    return (op0 << 19) | (op1 << 16) | (crn << 12) | (crm << 8) | (op2 << 5)


@dataclass(slots=True)
class SysregFile:
    registers: dict[str, Register] = field(default_factory=dict)  # Sysreg blocks
    layouts: dict[str, Register] = field(default_factory=dict)  # SysregFields blocks
    problems: list[tuple[int, str]] = field(default_factory=list)  # (line, what was skipped)

    def get(self, name: str) -> Register | None:
        return self.registers.get(name) or self.layouts.get(name)

    def __iter__(self) -> Iterator[Register]:
        return iter(self.registers.values())


def _range(text: str) -> tuple[int, int] | None:
    msb, _, lsb = text.partition(":")
    try:
        hi = int(msb)
        lo = int(lsb) if lsb else hi
    except ValueError:
        return None
    if not (0 <= lo <= hi <= 127):
        return None
    return hi, lo


def _int(text: str) -> int | None:
    try:
        return int(text, 0)
    except ValueError:
        return None


def parse_sysreg(text: str) -> SysregFile:
    """Parse the sysreg description text. Never raises on malformed input."""
    out = SysregFile()
    cur: Register | None = None
    enum: tuple[str, int, int, list[tuple[str, int]]] | None = None  # kind, msb, lsb, values
    enum_name = ""

    def skip(lineno: int, why: str) -> None:
        out.problems.append((lineno, why))

    for lineno, raw in enumerate(text.splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        words = line.split()
        key = words[0]
        if enum is not None:
            if key == "EndEnum":
                kind, msb, lsb, values = enum
                if cur is not None and enum_name:  # "" = a malformed Enum header, dropped
                    cur.fields.append(Field(enum_name, msb, lsb, kind, tuple(values)))
                enum = None
                continue
            value = _int(key) if len(words) == 2 else None
            if value is None:
                skip(lineno, "bad enum value line")
            else:
                enum[3].append((words[1], value))
            continue
        if key in ("Sysreg", "SysregFields"):
            if cur is not None:
                skip(lineno, f"unterminated block {cur.name}")
            if key == "Sysreg":
                enc = tuple(_int(w) for w in words[2:7])
                if len(words) != 7 or None in enc:
                    skip(lineno, "bad Sysreg line")
                    cur = None
                    continue
                cur = Register(words[1], enc, line=lineno)  # type: ignore[arg-type]
                if cur.name in out.registers:  # the real file repeats a few; the first one wins
                    skip(lineno, f"duplicate Sysreg {cur.name}")
                else:
                    out.registers[cur.name] = cur
            else:
                if len(words) != 2:
                    skip(lineno, "bad SysregFields line")
                    cur = None
                    continue
                cur = Register(words[1], None, line=lineno)
                out.layouts[cur.name] = cur
            continue
        if key in ("EndSysreg", "EndSysregFields"):
            cur = None
            continue
        if cur is None:
            skip(lineno, f"{key} outside a block")
            continue
        if key in RANGE_KINDS:
            rng = _range(words[1]) if len(words) == 2 else None
            if rng is None:
                skip(lineno, f"bad {key} line")
                continue
            attr = key.lower()
            setattr(cur, attr, getattr(cur, attr) | genmask(*rng))
        elif key == "Field" or key in ENUM_KINDS:
            rng = _range(words[1]) if len(words) == 3 else None
            if rng is None:
                skip(lineno, f"bad {key} line")
                if key in ENUM_KINDS:  # still swallow the values up to EndEnum
                    enum, enum_name = ("enum", 0, 0, []), ""
                continue
            if key == "Field":
                cur.fields.append(Field(words[2], rng[0], rng[1]))
            else:
                enum, enum_name = (ENUM_KINDS[key], rng[0], rng[1], []), words[2]
        elif key == "Fields" and len(words) == 2:
            layout = out.layouts.get(words[1])
            cur.fields_from = words[1]
            if layout is None:
                skip(lineno, f"unknown SysregFields {words[1]}")
                continue
            cur.fields.extend(layout.fields)
            cur.res0 |= layout.res0
            cur.res1 |= layout.res1
            cur.unkn |= layout.unkn
            cur.raz |= layout.raz
        elif key == "Mapping" and len(words) == 2:
            cur.mapping = words[1]
        else:
            skip(lineno, f"unknown directive {key}")
    if enum is not None:
        skip(0, "unterminated Enum at end of file")
    return out
