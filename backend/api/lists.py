"""How routes answer lists: a JSON page with ``next_cursor``, or the same items as CSV."""

from __future__ import annotations

from typing import Any, get_args

from pydantic import BaseModel

from backend.api.answers import json_answer
from backend.api.csv import csv_response


def list_answer(
    items: list[dict[str, Any]],
    next_cursor: str | None,
    fmt: str,
    model: type[BaseModel],
    filename: str,
    exact: bool = False,
) -> Any:
    """A list's answer: the JSON page, or (``format=csv``) the same items as CSV, one column
    per field of the item model, the next page's cursor in ``X-Next-Cursor``. ``exact``: the
    items are the item model's fields, in order, from the mirror's columns; the page is then
    written as JSON at once (:mod:`backend.api.answers`), not passed through the model."""
    body = {"items": items, "next_cursor": next_cursor}
    if fmt != "csv":
        return json_answer(body) if exact else body
    dumped = model.model_validate(body).model_dump(mode="json")
    item_model = model.model_fields["items"].annotation
    columns = list(get_args(item_model)[0].model_fields)
    headers = {"X-Next-Cursor": next_cursor} if next_cursor else None
    return csv_response(dumped["items"], columns, filename, headers)
