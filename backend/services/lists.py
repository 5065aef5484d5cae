"""What every list of the services shares: keyset cursors and ranges.

A list's cursor is the key of the last item of the previous page (one value, or a list of
them); :func:`cursor_parts` checks it is one the API gave out. No FastAPI in here: the
routes' side of lists (pages, CSV) is :mod:`backend.api.lists`.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import ColumnElement, and_, or_

from backend.errors import Invalid

#: Keys are BIGINT columns: a cursor outside them is not one this API gave out (and the
#: database drivers would refuse it with an error, not an empty page).
MAX_KEY = 2**63 - 1


def _part_ok(value: Any, kind: type) -> bool:
    if kind is int:
        return isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= MAX_KEY
    return isinstance(value, str) and len(value) <= 66


def cursor_parts(after: Any, *kinds: type) -> tuple[Any, ...] | None:
    """The parts of a list cursor (one value, or a list of them, of ``kinds``), or None for
    the first page; anything else is :class:`Invalid` ``cursor_invalid``."""
    if after is None:
        return None
    parts = after if isinstance(after, list) else [after]
    if len(parts) == len(kinds) and all(map(_part_ok, parts, kinds)):
        return tuple(parts)
    raise Invalid("the cursor is not one this list gave out", code="cursor_invalid")


def keyset_after(first: Any, second: Any, position: tuple[Any, ...]) -> ColumnElement[bool]:
    """The rows after ``position`` in ``(first, second)`` order: a keyset page's condition."""
    a, b = position
    return or_(first > a, and_(first == a, second > b))


def chain_position(item: dict[str, Any]) -> list[int]:
    """The keyset cursor of an event: its place in the chain (block, log index)."""
    return [item["block_number"], item["log_index"]]


def utc_seconds(value: datetime) -> int:
    """UNIX seconds of ``value``; a time without a zone is UTC (the API's only zone)."""
    aware = value if value.tzinfo is not None else value.replace(tzinfo=UTC)
    return int(aware.timestamp())


def check_range(low: Any, high: Any, what: str) -> None:
    """``from_<what>`` must not be after ``to_<what>``."""
    if low is not None and high is not None and low > high:
        raise Invalid(f"from_{what} is after to_{what}", code="range_invalid")
