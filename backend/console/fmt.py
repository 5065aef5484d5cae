"""How the console writes values for people: amounts in yuan with the fen exact, addresses
and hashes shortened (the whole value stays in a title), times in one zone, labels cut to a
width without breaking a character."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from datetime import UTC, datetime, tzinfo
from typing import Any

_HEX_ADDRESS = re.compile(r"0x[0-9a-fA-F]{40}")
_HEX_HASH = re.compile(r"0x[0-9a-fA-F]{64}")
_ZERO_HASH = "0x" + "0" * 64


def yuan(fen: int, *, symbol: str = "¥") -> str:
    """``1234567`` fen → ``¥12,345.67``: integer arithmetic only, so any amount (up to the
    chain's uint128) is written exactly."""
    if isinstance(fen, bool) or not isinstance(fen, int):
        raise TypeError(f"an amount is an integer number of fen, not {type(fen).__name__}")
    sign = "-" if fen < 0 else ""
    whole, cents = divmod(abs(fen), 100)
    return f"{sign}{symbol}{whole:,}.{cents:02d}"


def percent(part: int, whole: int | None) -> str | None:
    """``part / whole`` as a percentage with one decimal (None when there is no whole)."""
    if not whole:
        return None
    tenths = (part * 1000 + whole // 2) // whole
    return f"{tenths // 10}.{tenths % 10}%"


def is_address(value: object) -> bool:
    return isinstance(value, str) and _HEX_ADDRESS.fullmatch(value) is not None


def is_hash(value: object) -> bool:
    return isinstance(value, str) and _HEX_HASH.fullmatch(value) is not None


def is_zero_hash(value: object) -> bool:
    return isinstance(value, str) and value.lower() == _ZERO_HASH


def short_hex(value: str, head: int = 6, tail: int = 4) -> str:
    """``0x5FbDB2315678afecb367f032d93F642f64180aa3`` → ``0x5FbD…0aa3``."""
    if len(value) <= head + tail + 1:
        return value
    return f"{value[:head]}…{value[-tail:]}"


def width(text: str) -> int:
    """Columns the text takes: East Asian wide and full-width characters count two."""
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)


def clip(text: str, columns: int) -> str:
    """The text cut to ``columns`` (wide characters count two), with an ellipsis when cut."""
    if width(text) <= columns:
        return text
    out: list[str] = []
    used = 0
    for c in text:
        w = 2 if unicodedata.east_asian_width(c) in "WF" else 1
        if used + w > columns - 1:
            break
        out.append(c)
        used += w
    return "".join(out) + "…"


def _em(c: str) -> float:
    """A rough advance width of a character in a proportional sans font, in em."""
    if unicodedata.east_asian_width(c) in "WF":
        return 1.0
    if c in "il.,:;'|!" or c == " ":
        return 0.3
    if c.isupper() or c in "mwMW@%&":
        return 0.68
    if c.isdigit():
        return 0.56
    return 0.52


def clip_px(text: str, max_px: float, font_px: float) -> str:
    """The text cut (with an ellipsis) to fit ``max_px`` at ``font_px``, by estimated advance
    widths: SVG text does not wrap or cut itself."""
    budget = max_px / font_px
    if sum(_em(c) for c in text) <= budget:
        return text
    out: list[str] = []
    used = 0.0
    for c in text:
        w = _em(c)
        if used + w > budget - 1.0:
            break
        out.append(c)
        used += w
    return "".join(out).rstrip() + "…"


def parse_time(value: Any) -> datetime | None:
    """A time as the API gives it (ISO 8601 text, a datetime, or UNIX seconds)."""
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, int | float) and not isinstance(value, bool):
        return datetime.fromtimestamp(value, UTC)
    if isinstance(value, str):
        text = value.strip()
        if text.endswith("Z"):
            text = text[:-1] + "+00:00"
        parsed = datetime.fromisoformat(text)
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    raise TypeError(f"not a time: {value!r}")


def when(value: Any, zone: tzinfo = UTC) -> str:
    """``2026-03-01 08:00:00 UTC`` (empty text for no time)."""
    moment = parse_time(value)
    if moment is None:
        return ""
    local = moment.astimezone(zone)
    label = local.tzname() or ""
    return f"{local:%Y-%m-%d %H:%M:%S} {label}".rstrip()


def member_name(address: str | None, members: Mapping[str, Mapping[str, Any]]) -> str | None:
    """The member's name from ``members`` (keyed by address, any case)."""
    if not address:
        return None
    entry = members.get(address.lower())
    name = entry.get("name") if entry else None
    return str(name) if name else None
