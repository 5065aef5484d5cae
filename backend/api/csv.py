"""CSV export of a list (``?format=csv``): the same items as the JSON page, one row each.

``csv_response(items, columns, filename)`` takes the items as the route's response model
dumps them in JSON mode (times already ISO 8601, amounts integers), so a CSV row says what
the JSON item says. Cells: ``None`` is empty, booleans ``true``/``false``, objects and lists
compact JSON (integers exact). A text cell starting with ``=``, ``+``, ``-``, ``@``, tab or
carriage return gets a leading ``'``: spreadsheets would run it as a formula (member names
and paths come from clients), and these files are made to be opened in one.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from fastapi import Response

CSV_MEDIA_TYPE = "text/csv; charset=utf-8"
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")

#: ``responses=`` of a route that also answers ``?format=csv`` (for the OpenAPI document).
CSV_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"content": {"text/csv": {"schema": {"type": "string"}}}},
}


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, Mapping | list | tuple):
        return json.dumps(value, separators=(",", ":"))
    text = str(value)
    return "'" + text if text.startswith(_FORMULA_START) else text


def csv_text(items: Iterable[Mapping[str, Any]], columns: Sequence[str]) -> str:
    """The header row, then one row per item (its values for ``columns``, in order)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(columns)
    for item in items:
        writer.writerow([_cell(item.get(c)) for c in columns])
    return out.getvalue()


def csv_response(
    items: Iterable[Mapping[str, Any]],
    columns: Sequence[str],
    filename: str,
    headers: Mapping[str, str] | None = None,
) -> Response:
    """A ``text/csv`` attachment named ``filename`` holding ``items``."""
    safe = "".join(c for c in filename if c.isalnum() or c in "._-") or "export.csv"
    return Response(
        csv_text(items, columns),
        media_type=CSV_MEDIA_TYPE,
        headers={"Content-Disposition": f'attachment; filename="{safe}"', **(headers or {})},
    )
