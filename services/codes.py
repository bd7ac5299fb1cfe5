"""Verification codes (验证编码): random, short enough to read over the phone, and self-checking.

The notice (京人社事业发〔2025〕11号 附件2 三) says a genuine certificate gets a verification code that anyone can
check on the bureau's site, and publishes no format. mra's default format, configurable through
:class:`CodeFormat`:

- Crockford base32 symbols (``0-9`` and ``A-Z`` without ``I L O U``): no symbol looks or sounds like another,
  input is case-insensitive, and ``I``/``L`` read as ``1``, ``O`` as ``0``.
- 12 random symbols (60 bits from :mod:`secrets`, never derived from personal data), then one check symbol,
  grouped by four: ``K7QH-2M9X-4TZB-P``.
- The check symbol is a Damm check over the quasigroup ``x * y = 2x + y`` of GF(32): it catches every single
  mistyped symbol and every swap of two neighbouring symbols, so a typo reads as "mistyped", not "unknown".
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field, model_validator

__all__ = [
    "ALPHABET",
    "DEFAULT_FORMAT",
    "CodeFormat",
    "CodeReading",
    "Reading",
    "check_symbol",
    "format_code",
    "is_valid",
    "new_code",
    "read_code",
]

ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
"""Crockford's base32 alphabet: 32 symbols, value = position."""

_VALUE = {c: i for i, c in enumerate(ALPHABET)} | {"I": 1, "L": 1, "O": 0}
_SEPARATORS = re.compile(r"[\s\-_.]+")
_MODULUS = 0b100101  # x^5 + x^2 + 1, irreducible over GF(2): GF(32)
_FACTOR = 2  # the element x; any element other than 0 and 1 makes the quasigroup totally anti-symmetric


def _times(a: int, b: int) -> int:
    """Multiplication in GF(32)."""
    product = 0
    while b:
        if b & 1:
            product ^= a
        b >>= 1
        a <<= 1
        if a & 0b100000:
            a ^= _MODULUS
    return product


def _fold(values: list[int]) -> int:
    """Damm's interim value: ``s -> 2s + v`` over GF(32), from 0.

    For a fixed state the step is a bijection in ``v`` (a substitution changes the state), for a fixed ``v`` it
    is a bijection in ``s`` (a changed state stays changed), and ``2(2s + x) + y = 2(2s + y) + x`` only when
    ``x = y`` (a swap of neighbours changes the state): so every such error leaves a non-zero end state.
    """
    state = 0
    for v in values:
        state = _times(_FACTOR, state) ^ v
    return state


class CodeFormat(BaseModel):
    """How long a code is and how it is grouped; the notice publishes no format, so this is mra's default."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    payload: int = Field(12, ge=12, le=32, description="random symbols (5 bits each; 12 gives 60 bits)")
    group: int = Field(4, ge=0, le=16, description="symbols per group when printed; 0 prints no separators")

    @model_validator(mode="after")
    def _enough_bits(self) -> CodeFormat:
        if self.payload * 5 < 60:
            raise ValueError("a verification code needs at least 60 random bits (12 symbols)")
        return self

    @property
    def length(self) -> int:
        """Symbols in a code, check symbol included."""
        return self.payload + 1

    def pattern(self) -> str:
        """What a code looks like, for messages: ``XXXX-XXXX-XXXX-X``."""
        return format_code("X" * self.length, self)


DEFAULT_FORMAT = CodeFormat()


def check_symbol(payload: str) -> str:
    """The symbol that makes ``payload + symbol`` fold to zero."""
    state = _fold([_VALUE[c] for c in payload.upper()])
    return ALPHABET[_times(_FACTOR, state)]  # 2s + c = 0 in characteristic 2 means c = 2s


def format_code(compact: str, fmt: CodeFormat = DEFAULT_FORMAT) -> str:
    """Group a compact code with hyphens (``K7QH2M9X4TZBP`` -> ``K7QH-2M9X-4TZB-P``)."""
    if fmt.group == 0:
        return compact
    return "-".join(compact[i : i + fmt.group] for i in range(0, len(compact), fmt.group))


def new_code(fmt: CodeFormat = DEFAULT_FORMAT) -> str:
    """A fresh code, printed form. Randomness only: nothing about the holder or the certificate goes in."""
    payload = "".join(secrets.choice(ALPHABET) for _ in range(fmt.payload))
    return format_code(payload + check_symbol(payload), fmt)


class Reading(StrEnum):
    OK = "ok"
    MISTYPED = "mistyped"
    MALFORMED = "malformed"


@dataclass(frozen=True)
class CodeReading:
    """What a typed code reads as: ``compact`` (upper case, no separators) when it is well formed."""

    reading: Reading
    compact: str = ""
    detail: str = ""

    def printed(self, fmt: CodeFormat = DEFAULT_FORMAT) -> str:
        return format_code(self.compact, fmt) if self.compact else ""


def read_code(text: str, fmt: CodeFormat = DEFAULT_FORMAT) -> CodeReading:
    """Read a code as someone typed it: any case, with or without hyphens or spaces.

    A code of the right length with a symbol outside the alphabet or a failing check symbol is ``mistyped``;
    a code of the wrong length is ``malformed``.
    """
    raw = _SEPARATORS.sub("", text.strip()).upper()
    if len(raw) != fmt.length:
        return CodeReading(
            Reading.MALFORMED,
            detail=f"a verification code has {fmt.length} characters ({fmt.pattern()}); got {len(raw)}",
        )
    bad = sorted({c for c in raw if c not in _VALUE})
    if bad:
        return CodeReading(
            Reading.MISTYPED,
            detail=f"{', '.join(repr(c) for c in bad)} never occur(s) in a verification code: check each character",
        )
    compact = "".join(ALPHABET[_VALUE[c]] for c in raw)
    if _fold([_VALUE[c] for c in compact]) != 0:
        return CodeReading(
            Reading.MISTYPED, detail="the check character does not match: a character is mistyped or two are swapped"
        )
    return CodeReading(Reading.OK, compact=compact)


def is_valid(text: str, fmt: CodeFormat = DEFAULT_FORMAT) -> bool:
    return read_code(text, fmt).reading is Reading.OK
