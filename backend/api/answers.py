"""Answers written as JSON at once, for reads whose service builds exactly the fields of the
route's response model, in its order, from the mirror's columns.

FastAPI validates what a route returns against its ``response_model`` and serialises it
again: for a read that is a second pass over every field (a piece, a list page, a tree of
fifty nodes), a fifth of a piece's read in the API worker. A route that returns
:func:`json_answer` keeps its ``response_model`` declared (the OpenAPI document is unchanged)
and sends the same bytes: the mirror holds addresses checksummed and hashes in lower case
(:mod:`ledger.codec`), the model's own normal forms, and times are written as the model's
``Timestamp`` writes them. ``tests/api`` hold each such answer against its model
(``model_validate_json`` then ``model_dump_json`` gives back the very bytes).
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from starlette.responses import Response

_encoder = json.JSONEncoder(
    ensure_ascii=False, allow_nan=False, separators=(",", ":"), default=lambda v: _plain(v)
)


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        # As backend.schemas.common.Timestamp serialises it.
        return value.isoformat().replace("+00:00", "Z")
    raise TypeError(f"{type(value).__name__} is not written by json_answer")


def json_answer(content: Any, status_code: int = 200) -> Response:
    """``content`` (the response model's fields, in order) as an ``application/json`` answer."""
    return Response(
        _encoder.encode(content).encode(), status_code=status_code, media_type="application/json"
    )
