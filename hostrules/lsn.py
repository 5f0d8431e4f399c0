"""PostgreSQL LSNs ('16/B374D848') as integers (bytes from 0/0) and back."""
from __future__ import annotations

from typing import Optional


def parse(text: Optional[str]) -> Optional[int]:
    """'16/B374D848' -> int; None, '' or garbage -> None."""
    if not text or "/" not in text:
        return None
    high, _, low = text.partition("/")
    try:
        return (int(high, 16) << 32) | int(low, 16)
    except ValueError:
        return None


def format(value: Optional[int]) -> str:  # noqa: A001 - the LSN's own notation
    if value is None:
        return "-"
    return f"{value >> 32:X}/{value & 0xFFFFFFFF:X}"
